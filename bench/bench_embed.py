"""Embedding and index benchmark: texts per second with the default model; one query embedded by
sentence-transformers and by its ONNX export (what the API uses); FAISS build time and search
queries per second at 100k vectors, exact and through the HNSW search graph. JSON out."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO  # noqa: F401 - puts the repository on sys.path

from music_core import vector_index
from music_core.embed.embedder import SentenceEmbedder
from music_core.embed.query_embedder import load_query_embedder

QUERIES = ["find the song where they sing whisper in the mirror", "love", "dancing in the moonlight tonight"]


def per_query_ms(embed: object, rounds: int = 300) -> float:
    for text in QUERIES:
        embed([text])  # type: ignore[operator]
    start = time.perf_counter()
    for i in range(rounds):
        embed([QUERIES[i % len(QUERIES)]])  # type: ignore[operator]
    return round((time.perf_counter() - start) / rounds * 1000, 2)


def clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 400 centres: embeddings of real text cluster by topic; uniform random
    vectors (which no model produces) are the search graph's worst case."""
    centres = np.random.default_rng(1).standard_normal((400, dim))
    v = (centres[rng.integers(0, 400, n)] + 0.8 * rng.standard_normal((n, dim))).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main() -> int:
    sentences = [
        f"line {i}: ask not what your country can do for you, number {i * 7 % 101}" for i in range(1000)
    ]
    model = SentenceEmbedder(threads=1)
    model.embed(sentences[:32])  # warm-up
    start = time.perf_counter()
    model.embed(sentences)
    embed_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as cache:
        onnx = load_query_embedder(None, Path(cache))
        query_ms = {"torch": per_query_ms(model.embed), type(onnx).__name__: per_query_ms(onnx.embed)}
        largest_difference = float(np.abs(onnx.embed(sentences[:100]) - model.embed(sentences[:100])).max())

    n, dim = 100_000, model.dim
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = np.arange(1, n + 1, dtype=np.int64)
    start = time.perf_counter()
    index, _, _ = vector_index.update_index(None, dim, ids, lambda wanted: vectors[wanted - 1])
    build_s = time.perf_counter() - start
    queries = rng.standard_normal((200, dim)).astype(np.float32)
    start = time.perf_counter()
    for q in queries:
        vector_index.search(index, q, 10)
    single_qps = len(queries) / (time.perf_counter() - start)
    start = time.perf_counter()
    vector_index.search(index, queries, 10)
    batch_qps = len(queries) / (time.perf_counter() - start)

    data, probes = clustered(n, dim, rng), clustered(200, dim, rng)
    exact, _, _ = vector_index.update_index(None, dim, ids, lambda wanted: data[wanted - 1])
    start = time.perf_counter()
    graph = vector_index.search_graph(exact)
    graph_build_s = time.perf_counter() - start
    _, truth = vector_index.search(exact, probes, 10)
    start = time.perf_counter()
    found = [vector_index.search(graph, p, 10, threads=1)[1][0] for p in probes]
    graph_ms = (time.perf_counter() - start) / len(probes) * 1000
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(truth, found, strict=True)])
    print(json.dumps({
        "benchmark": "embed",
        "model": model.model_id,
        "dimension": dim,
        "texts_per_second_1_thread": round(len(sentences) / embed_s, 1),
        "index_vectors": n,
        "index_build_s": round(build_s, 3),
        "search_qps_single": round(single_qps, 1),
        "search_qps_batch_200": round(batch_qps, 1),
        "search_ms_single": round(1000 / single_qps, 2),
        "query_embedding_ms_1_thread": query_ms,
        "onnx_vs_torch_largest_difference": largest_difference,
        "search_graph": {"vectors": "clustered", "build_s": round(graph_build_s, 1),
                         "search_ms_single_1_thread": round(graph_ms, 3), "recall_at_10": round(float(recall), 3)},
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
