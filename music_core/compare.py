"""Transcript vs official lyrics: normalisation, word alignment, scores, reasons and synced lyrics.

Similarity (0-100) = 100 x 2M / (R + H), where R and H are the normalised word counts of lyrics and
transcript and M the words in matching blocks of their alignment (Ratcliff/Obershelp, difflib): the
Dice overlap of the two word sequences. 100 means identical; unlike 100 - WER it never goes negative
and does not punish a transcript for being shorter in proportion to a long lyric sheet twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from music_core.lyrics_sync import LineTiming, TimedWord, sync_line_timings
from music_core.text.metrics import char_error_rate, edit_distance

_CONTRACTIONS = {
    "won't": "will not", "can't": "can not", "cannot": "can not", "ain't": "is not", "gonna": "going to",
    "wanna": "want to", "gotta": "got to", "'cause": "because", "cuz": "because", "y'all": "you all",
    "o'er": "over", "'til": "until", "till": "until", "mr": "mister", "mrs": "missus", "dr": "doctor",
}  # fmt: skip
_SUFFIXES = {"n't": " not", "'re": " are", "'ll": " will", "'ve": " have", "'m": " am", "'d": " would"}
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*'?|'[^\W_]+", re.UNICODE)


def _number(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number(rest))
    return str(n)


def normalise_words(text: str) -> list[str]:
    """Lower case, no punctuation, contractions expanded, small numbers spelled out."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    words: list[str] = []
    for token in _WORD.findall(text):
        if token in _CONTRACTIONS:
            words += _CONTRACTIONS[token].split()
            continue
        if token.endswith("in'") and len(token) > 3:  # runnin' -> running
            token = token[:-1] + "g"
        token = token.strip("'")
        if token in _CONTRACTIONS:
            words += _CONTRACTIONS[token].split()
            continue
        for suffix, expansion in _SUFFIXES.items():
            if token.endswith(suffix) and len(token) > len(suffix):
                token = token[: -len(suffix)] + expansion
                break
        if token.isdigit() and len(token) <= 3:
            words += _number(int(token)).split()
        elif token:
            words += token.split()
    return words


@dataclass(frozen=True)
class Op:
    kind: str  # equal | insert | delete | replace
    lyrics: str
    transcript: str


@dataclass(frozen=True)
class Comparison:
    wer: float
    cer: float
    similarity: float
    alignment: list[Op]
    line_matches: list[dict]
    reasons: list[str] = field(default_factory=list)


def align(ref: list[str], hyp: list[str]) -> list[Op]:
    matcher = SequenceMatcher(a=ref, b=hyp, autojunk=False)
    return [
        Op(tag, " ".join(ref[i1:i2]), " ".join(hyp[j1:j2])) for tag, i1, i2, j1, j2 in matcher.get_opcodes()
    ]


def _line_words(lyrics: str) -> tuple[list[str], list[str], list[int]]:
    """Non-empty lyrics lines, their normalised words in one sequence, and each word's line index."""
    lines = [line.strip() for line in lyrics.splitlines() if normalise_words(line)]
    ref: list[str] = []
    owner: list[int] = []
    for index, line in enumerate(lines):
        words = normalise_words(line)
        ref += words
        owner += [index] * len(words)
    return lines, ref, owner


def line_matches(lyrics: str, hyp: list[str]) -> list[dict]:
    """For each lyrics line, the share of its words found, in order, in the transcript."""
    lines, ref, owner = _line_words(lyrics)
    matched = Counter()
    for block in SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks():
        for i in range(block.a, block.a + block.size):
            matched[owner[i]] += 1
    totals = Counter(owner)
    return [{"line": line, "matched": round(matched[i] / totals[i], 3)} for i, line in enumerate(lines)]


