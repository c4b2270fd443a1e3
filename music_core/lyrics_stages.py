"""Per-track lyrics (and their vectors) and comparison stages."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from music_core import ml_stages
from music_core.compare import Comparison, compare, normalise_words, sync_lyrics
from music_core.db import lyrics as lyrics_db
from music_core.embed.embedder import SentenceEmbedder
from music_core.llm.prompt import prompt_input
from music_core.llm.types import AnalystError, ComparisonAnalyst
from music_core.lyrics.lrc import format_lrc, parse_lrc
from music_core.lyrics.registry import any_provider_unavailable, find_lyrics
from music_core.lyrics.types import LyricsProvider
from music_core.lyrics_sync import LineTiming, timing_difference
from music_core.stages import (
    COMPARISON,
    LYRICS,
    TRANSCRIPTION,
    StageContext,
    StageOutcome,
    guarded,
    upstream_blocked,
)

log = logging.getLogger(__name__)


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
            if found is None and any_provider_unavailable(notes) and lyrics_db.current_lyrics(conn, track_id):
                # "Not found" is no answer while a provider was down: keep what was found before
                # (and the comparison and vectors that hang on it) rather than delete it.
                kept = (*notes, "kept the lyrics found before: a provider was unavailable")
                return StageOutcome(track_id, "done", warnings=kept, details={"kept": True})
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
    """Our synced lines against the provider's (LRCLIB, a sidecar .lrc, SYLT), paired by line text."""
    return timing_difference(ours, parse_lrc(theirs), lambda line: " ".join(normalise_words(line)))


def _with_timings(result: Comparison, synced: list[LineTiming]) -> Comparison:
    """Each line's match share plus its start, method (matched | heard | interpolated), confidence and
    whether the time is estimated: stored with the comparison and shown by the API."""
    lines = [
        {**m, **{k: v for k, v in t.as_dict().items() if k != "line"}}
        for m, t in zip(result.line_matches, synced, strict=True)
    ]
    return dataclasses.replace(result, line_matches=lines)


def _llm_note(
    analyst: ComparisonAnalyst | None, lyrics: str, transcript: str, result: Comparison
) -> tuple[str | None, str | None]:
    """(note, warning): the analyst's note, or why there is none; never raises."""
    if analyst is None:
        return None, None
    try:
        return analyst.analyse(prompt_input(lyrics, transcript, result)).text, None
    except AnalystError as exc:
        return None, f"llm analysis failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - an optional note must never fail the comparison
        log.warning("llm analysis failed: %s", type(exc).__name__)
        return None, f"llm analysis failed: {type(exc).__name__}"


def comparison_stage(
    analyst: ComparisonAnalyst | None = None, load_warning: str | None = None
) -> Callable[[StageContext, str], StageOutcome]:
    """Compare the transcript with the current lyrics; with an ``analyst``, add its note (llm_notes).
    ``load_warning`` (the analyst could not be built) is recorded on every track instead."""

    def work(ctx: StageContext, track_id: str) -> StageOutcome:
        blocked = upstream_blocked(ctx, track_id, LYRICS)
        if blocked:
            return blocked
        with ctx.connection() as conn:
            found = lyrics_db.current_lyrics(conn, track_id)
            row = conn.execute(
                "SELECT transcription_text, words, segments FROM transcriptions WHERE file_id = %s"
                " ORDER BY created_at DESC LIMIT 1",
                (track_id,),
            ).fetchone()
        if found is None or not found["lyrics_text"]:
            return StageOutcome(track_id, "skipped", "instrumental: nothing to compare")
        transcript, words, segments = (row[0] or "", row[1] or [], row[2] or []) if row else ("", [], [])
        synced = sync_lyrics(
            found["lyrics_text"],
            [(w["start"], w["end"], w["word"], w.get("probability")) for w in words],
            [s["start"] for s in segments],
        )
        timed = [(t.start, t.line) for t in synced]
        result = _with_timings(compare(found["lyrics_text"], transcript), synced)
        timing = _timing_difference(timed, found["synced_lyrics"]) if found["synced_lyrics"] else None
        note, warning = _llm_note(analyst, found["lyrics_text"], transcript, result)
        warnings = tuple(w for w in (load_warning, warning) if w)
        with ctx.connection() as conn:
            lyrics_db.save_comparison(
                conn, track_id, str(found["id"]), result, format_lrc(timed), timing, llm_notes=note
            )
        details: dict[str, Any] = {
            "similarity": result.similarity,
            "wer": result.wer,
            "lrc_timing": timing,
            "lines_estimated": sum(t.estimated for t in synced),
        }
        if note is not None:
            details["llm_model"] = analyst.model_id  # type: ignore[union-attr]
        return StageOutcome(track_id, "done", warnings=warnings, details=details)

    return guarded(COMPARISON, work)


compare_stage = comparison_stage()  # without LLM notes
