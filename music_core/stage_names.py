"""The per-track stages, in order. No imports: the API and retention name stages without loading
the stage code (PyAV, FFmpeg helpers)."""

AUDIO_FILE = "audio_file"
CONVERTED_AUDIO = "converted_audio"
TRANSCRIPTION = "transcription"
EMBEDDING = "embedding"
LYRICS = "lyrics"
COMPARISON = "comparison"
STAGES = (AUDIO_FILE, CONVERTED_AUDIO, TRANSCRIPTION, EMBEDDING, LYRICS, COMPARISON)
