"""Cleanup runs as the Dagster jobs and the command line call them: preview or execute, always logged.

Dagster specifics (deleting dynamic partitions) come in as a callback, so this stays plain Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from music_core.cache_generation import bump_generation
from music_core.db.connection import connect
from music_core.index_sync import stale_index_vectors, sync_all_indexes
from music_core.retention.cleanup_log import write_cleanup_log
from music_core.retention.duplicates import (
    DEFAULT_MAX_BIT_ERROR_RATE,
    exact_duplicates,
    merge_aliases,
    perceptual_duplicates,
)
from music_core.retention.options import RemovalOptions
from music_core.retention.orphans import find_orphans, repair_orphans
from music_core.retention.removal import (
    PlannedRemoval,
    RemovalResult,
    execute_removals,
    finish_pending,
    plan_track_removals,
)
from music_core.retention.rules import RetentionRule, plan_retention
from music_core.storage import ObjectStore

DETAIL_LIMIT = 1000  # tracks listed by name in one cleanup_log row
ForgetPartitions = Callable[[Sequence[str]], None]


def _no_partitions(_: Sequence[str]) -> None:
    return None


@dataclass
class CleanupOutcome:
    action: str
    dry_run: bool
    file_count: int
    bytes: int
    details: dict[str, Any] = field(default_factory=dict)
    log_id: str | None = None


def _planned_details(plans: Sequence[PlannedRemoval]) -> list[dict[str, Any]]:
    return [
        {"track_id": p.track_id, "filename": p.filename, "genre": p.genre, "bytes": p.bytes}
        for p in plans[:DETAIL_LIMIT]
    ]


def _result_details(result: RemovalResult) -> dict[str, Any]:
    return {
        "removed": len(result.removed),
        "tracks_deleted": len(result.tracks_deleted),
        "deferred_busy": result.deferred,
        "uploaded_again": result.renewed,
        "failed": result.failed,
    }


def _after_removals(
    database_url: str,
    store: ObjectStore,
    result: RemovalResult,
    cache_url: str | None,
    forget: ForgetPartitions,
    clear_cache: bool = True,
) -> dict[str, Any]:
    """Everywhere else a removed track lived: Dagster partitions, FAISS indexes, the API cache."""
    extra: dict[str, Any] = {}
    if result.tracks_deleted:
        forget(result.tracks_deleted)
    if result.vectors_removed or result.tracks_deleted:
        with connect(database_url) as conn:
            extra["index_vectors_removed"] = sync_all_indexes(store, conn)
    if result.removed and clear_cache:
        bump_generation(cache_url)
    return extra


def _log(database_url: str, outcome: CleanupOutcome, performed_by: str) -> CleanupOutcome:
    with connect(database_url) as conn:
        outcome.log_id = write_cleanup_log(
            conn,
            action=outcome.action,
            dry_run=outcome.dry_run,
            file_count=outcome.file_count,
            space_freed=outcome.bytes,
            details=outcome.details,
            performed_by=performed_by,
        )
    return outcome


def finish_interrupted(
    database_url: str, store: ObjectStore, *, cache_url: str | None, forget: ForgetPartitions = _no_partitions
) -> RemovalResult:
    result = finish_pending(database_url, store)
    _after_removals(database_url, store, result, cache_url, forget)
    return result


def run_retention(
    database_url: str,
    store: ObjectStore,
    rule: RetentionRule,
    *,
    execute: bool,
    performed_by: str,
    cache_url: str | None = None,
    forget: ForgetPartitions = _no_partitions,
    now: dt.datetime | None = None,
) -> CleanupOutcome:
    resumed = finish_interrupted(database_url, store, cache_url=cache_url, forget=forget) if execute else None
    with connect(database_url) as conn:
        plans = plan_retention(conn, rule, now)
    details: dict[str, Any] = {
        "rule": rule.describe(),
        "options": rule.options.as_dict(),
        "tracks": _planned_details(plans),
    }
    outcome = CleanupOutcome("retention", not execute, len(plans), sum(p.bytes for p in plans), details)
    if execute:
        result = execute_removals(database_url, store, plans, rule.options, performed_by=performed_by)
        details.update(_result_details(result))
        details.update(
            _after_removals(database_url, store, result, cache_url, forget, rule.options.clear_cache)
        )
        details["resumed_interrupted"] = resumed.removed if resumed else []
        outcome.file_count, outcome.bytes = len(result.removed), result.bytes_freed
    return _log(database_url, outcome, performed_by)


def run_orphan_sweep(
    database_url: str,
    store: ObjectStore,
    partition_keys: Sequence[str],
    *,
    execute: bool,
    performed_by: str,
    grace: dt.timedelta = dt.timedelta(hours=1),
    cache_url: str | None = None,
    forget: ForgetPartitions = _no_partitions,
) -> CleanupOutcome:
    if execute:
        finish_interrupted(database_url, store, cache_url=cache_url, forget=forget)
    with connect(database_url) as conn:
        report = find_orphans(conn, store, partition_keys, grace=grace)
        stale_vectors = stale_index_vectors(store, conn)
    details: dict[str, Any] = {
        **report.summary(),
        "index_vectors_without_row": stale_vectors,
        "objects": [o.key for o in report.objects_without_row[:DETAIL_LIMIT]],
        "missing_originals": report.rows_without_original[:DETAIL_LIMIT],
        "missing_converted": report.rows_without_converted[:DETAIL_LIMIT],
        "partitions": report.partitions_without_row[:DETAIL_LIMIT],
    }
    count = sum(v for k, v in report.summary().items() if k != "bytes") + sum(stale_vectors.values())
    outcome = CleanupOutcome("orphan_sweep", not execute, count, report.bytes, details)
    if execute:
        done = repair_orphans(database_url, store, report)
        if report.partitions_without_row:
            forget(report.partitions_without_row)
        if any(stale_vectors.values()):  # else the indexes are current: no new version to write
            with connect(database_url) as conn:
                details["index_vectors_removed"] = sync_all_indexes(store, conn)
        details["done"] = done
        outcome.bytes = done["bytes_freed"]
        if any(done.values()):
            bump_generation(cache_url)
    return _log(database_url, outcome, performed_by)


def run_duplicates(
    database_url: str,
    store: ObjectStore,
    *,
    merge: bool,
    performed_by: str,
    max_bit_error_rate: float = DEFAULT_MAX_BIT_ERROR_RATE,
    cache_url: str | None = None,
    forget: ForgetPartitions = _no_partitions,
) -> CleanupOutcome:
    """Report exact and perceptual duplicate groups; with ``merge``, keep the best copy of each group,
    move the others' names onto it as aliases, and remove the others."""
    with connect(database_url) as conn:
        exact = exact_duplicates(conn)
        groups = perceptual_duplicates(conn, max_bit_error_rate)
    details: dict[str, Any] = {
        "exact": exact[:DETAIL_LIMIT],
        "perceptual": [
            {
                "keep": {"track_id": g.keep.track_id, "filename": g.keep.filename, "codec": g.keep.codec},
                "others": [
                    {"track_id": c.track_id, "filename": c.filename, "codec": c.codec} for c in g.others
                ],
                "max_bit_error_rate": round(g.max_bit_error_rate, 4),
                "reclaimable_bytes": g.reclaimable_bytes,
            }
            for g in groups[:DETAIL_LIMIT]
        ],
    }
    others = sum(len(g.others) for g in groups)
    outcome = CleanupOutcome(
        "duplicates", not merge, others, sum(g.reclaimable_bytes for g in groups), details
    )
    if merge:
        options = RemovalOptions.everything()
        total = RemovalResult()
        for group in groups:
            other_ids = [c.track_id for c in group.others]
            with connect(database_url) as conn:
                merge_aliases(conn, group.keep.track_id, other_ids)
                plans = plan_track_removals(conn, other_ids, options, f"duplicate of {group.keep.track_id}")
            total.add(execute_removals(database_url, store, plans, options, performed_by=performed_by))
        details.update(_result_details(total))
        details.update(_after_removals(database_url, store, total, cache_url, forget))
        outcome.file_count, outcome.bytes = len(total.removed), total.bytes_freed
    return _log(database_url, outcome, performed_by)
