"""HTTP Range requests (RFC 9110 section 14): parsing and satisfiability. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_RANGES = 16  # more parts than this is an abuse pattern, not a media player
_DIGITS = re.compile(r"[0-9]{1,30}")


class RangeNotSatisfiable(Exception):
    pass


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> list[ByteRange] | None:
    """Ranges to serve, or None to serve the whole representation (absent or unparseable header).

    Raises RangeNotSatisfiable when the header is valid but no range overlaps the content."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    ranges: list[ByteRange] = []
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) > MAX_RANGES:
        return None
    for part in parts:
        first, dash, last = part.partition("-")
        if not dash:
            return None
        if first == "":  # suffix range: the last N bytes
            suffix = _position(last)
            if suffix is None:
                return None
            if suffix > 0 and size > 0:
                ranges.append(ByteRange(max(0, size - suffix), size - 1))
            continue
        start = _position(first)
        end = _position(last) if last else size - 1
        if start is None or end is None:
            return None
        if last and end < start:
            return None  # syntactically invalid: the whole header is ignored
        if start >= size:
            continue  # unsatisfiable on its own; others may still be fine
        ranges.append(ByteRange(start, min(end, size - 1)))
    if not ranges:
        raise RangeNotSatisfiable(f"bytes */{size}")
    return _coalesce(ranges)


def _position(text: str) -> int | None:
    """A byte position: ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` refuses),
    and at most 30 of them (far past any file; Python refuses to parse more than 4300)."""
    return int(text) if _DIGITS.fullmatch(text) else None


def _coalesce(ranges: list[ByteRange]) -> list[ByteRange]:
    """Merge overlapping or adjacent ranges (allowed by RFC 9110, and it defeats overlap abuse)."""
    ordered = sorted(ranges, key=lambda r: r.start)
    merged = [ordered[0]]
    for r in ordered[1:]:
        last = merged[-1]
        if r.start <= last.end + 1:
            merged[-1] = ByteRange(last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return merged
