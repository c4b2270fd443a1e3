"""The FAISS index over all tracks' vectors: unpartitioned, updated incrementally, versioned in S3."""

import dagster as dg
import numpy as np

from music_core import vector_index as faiss_index
from music_core.db import analysis
from music_core.db.connection import connect
from music_pipeline.ml_resources import EmbedderResource
from music_pipeline.resources import DatabaseResource, ObjectStoreResource

COUNT_CHECK = "index_count_matches_database"


@dg.asset(
    group_name="search",
    # Depends on every partition of `embedding`, but loads none of them through an IO manager:
    # the vectors are read from pgvector directly.
    deps=[dg.AssetDep("embedding", partition_mapping=dg.AllPartitionMapping())],
    kinds={"faiss", "s3"},
    check_specs=[dg.AssetCheckSpec(COUNT_CHECK, asset="vector_index")],
    description="FAISS IndexIDMap2(IndexFlatIP) of the configured model's vectors, under indexes/<model>/.",
)
def vector_index(
    context: dg.AssetExecutionContext,
    db: DatabaseResource,
    storage: ObjectStoreResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    from music_core.embed.embedder import describe_model

    model_id = describe_model(embedder.model)
    store = storage.store()
    previous = faiss_index.load_manifest(store, model_id)
    index = faiss_index.load_index(store, previous) if previous else None
    with connect(db.url) as conn:
        ids = analysis.embedding_ids(conn, model_id)
        dims = conn.execute("SELECT DISTINCT dim FROM embeddings WHERE model_id = %s", (model_id,)).fetchall()
        if len(dims) > 1:
            raise dg.Failure(f"vectors of model {model_id} have several dimensions: {dims}")
        dim = dims[0][0] if dims else (previous.dim if previous else 1)
        index, added, removed = faiss_index.update_index(
            index, dim, ids, lambda new: analysis.embedding_vectors(conn, model_id, np.sort(new))
        )
        db_count = conn.execute(
            "SELECT count(*) FROM embeddings WHERE model_id = %s", (model_id,)
        ).fetchone()[0]
    manifest = faiss_index.save_index(store, model_id, index, previous)
    context.log.info(f"index v{manifest.version}: {manifest.count} vectors (+{added} -{removed})")
    return dg.MaterializeResult(
        metadata={
            "model_id": model_id,
            "version": manifest.version,
            "vectors": manifest.count,
            "added": added,
            "removed": removed,
            "key": manifest.key,
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
