"""Queries for transcriptions and embeddings. Parameterised SQL; identifiers built with psycopg.sql."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from pgvector.psycopg import register_vector
from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from music_core.asr.types import Transcript


def save_transcription(conn: Connection, track_id: str, t: Transcript) -> None:
    conn.execute(
        """
        INSERT INTO transcriptions (file_id, transcription_text, language, confidence, no_vocals,
            processing_time, real_time_factor, model_id, model_version, segments, words)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (file_id, model_id) DO UPDATE SET
            transcription_text = EXCLUDED.transcription_text, language = EXCLUDED.language,
            confidence = EXCLUDED.confidence, no_vocals = EXCLUDED.no_vocals,
            processing_time = EXCLUDED.processing_time, real_time_factor = EXCLUDED.real_time_factor,
            model_version = EXCLUDED.model_version, segments = EXCLUDED.segments, words = EXCLUDED.words,
            created_at = now()
        """,
        (
            track_id, t.text, t.language, t.confidence, t.no_vocals, t.processing_time, t.real_time_factor,
            t.model_id, t.model_version, Jsonb(t.segments_json()), Jsonb(t.words_json()),
        ),
    )  # fmt: skip


def latest_transcript_text(conn: Connection, track_id: str) -> tuple[str, bool] | None:
    row = conn.execute(
        "SELECT transcription_text, no_vocals FROM transcriptions WHERE file_id = %s ORDER BY created_at DESC LIMIT 1",
        (track_id,),
    ).fetchone()
    return (row[0] or "", bool(row[1])) if row else None


def index_name(model_id: str) -> str:
    return "idx_embeddings_hnsw_" + hashlib.sha256(model_id.encode()).hexdigest()[:16]


def ensure_vector_index(conn: Connection, model_id: str, dim: int) -> None:
    """A per-model HNSW index over ``embedding::vector(dim)``: one table serves models of any size."""
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON embeddings USING hnsw ((embedding::vector({})) vector_cosine_ops) "
            "WHERE model_id = {}"
        ).format(sql.Identifier(index_name(model_id)), sql.Literal(int(dim)), sql.Literal(model_id))
    )


def replace_embeddings(
    conn: Connection, track_id: str, source: str, model_id: str, chunks: Sequence[str], vectors: np.ndarray
) -> int:
    """Replace this track's vectors for (source, model) in one transaction; returns rows written."""
    register_vector(conn)
    conn.execute(
        "DELETE FROM embeddings WHERE file_id = %s AND source = %s AND model_id = %s",
        (track_id, source, model_id),
    )
    dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO embeddings (file_id, source, chunk, model_id, dim, content, embedding)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (track_id, source, i, model_id, dim, text, vec)
                for i, (text, vec) in enumerate(zip(chunks, vectors, strict=True))
            ],
        )
    return len(chunks)


def embedding_ids(conn: Connection, model_id: str) -> np.ndarray:
    rows = conn.execute("SELECT id FROM embeddings WHERE model_id = %s ORDER BY id", (model_id,)).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


def embedding_vectors(conn: Connection, model_id: str, ids: Sequence[int], batch: int = 5000) -> np.ndarray:
    register_vector(conn)
    parts = []
    for start in range(0, len(ids), batch):
        chunk = list(map(int, ids[start : start + batch]))
        rows = conn.execute(
            "SELECT embedding FROM embeddings WHERE model_id = %s AND id = ANY(%s) ORDER BY id",
            (model_id, chunk),
        ).fetchall()
        parts.append(np.stack([_as_array(r[0]) for r in rows]) if rows else None)
    arrays = [p for p in parts if p is not None]
    return np.concatenate(arrays) if arrays else np.zeros((0, 0), dtype=np.float32)


def _as_array(value: object) -> np.ndarray:
    to_numpy = getattr(value, "to_numpy", None)  # pgvector's Vector wrapper
    return np.asarray(to_numpy() if to_numpy else value, dtype=np.float32)
