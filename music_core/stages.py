"""Per-track stage logic shared by the Dagster assets and the one-shot command line.

Each function handles one track, records its outcome in ``track_stages`` and never raises for bad
input: a corrupt file becomes a ``failed`` state with a one-line reason, and the batch goes on.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from psycopg import Connection
from psycopg_pool import ConnectionPool

from music_core.audio.convert import FINGERPRINT_ALGORITHM, convert_to_mono_16k
from music_core.audio.errors import AudioError
from music_core.audio.probe import probe
from music_core.db import tracks
from music_core.db.locks import shared_track_lock
from music_core.naming import converted_key
from music_core.stage_names import (  # noqa: F401 - re-exported: stages.STAGES etc.
    AUDIO_FILE,
    COMPARISON,
    CONVERTED_AUDIO,
    EMBEDDING,
    LYRICS,
    STAGES,
    TRANSCRIPTION,
)
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)

DURATION_TOLERANCE_S = 0.1
# Audio stages mostly wait on the object store and the database: they run this many threads per
# configured worker, while the FFmpeg decode inside them still runs at most ``workers`` at a time.
IO_THREADS_PER_WORKER = 2
Outcome = TypeVar("Outcome")


def io_threads(workers: int) -> int:
    return max(1, workers) * IO_THREADS_PER_WORKER


@dataclass(frozen=True)
class StageOutcome:
    track_id: str
    status: str  # done | failed | skipped
    error: str | None = None
    warnings: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageContext:
    store: ObjectStore
    pool: ConnectionPool
    run_id: str | None = None
    timeout_seconds: float = 3600
    cpu_slots: threading.Semaphore | None = None  # caps concurrent FFmpeg decodes at ``workers``

    def connection(self) -> AbstractContextManager[Connection]:
        return self.pool.connection()

    @contextmanager
    def cpu_slot(self) -> Iterator[None]:
        """Hold one of the ``workers`` decode slots: I/O of other tracks goes on meanwhile."""
        if self.cpu_slots is None:
            yield
            return
        with self.cpu_slots:
            yield


@contextmanager
def stage_context(
    store: ObjectStore, database_url: str, *, run_id: str | None, timeout_seconds: float, workers: int
) -> Iterator[StageContext]:
    """A context with a small connection pool: a batch reuses connections instead of opening hundreds."""
    # Each thread (up to io_threads) holds one connection for its track lock and borrows a second for writes.
    size = 2 * io_threads(workers) + 1
    with ConnectionPool(database_url, min_size=1, max_size=size, open=True, timeout=30) as pool:
        yield StageContext(store, pool, run_id, timeout_seconds, threading.BoundedSemaphore(max(1, workers)))


def _finish(ctx: StageContext, stage: str, outcome: StageOutcome) -> StageOutcome:
    with ctx.connection() as conn:
        tracks.set_stage(
            conn,
            outcome.track_id,
            stage,
            outcome.status,
            error=outcome.error,
            warnings=outcome.warnings,
            run_id=ctx.run_id,
            details=outcome.details,
        )
    return outcome


def _attempt(ctx: StageContext, stage: str, track_id: str, work: Callable[[], StageOutcome]) -> StageOutcome:
    """Run one stage's work for a track and record its outcome; bad input becomes a failed state."""
    try:
        outcome = work()
    except AudioError as exc:
        outcome = StageOutcome(track_id, "failed", str(exc))
    except Exception as exc:  # noqa: BLE001 - one track's surprise must not stop the batch
        log.exception("%s failed for %s", stage, track_id)
        outcome = StageOutcome(track_id, "failed", f"internal error: {type(exc).__name__}: {exc}"[:300])
    return _finish(ctx, stage, outcome)


@contextmanager
def _claimed(ctx: StageContext, track_id: str, stage_names: Sequence[str]) -> Iterator[bool]:
    """Hold the track's shared lock (retention cannot remove it meanwhile) and mark the stages running.
    Yields False when the track was removed before the lock was granted."""
    with ctx.connection() as lock_conn, shared_track_lock(lock_conn, track_id):
        with ctx.connection() as conn:
            present = tracks.exists(conn, track_id)
            for stage in stage_names if present else ():
                tracks.set_stage(conn, track_id, stage, "running", run_id=ctx.run_id)
        yield present


def guarded(
    stage: str, work: Callable[[StageContext, str], StageOutcome]
) -> Callable[[StageContext, str], StageOutcome]:
    def run(ctx: StageContext, track_id: str) -> StageOutcome:
        with _claimed(ctx, track_id, [stage]) as present:
            if not present:
                return StageOutcome(track_id, "skipped", "track was removed")
            return _attempt(ctx, stage, track_id, lambda: work(ctx, track_id))

    return run


def upstream_blocked(ctx: StageContext, track_id: str, upstream: str) -> StageOutcome | None:
    with ctx.connection() as conn:
        status = tracks.stage_statuses(conn, [track_id], upstream).get(track_id)
    if status == "done":
        return None
    return StageOutcome(track_id, "skipped", f"{upstream} is {status or 'missing'}")


