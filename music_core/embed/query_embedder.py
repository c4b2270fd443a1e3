"""The embedder the API uses for queries: the ONNX export of the configured model when it can be
built (cached per model id, exported once under a file lock shared by all workers), otherwise the
sentence-transformers model itself. Both give the same vectors.

The export runs in a child process: it needs torch (about 800 MB), which the API process then never
imports, not even on its first start."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import numpy as np

from music_core.embed.embedder import SentenceEmbedder, default_model, describe_model
from music_core.embed.onnx_embedder import OnnxEmbedder, QueryEncoderFiles

log = logging.getLogger(__name__)


class Embedder(Protocol):
    dim: int
    model_id: str

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray: ...


def load_query_embedder(model: str | None, cache_dir: Path | None, *, threads: int = 1) -> Embedder:
    """``cache_dir`` None means: use sentence-transformers (torch) directly."""
    if cache_dir is not None:
        try:
            return _onnx_embedder(model, cache_dir, threads)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the original model
            log.warning("ONNX query encoder unavailable (%s); using sentence-transformers", _one_line(exc))
    return SentenceEmbedder(model, threads=threads)


def _onnx_embedder(model: str | None, cache_dir: Path, threads: int) -> OnnxEmbedder:
    model_id = describe_model(model)
    files = QueryEncoderFiles.for_model(cache_dir, model_id)
    files.directory.mkdir(parents=True, exist_ok=True)
    if files.manifest.exists():
        try:
            return OnnxEmbedder.load(files, threads=threads)
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is rebuilt below
            log.warning(
                "cached ONNX query encoder %s is unusable (%s); exporting again", files.stem, _one_line(exc)
            )
    with files.lock.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be exporting the same model
        if files.manifest.exists():
            try:
                return OnnxEmbedder.load(files, threads=threads)
            except Exception:  # noqa: BLE001
                files.remove()
        log.info("exporting the query encoder for %s to %s", model_id, files.graph)
        run_export(model if model else default_model()[0], model_id, files)
        embedder = OnnxEmbedder.load(files, threads=threads)
        for stale in files.older_formats():  # ~90 MB per model that nothing reads any more
            stale.unlink(missing_ok=True)
        return embedder


def run_export(model_path: str, model_id: str, files: QueryEncoderFiles, timeout: float = 900.0) -> None:
    """``onnx_export`` in a child process; raises RuntimeError with its last line of error output."""
    command = [
        sys.executable,
        "-m",
        "music_core.embed.onnx_export",
        model_path,
        model_id,
        str(files.directory),
        files.stem,
    ]
    root = str(Path(__file__).resolve().parents[2])  # importable even when not installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)  # noqa: S603
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"export exited with status {done.returncode}")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
