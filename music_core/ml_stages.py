"""Per-track transcription and embedding stages (models are passed in, loaded once per process)."""

from __future__ import annotations

from collections.abc import Callable

from music_core.asr.runner import transcribe_source
from music_core.asr.types import Transcriber
from music_core.db import analysis
from music_core.embed.chunking import word_chunks
from music_core.embed.embedder import SentenceEmbedder
from music_core.stages import (
    CONVERTED_AUDIO,
    EMBEDDING,
    TRANSCRIPTION,
    StageContext,
    StageOutcome,
    guarded,
    upstream_blocked,
)

LOW_CONFIDENCE = 0.6
TRANSCRIPT_SOURCE = "transcript"
LYRICS_SOURCE = "lyrics"


def transcribe_stage(
    transcriber: Transcriber, chunk_seconds: float
) -> Callable[[StageContext, str], StageOutcome]:
    def work(ctx: StageContext, track_id: str) -> StageOutcome:
        blocked = upstream_blocked(ctx, track_id, CONVERTED_AUDIO)
        if blocked:
            return blocked
        with ctx.connection() as conn:
            row = conn.execute("SELECT converted_path FROM music_files WHERE id = %s", (track_id,)).fetchone()
        transcript = transcribe_source(transcriber, ctx.store.presigned_get(row[0]), chunk_seconds)
        with ctx.connection() as conn:
            analysis.save_transcription(conn, track_id, transcript)
        warnings = []
        if transcript.confidence is not None and transcript.confidence < LOW_CONFIDENCE:
            warnings.append(
                f"low confidence {transcript.confidence:.2f}: unclear vocals, or a language the model does not know"
            )
        details = {
            "model_id": transcript.model_id,
            "no_vocals": transcript.no_vocals,
            "words": len(transcript.words),
            "language": transcript.language,
            "confidence": transcript.confidence,
            "real_time_factor": transcript.real_time_factor,
        }
        return StageOutcome(track_id, "done", warnings=tuple(warnings), details=details)

    return guarded(TRANSCRIPTION, work)


def store_text_vectors(
    ctx: StageContext, track_id: str, source: str, embedder: SentenceEmbedder, text: str, chunk_words: int
) -> int:
    """Chunk ``text``, embed it and replace the track's vectors for ``source`` (empty text removes them)."""
    chunks = word_chunks(text, size=chunk_words, overlap=chunk_words // 4)
    vectors = embedder.embed(chunks)
    with ctx.connection() as conn:
        return analysis.replace_embeddings(conn, track_id, source, embedder.model_id, chunks, vectors)


def embed_stage(embedder: SentenceEmbedder, chunk_words: int) -> Callable[[StageContext, str], StageOutcome]:
    def work(ctx: StageContext, track_id: str) -> StageOutcome:
        blocked = upstream_blocked(ctx, track_id, TRANSCRIPTION)
        if blocked:
            return blocked
        with ctx.connection() as conn:
            found = analysis.latest_transcript_text(conn, track_id)
        text, no_vocals = found or ("", True)
        written = store_text_vectors(
            ctx, track_id, TRANSCRIPT_SOURCE, embedder, "" if no_vocals else text, chunk_words
        )
        if not written:
            return StageOutcome(track_id, "skipped", "no vocals: nothing to embed")
        return StageOutcome(track_id, "done", details={"model_id": embedder.model_id, "chunks": written})

    return guarded(EMBEDDING, work)
