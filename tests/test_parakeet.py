"""The Parakeet (transformers) backend through the same loading code users use, on tiny checkpoints
built from configs here (real Parakeet weights cannot be downloaded on these machines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from music_core.asr.backends import build_transcriber
from music_core.asr.runner import transcribe_source
from tests import media
from tests.tiny_models import WORD, tiny_parakeet_ctc, tiny_sentence_transformer


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
