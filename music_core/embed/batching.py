"""Micro-batching for concurrent callers of a batch function (query embeddings in the API).

A transformer forward pass over one short query costs about as much fixed overhead as over four, so
callers that arrive while a pass is running are served together by the next pass. There is no added
wait: a lone caller runs at once; batches form only when callers queue behind a running pass."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self, run_batch: Callable[[list[In]], Sequence[Out]], max_batch: int = 16, concurrency: int = 1
    ) -> None:
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self._queue_lock = threading.Lock()
        # ``concurrency`` passes at a time: one per core for a process that serves every API worker.
        self._pass_lock = threading.BoundedSemaphore(concurrency)
        self._pending: list[tuple[In, Future[Out]]] = []
        self.passes = 0  # batches run so far (for metrics and tests)

    def __call__(self, item: In) -> Out:
        future: Future[Out] = Future()
        with self._queue_lock:
            self._pending.append((item, future))
        while not future.done():
            with self._pass_lock:
                if not future.done() and not self._run_pending():
                    break  # nothing left to run: this item is in another caller's pass, still running
        return future.result()  # waits (without spinning) for that pass

    def _run_pending(self) -> bool:
        """Run one batch from the queue; False when the queue was empty."""
        with self._queue_lock:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if not batch:
                return False
            self.passes += 1
        try:
            outputs = self._run_batch([item for item, _ in batch])
            if len(outputs) != len(batch):
                raise RuntimeError(f"batch function returned {len(outputs)} results for {len(batch)} inputs")
        except BaseException as exc:  # every caller in the batch sees the failure, none hangs
            for _, future in batch:
                future.set_exception(exc)
            return True
        for (_, future), output in zip(batch, outputs, strict=True):
            future.set_result(output)
        return True
