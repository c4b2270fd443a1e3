"""ASR backends by name; heavy libraries are imported only by the backend that is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from music_core.asr.types import Transcriber

BACKENDS = ("faster-whisper", "parakeet", "nemo")


def build_transcriber(backend: str, model: str | None, **options: Any) -> Transcriber:
    if backend == "faster-whisper":
        from music_core.asr.whisper import FasterWhisperTranscriber

        return FasterWhisperTranscriber(
            model,
            compute_type=options.get("compute_type", "int8"),
            threads=options.get("threads", 2),
            beam_size=options.get("beam_size", 5),
        )
    if backend == "parakeet":
        if not model:
            raise ValueError("the parakeet backend needs MUSIC_ASR_MODEL (a local directory or a hub id)")
        from music_core.asr.parakeet import ParakeetTranscriber

        return ParakeetTranscriber(model, threads=options.get("threads", 2))
    if backend == "nemo":
        if not model:
            raise ValueError("the nemo backend needs MUSIC_ASR_MODEL (a .nemo file)")
        python = options.get("nemo_python")
        if not python:
            raise ValueError("the nemo backend needs MUSIC_ASR_NEMO_PYTHON (the NeMo environment's python)")
        from music_core.asr.nemo_client import NemoTranscriber

        return NemoTranscriber(model, python=python, threads=options.get("threads", 2))
    raise ValueError(f"unknown ASR backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def describe_model(backend: str, model: str | None) -> str:
    """A cheap identifier of the configured model (no weights loaded) for Dagster code versions."""
    if backend == "faster-whisper":
        from music_core.asr.whisper import _model_version, default_model

        path = model or default_model()[0]
        return f"{backend}:{model or default_model()[1]}:{_model_version(path)}"
    if backend == "nemo" and model and Path(model).is_file():
        from music_core.asr.nemo_worker import model_version

        return f"{backend}:{model}:{model_version(model)}"
    return f"{backend}:{model}"
