"""Pure search helpers: query sanitising, reciprocal rank fusion, full-text term planning."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RRF_K = 60  # the constant from Cormack et al. (2009); robust across result-list lengths
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def query_words(query: str) -> list[str]:
    """Words of a user query, without operators or punctuation (safe for websearch_to_tsquery)."""
    return _WORD.findall(query.lower())[:MAX_QUERY_WORDS]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], limit: int, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank starting at 1."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


# --- full-text term planning ---------------------------------------------------------------------------
# Ranking every document that contains a common word ("love", "baby") costs a detoast and a
# ts_rank_cd per document, i.e. the whole library. Documents are therefore gathered only through the
# query's selective words (the GIN index answers those without reading a single tsvector), scored by
# inverse document frequency, and only the best of them are ranked for proximity.

MAX_SELECTIVE_FRACTION = 0.10  # a word in more than 10 % of the documents does not gather candidates
UNKNOWN_WEIGHT = 1.0  # every word weighs the same when the database has no statistics yet


@dataclass(frozen=True)
class TermStatistics:
    """Document frequencies (fraction of documents) of the most common lexemes, as PostgreSQL's
    ANALYZE samples them. A lexeme that is not listed is rarer than ``unlisted_ceiling``."""

    fractions: Mapping[str, float]
    unlisted_ceiling: float | None  # None: no statistics at all

    def fraction(self, lexeme: str) -> float | None:
        if lexeme in self.fractions:
            return self.fractions[lexeme]
        return self.unlisted_ceiling


Weighted = tuple[tuple[str, float], ...]  # (lexeme, weight)


@dataclass(frozen=True)
class TermPlan:
    selective: Weighted  # these gather the candidates
    common: Weighted  # too frequent to gather alone; they still count in the ranking

    @property
    def lexemes(self) -> tuple[str, ...]:
        return tuple(lexeme for lexeme, _ in self.selective + self.common)

    @property
    def total_weight(self) -> float:
        return sum(weight for _, weight in self.selective + self.common)

    def gather(self) -> tuple[list[str], list[float]]:
        """tsqueries that gather candidates, each with the weight a match adds: one per selective
        lexeme; with none, the documents holding every common lexeme."""
        if self.selective:
            return [tsquery_lexeme(lexeme) for lexeme, _ in self.selective], [w for _, w in self.selective]
        if self.common:
            return [tsquery_all([lexeme for lexeme, _ in self.common])], [self.total_weight]
        return [], []


def idf_weight(fraction: float) -> float:
    return round(math.log(1.0 / min(max(fraction, 1e-6), 1.0)) + 0.01, 6)  # never zero


def plan_terms(
    lexemes: Sequence[str], stats: TermStatistics, max_fraction: float = MAX_SELECTIVE_FRACTION
) -> TermPlan:
    """Split query lexemes into selective ones and common ones, each weighted by its log inverse
    document frequency. Unlisted lexemes count as half as frequent as the rarest listed one."""
    selective: list[tuple[str, float]] = []
    common: list[tuple[str, float]] = []
    for lexeme in dict.fromkeys(lexemes):
        fraction = stats.fraction(lexeme)
        if fraction is None:
            selective.append((lexeme, UNKNOWN_WEIGHT))
        elif lexeme not in stats.fractions:
            selective.append((lexeme, idf_weight(fraction / 2)))
        elif fraction > max_fraction:
            common.append((lexeme, idf_weight(fraction)))
        else:
            selective.append((lexeme, idf_weight(fraction)))
    return TermPlan(tuple(selective), tuple(common))


def tsquery_lexeme(lexeme: str) -> str:
    """One lexeme as a tsquery literal: quoted, so no character in it can act as an operator."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def tsquery_any(lexemes: Sequence[str]) -> str:
    return " | ".join(tsquery_lexeme(lexeme) for lexeme in lexemes)


def tsquery_all(lexemes: Sequence[str]) -> str:
    return " & ".join(tsquery_lexeme(lexeme) for lexeme in lexemes)
