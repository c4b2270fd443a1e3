import pytest

from music_core.http_range import ByteRange, RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [ByteRange(0, 99)]),
        ("bytes=100-", [ByteRange(100, 999)]),
        ("bytes=-100", [ByteRange(900, 999)]),
        ("bytes=-5000", [ByteRange(0, 999)]),
        ("bytes=990-2000", [ByteRange(990, 999)]),
        ("bytes=0-9, 20-29", [ByteRange(0, 9), ByteRange(20, 29)]),
        ("bytes=20-29,0-9", [ByteRange(0, 9), ByteRange(20, 29)]),
        ("bytes=0-10,5-20,21-30", [ByteRange(0, 30)]),
        ("bytes=0-9,5000-6000", [ByteRange(0, 9)]),
        ("BYTES = 0-0", [ByteRange(0, 0)]),
    ],
)
def test_satisfiable_ranges(header: str, expected: list[ByteRange]) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "items=0-1", "bytes=abc", "bytes=5-1", "bytes=1-2-3", "bytes=-x", "bytes=0-1;x",
     "bytes=" + ",".join(["0-1"] * 20),
     # digits that str.isdigit accepts and int refuses (Starlette decodes header bytes as Latin-1, so
     # a raw 0xB2 byte from a client arrives as "²"), and numbers too long for int() to parse
     "bytes=0-\u00b2", "bytes=\u00b9-", "bytes=-\u00b3", "bytes=\u0661-", "bytes=0-" + "9" * 5000,
     "bytes=-" + "9" * 5000],
)  # fmt: skip
def test_unusable_headers_mean_the_whole_file(header: str | None) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=1000-1000,2000-"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


def test_empty_file_cannot_satisfy_any_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-10", 0)


def test_content_range_header() -> None:
    assert ByteRange(0, 99).content_range(SIZE) == "bytes 0-99/1000"
    assert ByteRange(5, 5).length == 1
