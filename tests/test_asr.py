"""Transcription with the packaged Whisper tiny.en on real speech and on the inputs that trip ASR up."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from music_core.asr.backends import build_transcriber, describe_model
from music_core.asr.chunks import iter_chunks
from music_core.asr.runner import transcribe_source
from music_core.asr.whisper import FasterWhisperTranscriber
from music_core.audio.errors import AudioError
from music_core.text.metrics import word_error_rate
from tests import media

MANIFEST = {e["file"]: e for e in json.loads((media.DEMO / "manifest.json").read_text())}


@pytest.fixture(scope="module")
def whisper() -> FasterWhisperTranscriber:
    return FasterWhisperTranscriber(threads=2)


@pytest.mark.parametrize("name", ["jfk.wav", "librivox_0870.wav"])
def test_english_speech_is_transcribed_accurately(whisper: FasterWhisperTranscriber, name: str) -> None:
    result = transcribe_source(whisper, str(media.DEMO / name))
    assert word_error_rate(MANIFEST[name]["reference_text"], result.text) < 0.15
    assert not result.no_vocals and result.language == "en"
    assert result.confidence is not None and result.confidence > 0.6
    assert result.duration == pytest.approx(MANIFEST[name]["duration_s"], abs=0.05)
    assert result.real_time_factor is not None and result.real_time_factor > 0
    assert result.model_id == "faster-whisper:whisper-tiny.en"


def test_segments_and_words_are_timed_in_order(whisper: FasterWhisperTranscriber) -> None:
    result = transcribe_source(whisper, str(media.SPEECH_WAV))
    words = result.words
    assert len(words) >= 20
    assert all(0 <= w.start <= w.end <= result.duration + 0.1 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert all(s.start < s.end for s in result.segments)


def test_chunked_transcription_keeps_absolute_times(
    whisper: FasterWhisperTranscriber, tmp_path: Path
) -> None:
    """Two copies of the speech back to back, decoded in chunks as long as one copy."""
    twice = tmp_path / "twice.flac"
    media.ffmpeg("-i", str(media.SPEECH_WAV), "-i", str(media.SPEECH_WAV), "-filter_complex",
                 "[0:a][1:a]concat=n=2:v=0:a=1", "-ar", "16000", "-ac", "1", str(twice))  # fmt: skip
    result = transcribe_source(whisper, str(twice), chunk_seconds=11.0)
    second_half = [w for w in result.words if w.start >= 11.0]
    assert len(second_half) >= 15
    assert result.text.lower().count("country") >= 4
    assert result.duration == pytest.approx(22.0, abs=0.05)


def test_chunks_are_bounded_and_cover_the_file(tmp_path: Path) -> None:
    path = media.digital_silence(tmp_path / "s.flac", seconds=25)
    sizes = [c.shape[0] for c in iter_chunks(str(path), chunk_seconds=10)]
    assert sizes == [160_000, 160_000, 80_000]


def test_a_chunk_ends_in_the_pause_before_its_limit_not_across_a_word(tmp_path: Path) -> None:
    """Loud noise with one 0.4 s pause at 8.6-9.0 s: 10 s chunks end at 9.0 s, after the pause,
    instead of at 10 s in the middle of the sound; the chunks still make the whole file."""
    rng = np.random.default_rng(3)
    samples = (rng.uniform(-0.3, 0.3, 25 * 16_000) * 32767).astype(np.int16)
    samples[int(8.6 * 16_000) : 9 * 16_000] = 0
    path = tmp_path / "pause.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(samples.tobytes())
    chunks = list(iter_chunks(str(path), chunk_seconds=10))
    assert chunks[0].shape[0] == 9 * 16_000
    assert all(c.shape[0] <= 160_000 for c in chunks)
    whole = next(iter_chunks(str(path), chunk_seconds=100))
    assert np.array_equal(np.concatenate(chunks), whole) and whole.shape[0] == samples.size


@pytest.mark.parametrize("maker", [media.digital_silence, media.white_noise, media.instrumental])
def test_no_vocals_is_recorded_not_hallucinated(
    whisper: FasterWhisperTranscriber, tmp_path: Path, maker
) -> None:  # noqa: ANN001
    result = transcribe_source(whisper, str(maker(tmp_path / "x.flac")))
    assert result.no_vocals
    assert result.text == "" and result.segments == ()


def test_half_second_clip_is_handled(whisper: FasterWhisperTranscriber, tmp_path: Path) -> None:
    result = transcribe_source(whisper, str(media.clip(tmp_path / "short.flac", 0.5)))
    assert result.duration == pytest.approx(0.5, abs=0.02)
    assert len(result.text.split()) <= 3  # "And so," at most: nothing invented


def test_corrupt_audio_is_a_clear_error(whisper: FasterWhisperTranscriber, tmp_path: Path) -> None:
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"fLaC" + bytes(range(256)) * 40)
    with pytest.raises(AudioError):
        transcribe_source(whisper, str(bad))


def test_backends_by_name() -> None:
    with pytest.raises(ValueError, match="unknown ASR backend"):
        build_transcriber("nope", None)
    with pytest.raises(ValueError, match="needs MUSIC_ASR_MODEL"):
        build_transcriber("parakeet", None)
    described = describe_model("faster-whisper", None)
    assert described.startswith("faster-whisper:whisper-tiny.en:")
    assert describe_model("faster-whisper", None) == described  # stable: drives staleness in the UI
