-- Library pages sorted by any column come from an index instead of sorting every track.
-- NOT NULL columns: one index serves both directions. Nullable ones list unknown values last in
-- either direction, which takes one index per direction.
CREATE INDEX idx_music_files_sort_filename ON music_files (lower(original_filename), seq);
CREATE INDEX idx_music_files_sort_size ON music_files (file_size, seq);
CREATE INDEX idx_music_files_sort_uploaded ON music_files (uploaded_at, seq);
CREATE INDEX idx_music_files_sort_duration ON music_files (duration, seq);
CREATE INDEX idx_music_files_sort_duration_desc ON music_files (duration DESC NULLS LAST, seq DESC);
CREATE INDEX idx_music_files_sort_genre ON music_files (lower(genre), seq);
CREATE INDEX idx_music_files_sort_genre_desc ON music_files (lower(genre) DESC NULLS LAST, seq DESC);
