"""Registration job: inbox objects -> content-addressed originals, tracks, aliases, partitions."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from music_core.cache_generation import bump_generation
from music_core.ingest import RegisteredUpload, register_inbox_object
from music_core.stages import io_threads
from music_core.storage import ObjectStore
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.resources import DatabaseResource, ObjectStoreResource, PipelineConfigResource


class RegisterConfig(dg.Config):
    keys: list[str]


def add_missing_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    name = tracks_partitions.name
    assert name is not None
    existing = set(instance.get_dynamic_partitions(name))
    missing = list(dict.fromkeys(k for k in keys if k not in existing))
    if missing:
        instance.add_dynamic_partitions(name, missing)
    return missing


def _register_one(
    store: ObjectStore, database_url: str, key: str, prefix: str
) -> tuple[str, RegisteredUpload | None, str | None]:
    try:
        return key, register_inbox_object(store, database_url, key, prefix), None
    except Exception as exc:  # noqa: BLE001 - the other uploads still register
        return key, None, f"{type(exc).__name__}: {exc}"[:300]


@dg.op(description="Hash each inbox object, store it under originals/, record the track and its alias.")
def register_uploads(
    context: dg.OpExecutionContext,
    config: RegisterConfig,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    pipeline: PipelineConfigResource,
) -> dg.Output[list[str]]:
    store = storage.store()
    registered: list[str] = []
    errors: dict[str, str] = {}
    duplicates = 0
    # Registration waits on the object store (hash read, server-side copy), so several objects go
    # at once; copies of the same content meet on the track lock inside register_inbox_object.
    with ThreadPoolExecutor(max_workers=io_threads(pipeline.workers)) as pool:
        outcomes = list(
            pool.map(lambda key: _register_one(store, db.url, key, storage.inbox_prefix), config.keys)
        )
    for key, result, error in outcomes:
        if error is not None:
            context.log.error(f"could not register {key!r}: {error}")
            errors[key] = error
        elif result is None:
            context.log.info(f"{key!r} left the inbox before registration")
        else:
            registered.append(result.track_id)
            duplicates += 0 if result.created else 1
    new_partitions = add_missing_partitions(context.instance, registered)
    if registered:  # new tracks and names appear in cached lists and searches at once
        bump_generation(pipeline.cache_url)
    if errors:
        raise dg.Failure(
            description=f"{len(errors)} of {len(config.keys)} uploads could not be registered; the rest were",
            metadata={"errors": dg.MetadataValue.json(errors)},
        )
    return dg.Output(
        registered,
        metadata={
            "registered": len(registered),
            "new_tracks": len(new_partitions),
            "known_content": duplicates,
        },
    )


@dg.job(executor_def=dg.in_process_executor, description="Register new inbox uploads as tracks.")
def register_uploads_job() -> None:
    register_uploads()
