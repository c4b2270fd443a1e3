"""Library filters and sorting as parameterised SQL. Column names come from fixed whitelists only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query
from psycopg import sql


class SortKey(StrEnum):
    filename = "filename"
    size = "size"
    uploaded = "uploaded"
    genre = "genre"
    duration = "duration"
    transcribed = "transcribed"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


_SORT_SQL = {
    SortKey.filename: sql.SQL("lower(f.original_filename)"),
    SortKey.size: sql.SQL("f.file_size"),
    SortKey.uploaded: sql.SQL("f.uploaded_at"),
    SortKey.genre: sql.SQL("lower(f.genre)"),
    SortKey.duration: sql.SQL("f.duration"),
    SortKey.transcribed: sql.SQL("(SELECT max(t.created_at) FROM transcriptions t WHERE t.file_id = f.id)"),
}
_NOT_NULL_KEYS = {SortKey.filename, SortKey.size, SortKey.uploaded}
_ALPHABETICAL_KEYS = {SortKey.filename, SortKey.genre}
_HAS_TRANSCRIPT = "EXISTS (SELECT 1 FROM transcriptions t WHERE t.file_id = f.id AND NOT t.no_vocals)"
_HAS_LYRICS = "EXISTS (SELECT 1 FROM lyrics l WHERE l.file_id = f.id)"


@dataclass
class TrackFilter:
    q: Annotated[str | None, Query(max_length=200, description="words in name, title, artist, album")] = None
    genre: Annotated[list[str] | None, Query(max_length=50)] = None
    file_type: Annotated[list[str] | None, Query(max_length=50, description="extension: mp3, flac…")] = None
    has_transcription: bool | None = None
    has_lyrics: bool | None = None
    min_size: Annotated[int | None, Query(ge=0)] = None
    max_size: Annotated[int | None, Query(ge=0)] = None
    min_duration: Annotated[float | None, Query(ge=0)] = None
    max_duration: Annotated[float | None, Query(ge=0)] = None
    uploaded_after: dt.datetime | None = None
    uploaded_before: dt.datetime | None = None
    sort: SortKey = SortKey.uploaded
    order: Annotated[
        Order | None,
        Query(description="default: A to Z for filename and genre, largest/newest first otherwise"),
    ] = None

    def where(self) -> tuple[sql.Composable, list[Any]]:
        clauses: list[sql.Composable] = []
        params: list[Any] = []

        def add(fragment: str, *values: Any) -> None:
            clauses.append(sql.SQL(fragment))
            params.extend(values)

        if self.q:
            # Names, title, artist and album, without accents on either side (migration 0006). The
            # text is folded before its wildcards are escaped: a full-width "％" folds to "%".
            add(
                "f.search_names ILIKE ('%%' || replace(replace(replace(music_fold(%s),"
                " '\\', '\\\\'), '%%', '\\%%'), '_', '\\_') || '%%')",
                self.q,
            )
        if self.genre:
            add("lower(f.genre) = ANY(%s)", [g.lower() for g in self.genre])
        if self.file_type:
            add("lower(substring(f.original_filename from '\\.([^./]+)$')) = ANY(%s)",
                [t.lower().lstrip(".") for t in self.file_type])  # fmt: skip
        if self.has_transcription is not None:
            add(_HAS_TRANSCRIPT if self.has_transcription else f"NOT {_HAS_TRANSCRIPT}")
        if self.has_lyrics is not None:
            add(_HAS_LYRICS if self.has_lyrics else f"NOT {_HAS_LYRICS}")
        for column, low, high in (
            ("f.file_size", self.min_size, self.max_size),
            ("f.duration", self.min_duration, self.max_duration),
            ("f.uploaded_at", self.uploaded_after, self.uploaded_before),
        ):
            if low is not None:
                add(f"{column} >= %s", low)
            if high is not None:
                add(f"{column} <= %s", high)
        if not clauses:
            return sql.SQL("TRUE"), params
        return sql.SQL(" AND ").join(clauses), params

    def order_by(self) -> sql.Composable:
        """Unknown values last in either direction. The wording matches the sort indexes of
        migration 0005 (a NULLS clause on a NOT NULL column would keep PostgreSQL from using them)."""
        order = self.order or (Order.asc if self.sort in _ALPHABETICAL_KEYS else Order.desc)
        word = "ASC" if order is Order.asc else "DESC"
        nulls = "" if self.sort in _NOT_NULL_KEYS else " NULLS LAST"
        return sql.SQL("{} {}, f.seq {}").format(_SORT_SQL[self.sort], sql.SQL(word + nulls), sql.SQL(word))
