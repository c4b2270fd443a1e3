"""Bring the FAISS index of a model in line with its pgvector rows (add new, remove gone)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from psycopg import Connection

from music_core import vector_index as faiss_index
from music_core.db import analysis
from music_core.storage import ObjectStore


class MixedDimensionsError(ValueError):
    pass


@dataclass(frozen=True)
class IndexSync:
    manifest: faiss_index.IndexManifest
    added: int
    removed: int
    database_count: int


def sync_index(
    store: ObjectStore, conn: Connection, model_id: str, ann_min_vectors: int = faiss_index.ANN_MIN_VECTORS
) -> IndexSync:
    """A rerun with nothing to change keeps the current version (no rewrite, no graph rebuild)."""
    previous = faiss_index.load_manifest(store, model_id)
    index = faiss_index.load_index(store, previous) if previous else None
    ids = analysis.embedding_ids(conn, model_id)
    dims = conn.execute("SELECT DISTINCT dim FROM embeddings WHERE model_id = %s", (model_id,)).fetchall()
    if len(dims) > 1:
        raise MixedDimensionsError(f"vectors of model {model_id} have several dimensions: {dims}")
    dim = dims[0][0] if dims else (previous.dim if previous else 1)
    index, added, removed = faiss_index.update_index(
        index, dim, ids, lambda new: analysis.embedding_vectors(conn, model_id, np.sort(new))
    )
    count = conn.execute("SELECT count(*) FROM embeddings WHERE model_id = %s", (model_id,)).fetchone()[0]
    wants_graph = index.ntotal >= ann_min_vectors
    if (
        previous
        and not (added or removed)
        and previous.dim == dim
        and bool(previous.search_key) == wants_graph
    ):
        return IndexSync(previous, 0, 0, count)
    manifest = faiss_index.save_index(store, model_id, index, previous, ann_min_vectors)
    return IndexSync(manifest, added, removed, count)


def indexed_manifests(store: ObjectStore) -> list[faiss_index.IndexManifest]:
    """The latest manifest of every model that has an index in the bucket."""
    return [
        faiss_index.IndexManifest(**json.loads(b"".join(store.iter_chunks(obj.key))))
        for obj in store.list("indexes/")
        if obj.key.endswith("/latest.json")
    ]


def sync_all_indexes(store: ObjectStore, conn: Connection) -> dict[str, int]:
    """After removals: every model's index drops the vectors that are gone. Returns removed per model."""
    return {m.model_id: sync_index(store, conn, m.model_id).removed for m in indexed_manifests(store)}


def stale_index_vectors(store: ObjectStore, conn: Connection) -> dict[str, int]:
    """Per model: vectors in the latest FAISS index whose pgvector row is gone (read-only)."""
    stale = {}
    for manifest in indexed_manifests(store):
        present = faiss_index.index_ids(faiss_index.load_index(store, manifest))
        rows = analysis.embedding_ids(conn, manifest.model_id)
        stale[manifest.model_id] = int(np.setdiff1d(present, rows).size)
    return stale
