from collections.abc import Sequence

import dagster as dg

# One partition per unique audio content; the key is the SHA-256 of the bytes (no commas, stable).
tracks_partitions = dg.DynamicPartitionsDefinition(name="tracks")


def forget_partitions(instance: dg.DagsterInstance, track_ids: Sequence[str]) -> None:
    """Removed tracks leave Dagster's dynamic partitions too (what the UI lists)."""
    name = tracks_partitions.name
    assert name is not None
    existing = set(instance.get_dynamic_partitions(name))
    for track_id in track_ids:
        if track_id in existing:
            instance.delete_dynamic_partition(name, track_id)
