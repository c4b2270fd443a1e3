"""Cleanup schedules, running by default. Rules and whether they execute come from settings
(MUSIC_RETENTION_*), read when the code location loads; without MUSIC_RETENTION_EXECUTE=true the
scheduled runs only preview, and an operator executes from the Launchpad after reading the preview."""

import dagster as dg

from music_core.settings import Settings
from music_pipeline.defs.retention.jobs import duplicates_job, orphan_sweep_job, retention_job
from music_pipeline.defs.retention.storage_stats import storage_stats_job


def build_schedules(settings: Settings) -> list[dg.ScheduleDefinition]:
    mode = "execute" if settings.retention_execute else "preview"
    running = dg.DefaultScheduleStatus.RUNNING
    retention = {
        "mode": mode,
        "older_than_days": settings.retention_days,
        "keep_originals": settings.retention_keep_originals,
    }
    return [
        dg.ScheduleDefinition(
            name="retention_schedule", job=retention_job, cron_schedule=settings.retention_cron,
            run_config={"ops": {"apply_retention": {"config": retention}}}, default_status=running,
        ),
        dg.ScheduleDefinition(
            name="orphan_sweep_schedule", job=orphan_sweep_job, cron_schedule=settings.orphan_sweep_cron,
            run_config={"ops": {"sweep_orphans": {"config": {
                "mode": mode, "grace_minutes": settings.orphan_grace_minutes}}}},
            default_status=running,
        ),
        # Merging duplicates removes copies: scheduled runs only report; execute from the Launchpad.
        dg.ScheduleDefinition(
            name="duplicates_schedule", job=duplicates_job, cron_schedule=settings.duplicates_cron,
            run_config={"ops": {"find_duplicates": {"config": {
                "mode": "preview", "max_bit_error_rate": settings.duplicate_max_bit_error_rate}}}},
            default_status=running,
        ),
        dg.ScheduleDefinition(
            name="storage_stats_schedule", job=storage_stats_job, cron_schedule=settings.storage_stats_cron,
            default_status=running,
        ),
    ]  # fmt: skip
