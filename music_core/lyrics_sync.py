"""Synced lyrics: the start time of each official lyrics line, from the transcript's word timestamps.

1. Monotonic alignment by dynamic programming over lyrics words x transcript words: a weighted longest
   common subsequence where a pair scores its character/phonetic similarity, cubed (so "clubs" heard as
   "cloves" still anchors its line, but near-misses do not outweigh exact words), times 0.5-1 by the
   recogniser's word probability. Above MAX_CELLS pairs only exact matches are aligned (difflib).
2. A line's matches are split where two of them are too far apart in time for the lyrics between them,
   or too close for the many lyrics words skipped between them; the best run anchors the line, and only
   if its similarity x probability adds up to MIN_ANCHOR. The line starts at its first matched word,
   extended back over unmatched transcript words right before it (the misheard start of the same
   line). Whisper's DTW timestamps give the first word after a pause the whole pause ("four" from 0.0
   to 2.7 s), so a word's start is taken no earlier than its end minus a plausible duration.
3. Lines with no anchor are "estimated": placed on unmatched transcript words in their gap (preferring
   segment starts; words sharing a segment with an anchored neighbour are that neighbour misheard),
   else interpolated between their anchored neighbours, never before the previous line has ended
   (its unheard last words included) and never backwards in time.

Each line carries its method (matched | heard | interpolated) and a confidence in 0..1: for matched
lines, the sum over the line's matched words of similarity x word probability divided by the line's
word count; 0.2 x the probability of the word it was placed on for heard lines; 0 for interpolated ones.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import accumulate

MIN_SIMILARITY = 0.6  # below this two words are not the same word
MIN_ANCHOR = 0.1  # a line is anchored by matches whose similarity x probability add up to this
MAX_CELLS = 4_000_000  # lyrics x transcript words; above this only exact matches are aligned (difflib)
SECONDS_PER_MISSING_WORD = 0.3  # a line's leading lyrics words that nothing in the transcript matched
MAX_PAUSE_IN_LINE = 2.0  # seconds between two consecutive sung words of one line
MIN_SKIPPED_WORDS = 8  # lyrics words skipped between two matches of a line before their time is checked
MIN_SECONDS_PER_WORD = 0.1  # nobody sings faster
MAX_MISSING_LEAD = 1.5  # seconds: more unheard leading words than this are not guessed at
SEGMENT_TOLERANCE = 0.05  # a word starting this close to a segment start begins that segment
HEARD_CONFIDENCE = 0.2  # at most, for a line placed on words that did not match it


@dataclass(frozen=True)
class TimedWord:
    start: float
    end: float
    word: str  # normalised
    probability: float = 1.0


@dataclass(frozen=True)
class LineTiming:
    start: float
    line: str
    method: str  # matched | heard | interpolated
    confidence: float
    matched_words: int
    words: int

    @property
    def estimated(self) -> bool:
        return self.method != "matched"

    def as_dict(self) -> dict:
        return {**asdict(self), "start": round(self.start, 3), "estimated": self.estimated}


def max_word_seconds(word: str) -> float:
    """A generous duration for one spoken or sung word: longer only when a pause was folded into it."""
    return 0.4 + 0.08 * len(word)


def word_onset(word: TimedWord) -> float:
    return max(word.start, word.end - max_word_seconds(word.word))


_PHONETIC = str.maketrans({"c": "k", "q": "k", "z": "s", "v": "b", "f": "b", "p": "b", "d": "t", "g": "k"})


def phonetic_key(word: str) -> str:
    """A rough sound key: first letter, then consonant classes without vowels or repeats."""
    w = word.replace("ph", "f").replace("ck", "k").replace("th", "t").replace("sh", "s")
    w = w.replace("ce", "se").replace("ci", "si").replace("cy", "sy")  # a soft c
    if not w:
        return ""
    rest = [ch for ch in w[1:].translate(_PHONETIC) if ch not in "aeiouyhw'"]
    key = [w[0].translate(_PHONETIC)]
    for ch in rest:
        if ch != key[-1]:
            key.append(ch)
    return "".join(key)


@lru_cache(maxsize=65_536)
def word_similarity(a: str, b: str) -> float:
    """1 for the same word, else the better of character similarity and 0.9 x sound-key similarity;
    words of one or two letters must match exactly (a, i, to and so on are too easy to confuse)."""
    if a == b:
        return 1.0
    if min(len(a), len(b)) <= 2:
        return 0.0
    chars = SequenceMatcher(a=a, b=b, autojunk=False).ratio()
    ka, kb = phonetic_key(a), phonetic_key(b)
    sound = SequenceMatcher(a=ka, b=kb, autojunk=False).ratio() if len(ka) > 1 and len(kb) > 1 else 0.0
    return max(chars, 0.9 * sound)


def _pair_score(ref: str, hyp: TimedWord) -> float:
    """Similarity cubed (two near-misses must not outweigh one exact word, or fuzzy matches pull the
    alignment far along the lyrics), times 0.5-1 by the recogniser's word probability."""
    sim = word_similarity(ref, hyp.word)
    return sim**3 * (0.5 + 0.5 * hyp.probability) if sim >= MIN_SIMILARITY else 0.0


