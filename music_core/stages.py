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
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from music_core.audio.convert import FINGERPRINT_ALGORITHM, convert_to_mono_16k
from music_core.audio.errors import AudioError
from music_core.audio.probe import probe
from music_core.db import tracks
from music_core.db.locks import shared_track_lock
from music_core.naming import converted_key
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)

AUDIO_FILE = "audio_file"
CONVERTED_AUDIO = "converted_audio"
TRANSCRIPTION = "transcription"
EMBEDDING = "embedding"
LYRICS = "lyrics"
COMPARISON = "comparison"
STAGES = (AUDIO_FILE, CONVERTED_AUDIO, TRANSCRIPTION, EMBEDDING, LYRICS, COMPARISON)
DURATION_TOLERANCE_S = 0.1
# Audio stages mostly wait on the object store and the database: they run this many threads per
# configured worker, while the FFmpeg decode inside them still runs at most ``workers`` at a time.
IO_THREADS_PER_WORKER = 2


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


def guarded(
    stage: str, work: Callable[[StageContext, str], StageOutcome]
) -> Callable[[StageContext, str], StageOutcome]:
    def run(ctx: StageContext, track_id: str) -> StageOutcome:
        # The shared lock keeps retention from removing the track while this stage works on it.
        with ctx.connection() as lock_conn, shared_track_lock(lock_conn, track_id):
            with ctx.connection() as conn:
                if not tracks.exists(conn, track_id):
                    return StageOutcome(track_id, "skipped", "track was removed")
                tracks.set_stage(conn, track_id, stage, "running", run_id=ctx.run_id)
            try:
                outcome = work(ctx, track_id)
            except AudioError as exc:
                outcome = StageOutcome(track_id, "failed", str(exc))
            except Exception as exc:  # noqa: BLE001 - one track's surprise must not stop the batch
                log.exception("%s failed for %s", stage, track_id)
                outcome = StageOutcome(
                    track_id, "failed", f"internal error: {type(exc).__name__}: {exc}"[:300]
                )
            return _finish(ctx, stage, outcome)

    return run


def upstream_blocked(ctx: StageContext, track_id: str, upstream: str) -> StageOutcome | None:
    with ctx.connection() as conn:
        status = tracks.stage_statuses(conn, [track_id], upstream).get(track_id)
    if status == "done":
        return None
    return StageOutcome(track_id, "skipped", f"{upstream} is {status or 'missing'}")


def _analyse_audio(ctx: StageContext, track_id: str) -> StageOutcome:
    with ctx.connection() as conn:
        row = tracks.get_track(conn, track_id)
        folder = tracks.first_alias_folder(conn, track_id)
    if row is None:
        return StageOutcome(track_id, "skipped", "track is not registered")
    if row["file_size"] == 0:
        raise AudioError("empty file (0 bytes)")
    facts = probe(ctx.store.presigned_get(row["storage_path"]))
    genre = facts.genre or folder
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
    with ctx.connection() as conn:
        tracks.update_audio_facts(conn, track_id, values)
    details = {k: values[k] for k in ("container", "codec", "duration", "sample_rate", "channels")}
    return StageOutcome(track_id, "done", details=details)


def _convert(ctx: StageContext, track_id: str) -> StageOutcome:
    blocked = upstream_blocked(ctx, track_id, AUDIO_FILE)
    if blocked:
        return blocked
    with ctx.connection() as conn:
        row = tracks.get_track(conn, track_id)
    assert row is not None
    with tempfile.TemporaryDirectory(prefix="convert-") as tmp:
        with ctx.cpu_slot():  # the upload below overlaps the next track's decode
            result = convert_to_mono_16k(
                ctx.store.presigned_get(row["storage_path"]), Path(tmp), ctx.timeout_seconds
            )
        key = converted_key(track_id)
        size = result.path.stat().st_size
        ctx.store.put_file(key, result.path, "audio/flac")
    with ctx.connection() as conn:
        tracks.update_conversion(
            conn, track_id, path=key, size=size, duration=result.duration,
            fingerprint=result.fingerprint, algorithm=FINGERPRINT_ALGORITHM,
        )  # fmt: skip
    original = row["duration"]
    drift = abs(result.duration - original) if original else None
    details = {"key": key, "size": size, "duration": result.duration, "duration_drift": drift}
    return StageOutcome(track_id, "done", warnings=result.warnings, details=details)


analyse_audio = guarded(AUDIO_FILE, _analyse_audio)
convert_audio = guarded(CONVERTED_AUDIO, _convert)


def run_batch(
    ctx: StageContext,
    stage_fn: Callable[[StageContext, str], StageOutcome],
    track_ids: Sequence[str],
    workers: int,
) -> list[StageOutcome]:
    """Run one stage over many tracks with a small thread pool (FFmpeg work releases the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda tid: stage_fn(ctx, tid), track_ids))


def summarise(outcomes: Sequence[StageOutcome]) -> dict[str, Any]:
    counts = {
        status: sum(1 for o in outcomes if o.status == status) for status in ("done", "failed", "skipped")
    }
    problems = [{"track_id": o.track_id, "status": o.status, "error": o.error} for o in outcomes if o.error]
    return {**counts, "problems": problems}
