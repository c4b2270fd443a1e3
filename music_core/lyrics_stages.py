"""Per-track lyrics (and their vectors) and comparison stages."""

from __future__ import annotations

import dataclasses
import statistics
import threading
from collections.abc import Callable, Sequence
from typing import Any

from music_core import ml_stages
from music_core.compare import compare, sync_lines
from music_core.db import lyrics as lyrics_db
from music_core.embed.embedder import SentenceEmbedder
from music_core.lyrics.lrc import format_lrc, parse_lrc
from music_core.lyrics.registry import find_lyrics
from music_core.lyrics.types import LyricsProvider
from music_core.stages import (
    COMPARISON,
    LYRICS,
    TRANSCRIPTION,
    StageContext,
    StageOutcome,
    guarded,
    upstream_blocked,
)


def lyrics_stage(
    providers: Sequence[LyricsProvider], embedder: SentenceEmbedder | None = None, chunk_words: int = 128
) -> Callable[[StageContext, str], StageOutcome]:
    """Find the official lyrics; with an ``embedder``, also replace the track's lyrics vectors so
    semantic search finds a song by words that only its official lyrics contain."""
    embed_lock = threading.Lock()  # one model, shared by the stage's worker threads

    def embed_current(ctx: StageContext, track_id: str) -> int:
        assert embedder is not None
        with ctx.connection() as conn:
            current = lyrics_db.current_lyrics(conn, track_id)  # a pinned choice wins here too
        text = (current or {}).get("lyrics_text") or ""
        with embed_lock:
            return ml_stages.store_text_vectors(
                ctx, track_id, ml_stages.LYRICS_SOURCE, embedder, text, chunk_words
            )

    def fetch(ctx: StageContext, track_id: str) -> StageOutcome:
        with ctx.connection() as conn:
            pinned = lyrics_db.pinned_lyrics(conn, track_id)
            if pinned:  # a user's choice wins over every provider
                return StageOutcome(track_id, "done", details={"source": pinned["source"], "pinned": True})
            query = lyrics_db.lyrics_query(conn, track_id)
        found, notes = find_lyrics(providers, query)
        with ctx.connection() as conn:
            if found is None:
                lyrics_db.clear_lyrics(conn, track_id)
                tried = ", ".join(p.name for p in providers)
                return StageOutcome(track_id, "skipped", f"no lyrics found ({tried})", warnings=tuple(notes))
            lyrics_db.save_lyrics(conn, track_id, found, notes)
        details = {
            "source": found.source,
            "synced": found.synced is not None,
            "instrumental": found.instrumental,
        }
        return StageOutcome(track_id, "done", warnings=tuple(notes), details=details)

    def work(ctx: StageContext, track_id: str) -> StageOutcome:
        blocked = upstream_blocked(ctx, track_id, TRANSCRIPTION)
        if blocked:
            return blocked
        outcome = fetch(ctx, track_id)
        if embedder is None:
            return outcome
        chunks = embed_current(ctx, track_id)  # no lyrics (or instrumental): old vectors are removed
        details = {**outcome.details, "embedding_model_id": embedder.model_id, "lyrics_chunks": chunks}
        return dataclasses.replace(outcome, details=details)

    return guarded(LYRICS, work)


def _timing_difference(ours: list[tuple[float, str]], theirs: str) -> dict[str, Any] | None:
    reference = parse_lrc(theirs)
    if not reference or len(reference) != len(ours):
        return None
    diffs = [abs(a[0] - b[0]) for a, b in zip(ours, reference, strict=True)]
    return {
        "lines": len(diffs),
        "median_s": round(statistics.median(diffs), 3),
        "max_s": round(max(diffs), 3),
    }


def _compare(ctx: StageContext, track_id: str) -> StageOutcome:
    blocked = upstream_blocked(ctx, track_id, LYRICS)
    if blocked:
        return blocked
    with ctx.connection() as conn:
        found = lyrics_db.current_lyrics(conn, track_id)
        row = conn.execute(
            "SELECT transcription_text, words FROM transcriptions WHERE file_id = %s ORDER BY created_at DESC LIMIT 1",
            (track_id,),
        ).fetchone()
    if found is None or not found["lyrics_text"]:
        return StageOutcome(track_id, "skipped", "instrumental: nothing to compare")
    transcript, words = (row[0] or "", row[1] or []) if row else ("", [])
    result = compare(found["lyrics_text"], transcript)
    timed = sync_lines(found["lyrics_text"], [(w["start"], w["end"], w["word"]) for w in words])
    timing = _timing_difference(timed, found["synced_lyrics"]) if found["synced_lyrics"] else None
    with ctx.connection() as conn:
        lyrics_db.save_comparison(conn, track_id, str(found["id"]), result, format_lrc(timed), timing)
    details = {"similarity": result.similarity, "wer": result.wer, "lrc_timing": timing}
    return StageOutcome(track_id, "done", details=details)


compare_stage = guarded(COMPARISON, _compare)