def reasons_for(lyrics: str, transcript: str, ops: list[Op], lines: list[dict]) -> list[str]:
    reasons: list[str] = []
    ref, hyp = normalise_words(lyrics), normalise_words(transcript)
    if ref and not hyp:
        return ["no vocals were transcribed: an instrumental recording, or vocals buried in the mix"]
    seen: Counter = Counter()
    repeats_missed = 0
    for entry in lines:
        key = " ".join(normalise_words(entry["line"]))
        seen[key] += 1
        if seen[key] > 1 and entry["matched"] < 0.3:
            repeats_missed += 1
    if repeats_missed:
        reasons.append(
            f"repeated lines not transcribed ({repeats_missed}): a chorus sung again, or faded out"
        )
    backing = [m.group(1) for m in re.finditer(r"\(([^)]{2,80})\)", lyrics)]
    dropped = " | ".join(op.lyrics for op in ops if op.kind in ("delete", "replace"))
    missing_backing = [b for b in backing if " ".join(normalise_words(b)) in dropped]
    if missing_backing:
        reasons.append(f"backing vocals in parentheses not transcribed ({len(missing_backing)})")
    misheard = [
        f"'{op.lyrics}' heard as '{op.transcript}'"
        for op in ops
        if op.kind == "replace" and SequenceMatcher(a=op.lyrics, b=op.transcript).ratio() >= 0.5
        and len(op.lyrics.split()) <= 4
    ]  # fmt: skip
    if misheard:
        reasons.append("likely mishearings: " + "; ".join(misheard[:5]))
    inserted = sum(len(op.transcript.split()) for op in ops if op.kind == "insert")
    if hyp and inserted / len(hyp) > 0.2:
        reasons.append(
            "the transcript has words the lyrics do not: ad-libs, backing vocals, or misrecognised music"
        )
    deleted = sum(len(op.lyrics.split()) for op in ops if op.kind == "delete")
    if ref and deleted / len(ref) > 0.3 and not repeats_missed:
        reasons.append("long lyric passages were not transcribed: quiet or heavily processed vocals")
    return reasons


def compare(lyrics: str, transcript: str) -> Comparison:
    ref, hyp = normalise_words(lyrics), normalise_words(transcript)
    ops = align(ref, hyp)
    matches = sum(b.size for b in SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks())
    similarity = 100.0 * 2 * matches / (len(ref) + len(hyp)) if (ref or hyp) else 100.0
    wer = edit_distance(ref, hyp) / len(ref) if ref else (0.0 if not hyp else 1.0)
    lines = line_matches(lyrics, hyp)
    return Comparison(
        wer=round(wer, 4),
        cer=round(char_error_rate(" ".join(ref), " ".join(hyp)), 4),
        similarity=round(similarity, 2),
        alignment=ops,
        line_matches=lines,
        reasons=reasons_for(lyrics, transcript, ops, lines),
    )


def timed_words(words: Sequence[tuple[Any, ...]]) -> list[TimedWord]:
    """Transcript words (start, end, word[, probability]) normalised like the lyrics; a word that
    normalises to several (can't -> can not) shares its time span evenly."""
    out: list[TimedWord] = []
    for item in words:
        start, end, word = float(item[0]), float(item[1]), str(item[2])
        probability = float(item[3]) if len(item) > 3 and item[3] is not None else 1.0
        pieces = normalise_words(word)
        step = max(0.0, end - start) / len(pieces) if pieces else 0.0
        for k, piece in enumerate(pieces):
            out.append(TimedWord(start + k * step, start + (k + 1) * step, piece, probability))
    return out


def sync_lyrics(
    lyrics: str, words: Sequence[tuple[Any, ...]], segment_starts: Sequence[float] | None = None
) -> list[LineTiming]:
    """Each non-empty lyrics line with its start time, method and confidence (see music_core.lyrics_sync)."""
    lines = [line.strip() for line in lyrics.splitlines() if normalise_words(line)]
    line_words = [normalise_words(line) for line in lines]
    return sync_line_timings(lines, line_words, timed_words(words), list(segment_starts or []))


def sync_lines(lyrics: str, words: Sequence[tuple[Any, ...]]) -> list[tuple[float, str]]:
    """Start time of each lyrics line from the transcript's word timestamps (LRC-ready); times never go
    backwards. Lines nothing anchors are estimated (see sync_lyrics for which)."""
    return [(t.start, t.line) for t in sync_lyrics(lyrics, words)]
