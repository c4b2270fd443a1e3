"""Embeddings in pgvector (any dimension, per-model HNSW indexes) and the FAISS index in the bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from music_core import vector_index
from music_core.db import analysis
from music_core.embed.chunking import word_chunks
from music_core.embed.embedder import SentenceEmbedder, describe_model
from music_core.ingest import register_local_file
from music_core.storage import ObjectStore
from tests import media
from tests.tiny_models import tiny_sentence_transformer


@pytest.fixture(scope="module")
def minilm() -> SentenceEmbedder:
    return SentenceEmbedder()


@pytest.mark.parametrize(
    ("words", "size", "overlap", "expected"),
    [(0, 4, 1, 0), (3, 4, 1, 1), (4, 4, 1, 1), (5, 4, 1, 2), (10, 4, 2, 4)],
)
def test_word_chunks_cover_the_text(words: int, size: int, overlap: int, expected: int) -> None:
    text = " ".join(f"w{i}" for i in range(words))
    chunks = word_chunks(text, size, overlap)
    assert len(chunks) == expected
    assert {w for c in chunks for w in c.split()} == set(text.split())
    assert all(len(c.split()) <= size for c in chunks)


def test_word_chunks_refuse_bad_windows() -> None:
    with pytest.raises(ValueError):
        word_chunks("a b", 4, 4)


def test_default_model_is_offline_minilm(minilm: SentenceEmbedder) -> None:
    assert minilm.dim == 384
    assert minilm.model_id == describe_model(None)
    vectors = minilm.embed(
        [
            "ask not what your country can do for you",
            "what you can do for your country",
            "a recipe for pancakes",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert minilm.embed([]).shape == (0, 384)


def test_two_models_of_different_dimensions_share_the_table(
    minilm: SentenceEmbedder, tmp_path: Path, store: ObjectStore, db_url: str
) -> None:
    tiny = SentenceEmbedder(str(tiny_sentence_transformer(tmp_path, dim=48)))
    assert tiny.dim == 48 and tiny.model_id != minilm.model_id
    track = register_local_file(store, db_url, media.SPEECH_WAV, "jfk.wav").track_id
    texts = ["ask not what your country can do for you", "ask what you can do for your country"]
    with psycopg.connect(db_url) as conn:
        for model in (minilm, tiny):
            analysis.ensure_vector_index(conn, model.model_id, model.dim)
            analysis.replace_embeddings(conn, track, "transcript", model.model_id, texts, model.embed(texts))
        # Rerunning replaces instead of adding.
        analysis.replace_embeddings(conn, track, "transcript", tiny.model_id, texts, tiny.embed(texts))
        rows = dict(conn.execute("SELECT dim, count(*) FROM embeddings GROUP BY dim").fetchall())
        indexes = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'"
            ).fetchall()
        }
        # The per-model index answers a nearest-neighbour query in its own dimension.
        query = minilm.embed(["what can you do for your country"])[0]
        nearest = conn.execute(
            "SELECT chunk FROM embeddings WHERE model_id = %s "
            "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 1",
            (minilm.model_id, "[" + ",".join(map(str, query)) + "]"),
        ).fetchone()
    assert rows == {384: 2, 48: 2}
    assert {analysis.index_name(minilm.model_id), analysis.index_name(tiny.model_id)} <= indexes
    assert nearest == (1,)
    with psycopg.connect(db_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO embeddings (file_id, source, model_id, dim, embedding) VALUES (%s, 'title', 'x', 3, '[1,2]')",
            (track,),
        )


def _random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_updates_incrementally_and_is_versioned(store: ObjectStore) -> None:
    vectors = {i: row for i, row in zip(range(1, 101), _random_unit(100, 16, 1), strict=True)}

    def fetch(ids: np.ndarray) -> np.ndarray:
        return np.stack([vectors[int(i)] for i in ids])

    index, added, removed = vector_index.update_index(None, 16, np.arange(1, 101, dtype=np.int64), fetch)
    assert (added, removed, index.ntotal) == (100, 0, 100)
    first = vector_index.save_index(store, "m", index, None)
    assert vector_index.load_manifest(store, "m") == first

    loaded = vector_index.load_index(store, first)
    current = np.array([i for i in range(1, 111) if i % 10], dtype=np.int64)  # drop 10 ids, add 101..110
    vectors.update({i: row for i, row in zip(range(101, 111), _random_unit(10, 16, 2), strict=True)})
    index, added, removed = vector_index.update_index(loaded, 16, current, fetch)
    assert (added, removed) == (9, 10)
    assert sorted(vector_index.index_ids(index).tolist()) == current.tolist()
    _, ids = vector_index.search(index, vectors[55], 1)
    assert ids[0][0] == 55

    manifests = [first]
    for _ in range(4):
        manifests.append(vector_index.save_index(store, "m", index, manifests[-1]))
    assert manifests[-1].version == 5
    kept = sorted(o.key.rsplit("/", 1)[1] for o in store.list("indexes/") if o.key.endswith(".faiss"))
    assert kept == ["v000003.faiss", "v000004.faiss", "v000005.faiss"]


def test_dimension_change_rebuilds_instead_of_mixing() -> None:
    index, *_ = vector_index.update_index(
        None, 8, np.array([1], dtype=np.int64), lambda ids: _random_unit(1, 8, 0)
    )
    rebuilt, added, removed = vector_index.update_index(
        index, 12, np.array([1], dtype=np.int64), lambda ids: _random_unit(1, 12, 0)
    )
    assert rebuilt.d == 12 and rebuilt.ntotal == 1 and added == 1


def test_a_server_search_runs_on_one_openmp_thread_of_its_own() -> None:
    import threading

    import faiss

    index, _, _ = vector_index.update_index(
        None, 16, np.arange(1, 51, dtype=np.int64), lambda ids: _random_unit(len(ids), 16, 3)
    )
    seen: dict[str, int] = {}

    def request_thread() -> None:
        faiss.omp_set_num_threads(2)
        _, ids = vector_index.search(index, _random_unit(1, 16, 4)[0], 5, threads=1)
        seen["threads"], seen["hits"] = faiss.omp_get_max_threads(), len(ids[0])

    worker = threading.Thread(target=request_thread)
    worker.start()
    worker.join()
    assert seen == {"threads": 1, "hits": 5}
