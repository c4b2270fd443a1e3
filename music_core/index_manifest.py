"""Which FAISS index version is current for an embedding model: ``indexes/<slug>/latest.json`` in the
bucket. Kept apart from ``vector_index`` so that readers of the manifest (storage statistics in the API)
import neither numpy nor FAISS."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from music_core.storage import ObjectStore


@dataclass(frozen=True)
class IndexManifest:
    model_id: str
    dim: int
    version: int
    count: int
    key: str
    created_at: str
    search_key: str | None = None  # the HNSW search graph of this version, when it has one


def model_slug(model_id: str) -> str:
    return hashlib.sha256(model_id.encode()).hexdigest()[:16]


def manifest_key(model_id: str) -> str:
    return f"indexes/{model_slug(model_id)}/latest.json"


def load_manifest(store: ObjectStore, model_id: str) -> IndexManifest | None:
    if store.stat(manifest_key(model_id)) is None:
        return None
    return IndexManifest(**json.loads(b"".join(store.iter_chunks(manifest_key(model_id)))))
