import math

import pytest

from music_core.search import (
    UNKNOWN_WEIGHT,
    TermStatistics,
    plan_terms,
    query_words,
    reciprocal_rank_fusion,
    tsquery_all,
    tsquery_any,
    tsquery_lexeme,
)


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


def test_query_words_are_capped() -> None:
    assert len(query_words(" ".join(["w"] * 100))) == 32


STATS = TermStatistics({"love": 0.98, "night": 0.4, "mirror": 0.06}, unlisted_ceiling=0.02)


def test_plan_splits_selective_from_common_words_and_weights_rarer_ones_more() -> None:
    plan = plan_terms(["love", "mirror", "zanzibar", "night", "love"], STATS)
    assert [lexeme for lexeme, _ in plan.selective] == ["mirror", "zanzibar"]
    assert [lexeme for lexeme, _ in plan.common] == ["love", "night"]
    weights = dict(plan.selective + plan.common)
    # idf = ln(1/fraction); an unlisted word is taken as half as frequent as the listing's floor.
    assert weights["zanzibar"] == pytest.approx(math.log(1 / 0.01) + 0.01)
    assert weights["mirror"] == pytest.approx(math.log(1 / 0.06) + 0.01)
    assert weights["zanzibar"] > weights["mirror"] > weights["night"] > weights["love"] > 0
    gather, gather_weights = plan.gather()
    assert gather == ["'mirror'", "'zanzibar'"]
    assert gather_weights == [weights["mirror"], weights["zanzibar"]]
    assert plan.lexemes == ("mirror", "zanzibar", "love", "night")


def test_a_query_of_common_words_gathers_the_documents_holding_all_of_them() -> None:
    plan = plan_terms(["love", "night"], STATS)
    assert plan.selective == ()
    assert plan.gather() == (["'love' & 'night'"], [pytest.approx(plan.total_weight)])
    assert plan_terms([], STATS).gather() == ([], [])


def test_without_statistics_every_word_gathers_with_equal_weight() -> None:
    plan = plan_terms(["love", "night"], TermStatistics({}, unlisted_ceiling=None))
    assert plan.selective == (("love", UNKNOWN_WEIGHT), ("night", UNKNOWN_WEIGHT))
    assert plan.common == ()


def test_tsquery_literals_quote_every_operator_character() -> None:
    assert tsquery_lexeme("o'brien") == "'o''brien'"
    assert tsquery_lexeme("a\\b") == "'a\\\\b'"
    assert tsquery_any(["a", "b|c"]) == "'a' | 'b|c'"
    assert tsquery_all(["a", "!b"]) == "'a' & '!b'"
