-- Initial schema. A track is one unique audio content; its id is the SHA-256 of the bytes, which is
-- also its Dagster partition key, so registration is idempotent and deduplication is by construction.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE music_files (
    id                 CHAR(64) PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    seq                BIGSERIAL UNIQUE,
    original_filename  TEXT NOT NULL,
    storage_path       TEXT NOT NULL,
    file_size          BIGINT NOT NULL CHECK (file_size >= 0),
    content_type       TEXT,
    container          TEXT,
    codec              TEXT,
    duration           DOUBLE PRECISION,
    sample_rate        INTEGER,
    channels           INTEGER,
    bit_rate           BIGINT,
    artist             TEXT,
    title              TEXT,
    album              TEXT,
    genre              TEXT,
    year               INTEGER,
    embedded_lyrics    TEXT,
    converted_path     TEXT,
    converted_size     BIGINT,
    converted_duration DOUBLE PRECISION,
    uploaded_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata           JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_music_files_uploaded_at ON music_files (uploaded_at);
CREATE INDEX idx_music_files_genre ON music_files (genre);

-- Every name under which the same content was uploaded.
CREATE TABLE file_aliases (
    id            BIGSERIAL PRIMARY KEY,
    file_id       CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    original_name TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    folder        TEXT,
    upload_count  INTEGER NOT NULL DEFAULT 1,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (file_id, original_name)
);
CREATE INDEX idx_file_aliases_file ON file_aliases (file_id);

-- Per-track, per-stage state: what the Dagster UI shows as run metadata, queryable here.
CREATE TABLE track_stages (
    file_id    CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    stage      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
    error      TEXT,
    warnings   JSONB NOT NULL DEFAULT '[]'::jsonb,
    attempts   INTEGER NOT NULL DEFAULT 0,
    run_id     TEXT,
    details    JSONB NOT NULL DEFAULT '{}'::jsonb,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (file_id, stage)
);
CREATE INDEX idx_track_stages_status ON track_stages (stage, status);

CREATE TABLE fingerprints (
    file_id     CHAR(64) PRIMARY KEY REFERENCES music_files (id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE transcriptions (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id            CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    transcription_text TEXT,
    language           TEXT,
    confidence         DOUBLE PRECISION,
    no_vocals          BOOLEAN NOT NULL DEFAULT FALSE,
    processing_time    DOUBLE PRECISION,
    real_time_factor   DOUBLE PRECISION,
    model_id           TEXT NOT NULL,
    model_version      TEXT,
    segments           JSONB NOT NULL DEFAULT '[]'::jsonb,
    words              JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (file_id, model_id)
);

-- Vectors of any dimension: the column is untyped and each row records its model and dimension.
-- Per-model HNSW indexes are expression indexes on (embedding::vector(dim)) WHERE model_id = ...,
-- created when a model is first used, so switching models never mixes dimensions.
CREATE TABLE embeddings (
    id         BIGSERIAL PRIMARY KEY,
    file_id    CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    source     TEXT NOT NULL CHECK (source IN ('transcript', 'lyrics', 'title')),
    chunk      INTEGER NOT NULL DEFAULT 0,
    model_id   TEXT NOT NULL,
    dim        INTEGER NOT NULL CHECK (dim > 0),
    content    TEXT,
    embedding  vector NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (file_id, source, chunk, model_id),
    CHECK (vector_dims(embedding) = dim)
);

CREATE TABLE lyrics (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id       CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    source        TEXT NOT NULL,
    lyrics_text   TEXT,
    synced_lyrics TEXT,
    instrumental  BOOLEAN NOT NULL DEFAULT FALSE,
    artist        TEXT,
    title         TEXT,
    album         TEXT,
    url           TEXT,
    confidence    DOUBLE PRECISION,
    pinned        BOOLEAN NOT NULL DEFAULT FALSE,
    fetched_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    metadata      JSONB NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX idx_lyrics_file ON lyrics (file_id);

CREATE TABLE comparisons (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id      CHAR(64) NOT NULL REFERENCES music_files (id) ON DELETE CASCADE,
    lyrics_id    UUID REFERENCES lyrics (id) ON DELETE CASCADE,
    wer          DOUBLE PRECISION,
    cer          DOUBLE PRECISION,
    similarity   DOUBLE PRECISION CHECK (similarity BETWEEN 0 AND 100),
    alignment    JSONB NOT NULL DEFAULT '[]'::jsonb,
    reasons      JSONB NOT NULL DEFAULT '[]'::jsonb,
    synced_lrc   TEXT,
    llm_notes    TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_comparisons_file ON comparisons (file_id);

CREATE TABLE search_history (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    query      TEXT NOT NULL,
    mode       TEXT NOT NULL DEFAULT 'hybrid',
    results    JSONB,
    user_ip    VARCHAR(45),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_config (
    key        VARCHAR(100) PRIMARY KEY,
    value      TEXT,
    encrypted  BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE cleanup_log (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    action       VARCHAR(50) NOT NULL,
    dry_run      BOOLEAN NOT NULL DEFAULT TRUE,
    file_count   INTEGER,
    space_freed  BIGINT,
    details      JSONB,
    performed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    performed_by VARCHAR(255)
);

CREATE TABLE storage_stats (
    id            SERIAL PRIMARY KEY,
    stats_data    JSONB NOT NULL,
    calculated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
