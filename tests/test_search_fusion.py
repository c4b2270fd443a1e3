import pytest

from music_core.search import any_word_query, query_words, reciprocal_rank_fusion


def test_rrf_rewards_agreement() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]], limit=4)
    assert [i for i, _ in fused][:2] == ["a", "b"] or [i for i, _ in fused][:2] == ["b", "a"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert {i for i, _ in fused} == {"a", "b", "c", "d"}
    assert fused[-1][0] in {"c", "d"}


def test_rrf_limit_and_empty() -> None:
    assert reciprocal_rank_fusion([["a", "b"], []], limit=1) == [("a", pytest.approx(1 / 61))]
    assert reciprocal_rank_fusion([], limit=5) == []


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("Ask not what your COUNTRY", ["ask", "not", "what", "your", "country"]),
        ("it's -- a ' OR 1=1; DROP TABLE", ["it's", "a", "or", "1", "1", "drop", "table"]),
        ("ünï ♫ cødé", ["ünï", "cødé"]),
        ("!!!", []),
    ],
)
def test_query_words(query: str, words: list[str]) -> None:
    assert query_words(query) == words


def test_any_word_query() -> None:
    assert any_word_query("ask not") == "ask or not"
    assert any_word_query(" ".join(["w"] * 100)).count(" or ") == 31
