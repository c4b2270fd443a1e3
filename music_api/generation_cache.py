"""Rows read from PostgreSQL, kept in one API worker until the pipeline next writes.

The pipeline bumps a generation counter in Redis after every write (music_core/cache_generation.py),
and the API reads it with the rate-limit count that every request makes anyway (observability.py).
A row cached under one generation is never read under the next, so nothing here outlives a write by
the pipeline or a retention run. Without Redis the generation is unknown and nothing is cached."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class GenerationCache(Generic[V]):
    """Least recently used entries go first beyond ``capacity``. Used from the event loop only."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[bytes, Hashable], V] = OrderedDict()

    def get(self, generation: bytes | None, key: Hashable) -> V | None:
        if generation is None:
            return None
        value = self._entries.get((generation, key))
        if value is not None:
            self._entries.move_to_end((generation, key))
        return value

    def put(self, generation: bytes | None, key: Hashable, value: V) -> None:
        if generation is None:
            return
        self._entries[(generation, key)] = value
        self._entries.move_to_end((generation, key))
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
