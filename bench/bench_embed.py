"""Embedding and index benchmark: texts per second with the default model, FAISS build time and
search queries per second at 100k vectors. JSON out."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from common import REPO  # noqa: F401 - puts the repository on sys.path

from music_core import vector_index
from music_core.embed.embedder import SentenceEmbedder


def main() -> int:
    sentences = [
        f"line {i}: ask not what your country can do for you, number {i * 7 % 101}" for i in range(1000)
    ]
    model = SentenceEmbedder(threads=1)
    model.embed(sentences[:32])  # warm-up
    start = time.perf_counter()
    model.embed(sentences)
    embed_s = time.perf_counter() - start

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
    }, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
