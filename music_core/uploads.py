"""Put local files into the bucket's inbox, keeping their names and folder layout."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from music_core.naming import ORIGINAL_NAME_META, encode_original_name, inbox_key
from music_core.storage import ObjectStore

# Walking a folder takes media files only (music folders hold covers, playlists, notes...).
# A file named explicitly is always taken, whatever its name, and judged by its content.
MEDIA_EXTENSIONS = frozenset(
    ".aac .ac3 .aif .aifc .aiff .alac .amr .ape .au .avi .caf .dsf .dts .eac3 .f4a .flac .m2ts .m4a .m4b .m4v "
    ".mka .mkv .mov .mp2 .mp3 .mp4 .mpc .mpeg .mpg .oga .ogg .ogv .opus .ra .rm .shn .spx .ts .tta .voc .w64 "
    ".wav .weba .webm .wma .wmv .wv .3gp".split()
)


@dataclass(frozen=True)
class LocalFile:
    path: Path
    name: str  # relative name shown to users: the file name, or folder-relative path for folders


def expand_paths(paths: Sequence[str | Path]) -> Iterator[LocalFile | tuple[str, str]]:
    """Files as given; media files of folders, recursively (hidden entries skipped).

    Unusable paths yield (path, reason)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                hidden = any(part.startswith(".") for part in rel.parts)
                if child.is_file() and not hidden and child.suffix.lower() in MEDIA_EXTENSIONS:
                    yield LocalFile(child, rel.as_posix())
        elif path.is_file():
            yield LocalFile(path, path.name)
        elif path.exists():
            yield (str(raw), "not a regular file")
        else:
            yield (str(raw), "no such file or directory")


def upload_to_inbox(store: ObjectStore, prefix: str, item: LocalFile) -> str:
    key = inbox_key(prefix, item.name)
    content_type = mimetypes.guess_type(item.name)[0] or "application/octet-stream"
    store.put_file(key, item.path, content_type, {ORIGINAL_NAME_META: encode_original_name(item.name)})
    return key
