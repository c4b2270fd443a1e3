"""Pure search helpers: query sanitising and reciprocal rank fusion."""

from __future__ import annotations

import re
from collections.abc import Sequence

RRF_K = 60  # the constant from Cormack et al. (2009); robust across result-list lengths
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def query_words(query: str) -> list[str]:
    """Words of a user query, without operators or punctuation (safe for websearch_to_tsquery)."""
    return _WORD.findall(query.lower())[:MAX_QUERY_WORDS]


def any_word_query(query: str) -> str:
    """A websearch_to_tsquery text matching any of the words: misheard lyrics rarely match all."""
    return " or ".join(query_words(query))


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], limit: int, k: int = RRF_K
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank starting at 1."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
