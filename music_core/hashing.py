"""Streaming SHA-256: constant memory whatever the size."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1024 * 1024


def sha256_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_chunks(path: Path, chunk_size: int = CHUNK) -> Iterable[bytes]:
    with path.open("rb") as fh:
        while block := fh.read(chunk_size):
            yield block


def sha256_file(path: Path) -> tuple[str, int]:
    return sha256_chunks(file_chunks(path))
