"""LRC parsing and formatting (pure)."""

from __future__ import annotations

import re

_TIME = re.compile(r"\[(\d{1,3}):(\d{2})(?:[.:](\d{1,3}))?\]")
_META = re.compile(r"^\[(ar|ti|al|au|length|by|offset|re|ve|#):.*\]$", re.IGNORECASE)


def parse_lrc(text: str) -> list[tuple[float, str]]:
    """Timed lines, sorted; a line with several time tags appears once per tag."""
    out: list[tuple[float, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or _META.match(line):
            continue
        stamps = list(_TIME.finditer(line))
        if not stamps:
            continue
        lyric = line[stamps[-1].end() :].strip()
        for m in stamps:
            minutes, seconds, frac = m.group(1), m.group(2), m.group(3) or "0"
            out.append((int(minutes) * 60 + int(seconds) + int(frac) / 10 ** len(frac), lyric))
    return sorted(out, key=lambda item: item[0])


def plain_from_lrc(text: str) -> str:
    return "\n".join(line for _, line in parse_lrc(text))


def looks_like_lrc(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and sum(1 for line in lines if _TIME.match(line.strip())) >= max(1, len(lines) // 2)


def format_timestamp(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes, rest = divmod(round(seconds * 100), 6000)
    return f"[{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}]"


def format_lrc(lines: list[tuple[float, str]]) -> str:
    return "\n".join(f"{format_timestamp(t)} {line}" for t, line in lines) + "\n"
