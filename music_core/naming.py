"""Pure helpers for object keys and names. No I/O.

Users' file names are untrusted: they may contain quotes, unicode, control characters, ``..``
segments or be longer than S3 servers accept. Keys are made safe here; the original name is kept
verbatim (percent-encoded in object metadata, as text in the database) and never used as a path.
"""

from __future__ import annotations

import hashlib
import posixpath
import unicodedata
from urllib.parse import quote, unquote

MAX_SEGMENT_BYTES = 200  # SeaweedFS refuses path segments over 255 bytes; leave room for suffixes
ORIGINAL_NAME_META = "original-name"


def _clean_segment(segment: str) -> str:
    segment = unicodedata.normalize("NFC", segment)
    segment = "".join(ch for ch in segment if unicodedata.category(ch)[0] != "C").strip()
    if segment in {"", ".", ".."}:
        return "_" * max(len(segment), 1)
    if len(segment.encode()) <= MAX_SEGMENT_BYTES:
        return segment
    stem, ext = posixpath.splitext(segment)
    if len(ext.encode()) > 16:
        stem, ext = segment, ""
    digest = hashlib.sha1(segment.encode()).hexdigest()[:10]
    budget = MAX_SEGMENT_BYTES - len(ext.encode()) - len(digest) - 1
    short = stem.encode()[:budget].decode(errors="ignore")
    return f"{short}~{digest}{ext}"


_NOT_PORTABLE = str.maketrans(dict.fromkeys('/\\<>:"|?*', "_"))
_RESERVED_ON_WINDOWS = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}


def portable_name(text: str) -> str:
    """One folder or file name from untrusted text (a title, a genre, an uploaded name) that unpacks
    the same on Linux, macOS and Windows: no separators or characters Windows refuses, no trailing
    dot or space, no reserved device name; bounded like every key segment."""
    name = _clean_segment(text.translate(_NOT_PORTABLE)).rstrip(". ") or "_"
    return f"_{name}" if name.split(".", 1)[0].upper() in _RESERVED_ON_WINDOWS else name


def safe_relative_key(relative_path: str) -> str:
    """A key fragment for a user path: forward slashes, no empty/dot segments, bounded segments."""
    parts = relative_path.replace("\\", "/").split("/")
    cleaned = [_clean_segment(p) for p in parts if p not in {"", "."}]
    return "/".join(cleaned) or "_"


def inbox_key(prefix: str, relative_path: str) -> str:
    return prefix + safe_relative_key(relative_path)


def encode_original_name(name: str) -> str:
    """Object metadata travels in HTTP headers: ASCII only."""
    return quote(name, safe="/ ")


def decode_original_name(value: str) -> str:
    return unquote(value)


def name_below_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def folder_of(relative_name: str) -> str | None:
    """Top-level folder of an uploaded name (``Rock/Artist/song.mp3`` -> ``Rock``), used as a genre hint."""
    parts = [p for p in relative_name.split("/") if p]
    return parts[0] if len(parts) > 1 else None


def original_key(sha256: str) -> str:
    return f"originals/{sha256[:2]}/{sha256}"


def converted_key(sha256: str) -> str:
    return f"converted/{sha256[:2]}/{sha256}.flac"


def sidecar_key(sha256: str, suffix: str) -> str:
    return f"sidecars/{sha256[:2]}/{sha256}{suffix.lower()}"
