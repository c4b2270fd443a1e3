-- Full-text search over the official lyrics too (stemmed English, like transcripts).
ALTER TABLE lyrics
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', coalesce(lyrics_text, ''))) STORED;
CREATE INDEX idx_lyrics_search ON lyrics USING gin (search_tsv);
-- Search ranks only the newest transcription of a track.
CREATE INDEX idx_transcriptions_file_created ON transcriptions (file_id, created_at DESC);
