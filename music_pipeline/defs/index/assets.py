"""The FAISS index over all tracks' vectors: unpartitioned, updated incrementally, versioned in S3."""

import dagster as dg

from music_core.db.connection import connect
from music_core.index_sync import MixedDimensionsError, sync_index
from music_pipeline.ml_resources import EmbedderResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource

COUNT_CHECK = "index_count_matches_database"


@dg.asset(
    group_name="search",
    # Depends on every partition of `embedding`, but loads none of them through an IO manager:
    # the vectors are read from pgvector directly.
    deps=[
        dg.AssetDep(name, partition_mapping=dg.AllPartitionMapping())
        for name in ("embedding", "lyrics")  # transcript and lyrics vectors
    ],
    kinds={"faiss", "s3"},
    check_specs=[dg.AssetCheckSpec(COUNT_CHECK, asset="vector_index")],
    description="FAISS IndexIDMap2(IndexFlatIP) of the configured model's vectors, under indexes/<model>/, "
    "with an HNSW search graph from 20k vectors on.",
)
def vector_index(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    from music_core.embed.embedder import describe_model

    model_id = describe_model(embedder.model)
    with connect(db.url) as conn:
        try:
            synced = sync_index(storage.store(), conn, model_id)
        except MixedDimensionsError as exc:
            raise dg.Failure(str(exc)) from exc
    manifest, added, removed, db_count = synced.manifest, synced.added, synced.removed, synced.database_count
    context.log.info(f"index v{manifest.version}: {manifest.count} vectors (+{added} -{removed})")
    return dg.MaterializeResult(
        metadata={
            "model_id": model_id,
            "version": manifest.version,
            "vectors": manifest.count,
            "added": added,
            "removed": removed,
            "key": manifest.key,
            "search_graph": manifest.search_key or "none (exact scan)",
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=COUNT_CHECK,
                passed=manifest.count == db_count,
                metadata={"index": manifest.count, "database": db_count},
            )
        ],
    )


vector_index_job = dg.define_asset_job(
    "vector_index_job",
    selection=dg.AssetSelection.assets("vector_index"),
    executor_def=dg.in_process_executor,
)
