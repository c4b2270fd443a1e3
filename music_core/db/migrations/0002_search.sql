-- Full-text search: stemmed English over transcripts, unstemmed ("simple") over names and tags.
ALTER TABLE transcriptions
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', coalesce(transcription_text, ''))) STORED;
CREATE INDEX idx_transcriptions_search ON transcriptions USING gin (search_tsv);

ALTER TABLE music_files
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (
        to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(artist, '') || ' ' || coalesce(album, '')
                              || ' ' || coalesce(genre, '') || ' ' || translate(original_filename, '_-./', '    '))
    ) STORED;
CREATE INDEX idx_music_files_search ON music_files USING gin (search_tsv);

CREATE INDEX idx_embeddings_file ON embeddings (file_id);
CREATE INDEX idx_search_history_created ON search_history (created_at);
