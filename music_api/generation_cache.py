"""Rows read from PostgreSQL, kept in one API worker until the pipeline next writes.

The pipeline bumps a generation counter in Redis after every write (music_core/cache_generation.py),
and the API reads it with the rate-limit count (observability.py), at most 0.1 s apart. A row cached
under one generation is never read under another: when the worker sees a new value, it drops every
entry. Entries also expire after ``ttl_seconds``, for the writes whose bump did not reach Redis and for
a Redis restart that starts the counter again from 1. Without Redis nothing is cached."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class GenerationCache(Generic[V]):
    """Least recently used entries go first beyond ``capacity``. Used from the event loop only."""

    def __init__(
        self, capacity: int = 4096, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity, self._ttl, self._clock = capacity, ttl_seconds, clock
        self._generation: bytes | None = None
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def _usable(self, generation: bytes | None) -> bool:
        if generation is None:
            return False
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        return True

    def get(self, generation: bytes | None, key: Hashable) -> V | None:
        if not self._usable(generation):
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, generation: bytes | None, key: Hashable, value: V) -> None:
        """Keep ``value`` if it was read under the current generation (a request that read an older one
        before a write may put its row after a newer request has switched: it is dropped)."""
        if generation is None or generation != self._generation:
            return
        self._entries[key] = (self._clock() + self._ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
