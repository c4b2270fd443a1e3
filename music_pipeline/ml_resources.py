"""Model resources: configuration is cheap to read, models load lazily once per process (run)."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from music_core.asr.backends import build_transcriber
from music_core.embed.embedder import SentenceEmbedder


class AsrResource(dg.ConfigurableResource):
    backend: str = "faster-whisper"
    model: str | None = None
    compute_type: str = "int8"
    threads: int = 2
    beam_size: int = 5
    chunk_seconds: float = 600.0
    nemo_python: str | None = None  # the NeMo environment's interpreter (backend "nemo")

    _transcriber: Any = PrivateAttr(default=None)

    def transcriber(self) -> Any:
        if self._transcriber is None:
            self._transcriber = build_transcriber(
                self.backend, self.model, compute_type=self.compute_type, threads=self.threads,
                beam_size=self.beam_size, nemo_python=self.nemo_python,
            )  # fmt: skip
        return self._transcriber


class EmbedderResource(dg.ConfigurableResource):
    model: str | None = None
    threads: int = 1
    chunk_words: int = 128

    _embedder: Any = PrivateAttr(default=None)

    def embedder(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = SentenceEmbedder(self.model, threads=self.threads)
        return self._embedder
