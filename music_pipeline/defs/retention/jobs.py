"""Retention, orphan sweep and duplicates as Dagster jobs: preview by default, execute on request.

Each op is a thin shell over music_core.retention.run; the run's metadata shows what was (or would
be) removed and the space freed, and cleanup_log keeps the same record in the database.
"""

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Literal

import dagster as dg
from pydantic import Field

from music_core.retention.options import RemovalOptions
from music_core.retention.rules import MAX_AGE_DAYS, RetentionRule
from music_core.retention.run import CleanupOutcome, run_duplicates, run_orphan_sweep, run_retention
from music_pipeline.defs.partitions import forget_partitions, tracks_partitions
from music_pipeline.resources import DatabaseResource, ObjectStoreResource, PipelineConfigResource


class CleanupConfig(dg.Config):
    mode: Literal["preview", "execute"] = Field(
        "preview", description="preview (dry run: report only) or execute"
    )

    @property
    def execute(self) -> bool:
        return self.mode == "execute"


class RetentionConfig(CleanupConfig):
    older_than_days: float | None = Field(
        None, ge=0, le=MAX_AGE_DAYS, description="empty = no rule: nothing to do"
    )
    genre: str | None = None
    keep_originals: bool = Field(False, description="drop derived data only; keep originals and rows")
    limit: int | None = Field(None, ge=1, description="at most this many tracks per run")


class OrphanConfig(CleanupConfig):
    grace_minutes: int = Field(60, ge=0)


class DuplicatesConfig(CleanupConfig):
    max_bit_error_rate: float = Field(0.1, gt=0, lt=0.5)


def performed_by(context: dg.OpExecutionContext) -> str:
    tags = context.run.tags
    who = tags.get("dagster/schedule_name") or tags.get("user") or tags.get("dagster/user") or "manual"
    return f"dagster:{who}:{context.run.run_id}"


def partition_forgetter(context: dg.OpExecutionContext) -> Callable[[Sequence[str]], None]:
    return functools.partial(forget_partitions, context.instance)


def _output(context: dg.OpExecutionContext, outcome: CleanupOutcome) -> dg.Output[dict]:
    verb = "would remove" if outcome.dry_run else "removed"
    context.log.info(f"{outcome.action}: {verb} {outcome.file_count} item(s), {outcome.bytes} bytes")
    failed = outcome.details.get("failed") or {}
    if failed:
        context.log.warning(f"{len(failed)} removal(s) failed and stay recorded for the next run: {failed}")
    metadata = {
        "mode": "preview" if outcome.dry_run else "execute",
        "items": outcome.file_count,
        "bytes": outcome.bytes,
        "cleanup_log_id": outcome.log_id or "",
        "details": dg.MetadataValue.json(outcome.details),
    }
    return dg.Output({"log_id": outcome.log_id, "count": outcome.file_count}, metadata=metadata)


@dg.op(description="Remove (or preview removing) tracks older than the retention rule.")
def apply_retention(
    context: dg.OpExecutionContext,
    config: RetentionConfig,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.Output[dict]:
    if config.older_than_days is None:
        context.log.info("no retention rule configured (MUSIC_RETENTION_DAYS is empty): nothing to do")
        return dg.Output({"log_id": None, "count": 0}, metadata={"mode": config.mode, "items": 0})
    options = RemovalOptions.keep_originals() if config.keep_originals else RemovalOptions.everything()
    rule = RetentionRule(config.older_than_days, options, config.genre, config.limit)
    outcome = run_retention(
        db.url, storage.store(), rule, execute=config.execute, performed_by=performed_by(context),
        cache_url=pipeline.cache_url, forget=partition_forgetter(context),
    )  # fmt: skip
    return _output(context, outcome)


@dg.op(description="Objects with no row, rows whose objects are gone, partitions with no row.")
def sweep_orphans(
    context: dg.OpExecutionContext,
    config: OrphanConfig,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.Output[dict]:
    partitions = context.instance.get_dynamic_partitions(tracks_partitions.name)
    outcome = run_orphan_sweep(
        db.url, storage.store(), partitions, execute=config.execute, performed_by=performed_by(context),
        grace=dt.timedelta(minutes=config.grace_minutes), cache_url=pipeline.cache_url,
        forget=partition_forgetter(context),
    )  # fmt: skip
    return _output(context, outcome)


@dg.op(
    description="Exact and perceptual (Chromaprint) duplicates; execute keeps the best copy of each group."
)
def find_duplicates(
    context: dg.OpExecutionContext,
    config: DuplicatesConfig,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.Output[dict]:
    outcome = run_duplicates(
        db.url, storage.store(), merge=config.execute, performed_by=performed_by(context),
        max_bit_error_rate=config.max_bit_error_rate, cache_url=pipeline.cache_url,
        forget=partition_forgetter(context),
    )  # fmt: skip
    return _output(context, outcome)


@dg.job(executor_def=dg.in_process_executor, tags={"music/kind": "cleanup"})
def retention_job() -> None:
    apply_retention()


@dg.job(executor_def=dg.in_process_executor, tags={"music/kind": "cleanup"})
def orphan_sweep_job() -> None:
    sweep_orphans()


@dg.job(executor_def=dg.in_process_executor, tags={"music/kind": "cleanup"})
def duplicates_job() -> None:
    find_duplicates()
