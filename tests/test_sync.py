"""Synced lyrics: monotonic fuzzy alignment, onsets, estimated lines and the timing difference."""

from __future__ import annotations

import pytest

from music_core import lyrics_sync
from music_core.compare import normalise_words, sync_lines, sync_lyrics
from music_core.lyrics_sync import max_word_seconds, phonetic_key, timing_difference, word_similarity


def spoken(text: str, start: float, step: float = 0.3, probability: float = 0.9) -> list[tuple]:
    """Words of ``text`` one after another from ``start``, each ``step`` long."""
    return [(start + i * step, start + (i + 1) * step, w, probability) for i, w in enumerate(text.split())]


def key(line: str) -> str:
    return " ".join(normalise_words(line))


def test_word_similarity() -> None:
    assert word_similarity("clubs", "clubs") == 1.0
    assert word_similarity("clubs", "cloves") >= lyrics_sync.MIN_SIMILARITY  # sounds alike
    assert phonetic_key("clubs") == phonetic_key("cloves")
    assert word_similarity("dancer", "danza") >= lyrics_sync.MIN_SIMILARITY
    assert word_similarity("country", "selfish") < lyrics_sync.MIN_SIMILARITY
    assert word_similarity("a", "i") == 0.0 and word_similarity("to", "so") == 0.0  # short: exact only


def test_misheard_line_is_anchored_by_similar_words() -> None:
    words = spoken("hold me closer", 1.0) + spoken("tony danza", 6.0)
    timed = sync_lyrics("hold me closer\ntiny dancer\n", words)
    assert [t.start for t in timed] == pytest.approx([1.0, 6.0])
    assert [t.method for t in timed] == ["matched", "matched"]
    assert not timed[1].estimated and 0 < timed[1].confidence < timed[0].confidence <= 1


def test_pause_folded_into_first_word_is_taken_off() -> None:
    # Whisper's DTW gives "four" the two seconds of music before it: 0.0-2.7
    words = [
        (0.0, 2.7, "Four", 0.3),
        (2.7, 3.1, "Queen", 0.9),
        (3.1, 3.4, "of", 0.9),
        (3.4, 3.8, "clubs", 0.9),
    ]
    (line,) = sync_lyrics("four queen of clubs", words)
    assert line.start == pytest.approx(2.7 - max_word_seconds("four"))
    assert 1.5 < line.start < 2.7


def test_misheard_start_of_a_line_is_included() -> None:
    words = spoken("he was not an ill disposed young man", 1.0) + spoken(
        "i must be rather cold hearted", 20.0
    )
    timed = sync_lyrics("he was not an ill disposed young man\nunless to be rather cold hearted", words)
    assert timed[1].start == pytest.approx(20.0)  # "i must" is "unless to" misheard, not a pause
    assert timed[1].matched_words == 4


def test_stray_word_seconds_before_a_line_does_not_anchor_it() -> None:
    words = spoken("he was not", 1.0) + [(15.0, 15.3, "to", 0.4)] + spoken("i must be rather selfish", 20.0)
    timed = sync_lyrics("he was not\nunless to be rather selfish", words)
    assert timed[1].start == pytest.approx(20.0)


def test_monotonic_alignment_ignores_a_later_hallucinated_repeat() -> None:
    words = (
        spoken("seven of clubs", 11.0)
        + spoken("go forward", 20.0)
        + spoken("seven of clubs", 21.2, probability=0.01)  # Whisper repeating itself over music
    )
    timed = sync_lyrics("seven of clubs\ngo forward ten meters", words)
    assert [t.start for t in timed] == pytest.approx([11.0, 20.0])


def test_unmatched_line_is_placed_on_heard_words_at_a_segment_start() -> None:
    lyrics = "first line here\nzebra quartz vexed\nthird line here"
    words = spoken("first line here", 1.0) + spoken("blah blah", 5.0) + spoken("third line here", 9.0)
    timed = sync_lyrics(lyrics, words, segment_starts=[1.0, 5.0, 9.0])
    assert timed[1].start == pytest.approx(5.0)
    assert timed[1].method == "heard" and timed[1].estimated
    assert 0 < timed[1].confidence < 0.5
    # The same words inside the previous line's segment are that line misheard: interpolate instead.
    inside = sync_lyrics(lyrics, words, segment_starts=[1.0, 9.0])
    assert inside[1].method == "interpolated" and inside[1].confidence == 0.0
    assert inside[1].start == pytest.approx((1.0 + 9.0) / 2)


