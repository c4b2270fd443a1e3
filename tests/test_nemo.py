"""The NeMo backend: the real worker script under another interpreter, driven by the real backend.

The protocol tests use a stand-in for the nemo package (tests/fake_nemo.py); the test against real NeMo
runs when MUSIC_ASR_NEMO_PYTHON names an interpreter that imports nemo and MUSIC_TEST_NEMO_MODEL a .nemo file.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from music_core.asr import nemo_worker
from music_core.asr.backends import build_transcriber, describe_model
from music_core.asr.nemo_client import WORKER, NemoWorkerError
from music_core.asr.runner import transcribe_source
from music_core.settings import Settings
from music_pipeline.definitions import build_resources
from tests import fake_nemo, media

RATE = 16_000
LOUD = [True, True, True, False, False, True, True]  # seconds with "speech"


def tone_wav(path: Path, loud: list[bool], quiet_level: float = 0.0) -> Path:
    t = np.arange(RATE) / RATE
    parts = [0.5 * np.sin(2 * np.pi * 440 * t) if on else np.full(RATE, quiet_level) for on in loud]
    pcm = (np.concatenate(parts) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(fake_nemo.install(tmp_path_factory.mktemp("nemo-env")))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return fake_nemo.fake_model(tmp_path / "fake-parakeet.nemo", word="tone", fail_over_seconds=20)


def test_worker_needs_only_the_standard_library_at_import() -> None:
    """It runs in the NeMo environment, which does not have this project or its dependencies."""
    tree = ast.parse(WORKER.read_text())
    top = {
        (n.names[0].name if isinstance(n, ast.Import) else n.module or "").split(".")[0]
        for n in tree.body
        if isinstance(n, ast.Import | ast.ImportFrom)
    }
    assert top - {"__future__"} <= set(sys.stdlib_module_names)
    # Run by path, its folder is on sys.path: nothing there may shadow what the worker imports later.
    assert not [
        n for n in ("nemo", "torch", "omegaconf", "soundfile") if (WORKER.parent / f"{n}.py").exists()
    ]


def test_worker_by_path_writes_one_json_line_per_file(python: str, model: Path, tmp_path: Path) -> None:
    audio = tone_wav(tmp_path / "a.wav", LOUD)
    proc = subprocess.run(
        [python, str(WORKER), "--model", str(model), str(audio), str(tmp_path / "missing.wav")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second = [json.loads(line) for line in proc.stdout.splitlines()]
    assert set(first) == {
        "file", "text", "segments", "words", "language", "confidence", "no_vocals", "model_id",
        "model_version", "duration", "processing_time", "real_time_factor", "error",
    }  # fmt: skip
    assert first["text"] == "tone tone tone tone tone" and first["error"] is None
    assert [(s["start"], s["end"], s["text"]) for s in first["segments"]] == [
        (0.0, 3.0, "tone tone tone"),
        (5.0, 7.0, "tone tone"),
    ]
    assert first["words"][3] == {"start": 5.0, "end": 6.0, "word": "tone", "probability": 0.9}
    assert first["duration"] == pytest.approx(7.0) and first["model_id"] == "nemo:fake-parakeet"
    assert first["model_version"] == nemo_worker.model_version(str(model))
    assert second == {"file": str(tmp_path / "missing.wav"), "error": "audio file not found"}


def test_backend_transcribes_chunks_through_one_worker(python: str, model: Path, tmp_path: Path) -> None:
    asr = build_transcriber("nemo", str(model), nemo_python=python, threads=1)
    try:
        pid = asr._proc.pid  # type: ignore[attr-defined]
        # 4 s chunks: the second chunk's words come back relative to it and are shifted by the runner.
        result = transcribe_source(asr, str(tone_wav(tmp_path / "a.wav", LOUD)), chunk_seconds=4.0)
        assert asr._proc.pid == pid  # type: ignore[attr-defined] # the model loaded once
    finally:
        asr.close()  # type: ignore[attr-defined]
    assert result.text == "tone tone tone tone tone"
    assert [(w.start, w.end) for w in result.words] == [(0, 1), (1, 2), (2, 3), (5, 6), (6, 7)]
    assert [(s.start, s.end, len(s.words)) for s in result.segments] == [(0, 3, 3), (5, 7, 2)]
    assert result.confidence == pytest.approx(0.9) and not result.no_vocals
    assert result.model_id == "nemo:fake-parakeet"
    assert result.model_version == nemo_worker.model_version(str(model))
    assert result.duration == pytest.approx(7.0) and result.real_time_factor is not None


def test_quiet_audio_is_no_vocals(python: str, model: Path, tmp_path: Path) -> None:
    asr = build_transcriber("nemo", str(model), nemo_python=python, threads=1)
    try:
        result = transcribe_source(asr, str(tone_wav(tmp_path / "q.wav", [False] * 5, quiet_level=0.01)))
    finally:
        asr.close()  # type: ignore[attr-defined]
    assert result.no_vocals and result.text == "" and result.segments == ()


def test_errors_are_reported_and_a_dead_worker_is_replaced(python: str, tmp_path: Path) -> None:
    model = fake_nemo.fake_model(tmp_path / "m.nemo", fail_over_seconds=8, exit_over_seconds=12)
    asr = build_transcriber("nemo", str(model), nemo_python=python, threads=1)
    try:
        first = asr._proc.pid  # type: ignore[attr-defined]
        with pytest.raises(NemoWorkerError, match="CUDA out of memory"):
            asr.transcribe_chunk(np.full(RATE * 9, 0.5, dtype=np.float32))
        assert len(asr.transcribe_chunk(np.full(RATE * 2, 0.5, dtype=np.float32)).segments) == 1
        assert asr._proc.pid == first  # type: ignore[attr-defined] # an error answer keeps the worker
        with pytest.raises(NemoWorkerError, match=r"exited \(code 3\)"):
            asr.transcribe_chunk(np.full(RATE * 13, 0.5, dtype=np.float32))
        again = asr.transcribe_chunk(np.full(RATE * 2, 0.5, dtype=np.float32))
        assert again.segments[0].text == "tone tone"
        assert asr._proc.pid != first  # type: ignore[attr-defined]
    finally:
        asr.close()  # type: ignore[attr-defined]


def test_bad_setups_fail_clearly(python: str, model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs MUSIC_ASR_NEMO_PYTHON"):
        build_transcriber("nemo", str(model))
    with pytest.raises(ValueError, match="a .nemo file"):
        build_transcriber("nemo", str(tmp_path / "none.nemo"), nemo_python=python)
    with pytest.raises(ValueError, match="interpreter"):
        build_transcriber("nemo", str(model), nemo_python=str(tmp_path / "no-python"))
    corrupt = tmp_path / "corrupt.nemo"
    corrupt.write_bytes(b"\x00not an archive")
    with pytest.raises(NemoWorkerError, match="cannot load model"):
        build_transcriber("nemo", str(corrupt), nemo_python=python)
    with pytest.raises(NemoWorkerError, match="cannot load model: ModuleNotFoundError"):  # no nemo there
        build_transcriber("nemo", str(model), nemo_python=sys.executable)


def test_settings_reach_the_pipeline_resource(
    python: str, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ASR_BACKEND", "nemo")
    monkeypatch.setenv("MUSIC_ASR_MODEL", str(model))
    monkeypatch.setenv("MUSIC_ASR_NEMO_PYTHON", python)
    asr = build_resources(Settings(_env_file=None))["asr"]  # type: ignore[call-arg]
    transcriber = asr.transcriber()  # type: ignore[attr-defined]
    try:
        assert transcriber.model_id == "nemo:fake-parakeet"
        assert describe_model("nemo", str(model)).endswith(nemo_worker.model_version(str(model)))
    finally:
        transcriber.close()


REAL_PYTHON = os.environ.get("MUSIC_ASR_NEMO_PYTHON", "")
REAL_MODEL = os.environ.get("MUSIC_TEST_NEMO_MODEL", "")


@pytest.mark.skipif(
    not (
        REAL_PYTHON and REAL_MODEL and Path(REAL_MODEL).is_file() and fake_nemo.nemo_importable(REAL_PYTHON)
    ),
    reason="needs MUSIC_ASR_NEMO_PYTHON with nemo_toolkit[asr] and MUSIC_TEST_NEMO_MODEL (a .nemo file)",
)
def test_real_nemo_transcribes_speech() -> None:
    asr = build_transcriber("nemo", REAL_MODEL, nemo_python=REAL_PYTHON, threads=2)
    try:
        result = transcribe_source(asr, str(media.SPEECH_WAV))
    finally:
        asr.close()  # type: ignore[attr-defined]
    assert "country" in result.text.lower()
    assert result.words and all(0 <= w.start <= w.end <= 11.1 for w in result.words)
