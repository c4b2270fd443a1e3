"""Refresh the vector index after new vectors land (on by default)."""

import time

import dagster as dg

from music_core import vector_index as faiss_index
from music_core.db.connection import connect
from music_core.embed.embedder import describe_model
from music_pipeline.defs.ingest.sensors import SENSOR_INTERVAL
from music_pipeline.ml_resources import EmbedderResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource


@dg.sensor(
    job_name="vector_index_job",
    minimum_interval_seconds=max(30, SENSOR_INTERVAL),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches vector_index when pgvector holds vectors the latest index does not (or vice versa).",
)
def vector_index_sensor(
    context: dg.SensorEvaluationContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    embedder: EmbedderResource,
) -> dg.RunRequest | dg.SkipReason:
    model_id = describe_model(embedder.model)
    with connect(db.url) as conn:
        count, newest = conn.execute(
            "SELECT count(*), COALESCE(max(id), 0) FROM embeddings WHERE model_id = %s", (model_id,)
        ).fetchone()
    state = f"{count}:{newest}"
    manifest = faiss_index.load_manifest(storage.store(), model_id)
    caught_up = manifest is not None and manifest.count == count
    if (manifest is None and count == 0) or (caught_up and context.cursor in (None, state)):
        context.update_cursor(state)
        return dg.SkipReason("index is current")
    run_key = f"index:{model_id}:{state}"
    if state == context.cursor:  # requested before, and the index is still behind these vectors
        if not _last_index_run_failed(context.instance):
            return dg.SkipReason("an index run for these vectors is queued, running or done")
        run_key += f":retry:{time.time()!r}"  # after a failed or stopped run: a new key, or it is skipped
    context.update_cursor(state)
    return dg.RunRequest(run_key=run_key)


def _last_index_run_failed(instance: dg.DagsterInstance) -> bool:
    """Whether the latest vector_index run failed or was stopped (or, with none at all, was lost)."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="vector_index_job"), limit=1)
    return not runs or runs[0].status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
