"""When is a lyrics candidate the right song? (beets-style checks, pure)."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

DURATION_TOLERANCE = 0.05  # 5 %
NAME_THRESHOLD = 0.8
JUNK = re.compile(
    r"lyrics (are )?not (yet )?available|we (do not|don't) have (the )?lyrics|instrumental only|"
    r"submit (the )?lyrics|unfortunately, we are not licensed|we are not (currently )?licensed|translation|"
    r"lyrics will be available soon|be the first to add the lyrics|enable javascript to (see|view)",
    re.IGNORECASE,
)


def _canon(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"\(.*?\)|\[.*?\]|feat\..*$|ft\..*$", " ", text)
    return " ".join(re.findall(r"[a-z0-9]+", text))


def name_similarity(a: str | None, b: str | None) -> float:
    if not a or not b:
        return 0.0
    return SequenceMatcher(a=_canon(a), b=_canon(b)).ratio()


def duration_ok(expected: float | None, found: float | None) -> bool:
    if not expected or not found:
        return True  # unknown on either side: the names decide
    return abs(expected - found) <= expected * DURATION_TOLERANCE


def looks_like_junk(text: str) -> bool:
    stripped = text.strip()
    return len(stripped) < 20 or bool(JUNK.search(stripped[:500]))


def accept(
    artist: str | None, title: str | None, duration: float | None,
    found_artist: str | None, found_title: str | None, found_duration: float | None,
) -> bool:  # fmt: skip
    if not duration_ok(duration, found_duration):
        return False
    if title and name_similarity(title, found_title) < NAME_THRESHOLD:
        return False
    return not (artist and name_similarity(artist, found_artist) < NAME_THRESHOLD)


def mentions(text: str | None, name: str | None) -> bool:
    """True when a search result's title or URL names the artist/title (fuzzy, beets-style threshold)."""
    if not text or not name:
        return False
    haystack, needle = _canon(text.replace("-", " ").replace("_", " ")).split(), _canon(name).split()
    if not needle:
        return False
    width = len(needle)
    windows = [" ".join(haystack[i : i + width]) for i in range(max(1, len(haystack) - width + 1))]
    return max(SequenceMatcher(a=" ".join(needle), b=w).ratio() for w in windows) >= NAME_THRESHOLD
