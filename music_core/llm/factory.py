"""Build the configured analyst; ``None`` when LLM analysis is off (the default: no model loads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from music_core.llm.types import ComparisonAnalyst

if TYPE_CHECKING:
    from music_core.settings import Settings

BACKENDS = ("transformers", "openai")


def build_analyst(
    backend: str | None,
    *,
    model: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    max_new_tokens: int = 256,
    threads: int = 2,
    **options: Any,
) -> ComparisonAnalyst | None:
    """``backend`` "" (off), "transformers" (``model`` = local folder or hub id) or "openai"
    (``url`` = the endpoint's base URL, ``model`` = its model name, optional ``api_key``)."""
    name = (backend or "").strip().lower()
    if not name:
        return None
    if name == "transformers":
        if not model:
            raise ValueError("llm_backend=transformers needs llm_model (a model folder or hub id)")
        from music_core.llm.transformers_backend import TransformersAnalyst

        return TransformersAnalyst(model, max_new_tokens=max_new_tokens, threads=threads)
    if name == "openai":
        if not url or not model:
            raise ValueError("llm_backend=openai needs llm_url and llm_model")
        from music_core.llm.openai_backend import OpenAIAnalyst

        return OpenAIAnalyst(url, model, api_key, max_new_tokens=max_new_tokens, **options)
    raise ValueError(f"unknown llm_backend {backend!r}; use '' (off), {' or '.join(map(repr, BACKENDS))}")


def analyst_from_settings(settings: Settings) -> ComparisonAnalyst | None:
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return build_analyst(
        settings.llm_backend, model=settings.llm_model, url=settings.llm_url, api_key=key,
        max_new_tokens=settings.llm_max_new_tokens, threads=settings.llm_threads,
    )  # fmt: skip
