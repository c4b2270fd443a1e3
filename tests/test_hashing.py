import hashlib
from pathlib import Path

from music_core.hashing import sha256_chunks, sha256_file


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # spans several chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == (hashlib.sha256(data).hexdigest(), len(data))


def test_sha256_of_nothing() -> None:
    assert sha256_chunks([]) == (hashlib.sha256(b"").hexdigest(), 0)
