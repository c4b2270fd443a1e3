import pytest

from music_core.compare import compare, normalise_words, sync_lines
from music_core.lyrics.lrc import format_lrc, format_timestamp, looks_like_lrc, parse_lrc, plain_from_lrc


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("I can't stop, won't stop!", ["i", "can", "not", "stop", "will", "not", "stop"]),
        ("We're runnin' 'til 12", ["we", "are", "running", "until", "twelve"]),
        ("You’ll see 99 red balloons", ["you", "will", "see", "ninety", "nine", "red", "balloons"]),
        ("Rock'n'roll, y'all", ["rock'n'roll", "you", "all"]),
        ("", []),
    ],
)
def test_normalise_words(text: str, words: list[str]) -> None:
    assert normalise_words(text) == words


def test_identical_texts() -> None:
    c = compare("Ask not what your country\ncan do for you", "ask not what your country can do for you")
    assert (c.wer, c.similarity) == (0.0, 100.0)
    assert all(op.kind == "equal" for op in c.alignment)
    assert [m["matched"] for m in c.line_matches] == [1.0, 1.0]
    assert c.reasons == []


def test_mishearing_is_explained() -> None:
    c = compare("hold me closer tiny dancer", "hold me closer tony danza")
    assert c.wer == pytest.approx(0.4, abs=1e-3)
    assert 0 < c.similarity < 100
    assert any(op.kind == "replace" and op.lyrics == "tiny dancer" for op in c.alignment)
    assert any("'tiny dancer' heard as 'tony danza'" in r for r in c.reasons)


def test_repeated_chorus_not_transcribed() -> None:
    lyrics = "oh what a night\nlate december back in sixty three\noh what a night\noh what a night"
    c = compare(lyrics, "oh what a night late december back in sixty three")
    assert any(r.startswith("repeated lines not transcribed (2)") for r in c.reasons)
    assert [m["matched"] for m in c.line_matches] == [1.0, 1.0, 0.0, 0.0]


def test_backing_vocals_and_no_vocals() -> None:
    c = compare("we will rock you (rock you)\nbuddy you are a boy", "we will rock you buddy you're a boy")
    assert c.wer == pytest.approx(2 / 11, abs=1e-3)
    assert "backing vocals in parentheses not transcribed (1)" in c.reasons
    no_vocals = compare("some lyrics here", "")
    assert no_vocals.similarity == 0.0 and no_vocals.wer == 1.0
    assert no_vocals.reasons[0].startswith("no vocals were transcribed")


def test_sync_lines_from_word_times() -> None:
    lyrics = (
        "ask not what your country can do for you\n(instrumental break)\nask what you can do for your country"
    )
    words = [(0.5 + i * 0.3, 0.7 + i * 0.3, w) for i, w in enumerate(
        "ask not what your country can do for you".split())] + [
        (8.0 + i * 0.3, 8.2 + i * 0.3, w) for i, w in enumerate("ask what you can do for your country".split())]  # fmt: skip
    timed = sync_lines(lyrics, words)
    assert [t for t, _ in timed] == pytest.approx([0.5, 4.25, 8.0])  # the break is placed between
    assert [line for _, line in timed][1] == "(instrumental break)"


def test_lrc_round_trip() -> None:
    text = "[ar:Someone]\n[00:01.50] first line\n[00:10.00][01:10.25] chorus\nno tag here\n[00:05.5]middle"
    parsed = parse_lrc(text)
    assert parsed == [(1.5, "first line"), (5.5, "middle"), (10.0, "chorus"), (70.25, "chorus")]
    assert plain_from_lrc(text).splitlines() == ["first line", "middle", "chorus", "chorus"]
    assert format_lrc([(1.5, "a"), (70.25, "b")]) == "[00:01.50] a\n[01:10.25] b\n"
    assert format_timestamp(-3) == "[00:00.00]"
    assert looks_like_lrc(text) and not looks_like_lrc("plain\nlyrics")