# Originals up to this size are downloaded once and probed and decoded from local disk; larger ones
# (hours of video) are read by FFmpeg straight from the bucket instead of filling the temp disk.
LOCAL_COPY_LIMIT = 2 * 1024**3


def _fetch_original(ctx: StageContext, row: dict[str, Any], workdir: Path) -> str:
    """The original as a local file (one download serves probe and decode), or a URL for huge files."""
    if row["file_size"] == 0:
        raise AudioError("empty file (0 bytes)")
    if row["file_size"] > LOCAL_COPY_LIMIT:
        return ctx.store.presigned_get(row["storage_path"])
    local = workdir / "original"
    if not ctx.store.download(row["storage_path"], local):
        raise AudioError("the original is missing from the bucket")
    return str(local)


def _analyse(ctx: StageContext, track_id: str, source: str) -> StageOutcome:
    facts = probe(source)
    with ctx.connection() as conn:
        genre = facts.genre or tracks.first_alias_folder(conn, track_id)
        values = {
            "container": facts.container,
            "codec": facts.codec,
            "duration": facts.duration,
            "sample_rate": facts.sample_rate,
            "channels": facts.channels,
            "bit_rate": facts.bit_rate,
            "artist": facts.artist,
            "title": facts.title,
            "album": facts.album,
            "genre": genre,
            "year": facts.year,
            "lyrics": facts.lyrics,
            "extra": {
                "tags": facts.tags,
                "has_video": facts.has_video,
                "genre_source": "tag" if facts.genre else "folder",
            },
        }
        tracks.update_audio_facts(conn, track_id, values)
    details = {k: values[k] for k in ("container", "codec", "duration", "sample_rate", "channels")}
    return StageOutcome(track_id, "done", details=details)


def _convert(
    ctx: StageContext, track_id: str, source: str, workdir: Path, original_duration: float | None
) -> StageOutcome:
    with ctx.cpu_slot():  # the upload below overlaps the next track's decode
        result = convert_to_mono_16k(source, workdir, ctx.timeout_seconds)
    key = converted_key(track_id)
    size = result.path.stat().st_size
    ctx.store.put_file(key, result.path, "audio/flac")
    with ctx.connection() as conn:
        tracks.update_conversion(
            conn, track_id, path=key, size=size, duration=result.duration,
            fingerprint=result.fingerprint, algorithm=FINGERPRINT_ALGORITHM,
        )  # fmt: skip
    drift = abs(result.duration - original_duration) if original_duration else None
    details = {"key": key, "size": size, "duration": result.duration, "duration_drift": drift}
    return StageOutcome(track_id, "done", warnings=result.warnings, details=details)


def prepare_audio(ctx: StageContext, track_id: str) -> tuple[StageOutcome, StageOutcome]:
    """The ``audio_file`` and ``converted_audio`` stages in one pass: the original is read from the
    bucket once, probed, then decoded to 16 kHz mono FLAC with its fingerprint. Each stage records its
    own outcome; conversion is skipped when the probe failed."""
    with _claimed(ctx, track_id, [AUDIO_FILE, CONVERTED_AUDIO]) as present:
        if not present:
            removed = StageOutcome(track_id, "skipped", "track was removed")
            return removed, removed
        with ctx.connection() as conn:
            row = tracks.get_track(conn, track_id)
        assert row is not None
        with tempfile.TemporaryDirectory(prefix="audio-") as tmp:
            workdir = Path(tmp)
            source = ""  # set by the probe: the local copy, or a URL for huge originals

            def analyse() -> StageOutcome:
                nonlocal source
                source = _fetch_original(ctx, row, workdir)
                return _analyse(ctx, track_id, source)

            facts = _attempt(ctx, AUDIO_FILE, track_id, analyse)
            if facts.status != "done":
                skipped = StageOutcome(track_id, "skipped", f"{AUDIO_FILE} is {facts.status}")
                return facts, _finish(ctx, CONVERTED_AUDIO, skipped)
            duration = facts.details.get("duration")
            converted = _attempt(
                ctx, CONVERTED_AUDIO, track_id, lambda: _convert(ctx, track_id, source, workdir, duration)
            )
    return facts, converted


def run_batch(
    ctx: StageContext,
    stage_fn: Callable[[StageContext, str], Outcome],
    track_ids: Sequence[str],
    workers: int,
) -> list[Outcome]:
    """Run one stage over many tracks with a small thread pool (FFmpeg work releases the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda tid: stage_fn(ctx, tid), track_ids))


def summarise(outcomes: Sequence[StageOutcome]) -> dict[str, Any]:
    counts = {
        status: sum(1 for o in outcomes if o.status == status) for status in ("done", "failed", "skipped")
    }
    problems = [{"track_id": o.track_id, "status": o.status, "error": o.error} for o in outcomes if o.error]
    return {**counts, "problems": problems}
