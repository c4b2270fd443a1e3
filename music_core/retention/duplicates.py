"""Duplicates: exact (same content under several names, already aliases by construction) and
perceptual (the same recording in other encodings), found by Chromaprint bit error rate.

Measured here (FACTS.md): the same audio as mp3/opus/16 kHz copies differs by a bit error rate of at
most 0.003; a different melody by 0.456. The default threshold 0.1 leaves a wide margin both ways.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from psycopg import Connection
from psycopg.rows import dict_row

DEFAULT_MAX_BIT_ERROR_RATE = 0.1
MAX_OFFSET = 3  # fingerprint items (~0.12 s each) of misalignment tried between two copies
MIN_OVERLAP = 16
LOSSLESS_CODECS = {"flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd"}


@dataclass(frozen=True)
class Copy:
    track_id: str
    filename: str
    codec: str | None
    bit_rate: int | None
    sample_rate: int | None
    channels: int | None
    file_size: int
    duration: float | None


@dataclass(frozen=True)
class DuplicateGroup:
    keep: Copy
    others: tuple[Copy, ...]
    max_bit_error_rate: float

    @property
    def reclaimable_bytes(self) -> int:
        return sum(c.file_size for c in self.others)


def decode_fingerprint(value: str) -> np.ndarray:
    raw = base64.b64decode(value)
    return np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<u4")


def bit_error_rate(a: np.ndarray, b: np.ndarray, max_offset: int = MAX_OFFSET) -> float:
    """Smallest fraction of differing bits over the overlap, trying small alignments."""
    best = 1.0
    for offset in range(-max_offset, max_offset + 1):
        x, y = (a[offset:], b) if offset >= 0 else (a, b[-offset:])
        n = min(len(x), len(y))
        if n < MIN_OVERLAP:
            continue
        diff = np.bitwise_xor(x[:n], y[:n])
        bits = int(np.unpackbits(diff.view(np.uint8)).sum())
        best = min(best, bits / (32 * n))
    return best


def quality_key(copy: Copy) -> tuple:
    """Higher is better: lossless first, then bit rate, sample rate, channels, size."""
    return (
        (copy.codec or "").lower() in LOSSLESS_CODECS or (copy.codec or "").startswith("pcm_"),
        copy.bit_rate or 0,
        copy.sample_rate or 0,
        copy.channels or 0,
        copy.file_size,
    )


def exact_duplicates(conn: Connection) -> list[dict]:
    """Content uploaded under several names: one track, several aliases (nothing to reclaim)."""
    rows = conn.execute(
        """
        SELECT f.id, array_agg(a.original_name ORDER BY a.id), sum(a.upload_count)
        FROM music_files f JOIN file_aliases a ON a.file_id = f.id
        GROUP BY f.id HAVING count(*) > 1 ORDER BY f.seq
        """
    ).fetchall()
    return [{"track_id": r[0], "names": list(r[1]), "uploads": int(r[2])} for r in rows]


def _load_copies(conn: Connection) -> list[tuple[Copy, np.ndarray]]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT f.id, f.original_filename, f.codec, f.bit_rate, f.sample_rate, f.channels, f.file_size,
                   COALESCE(f.converted_duration, f.duration) AS duration, p.fingerprint
            FROM music_files f JOIN fingerprints p ON p.file_id = f.id
            WHERE f.original_removed_at IS NULL
            ORDER BY duration NULLS LAST, f.seq
            """
        ).fetchall()
    copies = []
    for r in rows:
        fp = decode_fingerprint(r.pop("fingerprint"))
        if len(fp) >= MIN_OVERLAP:
            copies.append((Copy(r["id"], r["original_filename"], r["codec"], r["bit_rate"], r["sample_rate"],
                                r["channels"], r["file_size"], r["duration"]), fp))  # fmt: skip
    return copies


def perceptual_duplicates(
    conn: Connection, max_bit_error_rate: float = DEFAULT_MAX_BIT_ERROR_RATE, duration_tolerance: float = 0.05
) -> list[DuplicateGroup]:
    """Groups of tracks that are the same recording as the group's kept (best) copy: every other
    member is within the bit error rate and duration tolerance of that copy itself, not merely
    linked to it through a chain of similar tracks (A~B and B~C does not make C a copy of A)."""
    copies = _load_copies(conn)

    def close(i: int, j: int) -> float | None:
        (a, fa), (b, fb) = copies[i], copies[j]
        if a.duration is None or b.duration is None:
            return None
        if abs(b.duration - a.duration) > max(1.0, duration_tolerance * min(a.duration, b.duration)):
            return None
        ber = bit_error_rate(fa, fb)
        return ber if ber <= max_bit_error_rate else None

    result = []
    for component in _candidate_components(copies, close, duration_tolerance):
        remaining = sorted(component, key=lambda i: quality_key(copies[i][0]), reverse=True)
        while len(remaining) > 1:
            keep, rest = remaining[0], remaining[1:]
            near = {j: ber for j in rest if (ber := close(keep, j)) is not None}
            if near:
                others = tuple(copies[j][0] for j in rest if j in near)
                result.append(DuplicateGroup(copies[keep][0], others, max(near.values())))
            remaining = [j for j in rest if j not in near]
    return result


def _candidate_components(
    copies: list[tuple[Copy, np.ndarray]],
    close: Callable[[int, int], float | None],
    duration_tolerance: float,
) -> list[list[int]]:
    """Tracks linked by any close pair (sorted by duration, so each is compared only with tracks of
    similar length); each component is then split around its best copies."""
    parent = list(range(len(copies)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (a, _) in enumerate(copies):  # sorted by duration: stop once durations drift apart
        for j in range(i + 1, len(copies)):
            b = copies[j][0]
            if a.duration is None or b.duration is None:
                break
            if b.duration - a.duration > max(1.0, duration_tolerance * a.duration):
                break
            if close(i, j) is not None:
                parent[root(j)] = root(i)
    components: dict[int, list[int]] = {}
    for i in range(len(copies)):
        components.setdefault(root(i), []).append(i)
    return [members for members in components.values() if len(members) > 1]


def merge_aliases(conn: Connection, keep_id: str, other_ids: list[str]) -> int:
    """Every name of the other copies becomes an alias of the kept one (before the others go)."""
    cur = conn.execute(
        """
        INSERT INTO file_aliases (file_id, original_name, object_key, folder, upload_count, first_seen_at, last_seen_at)
        SELECT %s, original_name, object_key, folder, upload_count, first_seen_at, last_seen_at
        FROM file_aliases WHERE file_id = ANY(%s)
        ON CONFLICT (file_id, original_name) DO UPDATE
            SET upload_count = file_aliases.upload_count + EXCLUDED.upload_count
        """,
        (keep_id, other_ids),
    )
    return cur.rowcount
