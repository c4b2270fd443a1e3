"""Queries for lyrics and comparisons."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from music_core.compare import Comparison
from music_core.lyrics.acceptance import looks_like_junk
from music_core.lyrics.extract import clean_text
from music_core.lyrics.lrc import looks_like_lrc, plain_from_lrc
from music_core.lyrics.types import Lyrics, LyricsQuery

MAX_PINNED_CHARS = 200_000


def lyrics_query(conn: Connection, track_id: str, snippet_words: int = 12) -> LyricsQuery:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT artist, title, album, duration, embedded_lyrics FROM music_files WHERE id = %s",
            (track_id,),
        ).fetchone()
        keys = [r["object_key"] for r in cur.execute(
            "SELECT object_key FROM file_aliases WHERE file_id = %s ORDER BY id", (track_id,)).fetchall()]  # fmt: skip
        text = cur.execute(
            "SELECT transcription_text FROM transcriptions WHERE file_id = %s AND NOT no_vocals"
            " ORDER BY created_at DESC LIMIT 1",
            (track_id,),
        ).fetchone()
    assert row is not None
    words = (text["transcription_text"] if text else "").split()
    middle = max(0, len(words) // 2 - snippet_words // 2)  # the middle is less likely an intro/ad-lib
    return LyricsQuery(
        track_id=track_id, artist=row["artist"], title=row["title"], album=row["album"], duration=row["duration"],
        embedded_lyrics=row["embedded_lyrics"], object_keys=tuple(keys),
        transcript_snippet=" ".join(words[middle : middle + snippet_words]) or None,
    )  # fmt: skip


def pinned_lyrics(conn: Connection, track_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, source FROM lyrics WHERE file_id = %s AND pinned ORDER BY fetched_at DESC LIMIT 1",
            (track_id,),
        ).fetchone()


def pinned_from(text: str, url: str | None = None) -> Lyrics:
    """A user's lyrics as a pinned record (LRC keeps its timing); ValueError for empty or junk text."""
    if len(text) > MAX_PINNED_CHARS:
        raise ValueError(f"pinned lyrics longer than {MAX_PINNED_CHARS} characters")
    raw = text.replace("\r\n", "\n").strip()
    if looks_like_lrc(raw):
        return Lyrics(
            "pinned", clean_text(plain_from_lrc(raw)), synced=raw + "\n", url=url, notes=("pinned",)
        )
    plain = clean_text(raw)
    if looks_like_junk(plain):
        raise ValueError("pinned lyrics are empty, too short, or a 'not available' notice")
    return Lyrics("pinned", plain, url=url, notes=("pinned",))


def pin_lyrics(conn: Connection, track_id: str, found: Lyrics) -> str:
    """Store the user's lyrics as the track's pinned record (replacing an older pin); it wins over providers."""
    conn.execute("DELETE FROM lyrics WHERE file_id = %s AND pinned", (track_id,))
    row = conn.execute(
        """
        INSERT INTO lyrics (file_id, source, lyrics_text, synced_lyrics, instrumental, url, confidence, pinned,
                            metadata)
        VALUES (%s, %s, %s, %s, %s, %s, %s, TRUE, %s) RETURNING id
        """,
        (track_id, found.source, found.text, found.synced, found.instrumental, found.url, 1.0,
         Jsonb({"notes": list(found.notes)})),
    ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


def unpin_lyrics(conn: Connection, track_id: str) -> bool:
    return conn.execute("DELETE FROM lyrics WHERE file_id = %s AND pinned", (track_id,)).rowcount > 0


def save_lyrics(conn: Connection, track_id: str, found: Lyrics, notes: list[str]) -> str:
    conn.execute("DELETE FROM lyrics WHERE file_id = %s AND NOT pinned", (track_id,))
    row = conn.execute(
        """
        INSERT INTO lyrics (file_id, source, lyrics_text, synced_lyrics, instrumental, artist, title, album, url,
                            confidence, metadata)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (track_id, found.source, found.text, found.synced, found.instrumental, found.artist, found.title,
         found.album, found.url, found.confidence, Jsonb({"notes": [*found.notes, *notes], "duration": found.duration})),
    ).fetchone()  # fmt: skip
    assert row is not None
    return str(row[0])


def clear_lyrics(conn: Connection, track_id: str) -> None:
    conn.execute("DELETE FROM lyrics WHERE file_id = %s AND NOT pinned", (track_id,))


def current_lyrics(conn: Connection, track_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT id, source, lyrics_text, synced_lyrics, instrumental FROM lyrics WHERE file_id = %s"
            " ORDER BY pinned DESC, fetched_at DESC LIMIT 1",
            (track_id,),
        ).fetchone()


def save_comparison(
    conn: Connection,
    track_id: str,
    lyrics_id: str,
    c: Comparison,
    lrc: str,
    timing: dict[str, Any] | None,
    llm_notes: str | None = None,
) -> None:
    conn.execute("DELETE FROM comparisons WHERE file_id = %s", (track_id,))
    conn.execute(
        """
        INSERT INTO comparisons (file_id, lyrics_id, wer, cer, similarity, alignment, reasons, synced_lrc, llm_notes)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        """,
        (track_id, lyrics_id, c.wer, c.cer, c.similarity,
         Jsonb({"ops": [op.__dict__ for op in c.alignment], "lines": c.line_matches, "lrc_timing": timing}),
         Jsonb(c.reasons), lrc, llm_notes),
    )  # fmt: skip
