"""The embedder and the FAISS index for semantic search: loaded once per process, the index
reloaded when the bucket holds a newer version (checked at most every ``check_seconds``)."""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from music_api.search_client import Lookup
from music_core import vector_index
from music_core.embed.batching import MicroBatcher
from music_core.embed.embedder import describe_model
from music_core.embed.query_embedder import Embedder, load_query_embedder
from music_core.memory import release_free_heap
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)


class SemanticIndex:
    def __init__(
        self,
        store: ObjectStore,
        model: str | None,
        check_seconds: float = 30.0,
        *,
        encoder_cache: Path | None = None,
        threads: int = 1,
        passes: int = 1,
    ) -> None:
        self.store = store
        self.model = model
        self.encoder_cache = encoder_cache
        self.threads = threads
        self.model_id = describe_model(model)
        self.check_seconds = check_seconds
        self._model_lock = threading.Lock()  # held while the model loads (a first start exports it)
        self._refresh_lock = threading.Lock()  # held while the index manifest is read or a version loads
        self._embedder: Embedder | None = None
        # Concurrent queries share one pass: one embedding call and one index search. That mattered
        # most for torch and the exact scan (~20 ms vs ~30 ms to embed four queries, ~13 vs ~14 ms to
        # scan 40k x 384); with ONNX Runtime and the HNSW graph it mainly serialises passes per worker.
        self._lookups: MicroBatcher[tuple[str, int], Lookup] = MicroBatcher(
            self._lookup_batch, concurrency=passes
        )
        self._index: Any = None
        self._version: int | None = None
        self._checked = -math.inf  # monotonic time of the last check for a newer index version
        self._index_checked = False  # the first check ended (an index, or none in the bucket, or an error)
        self._load_attempted = False

    def embedder(self) -> Embedder:
        if self._embedder is not None:  # loaded once, never replaced: no lock on the hot path
            return self._embedder
        with self._model_lock:
            self._load_attempted = True
            if self._embedder is None:
                self._embedder = load_query_embedder(self.model, self.encoder_cache, threads=self.threads)
                # A loaded model adds long-lived objects (torch's fallback ~500k); every full garbage
                # collection walked them all and stopped the worker for ~300 ms (the API's p99 under
                # load). Frozen objects are left out of collections (they live as long as the process).
                gc.freeze()
                release_free_heap()  # what loading allocated and dropped (~24 MB for the ONNX encoder)
            return self._embedder

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    @property
    def loading(self) -> bool:
        """Until a first attempt to load the model (the warm-up's) has begun, and while one runs."""
        return self._embedder is None and (not self._load_attempted or self._model_lock.locked())

    @property
    def ready(self) -> bool:
        """The model is loaded and the bucket was checked once for an index (so queries use it)."""
        return self.loaded and self._index_checked

    def warm_up(self) -> None:
        """Load the model and index ahead of the first query (run in a background thread)."""
        self.embedder().embed(["warm up"])
        self.index()

    def warm_up_quietly(self) -> None:
        try:
            self.warm_up()
        except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first query
            log.exception("warm-up failed")

    def index(self) -> Any:
        """The current index (None: none yet, search pgvector). Checked for a newer version at most every
        ``check_seconds``, by one thread; passes meanwhile go on with the index they have."""
        if time.monotonic() - self._checked < self.check_seconds:
            return self._index
        # Until the first check ends, passes wait for it (else each would fall back to pgvector); later
        # they go on with the version they have while one thread checks or loads a newer one.
        if not self._refresh_lock.acquire(blocking=not self._index_checked):
            return self._index
        try:
            if time.monotonic() - self._checked < self.check_seconds:
                return self._index
            self._checked = time.monotonic()
            manifest = vector_index.load_manifest(self.store, self.model_id)
            if manifest is not None and manifest.version != self._version:
                self._index = vector_index.load_search_index(self.store, manifest)
                self._version = manifest.version
                release_free_heap()  # the downloaded file and the previous index
        except Exception:  # noqa: BLE001 - keep serving the index we have (or pgvector)
            log.warning(
                "could not refresh the vector index; keeping version %s", self._version, exc_info=True
            )
        finally:
            self._index_checked = True
            self._refresh_lock.release()
        return self._index

    @property
    def version(self) -> int | None:
        return self._version

    def lookup(self, text: str, k: int) -> Lookup:
        """The query's vector, and its ``k`` nearest (embedding id, cosine) pairs from the FAISS index
        (None when no index exists yet)."""
        return self._lookups((text, k))

    def _lookup_batch(self, queries: list[tuple[str, int]]) -> list[Lookup]:
        vectors = self.embedder().embed([text for text, _ in queries])
        index = self.index()
        if index is None or index.ntotal == 0:
            return [Lookup(vector, None) for vector in vectors]
        k = min(max(k for _, k in queries), index.ntotal)
        scores, ids = vector_index.search(index, vectors, k, threads=1)
        return [
            Lookup(
                vector,
                [(int(i), float(s)) for i, s in zip(ids[row], scores[row], strict=True) if i >= 0][:wanted],
            )
            for row, (vector, (_, wanted)) in enumerate(zip(vectors, queries, strict=True))
        ]
