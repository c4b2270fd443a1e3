import pytest

from music_core.text.metrics import char_error_rate, edit_distance, normalise, word_error_rate


@pytest.mark.parametrize(
    ("given", "expected"),
    [("Hello, World!", "hello world"), ("It’s  OK", "it's ok"), ("'quoted' words", "quoted words"), ("", "")],
)
def test_normalise(given: str, expected: str) -> None:
    assert normalise(given) == expected


@pytest.mark.parametrize(
    ("ref", "hyp", "wer"),
    [
        ("ask not what your country", "ask not what your country", 0.0),
        ("ask not what your country", "ask what your country", 0.2),
        ("ask not", "ask not now please", 1.0),
        ("a b c d", "a x c d", 0.25),
        ("", "", 0.0),
        ("", "noise", 1.0),
    ],
)
def test_word_error_rate(ref: str, hyp: str, wer: float) -> None:
    assert word_error_rate(ref, hyp) == pytest.approx(wer)


def test_char_error_rate_and_distance() -> None:
    assert char_error_rate("kitten", "sitting") == pytest.approx(3 / 6)
    assert edit_distance(list("abc"), list("abc")) == 0
    assert char_error_rate("", "") == 0.0
