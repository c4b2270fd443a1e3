"""Concurrent query embeddings share forward passes, without waiting when alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from music_core.embed.batching import MicroBatcher


class GatedDouble:
    """Doubles numbers; the first pass waits at a gate so that later callers queue behind it."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            assert self.gate.wait(10)
        return [2 * i for i in items]


def _queue_behind_first_pass(batcher: MicroBatcher, fn: GatedDouble, items: list[int]) -> list:
    with ThreadPoolExecutor(len(items) + 1) as pool:
        first = pool.submit(batcher, 100)
        assert fn.started.wait(10)
        rest = [pool.submit(batcher, i) for i in items]
        while len(batcher._pending) < len(items):  # every caller is queued
            threading.Event().wait(0.005)
        fn.gate.set()
        return [first.result(10)] + [f.result(10) for f in rest]


def test_a_lone_call_runs_at_once() -> None:
    fn = GatedDouble()
    fn.gate.set()
    batcher = MicroBatcher(fn)
    assert batcher(21) == 42
    assert fn.batches == [[21]] and batcher.passes == 1


def test_callers_queued_behind_a_pass_share_the_next_one() -> None:
    fn = GatedDouble()
    batcher = MicroBatcher(fn, max_batch=16)
    results = _queue_behind_first_pass(batcher, fn, [1, 2, 3, 4, 5])
    assert results == [200, 2, 4, 6, 8, 10]
    assert fn.batches[0] == [100]
    assert sorted(fn.batches[1]) == [1, 2, 3, 4, 5] and len(fn.batches) == 2


def test_batches_never_exceed_the_maximum() -> None:
    fn = GatedDouble()
    batcher = MicroBatcher(fn, max_batch=2)
    results = _queue_behind_first_pass(batcher, fn, [1, 2, 3, 4, 5])
    assert results == [200, 2, 4, 6, 8, 10]
    assert [len(b) for b in fn.batches] == [1, 2, 2, 1]


def test_a_failing_pass_fails_its_callers_only() -> None:
    calls = []

    def flaky(items: list[str]) -> list[str]:
        calls.append(items)
        if "bad" in items:
            raise ValueError("model exploded")
        return [s.upper() for s in items]

    batcher = MicroBatcher(flaky)
    with pytest.raises(ValueError, match="model exploded"):
        batcher("bad")
    assert batcher("good") == "GOOD"


def test_a_batch_function_returning_the_wrong_count_is_an_error() -> None:
    batcher = MicroBatcher(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 inputs"):
        batcher("x")
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: items, max_batch=0)


def test_batched_embeddings_equal_single_ones() -> None:
    from music_core.embed.embedder import SentenceEmbedder

    embedder = SentenceEmbedder(None, threads=1)
    queries = ["ask not what your country can do", "whisper in the mirror", "love", "sailing to zanzibar"]
    single = np.stack([embedder.embed([q])[0] for q in queries])
    batcher = MicroBatcher(embedder.embed)
    with ThreadPoolExecutor(4) as pool:
        batched = np.stack(list(pool.map(batcher, queries)))
    assert np.allclose(batched, single, atol=1e-5)
    assert batcher.passes <= len(queries)


def test_semantic_lookups_share_a_pass_and_keep_their_own_k(store) -> None:  # noqa: ANN001
    from music_api.semantic import SemanticIndex
    from music_core import vector_index

    engine = SemanticIndex(store, None, check_seconds=0)
    assert engine.lookup("anything", 3).hits is None  # no index yet: the vector alone (pgvector path)
    texts = ["ask not what your country can do for you", "whisper in the mirror", "sailing to zanzibar",
             "the rain in spain", "a dog barks at night", "love me tender"]  # fmt: skip
    vectors = engine.embedder().embed(texts)
    index, _, _ = vector_index.update_index(
        None, vectors.shape[1], np.arange(1, len(texts) + 1, dtype=np.int64), lambda ids: vectors[ids - 1]
    )
    vector_index.save_index(store, engine.model_id, index, vector_index.load_manifest(store, engine.model_id))
    queries = [("what can you do for your country", 1), ("mirror whisper", 4), ("zanzibar sailing", 6)]
    alone = [engine.lookup(q, k) for q, k in queries]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda qk: engine.lookup(*qk), queries))
    assert [len(found.hits) for found in together] == [1, 4, 6]
    assert [found.hits[0][0] for found in together] == [1, 2, 3]
    for a, b in zip(alone, together, strict=True):
        assert [i for i, _ in a.hits] == [i for i, _ in b.hits]
        assert np.allclose(a.vector, b.vector, atol=1e-5)


def test_the_loaded_model_is_left_out_of_garbage_collections(store) -> None:  # noqa: ANN001
    import gc

    from music_api.semantic import SemanticIndex

    engine = SemanticIndex(store, None)
    before = gc.get_freeze_count()
    engine.embedder()
    assert gc.get_freeze_count() > before


def test_with_two_passes_a_caller_does_not_wait_for_a_running_pass() -> None:
    """The search service runs a pass per core: a second query runs beside a slow first one, while
    callers beyond that still share a pass."""
    fn = GatedDouble()
    batcher = MicroBatcher(fn, concurrency=2)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(batcher, 100)
        assert fn.started.wait(10)
        assert pool.submit(batcher, 1).result(10) == 2  # the first pass is still held at its gate
        assert not first.done()
        fn.gate.set()
        assert first.result(10) == 200
    assert fn.batches == [[100], [1]] and batcher.passes == 2
    with pytest.raises(ValueError):
        MicroBatcher(fn, concurrency=0)


def test_a_caller_whose_item_is_in_another_pass_waits_without_spinning() -> None:
    """Two passes at once: when a permit frees up but the caller's item already runs in another
    caller's pass, the caller waits for that pass instead of polling an empty queue."""
    gates = {-1: threading.Event(), -2: threading.Event(), -4: threading.Event()}
    started = {key: threading.Event() for key in gates}

    def slow_double(items: list[int]) -> list[int]:
        for key, gate in gates.items():
            if key in items:
                started[key].set()
                assert gate.wait(10)
        return [2 * i for i in items]

    batcher = MicroBatcher(slow_double, concurrency=2)
    empty_runs = 0
    real_run_pending = batcher._run_pending

    def counting_run_pending() -> bool:
        nonlocal empty_runs
        ran = real_run_pending()
        empty_runs += not ran
        return ran

    batcher._run_pending = counting_run_pending  # type: ignore[method-assign]
    with ThreadPoolExecutor(4) as pool:
        a = pool.submit(batcher, -1)
        d = pool.submit(batcher, -4)
        assert started[-1].wait(10) and started[-4].wait(10)  # both permits held
        b, c = pool.submit(batcher, -2), pool.submit(batcher, 3)
        while len(batcher._pending) < 2:  # both queued behind the two passes
            threading.Event().wait(0.005)
        gates[-4].set()  # a permit frees: one of b/c runs [-2, 3] and holds at -2's gate
        assert started[-2].wait(10)
        gates[-1].set()  # the other permit frees; the other caller's item is already in that pass
        assert a.result(10) == -2 and d.result(10) == -8
        threading.Event().wait(0.2)
        assert empty_runs <= 1, empty_runs  # at most one look at the empty queue, no polling
        gates[-2].set()
        assert (b.result(10), c.result(10)) == (-4, 6)
