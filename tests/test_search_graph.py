"""The HNSW search graph each large index version gets: same ids, near-exact results, loaded by the
API in place of the exact scan, rebuilt with every version, and never rebuilt by a rerun that
changes nothing."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import psycopg

from music_core import vector_index
from music_core.db import analysis
from music_core.index_sync import sync_index
from music_core.storage import ObjectStore

DIM = 32


def _clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 50 centres, as sentence embeddings of a music library cluster by topic."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).standard_normal((50, DIM))
    v = (centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, DIM))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _exact_index(n: int) -> tuple[object, np.ndarray, np.ndarray]:
    vectors, ids = _clustered(n, 1), np.arange(10_000, 10_000 + n, dtype=np.int64)  # ids != positions
    index, added, _ = vector_index.update_index(None, DIM, ids, lambda wanted: vectors[wanted - 10_000])
    assert added == n
    return index, vectors, ids


def test_a_large_version_gets_a_graph_that_finds_what_the_exact_scan_finds(store: ObjectStore) -> None:
    index, vectors, ids = _exact_index(3000)
    manifest = vector_index.save_index(store, "m", index, None, ann_min_vectors=1000)
    assert manifest.search_key == manifest.key.replace(".faiss", ".hnsw.faiss")
    assert store.stat(manifest.search_key) is not None

    graph = vector_index.load_search_index(store, manifest)
    assert graph.ntotal == 3000 and sorted(vector_index.index_ids(graph).tolist()) == ids.tolist()
    queries = _clustered(200, 2)
    _, exact = vector_index.search(vector_index.load_index(store, manifest), queries, 10)
    _, found = vector_index.search(graph, queries, 10, threads=1)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact.tolist(), found.tolist(), strict=True)])
    assert recall >= 0.98
    scores, nearest = vector_index.search(graph, vectors[1234], 1)
    assert nearest[0][0] == ids[1234] and abs(scores[0][0] - 1.0) < 1e-4
    _, deep = vector_index.search(graph, queries[:3], 500)  # deeper than efSearch: still k results
    assert (deep >= 10_000).all() and len(set(deep[0].tolist())) == 500


def test_a_small_version_is_searched_exactly_and_old_manifests_still_load(store: ObjectStore) -> None:
    index, vectors, _ = _exact_index(300)
    manifest = vector_index.save_index(store, "m", index, None)  # default threshold: 20k
    assert manifest.search_key is None
    assert not [o.key for o in store.list("indexes/") if ".hnsw." in o.key]
    loaded = vector_index.load_search_index(store, manifest)
    import faiss

    assert isinstance(faiss.downcast_index(loaded.index), faiss.IndexFlatIP)

    key = vector_index.manifest_key("m")  # a manifest written before search graphs existed
    old = {k: v for k, v in json.loads(b"".join(store.iter_chunks(key))).items() if k != "search_key"}
    body = json.dumps(old).encode()
    store.put_stream(key, io.BytesIO(body), len(body), "application/json")
    reread = vector_index.load_manifest(store, "m")
    assert reread is not None and reread.search_key is None
    assert vector_index.load_search_index(store, reread).ntotal == 300


def test_old_versions_go_with_their_graphs(store: ObjectStore) -> None:
    index, _, _ = _exact_index(1200)
    manifest = None
    for _ in range(5):
        manifest = vector_index.save_index(store, "m", index, manifest, ann_min_vectors=1000)
    names = sorted(o.key.rsplit("/", 1)[1] for o in store.list("indexes/") if o.key.endswith(".faiss"))
    assert names == sorted(f"v00000{v}{kind}.faiss" for v in (3, 4, 5) for kind in (".hnsw", ""))


def test_sync_rebuilds_the_graph_only_when_the_vectors_change(store: ObjectStore, db_url: str) -> None:
    model = "graph-model@1"
    with psycopg.connect(db_url, autocommit=True) as conn:
        for n in range(4):
            track = hashlib.sha256(f"graph-{n}".encode()).hexdigest()
            conn.execute(
                "INSERT INTO music_files (id, original_filename, storage_path, file_size) VALUES (%s, %s, %s, 1)",
                (track, f"{n}.wav", f"originals/{track}"),
            )
            texts = [f"passage {n}-{i}" for i in range(300)]
            analysis.replace_embeddings(conn, track, "transcript", model, texts, _clustered(300, n))

        first = sync_index(store, conn, model, ann_min_vectors=1000)
        assert (first.added, first.manifest.count, first.manifest.version) == (1200, 1200, 1)
        assert first.manifest.search_key is not None

        rerun = sync_index(store, conn, model, ann_min_vectors=1000)
        assert (rerun.manifest, rerun.added, rerun.removed) == (first.manifest, 0, 0)

        conn.execute("DELETE FROM music_files WHERE id = %s", (hashlib.sha256(b"graph-3").hexdigest(),))
        smaller = sync_index(store, conn, model, ann_min_vectors=1000)
        assert (smaller.removed, smaller.manifest.version, smaller.manifest.count) == (300, 2, 900)
        assert smaller.manifest.search_key is None  # under the threshold now: exact scan

        again = sync_index(store, conn, model, ann_min_vectors=500)  # threshold lowered: graph built
        assert again.manifest.version == 3 and again.manifest.search_key is not None
        assert vector_index.load_search_index(store, again.manifest).ntotal == 900
