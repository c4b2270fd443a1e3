"""Probe and conversion on real files in every format users bring, and on bad ones."""

from __future__ import annotations

import base64
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from mutagen.flac import FLAC

from music_core.audio import convert
from music_core.audio.convert import TARGET_RATE, convert_to_mono_16k
from music_core.audio.errors import AudioError
from music_core.audio.probe import probe
from tests import media

ALL_FORMATS = sorted(media.AUDIO_FORMATS) + sorted(media.VIDEO_FORMATS)
SPEECH_SECONDS = 11.0


@pytest.fixture(scope="module")
def encoded(media_dir: Path) -> dict[str, Path]:
    return {ext: media.encode(media_dir / f"speech.{ext}") for ext in ALL_FORMATS}


@pytest.fixture(scope="module")
def bad(media_dir: Path) -> dict[str, Path]:
    return media.bad_inputs(media_dir / "bad")


def fingerprint_values(fp: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(fp), dtype="<u4")


def bit_error_rate(a: str, b: str) -> float:
    x, y = fingerprint_values(a), fingerprint_values(b)
    n = min(len(x), len(y))
    diff = np.bitwise_xor(x[:n], y[:n])
    return float(np.unpackbits(diff.view(np.uint8)).sum()) / (n * 32)


@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_probe_reads_every_format(encoded: dict[str, Path], ext: str) -> None:
    facts = probe(str(encoded[ext]))
    assert facts.duration == pytest.approx(SPEECH_SECONDS, abs=0.15)
    assert facts.sample_rate > 0 and facts.channels >= 1
    assert facts.has_video is (ext in media.VIDEO_FORMATS)


@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_conversion_is_16k_mono_flac_of_the_same_length(
    encoded: dict[str, Path], ext: str, tmp_path: Path
) -> None:
    result = convert_to_mono_16k(str(encoded[ext]), tmp_path)
    info = FLAC(result.path).info
    assert (info.sample_rate, info.channels) == (TARGET_RATE, 1)
    # One fixed block size within the FLAC subset, whatever frame size the source's decoder has.
    assert (info.min_blocksize, info.max_blocksize) == (convert.FLAC_BLOCK_SAMPLES,) * 2
    assert result.duration == pytest.approx(SPEECH_SECONDS, abs=0.1)
    assert result.fingerprint


def test_the_fingerprint_covers_the_first_two_minutes_and_the_flac_all_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    song = tmp_path / "long.ogg"
    media.ffmpeg(
        "-stream_loop", "-1", "-i", str(media.SPEECH_WAV), "-t", "150", "-c:a", "libvorbis", str(song)
    )
    (tmp_path / "short").mkdir()
    (tmp_path / "whole").mkdir()
    result = convert_to_mono_16k(str(song), tmp_path / "short")
    covered = convert.FINGERPRINT_SECONDS
    monkeypatch.setattr(convert, "FINGERPRINT_SECONDS", 10_000)
    whole = convert_to_mono_16k(str(song), tmp_path / "whole")

    assert result.duration == pytest.approx(150, abs=0.1) == whole.duration
    assert result.fingerprint and whole.fingerprint
    short, full = fingerprint_values(result.fingerprint), fingerprint_values(whole.fingerprint)
    item_seconds = 1365 / 11025  # Chromaprint's hop at its 11025 Hz working rate
    assert covered == 120
    assert len(short) == pytest.approx(covered / item_seconds, rel=0.03)
    assert len(full) == pytest.approx(150 / item_seconds, rel=0.03)
    # The same values as the first two minutes of the whole file's fingerprint (bar the last few,
    # which Chromaprint computes at the edge of its window).
    assert np.array_equal(short[:-16], full[: len(short) - 16])


def test_fingerprints_match_across_encodings_and_differ_for_other_audio(
    encoded: dict[str, Path], tmp_path: Path
) -> None:
    fps = {}
    for ext in ("wav", "mp3", "opus"):
        work = tmp_path / ext
        work.mkdir()
        fps[ext] = convert_to_mono_16k(str(encoded[ext]), work).fingerprint
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = convert_to_mono_16k(str(media.DEMO / "librivox_0870.wav"), other_dir).fingerprint
    assert bit_error_rate(fps["wav"], fps["mp3"]) < 0.1
    assert bit_error_rate(fps["wav"], fps["opus"]) < 0.1
    assert bit_error_rate(fps["wav"], other) > 0.3


def test_tags_are_read(tmp_path: Path) -> None:
    path = media.encode(
        tmp_path / "tagged.mp3",
        extra=("-metadata", "title=Ask Not", "-metadata", "artist=JFK", "-metadata", "genre=Speech",
               "-metadata", "date=1961", "-metadata", "album=Inaugural"),
    )  # fmt: skip
    facts = probe(str(path))
    assert (facts.title, facts.artist, facts.genre, facts.year, facts.album) == (
        "Ask Not", "JFK", "Speech", 1961, "Inaugural",
    )  # fmt: skip


def test_tags_that_are_not_utf8_are_read_as_windows_1252(tmp_path: Path) -> None:
    """A WAV whose LIST/INFO title was written by a Windows tool: "café" in Windows-1252."""
    with wave.open(str(tmp_path / "plain.wav"), "wb") as plain:
        plain.setnchannels(1), plain.setsampwidth(2), plain.setframerate(16_000)
        plain.writeframes(b"\x00\x01" * 16_000)
    wav = (tmp_path / "plain.wav").read_bytes()
    title = b"caf\xe9 \x93quoted\x94\x00"  # NUL-terminated, padded to an even length below
    info = b"INFO" + b"INAM" + struct.pack("<I", len(title)) + title + b"\x00" * (len(title) % 2)
    body = wav[12:] + b"LIST" + struct.pack("<I", len(info)) + info
    (tmp_path / "latin.wav").write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)

    facts = probe(str(tmp_path / "latin.wav"))
    assert facts.title == "café \u201cquoted\u201d"
    assert facts.duration == pytest.approx(1.0, abs=0.05)


def test_embedded_lyrics_are_read_from_flac(tmp_path: Path) -> None:
    path = media.encode(tmp_path / "lyrics.flac", extra=("-metadata", "LYRICS=ask not what your country"))
    assert probe(str(path)).lyrics == "ask not what your country"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "not a readable"),
        ("text_as_mp3", "not a readable"),
        ("png_as_flac", "no audio stream"),
        ("video_only", "no audio stream"),
    ],
)
def test_bad_files_give_one_line_reasons(bad: dict[str, Path], name: str, reason: str) -> None:
    with pytest.raises(AudioError) as err:
        probe(str(bad[name]))
    assert reason in str(err.value)
    assert "\n" not in str(err.value)


def test_conversion_of_unreadable_input_fails_with_a_reason(bad: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="conversion failed"):
        convert_to_mono_16k(str(bad["text_as_mp3"]), tmp_path)


def test_truncated_mp3_converts_what_is_there(bad: dict[str, Path], tmp_path: Path) -> None:
    result = convert_to_mono_16k(str(bad["truncated"]), tmp_path)
    assert 0 < result.duration < SPEECH_SECONDS * 0.6
