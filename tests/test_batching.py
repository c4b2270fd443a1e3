import pytest

from music_core.batching import batch_run_key, chunked, contiguous_ranges, is_sidecar

ORDER = list("abcdefgh")


@pytest.mark.parametrize(
    ("selected", "size", "expected"),
    [
        ("abc", 10, [("a", "c")]),
        ("ac", 10, [("a", "a"), ("c", "c")]),
        ("abcdefgh", 3, [("a", "c"), ("d", "f"), ("g", "h")]),
        ("bcdg", 10, [("b", "d"), ("g", "g")]),
        ("", 10, []),
        ("xyz", 10, []),
        ("h", 1, [("h", "h")]),
    ],
)
def test_contiguous_ranges(selected: str, size: int, expected: list[tuple[str, str]]) -> None:
    assert contiguous_ranges(ORDER, list(selected), size) == expected


def test_ranges_never_cover_unselected_keys() -> None:
    selected = {"a", "b", "d", "e", "f", "h"}
    for first, last in contiguous_ranges(ORDER, selected, 2):
        covered = ORDER[ORDER.index(first) : ORDER.index(last) + 1]
        assert set(covered) <= selected
        assert len(covered) <= 2


def test_chunked() -> None:
    assert chunked(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert chunked([], 3) == []


def test_batch_run_key_is_stable_and_sensitive() -> None:
    assert batch_run_key("p", ["a", "b"]) == batch_run_key("p", ["a", "b"])
    assert batch_run_key("p", ["a", "b"]) != batch_run_key("p", ["a", "c"])
    assert batch_run_key("p", ["a"]).startswith("p:")


@pytest.mark.parametrize(
    ("key", "sidecar"), [("inbox/a.lrc", True), ("inbox/A.TXT", True), ("inbox/a.mp3", False)]
)
def test_is_sidecar(key: str, sidecar: bool) -> None:
    assert is_sidecar(key) is sidecar
