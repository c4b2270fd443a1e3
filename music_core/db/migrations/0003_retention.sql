-- Retention and cleanup. A removal is recorded as an intent before anything is deleted, so a crash
-- midway is finished by the next run instead of leaving a row that points to a missing object.
CREATE TABLE removal_intents (
    file_id    CHAR(64) PRIMARY KEY,
    actions    JSONB NOT NULL,
    object_keys JSONB NOT NULL DEFAULT '[]'::jsonb,
    bytes      BIGINT NOT NULL DEFAULT 0,
    reason     TEXT NOT NULL,
    requested_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- When retention removed the original but kept the row (and its analysis).
ALTER TABLE music_files ADD COLUMN original_removed_at TIMESTAMPTZ;

CREATE INDEX idx_cleanup_log_performed_at ON cleanup_log (performed_at);
CREATE INDEX idx_file_aliases_last_seen ON file_aliases (file_id, last_seen_at);
