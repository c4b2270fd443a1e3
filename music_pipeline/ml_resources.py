"""Model resources: configuration is cheap to read, models load lazily once per process (run)."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from music_core.asr.backends import build_transcriber
from music_core.embed.embedder import SentenceEmbedder
from music_core.llm.factory import build_analyst
from music_core.settings import Settings


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


class LlmResource(dg.ConfigurableResource):
    """Optional LLM notes on comparisons; backend "" (the default) loads nothing. The API key is read
    from the environment (MUSIC_LLM_API_KEY) when the analyst is built, never from run config."""

    backend: str = ""
    model: str | None = None
    url: str | None = None
    max_new_tokens: int = 256
    threads: int = 2

    _loaded: bool = PrivateAttr(default=False)
    _analyst: Any = PrivateAttr(default=None)
    _warning: str | None = PrivateAttr(default=None)

    def analyst(self) -> tuple[Any, str | None]:
        """(analyst or None, why it could not be built); built once per process, failures included."""
        if not self._loaded:
            self._loaded = True
            if self.backend.strip():
                key = Settings().llm_api_key
                try:
                    self._analyst = build_analyst(
                        self.backend, model=self.model, url=self.url, max_new_tokens=self.max_new_tokens,
                        threads=self.threads, api_key=key.get_secret_value() if key else None,
                    )  # fmt: skip
                except Exception as exc:  # noqa: BLE001 - a missing model must not fail the comparison
                    self._warning = f"llm analysis unavailable: {type(exc).__name__}: {str(exc)[:200]}"
        return self._analyst, self._warning
