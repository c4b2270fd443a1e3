"""The ``nemo`` ASR backend: a NeMo ``.nemo`` checkpoint transcribed by ``nemo_worker.py`` running under
another environment's interpreter (``MUSIC_ASR_NEMO_PYTHON``), since NeMo and dagster cannot share one.

The worker starts once per process and stays up (the model loads once); each chunk of audio goes to it
as a temporary 16 kHz mono WAV file and comes back as one JSON line. A dead or silent worker is an
error for that chunk, and the next chunk starts a fresh worker. (This module is not called ``nemo.py``:
the worker runs by path, with this folder first on ``sys.path``, where such a file would shadow NeMo.)
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import wave
from collections import deque
from pathlib import Path
from typing import IO, Any

import numpy as np

from music_core.asr import nemo_worker
from music_core.asr.types import ChunkResult, Segment, Word

SAMPLE_RATE = 16_000
WORKER = Path(nemo_worker.__file__).resolve()


class NemoWorkerError(RuntimeError):
    """The worker could not start, died, timed out, or reported an error."""


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def chunk_result(answer: dict[str, Any]) -> ChunkResult:
    """A worker answer (the project's transcription shape) as a backend result. Each word joins the last
    segment that starts at or before it; an unknown confidence counts as 0."""
    words = [
        Word(float(w["start"]), float(w["end"]), str(w["word"]), float(w.get("probability") or 0.0))
        for w in answer.get("words") or []
    ]
    raw = sorted(answer.get("segments") or [], key=lambda s: float(s["start"]))
    buckets: list[list[Word]] = [[] for _ in raw]
    for w in words:
        index = max((i for i, s in enumerate(raw) if float(s["start"]) <= w.start), default=0)
        if buckets:
            buckets[index].append(w)
    segments = tuple(
        Segment(
            float(s["start"]), float(s["end"]), str(s["text"]), float(s.get("confidence") or 0.0), tuple(b)
        )
        for s, b in zip(raw, buckets, strict=True)
        if str(s["text"]).strip()
    )
    return ChunkResult(segments, answer.get("language"))


class NemoTranscriber:
    def __init__(
        self,
        model: str,
        *,
        python: str,
        threads: int = 2,
        device: str = "auto",
        start_timeout: float = 900.0,
        chunk_timeout: float = 900.0,
    ) -> None:
        if not Path(model).is_file():
            raise ValueError(f"the nemo backend needs a .nemo file; {model!r} does not exist")
        if shutil.which(python) is None:
            raise ValueError(f"NeMo interpreter {python!r} not found (set MUSIC_ASR_NEMO_PYTHON)")
        self.model_path = model
        self.model_id = nemo_worker.model_id(model)
        self.model_version = nemo_worker.model_version(model)
        self.command = [
            python,
            "-u",
            str(WORKER),
            "--model",
            model,
            "--device",
            device,
            "--threads",
            str(threads),
        ]
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        self.start_timeout = start_timeout
        self.chunk_timeout = chunk_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        self._start()  # load now: a broken environment fails when the backend is built

    # --- worker lifecycle ---------------------------------------------------------------------

    def _start(self) -> None:
        self._lines = queue.Queue()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", env=self.env,
        )  # fmt: skip
        assert self._proc.stdout is not None and self._proc.stderr is not None
        threading.Thread(target=self._pump, args=(self._proc.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._drain, args=(self._proc.stderr,), daemon=True).start()
        ready = self._read(self.start_timeout, "start")
        if not ready.get("ready"):
            self.close()
            raise NemoWorkerError(f"NeMo worker did not start: {ready.get('error') or ready}")

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)  # end of output: the worker exited

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line.rstrip())

    def _read(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise NemoWorkerError(f"NeMo worker gave no answer to {what} within {timeout:.0f} s") from None
        if line is None:
            proc, self._proc = self._proc, None
            try:
                code = proc.wait(timeout=10) if proc else None
            except subprocess.TimeoutExpired:  # closed its output but lingers: end it
                proc.kill()
                code = proc.wait()
            tail = " | ".join(list(self._stderr)[-3:])
            raise NemoWorkerError(f"NeMo worker exited (code {code}) during {what}: {tail}"[:500])
        try:
            return json.loads(line)
        except ValueError:
            self.close()
            raise NemoWorkerError(f"NeMo worker broke the protocol: {line[:200]!r}") from None

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()  # the worker exits at end of input
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # --- the Transcriber interface ------------------------------------------------------------

    def transcribe_chunk(self, audio: np.ndarray) -> ChunkResult:
        with self._lock, tempfile.TemporaryDirectory(prefix="nemo-chunk-") as tmp:
            path = Path(tmp) / "chunk.wav"
            write_wav(path, audio)
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"audio": str(path)}) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._proc = None
                raise NemoWorkerError("NeMo worker is gone; it will be restarted") from None
            answer = self._read(self.chunk_timeout, "a chunk")
        if answer.get("error"):
            raise NemoWorkerError(f"NeMo could not transcribe: {answer['error']}")
        return chunk_result(answer)
