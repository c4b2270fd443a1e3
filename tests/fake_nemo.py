"""A stand-in for the ``nemo_toolkit`` package (1.3 GB, and it breaks dagster in one environment), used
only to test the worker protocol through the real backend and the real worker script.

It mirrors NeMo's documented surface: ``nemo.collections.asr.models.ASRModel.restore_from(restore_path,
map_location)`` and ``model.transcribe(audio=[paths], batch_size, timestamps=True, verbose)`` returning
``Hypothesis`` objects with ``.text``, ``.timestamp['word'|'segment'|'char']`` (seconds) and
``.word_confidence``. Its "recognition" is deterministic: one word per loud second of a 16 kHz WAV.
The ``.nemo`` file of a fake model is JSON: ``{"word": ..., "fail_over_seconds": ..., "exit_over_seconds": ...}``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

MODELS_PY = """
import json, os, wave
from array import array


class Hypothesis:
    def __init__(self, text, timestamp, word_confidence):
        self.text = text
        self.timestamp = timestamp
        self.word_confidence = word_confidence


class _Cfg:
    decoding = None  # not an omegaconf node: the worker's confidence setup falls back gracefully


class ASRModel:
    cfg = _Cfg()

    def __init__(self, config):
        self.config = config

    @classmethod
    def restore_from(cls, restore_path, map_location=None, **kwargs):
        with open(restore_path, encoding="utf-8") as fh:
            return cls(json.load(fh))  # not JSON: raises, like a corrupt archive

    def eval(self):
        return self

    def change_decoding_strategy(self, decoding_cfg=None, **kwargs):
        raise AssertionError("not reached in the fake")

    def transcribe(self, audio, batch_size=4, return_hypotheses=False, timestamps=None, verbose=True, **kw):
        return [self._one(path) for path in audio]

    def _one(self, path):
        with wave.open(path, "rb") as w:
            rate = w.getframerate()
            samples = array("h", w.readframes(w.getnframes()))
        seconds = len(samples) / rate
        if seconds > self.config.get("exit_over_seconds", 1e9):
            os._exit(3)
        if seconds > self.config.get("fail_over_seconds", 1e9):
            raise RuntimeError("CUDA out of memory (fake)")
        word, words = self.config.get("word", "tone"), []
        for i in range(int(seconds)):
            window = samples[i * rate : (i + 1) * rate]
            if max(abs(s) for s in window) > 3000:
                words.append({"word": word, "start": float(i), "end": i + 1.0, "start_offset": i, "end_offset": i + 1})
        segments = []
        for w in words:
            if segments and segments[-1]["end"] == w["start"]:
                segments[-1]["end"] = w["end"]
                segments[-1]["segment"] += " " + w["word"]
            else:
                segments.append({"segment": w["word"], "start": w["start"], "end": w["end"]})
        text = " ".join(w["word"] for w in words)
        return Hypothesis(text, {"word": words, "segment": segments, "char": []}, [0.9] * len(words))
"""


def install(root: Path) -> Path:
    """Write the fake package under ``root`` and return an interpreter script that sees it."""
    package = root / "site" / "nemo" / "collections" / "asr"
    package.mkdir(parents=True)
    for folder in (root / "site" / "nemo", root / "site" / "nemo" / "collections", package):
        (folder / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS_PY)
    python = root / "bin" / "python"
    python.parent.mkdir()
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{root / "site"}" exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python


def fake_model(path: Path, **config: object) -> Path:
    path.write_text(json.dumps(config))
    return path


def nemo_importable(python: str) -> bool:
    import subprocess

    try:
        return (
            subprocess.run(
                [python, "-c", "import nemo.collections.asr"],
                capture_output=True,
                timeout=300,
                env=dict(os.environ),
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
