"""Pure helpers that group work into Dagster runs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

SIDECAR_SUFFIXES = (".lrc", ".txt")


def contiguous_ranges(order: Sequence[str], selected: Iterable[str], max_size: int) -> list[tuple[str, str]]:
    """Split ``selected`` keys into (first, last) ranges that are contiguous in ``order``.

    A Dagster run over a partition range covers every key between its ends, so a range must not
    span keys that were not selected.
    """
    wanted = set(selected)
    ranges: list[tuple[str, str]] = []
    start: str | None = None
    prev: str | None = None
    count = 0
    for key in order:
        if key in wanted and start is not None and count < max_size:
            prev, count = key, count + 1
            continue
        if start is not None and prev is not None:
            ranges.append((start, prev))
            start = prev = None
        if key in wanted:
            start = prev = key
            count = 1
    if start is not None and prev is not None:
        ranges.append((start, prev))
    return ranges


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def batch_run_key(prefix: str, parts: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}:{digest}"


def is_sidecar(key: str) -> bool:
    """Lyrics sidecars (.lrc/.txt) wait in the inbox for the lyrics stage; they are not tracks."""
    return key.lower().endswith(SIDECAR_SUFFIXES)
