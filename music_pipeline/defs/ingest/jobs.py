"""Registration job: inbox objects -> content-addressed originals, tracks, aliases, partitions."""

import dagster as dg

from music_core.ingest import register_inbox_object
from music_pipeline.defs.partitions import tracks_partitions
from music_pipeline.resources import DatabaseResource, ObjectStoreResource


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


@dg.op(description="Hash each inbox object, store it under originals/, record the track and its alias.")
def register_uploads(
    context: dg.OpExecutionContext, config: RegisterConfig, db: DatabaseResource, storage: ObjectStoreResource
) -> dg.Output[list[str]]:
    store = storage.store()
    registered: list[str] = []
    errors: dict[str, str] = {}
    duplicates = 0
    for key in config.keys:
        try:
            result = register_inbox_object(store, db.url, key, storage.inbox_prefix)
        except Exception as exc:  # noqa: BLE001 - the other uploads still register
            context.log.error(f"could not register {key!r}: {type(exc).__name__}: {exc}")
            errors[key] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        if result is None:
            context.log.info(f"{key!r} left the inbox before registration")
            continue
        registered.append(result.track_id)
        duplicates += 0 if result.created else 1
    new_partitions = add_missing_partitions(context.instance, registered)
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
