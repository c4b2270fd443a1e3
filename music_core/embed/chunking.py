"""Split long texts into overlapping word windows that fit an embedding model's input."""

from __future__ import annotations


def word_chunks(text: str, size: int = 128, overlap: int = 32) -> list[str]:
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError("need size > 0 and 0 <= overlap < size")
    words = text.split()
    if not words:
        return []
    step = size - overlap
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + size]))
        if start + size >= len(words):
            break
    return chunks