def align_words(ref: list[str], hyp: list[TimedWord]) -> list[tuple[int, int, float]]:
    """Monotonic (ref index, hyp index, similarity) pairs maximising the summed pair scores."""
    n, m = len(ref), len(hyp)
    if n == 0 or m == 0:
        return []
    if n * m > MAX_CELLS:
        blocks = SequenceMatcher(a=ref, b=[h.word for h in hyp], autojunk=False).get_matching_blocks()
        return [(b.a + k, b.b + k, 1.0) for b in blocks for k in range(b.size)]
    positions: dict[str, list[int]] = {}
    for j, h in enumerate(hyp, start=1):
        positions.setdefault(h.word, []).append(j)
    pair_of: dict[str, dict[int, float]] = {}  # lyrics word -> {hyp position (1-based): pair score}
    for r in set(ref):
        pair_of[r] = {
            j: _pair_score(r, hyp[j - 1])
            for word, js in positions.items()
            if word_similarity(r, word) >= MIN_SIMILARITY
            for j in js
        }
    score = [[0.0] * (m + 1)]
    for r in ref:  # row[j] = max(row[j-1], above[j], above[j-1] + pair): a running max (C speed)
        above = score[-1]
        base = above[:]
        for j, pair in pair_of[r].items():
            if above[j - 1] + pair > base[j]:
                base[j] = above[j - 1] + pair
        score.append(list(accumulate(base, max)))
    pairs: list[tuple[int, int, float]] = []
    i, j = n, m
    while i > 0 and j > 0:  # ties go to the earlier lyrics word: a line's unheard words follow it
        pair = pair_of[ref[i - 1]].get(j, 0.0)
        if score[i - 1][j] >= score[i][j]:
            i -= 1
        elif pair > 0.0 and abs(score[i][j] - (score[i - 1][j - 1] + pair)) < 1e-9:
            pairs.append((i - 1, j - 1, word_similarity(ref[i - 1], hyp[j - 1].word)))
            i, j = i - 1, j - 1
        elif score[i - 1][j] >= score[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass
class _Anchor:
    first_hyp: int  # the transcript word the line starts on
    last_hyp: int  # the line's last matched transcript word
    start: float
    end: float
    confidence: float
    matched: int
    tail: int  # lyrics words of the line after its last match


def _word_end(word: TimedWord) -> float:
    return min(word.end, word.start + max_word_seconds(word.word))


def _main_cluster(
    matches: list[tuple[int, int, float]], hyp: list[TimedWord], position: list[int]
) -> list[tuple[int, int, float]]:
    """A line's matches split where consecutive ones are further apart in time than the lyrics words
    between them could take, or so close that the many lyrics words skipped between them could not
    have been sung; the best-scoring run is kept (a stray "to" heard seconds before the line is sung
    does not anchor it, nor does "in the cold" matched 50 words further on)."""
    runs = [[matches[0]]]
    for prev, cur in zip(matches, matches[1:], strict=False):
        a, b = hyp[prev[1]], hyp[cur[1]]
        between = position[cur[0]] - position[prev[0]] - 1
        unheard = between - (cur[1] - prev[1] - 1)  # lyrics words skipped with no transcript word
        # raw times: Whisper stretches words over pauses, so only a gap it left is surely a pause
        too_far = b.start - a.end > MAX_PAUSE_IN_LINE + between * SECONDS_PER_MISSING_WORD
        too_near = unheard >= MIN_SKIPPED_WORDS and b.end - a.start < unheard * MIN_SECONDS_PER_WORD
        if too_far or too_near:
            runs.append([])
        runs[-1].append(cur)
    return max(runs, key=lambda run: sum(sim * (0.5 + 0.5 * hyp[h].probability) for _, h, sim in run))


def _anchors(
    line_words: list[list[str]], hyp: list[TimedWord], pairs: list[tuple[int, int, float]]
) -> dict[int, _Anchor]:
    owner = [li for li, words in enumerate(line_words) for _ in words]
    position = [k for words in line_words for k in range(len(words))]
    by_line: dict[int, list[tuple[int, int, float]]] = {}
    for r, h, sim in pairs:
        by_line.setdefault(owner[r], []).append((r, h, sim))
    by_line = {li: _main_cluster(matches, hyp, position) for li, matches in by_line.items()}
    by_line = {  # a lone, barely heard match (a "to" at p=0.06) is no evidence of where a line is
        li: matches
        for li, matches in by_line.items()
        if sum(sim * hyp[h].probability for _, h, sim in matches) >= MIN_ANCHOR
    }
    used = {h for matches in by_line.values() for _, h, _ in matches}
    anchors: dict[int, _Anchor] = {}
    previous_last = -1
    for li in sorted(by_line):
        matches = by_line[li]
        r0, h0, _ = matches[0]
        lead = position[r0]  # lyrics words of this line before its first match
        first = h0
        while lead > 0 and first - 1 > previous_last and first - 1 not in used:
            if hyp[first].start - hyp[first - 1].end > MAX_PAUSE_IN_LINE:
                break  # a word heard long before is not this line's start
            first, lead = first - 1, lead - 1
        start = word_onset(hyp[first]) - min(lead * SECONDS_PER_MISSING_WORD, MAX_MISSING_LEAD)
        if anchors:
            start = max(start, anchors[max(anchors)].end)
        last = matches[-1][1]
        end = _word_end(hyp[last])
        confidence = sum(sim * hyp[h].probability for _, h, sim in matches) / len(line_words[li])
        tail = len(line_words[li]) - 1 - position[matches[-1][0]]
        anchors[li] = _Anchor(first, last, start, end, round(min(1.0, confidence), 3), len(matches), tail)
        previous_last = last
    return anchors


def _segment_of(word: TimedWord, segment_starts: list[float]) -> int:
    return bisect_left(segment_starts, word.start + SEGMENT_TOLERANCE) - 1


def _gap_words(
    hyp: list[TimedWord], after: int, before: int, skip_tail: int, segment_starts: list[float]
) -> tuple[list[int], set[int]]:
    """Transcript words strictly between two anchored lines that no line claimed, and which of them
    begin a segment. With segments known, words in the same segment as a neighbouring anchored line
    are left out: they are most likely that line misheard, not a line of their own."""
    indices = list(range(after + 1 + skip_tail, before))
    if segment_starts:
        taken = {_segment_of(hyp[h], segment_starts) for h in (after, before) if 0 <= h < len(hyp)}
        indices = [h for h in indices if _segment_of(hyp[h], segment_starts) not in taken]
    starts = set()
    for h in indices:
        k = bisect_left(segment_starts, hyp[h].start - SEGMENT_TOLERANCE)
        if k < len(segment_starts) and abs(segment_starts[k] - hyp[h].start) <= SEGMENT_TOLERANCE:
            starts.add(h)
    return indices, starts


def _place_heard(counts: list[int], gap: list[int], segment_begins: set[int]) -> list[int | None]:
    """A transcript word for each unanchored line, proportionally to the lines' word counts and snapped
    to a nearby segment start; None where there are fewer words than lines."""
    if not gap:
        return [None] * len(counts)
    if len(gap) < len(counts):
        return [gap[0]] + [None] * (len(counts) - 1)
    total = sum(counts) or 1
    chosen: list[int | None] = []
    done = 0
    floor = 0
    for c in counts:
        k = max(floor, min(len(gap) - 1, round(done / total * len(gap))))
        near = [j for j in range(max(floor, k - 2), min(len(gap), k + 3)) if gap[j] in segment_begins]
        if near:
            k = min(near, key=lambda j: abs(j - k))
        chosen.append(gap[k])
        floor = k + 1
        done += c
        if floor >= len(gap):
            chosen += [None] * (len(counts) - len(chosen))
            break
    return chosen


def sync_line_timings(
    lines: list[str],
    line_words: list[list[str]],
    hyp: list[TimedWord],
    segment_starts: list[float] | None = None,
) -> list[LineTiming]:
    pairs = align_words([w for words in line_words for w in words], hyp)
    anchors = _anchors(line_words, hyp, pairs)
    seg = sorted(segment_starts or [])
    end_time = hyp[-1].end if hyp else 0.0
    starts: list[float | None] = [a.start if (a := anchors.get(i)) else None for i in range(len(lines))]
    methods = ["matched" if i in anchors else "interpolated" for i in range(len(lines))]
    confidence = [anchors[i].confidence if i in anchors else 0.0 for i in range(len(lines))]
    # Runs of unanchored lines between anchored neighbours (or the ends of the song).
    i = 0
    while i < len(lines):
        if i in anchors:
            i += 1
            continue
        j = i
        while j < len(lines) and j not in anchors:
            j += 1
        prev = anchors.get(i - 1)
        nxt = anchors.get(j)
        after = prev.last_hyp if prev else -1
        before = nxt.first_hyp if nxt else len(hyp)
        tail = prev.tail if prev else 0  # the previous line's unmatched last words may follow it
        gap, begins = _gap_words(hyp, after, before, tail, seg)
        placed = _place_heard([len(line_words[k]) for k in range(i, j)], gap, begins)
        for k, h in zip(range(i, j), placed, strict=True):
            if h is not None:
                starts[k] = word_onset(hyp[h])
                methods[k] = "heard"
                confidence[k] = round(HEARD_CONFIDENCE * hyp[h].probability, 3)
        _interpolate(starts, i, j, prev.start if prev else None, nxt.start if nxt else None, end_time)
        # not before the previous line is over, its unheard last words included
        floor = prev.end + prev.tail * SECONDS_PER_MISSING_WORD if prev else 0.0
        if nxt:
            floor = min(floor, nxt.start)
        for k in range(i, j):
            if methods[k] == "interpolated":
                starts[k] = max(starts[k], floor)  # type: ignore[type-var]
        i = j
    out: list[LineTiming] = []
    last = 0.0
    for k, line in enumerate(lines):
        value = max(float(starts[k] or 0.0), last, 0.0)
        last = value
        matched = anchors[k].matched if k in anchors else 0
        out.append(LineTiming(value, line, methods[k], confidence[k], matched, len(line_words[k])))
    return out


def _interpolate(
    starts: list[float | None], i: int, j: int, before: float | None, after: float | None, end: float
) -> None:
    """Fill None in starts[i:j] evenly between the known times around them (by line index)."""
    left_index, left = i - 1, before if before is not None else 0.0
    k = i
    while k < j:
        if starts[k] is not None:
            left_index, left = k, float(starts[k])  # type: ignore[arg-type]
            k += 1
            continue
        m = k
        while m < j and starts[m] is None:
            m += 1
        right_index = m
        right = float(starts[m]) if m < j else (after if after is not None else max(end, left))  # type: ignore[arg-type]
        for n in range(k, m):
            starts[n] = left + (right - left) * (n - left_index) / (right_index - left_index)
        k = m


def timing_difference(
    ours: list[tuple[float, str]], reference: list[tuple[float, str]], key: Callable[[str], str]
) -> dict | None:
    """How far our line starts are from a reference LRC (LRCLIB's, a sidecar's): lines are paired by
    their normalised text in order (a chorus the reference repeats with several time tags, or lines only
    one side has, do not shift every later pair), then |ours - theirs| per pair. ``mean_signed_s`` > 0
    means ours are late. None when no line pairs up."""
    a, b = [key(line) for _, line in ours], [key(line) for _, line in reference]
    pairs = [
        (ours[m.a + k][0], reference[m.b + k][0])
        for m in SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
        for k in range(m.size)
        if a[m.a + k]
    ]
    if not pairs:
        return None
    diffs = sorted(abs(x - y) for x, y in pairs)
    return {
        "lines": len(pairs),
        "our_lines": len(ours),
        "reference_lines": len(reference),
        "median_s": round(statistics.median(diffs), 3),
        "p90_s": round(diffs[int(0.9 * (len(diffs) - 1))], 3),
        "max_s": round(diffs[-1], 3),
        "mean_signed_s": round(statistics.mean(x - y for x, y in pairs), 3),
        "within_0_5_s": round(sum(d <= 0.5 for d in diffs) / len(diffs), 3),
    }
