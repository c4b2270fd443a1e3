"""The Parakeet (transformers) backend through the same loading code users use, on tiny checkpoints
built from configs here (real Parakeet weights cannot be downloaded on these machines): CTC and TDT."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from music_core.asr.backends import build_transcriber
from music_core.asr.runner import transcribe_source
from tests import media
from tests.tiny_models import WORD, tiny_parakeet_ctc, tiny_parakeet_tdt, tiny_sentence_transformer


def test_random_checkpoint_runs_end_to_end(tmp_path: Path) -> None:
    model_dir, _ = tiny_parakeet_ctc(tmp_path / "parakeet-tiny")
    asr = build_transcriber("parakeet", str(model_dir), threads=1)
    result = transcribe_source(asr, str(media.SPEECH_WAV))
    assert result.model_id == "parakeet:parakeet-tiny"
    assert result.model_version != "unversioned"
    assert result.duration == pytest.approx(11.0, abs=0.05)
    assert result.text == " ".join(w.word for w in result.words)
    assert all(0 <= w.start < w.end <= 11.1 for w in result.words)


def test_ctc_repeats_merge_into_one_timed_word(tmp_path: Path) -> None:
    model_dir, piece = tiny_parakeet_ctc(tmp_path / "forced", force_token=WORD)
    assert piece
    asr = build_transcriber("parakeet", str(model_dir), threads=1)
    result = transcribe_source(asr, str(media.SPEECH_WAV))
    # Every frame emits the same piece: CTC collapses each 30 s window's run into one emission.
    assert result.text == piece.lstrip("▁")
    assert result.words[0].start == 0.0
    assert result.words[0].probability > 0.99


def test_all_blank_output_means_no_vocals(tmp_path: Path) -> None:
    model_dir, _ = tiny_parakeet_ctc(tmp_path / "blank", force_token="<pad>")
    result = transcribe_source(
        build_transcriber("parakeet", str(model_dir), threads=1), str(media.SPEECH_WAV)
    )
    assert result.no_vocals and result.text == ""


def test_other_checkpoints_are_refused(tmp_path: Path) -> None:
    other = tiny_sentence_transformer(tmp_path, dim=16) / "0_Transformer"
    if not other.exists():  # sentence-transformers layout differs between versions
        other = next(p for p in tmp_path.rglob("config.json")).parent
    with pytest.raises(ValueError, match="unsupported Parakeet checkpoint"):
        build_transcriber("parakeet", str(other), threads=1)


# --- TDT (token-and-duration transducer) -------------------------------------------------------


def test_tdt_checkpoint_is_recognised_from_its_config_and_runs_end_to_end(tmp_path: Path) -> None:
    model_dir, _ = tiny_parakeet_tdt(tmp_path / "parakeet-tdt-tiny")
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == "parakeet_tdt"
    asr = build_transcriber("parakeet", str(model_dir), threads=1)
    assert asr.kind == "tdt" and type(asr.model).__name__ == "ParakeetForTDT"
    result = transcribe_source(asr, str(media.SPEECH_WAV))
    assert result.model_id == "parakeet:parakeet-tdt-tiny"
    assert result.model_version != "unversioned"
    assert result.duration == pytest.approx(11.0, abs=0.05)
    assert result.text == " ".join(w.word for w in result.words)
    assert all(0 <= w.start < w.end <= 11.1 for w in result.words)
    assert all(0 < w.probability <= 1 for w in result.words)
    assert all(s.start <= s.end and 0 < s.confidence <= 1 for s in result.segments)
    assert result.real_time_factor is not None and result.real_time_factor > 0


@pytest.mark.parametrize("duration", [2, 4])
def test_tdt_durations_time_every_word(tmp_path: Path, duration: int) -> None:
    model_dir, piece = tiny_parakeet_tdt(tmp_path / "forced", force_token=WORD, force_duration=duration)
    assert piece
    asr = build_transcriber("parakeet", str(model_dir), threads=1)
    result = transcribe_source(asr, str(media.SPEECH_WAV))
    # Each step emits the piece and jumps `duration` encoder frames (80 ms each) until the audio ends.
    span = duration * asr.frame_seconds
    frames = math.ceil(round(result.duration / asr.frame_seconds, 6))
    assert len(result.words) == math.ceil(frames / duration)
    for i, word in enumerate(result.words):
        assert word.word == piece.lstrip("▁")
        assert word.start == pytest.approx(i * span) and word.end == pytest.approx((i + 1) * span)
        assert word.probability > 0.99
    assert result.confidence is not None and result.confidence > 0.99


def test_tdt_all_blank_output_means_no_vocals(tmp_path: Path) -> None:
    model_dir, _ = tiny_parakeet_tdt(tmp_path / "blank", force_token="<blank>", force_duration=4)
    result = transcribe_source(
        build_transcriber("parakeet", str(model_dir), threads=1), str(media.SPEECH_WAV)
    )
    assert result.no_vocals and result.text == "" and result.words == []


def test_ctc_and_tdt_share_the_output_shape(tmp_path: Path) -> None:
    ctc = transcribe_source(
        build_transcriber("parakeet", str(tiny_parakeet_ctc(tmp_path / "c")[0]), threads=1),
        str(media.SPEECH_WAV),
    )
    tdt = transcribe_source(
        build_transcriber("parakeet", str(tiny_parakeet_tdt(tmp_path / "t")[0]), threads=1),
        str(media.SPEECH_WAV),
    )
    for result in (ctc, tdt):
        assert set(result.segments_json()[0]) == {"start", "end", "text", "confidence"}
        assert set(result.words_json()[0]) == {"start", "end", "word", "probability"}
        assert result.language == "en"


def test_tdt_sliver_at_a_window_end_is_not_an_error(tmp_path: Path) -> None:
    model_dir, piece = tiny_parakeet_tdt(tmp_path / "sliver", force_token=WORD, force_duration=1)
    asr = build_transcriber("parakeet", str(model_dir), threads=1)
    assert asr.transcribe_chunk(np.zeros(1, dtype=np.float32)).segments == ()
    # 30 s window + 0.05 s: the tail is decoded as its own window, times continue after 30 s.
    result = asr.transcribe_chunk(np.full(16_000 * 30 + 800, 0.01, dtype=np.float32))
    assert [s.start for s in result.segments] == [0.0, 30.0]
    assert result.segments[1].words[0].word == (piece or "").lstrip("▁")