def test_interpolated_line_waits_for_the_previous_line_to_end() -> None:
    first = " ".join(f"w{i}x" for i in range(20))
    lyrics = f"{first}\nzebra quartz\nlast line"
    words = spoken("w0x w1x", 0.0) + spoken("last line", 8.0)
    timed = sync_lyrics(lyrics, words)
    assert timed[1].method == "interpolated"
    # halfway between the anchored starts would be 4.0, but 18 words of the first line were not heard
    # after "w1x" ended at 0.6
    assert timed[1].start == pytest.approx(0.6 + 18 * lyrics_sync.SECONDS_PER_MISSING_WORD)
    assert timed[2].start == pytest.approx(8.0)


def test_match_many_lyrics_words_ahead_in_no_time_is_not_part_of_the_line() -> None:
    first = " ".join(f"w{i}x" for i in range(30))
    lyrics = f"{first}\nzebra quartz\nlast line"
    # ten words heard in order, then "w28x" right after them: 18 words could not have been sung in 0.3 s
    words = (
        spoken(" ".join(f"w{i}x" for i in range(10)), 0.0) + spoken("w28x", 3.0) + spoken("last line", 12.0)
    )
    timed = sync_lyrics(lyrics, words)
    assert timed[0].matched_words == 10
    # so twenty words of the first line are still to come after 3.0 s before the unheard line
    assert timed[1].method == "interpolated"
    assert timed[1].start == pytest.approx(3.0 + 20 * lyrics_sync.SECONDS_PER_MISSING_WORD)


def test_times_never_go_backwards_and_nothing_heard_is_all_estimated() -> None:
    lyrics = "alpha beta\ngamma delta\nepsilon"
    timed = sync_lyrics(lyrics, spoken("epsilon", 2.0) + spoken("alpha beta", 5.0))
    starts = [t.start for t in timed]
    assert starts == sorted(starts)
    silent = sync_lyrics(lyrics, [])
    assert [t.method for t in silent] == ["interpolated"] * 3 and all(t.estimated for t in silent)
    assert sync_lyrics("", spoken("anything", 0.0)) == []
    assert sync_lines(lyrics, []) == [(t.start, t.line) for t in silent]


def test_line_timing_dict_for_storage() -> None:
    (line,) = sync_lyrics("ask not", spoken("ask not", 1.234567))
    stored = line.as_dict()
    assert stored == {
        "start": 1.235, "line": "ask not", "method": "matched", "confidence": line.confidence,
        "matched_words": 2, "words": 2, "estimated": False,
    }  # fmt: skip


def test_exact_only_fallback_for_very_long_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lyrics_sync, "MAX_CELLS", 4)
    timed = sync_lyrics(
        "hold me closer\ntiny dancer", spoken("hold me closer", 1.0) + spoken("tony danza", 6.0)
    )
    assert timed[0].start == pytest.approx(1.0) and timed[0].method == "matched"
    assert timed[1].method == "heard" and timed[1].start == pytest.approx(6.0)  # no fuzzy matching here


def test_timing_difference_pairs_lines_by_text() -> None:
    ours = [(1.0, "Ask not"), (5.0, "what your country"), (9.5, "can do for you")]
    # The reference repeats a chorus line ours does not have, and is 0.5 s earlier throughout.
    reference = [(0.5, "ask not"), (3.0, "(ooh)"), (4.5, "What your country"), (9.0, "can do for you")]
    diff = timing_difference(ours, reference, key)
    assert diff is not None
    assert (diff["lines"], diff["our_lines"], diff["reference_lines"]) == (3, 3, 4)
    assert diff["median_s"] == pytest.approx(0.5) and diff["max_s"] == pytest.approx(0.5)
    assert diff["mean_signed_s"] == pytest.approx(0.5) and diff["within_0_5_s"] == 1.0
    assert timing_difference(ours, [(1.0, "something else")], key) is None
    assert timing_difference(ours, [], key) is None
