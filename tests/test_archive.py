"""Streamed archives: correct contents, safe member paths, and output that starts before input ends."""

from __future__ import annotations

import datetime as dt
import io
import os
import tarfile
import zipfile

import pytest

from music_core.archive import Member, safe_member_path, tar_gz_stream, zip_stream

NOW = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


def members(data: dict[str, bytes]) -> list[Member]:
    return [
        Member(p, len(b), NOW, lambda b=b: [b[i : i + 1000] for i in range(0, len(b), 1000)])
        for p, b in data.items()
    ]


DATA = {"Rock/Song [abc]/original/a song.mp3": os.urandom(5000), "export_metadata.json": b'{"x": 1}'}


def test_zip_round_trip() -> None:
    blob = b"".join(zip_stream(members(DATA)))
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        assert {n: z.read(n) for n in z.namelist()} == DATA


def test_tar_gz_round_trip() -> None:
    blob = b"".join(tar_gz_stream(members(DATA)))
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as t:
        assert {m.name: t.extractfile(m).read() for m in t.getmembers()} == DATA  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/etc/passwd", "etc/passwd"),
        ("../../x", "__/__/x"),
        ("a/./b\n.txt", "a/b.txt"),
        ("ok/name.mp3", "ok/name.mp3"),
    ],
)
def test_member_paths_are_safe(given: str, expected: str) -> None:
    assert safe_member_path(given) == expected


@pytest.mark.parametrize("stream", [zip_stream, tar_gz_stream])
def test_archives_stream_before_the_input_is_consumed(stream) -> None:  # noqa: ANN001
    pulled = []

    def chunks():  # noqa: ANN202
        for i in range(64):  # 64 MiB of incompressible data, never held at once
            pulled.append(i)
            yield os.urandom(1024 * 1024)

    out = stream([Member("big.bin", 64 * 1024 * 1024, NOW, chunks)])
    first = next(iter(out))
    assert first and len(pulled) < 64  # output began while most of the input was still unread
    total = len(first) + sum(len(c) for c in out)
    assert total > 64 * 1024 * 1024  # random data does not compress


def test_tar_stream_stops_when_the_client_leaves() -> None:
    pulled = []

    def chunks():  # noqa: ANN202
        for i in range(1000):
            pulled.append(i)
            yield os.urandom(256 * 1024)

    out = tar_gz_stream([Member("huge.bin", 1000 * 256 * 1024, NOW, chunks)])
    next(out)
    out.close()  # what Starlette does when the connection drops
    assert len(pulled) < 1000
