"""`music-analyzer process`: ingest local files and run every stage in this process, no UI needed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
from psycopg_pool import ConnectionPool

from music_core.batching import contiguous_ranges
from music_core.db import tracks
from music_core.db.connection import connect
from music_core.ingest import RegisteredUpload, register_local_file
from music_core.stages import STAGES, io_threads
from music_core.storage import ObjectStore
from music_core.uploads import LocalFile, expand_paths
from music_pipeline.defs.ingest.jobs import add_missing_partitions
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.instance import keep_storage_connections


def track_report(state: tracks.TrackState | None) -> dict[str, Any]:
    stages = {name: "skipped" for name in STAGES}
    notes: dict[str, str] = {}
    error = transcript = lyrics_source = similarity = None
    if state is not None:
        for name in STAGES:
            status = state.stages.get(name)
            stages[name] = "done" if status == "done" else "failed" if status == "failed" else "skipped"
            if stages[name] == "skipped" and state.errors.get(name):  # why: no vocals, no lyrics found…
                notes[name] = state.errors[name]
        failed = [n for n in STAGES if state.stages.get(n) == "failed"]
        error = f"{failed[0]}: {state.errors.get(failed[0])}" if failed else None
        transcript, lyrics_source, similarity = state.transcript, state.lyrics_source, state.similarity
    return {
        "stages": stages, "notes": notes, "error": error, "transcript": transcript,
        "lyrics_source": lyrics_source, "similarity": similarity,
    }  # fmt: skip


def assets_for_stages(
    from_stage: str | None = None, until_stage: str | None = None
) -> list[dg.AssetsDefinition]:
    """The per-track assets that make the stages from ``from_stage`` through ``until_stage``. An asset
    that makes several stages (``audio``: audio_file and converted_audio) runs whole when any is wanted."""
    from music_pipeline.definitions import PER_TRACK_ASSETS

    for stage in (from_stage, until_stage):
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    start = STAGES.index(from_stage) if from_stage else 0
    stop = STAGES.index(until_stage) + 1 if until_stage else len(STAGES)
    wanted = set(STAGES[start:stop])
    return [a for a in PER_TRACK_ASSETS if {k.to_user_string() for k in a.keys} & wanted]


def materialize_tracks(
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    track_ids: Sequence[str],
    batch: int,
    from_stage: str | None = None,
    until_stage: str | None = None,
) -> None:
    """Run the per-track assets from ``from_stage`` through ``until_stage`` (default: all) over
    contiguous ranges of tracks, one in-process run per range."""
    assets = assets_for_stages(from_stage, until_stage)
    name = tracks_partitions.name
    assert name is not None
    keep_storage_connections(instance)
    order = instance.get_dynamic_partitions(name)
    # Dagster's console log follows the process's verbosity (`music-analyzer -v`): its per-step DEBUG
    # lines drowned the one-shot commands' own output.
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    run_config = {"loggers": {"console": {"config": {"log_level": level}}}}
    for first, last in contiguous_ranges(order, track_ids, batch):
        dg.materialize(
            assets,
            instance=instance,
            resources=resources,
            run_config=run_config,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            raise_on_error=True,
        )


def process_paths(
    paths: Sequence[str],
    *,
    store: ObjectStore,
    database_url: str,
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    batch: int,
    workers: int = 2,
    reprocess: bool = False,
    until_stage: str | None = None,
) -> list[dict[str, Any]]:
    threads = io_threads(workers)

    def register(item: LocalFile | tuple[str, str]) -> tuple[str, RegisteredUpload | None, str | None]:
        if not isinstance(item, LocalFile):
            return (item[0], None, item[1])
        try:
            reg = register_local_file(store, database_url, item.path, item.name, pool=connections)
            return (str(item.path), reg, None)
        except OSError as exc:
            return (str(item.path), None, f"cannot read file: {exc.strerror or exc}")

    # Hashing and uploads of several files overlap; the files share a few database connections.
    with (
        ConnectionPool(database_url, min_size=1, max_size=threads, open=True, timeout=30) as connections,
        ThreadPoolExecutor(max_workers=threads) as pool,
    ):
        entries = list(pool.map(register, expand_paths(paths)))
    ids = list(dict.fromkeys(reg.track_id for _, reg, _ in entries if reg))
    add_missing_partitions(instance, ids)
    with connect(database_url) as conn:
        states = {s.track_id: s for s in tracks.track_states(conn, ids)}
    wanted = STAGES[: STAGES.index(until_stage) + 1] if until_stage in STAGES else STAGES
    # Finished means done or skipped for a reason (no vocals, no lyrics); anything else runs again.
    todo = (
        ids
        if reprocess
        else [t for t in ids if any(states[t].stages.get(s) not in ("done", "skipped") for s in wanted)]
    )
    if todo:
        materialize_tracks(instance, resources, todo, batch, until_stage=until_stage)
        with connect(database_url) as conn:
            states = {s.track_id: s for s in tracks.track_states(conn, ids)}
    report = []
    for file, reg, problem in entries:
        if reg is None:
            report.append(
                {"file": file, "track_id": None, "duplicate_of": None, **track_report(None), "error": problem}
            )
            continue
        report.append({"file": file, "track_id": reg.track_id, "duplicate_of": reg.duplicate_of,
                       **track_report(states.get(reg.track_id))})  # fmt: skip
    return report


def status_report(database_url: str) -> list[dict[str, Any]]:
    with connect(database_url) as conn:
        states = tracks.track_states(conn)
    return [
        {"file": s.original_filename, "track_id": s.track_id, "aliases": s.aliases, **track_report(s)}
        for s in states
    ]


def select_tracks(database_url: str, *, track_ids: Sequence[str] = (), genre: str | None = None) -> list[str]:
    """Track ids by explicit id (or unique prefix of at least 6 hex characters: LookupError for one
    that matches no track or several), by genre (case-insensitive), or all when neither."""
    with connect(database_url) as conn:
        if genre is not None:
            rows = conn.execute(
                "SELECT id FROM music_files WHERE lower(genre) = lower(%s) ORDER BY seq", (genre,)
            ).fetchall()
        elif track_ids:
            return list(dict.fromkeys(tracks.resolve_track(conn, t) for t in track_ids))
        else:
            rows = conn.execute("SELECT id FROM music_files ORDER BY seq").fetchall()
    return [r[0] for r in rows]
