"""Export a sentence-transformers model (tokenizer settings, transformer, pooling, normalisation) to
ONNX for fast query embedding, verified against the model it came from before it is published.

The word-embedding table is left out of the graph and saved beside it as a ``.npy`` the encoder reads
row by row: a query needs a few of its rows, not all of it in every API worker's memory (for
all-MiniLM-L6-v2, 47 MB of the model's 90 MB). The vectors stay the same.

Heavy: imports torch, sentence-transformers and onnx; only called when no export is cached."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from music_core.embed.embedder import embedding_dimension
from music_core.embed.onnx_embedder import EXPORT_FORMAT, WORD_VECTORS, OnnxEmbedder, QueryEncoderFiles

# Texts the export is checked on: casing, punctuation, unicode, an empty text, and one past the
# model's maximum sequence length (truncation), embedded together so padding is exercised too.
PROBE_TEXTS = [
    "find the song where they sing whisper in the mirror",
    "LOVE",
    "",
    "Ünïcödé ★ lyrics — 東京の夜, naïve café!",
    "dancing in the moonlight " * 120,
]
TOLERANCE = 1e-4  # largest allowed difference per vector component (unit vectors)


class ExportMismatchError(RuntimeError):
    """The exported encoder does not reproduce the original model's vectors."""


def export_query_encoder(model_path: str, model_id: str, files: QueryEncoderFiles) -> None:
    """Write ``files`` for ``model_path``. The manifest is written last and atomically: an encoder is
    complete exactly when its manifest exists."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu").eval()
    tokenizer = model.tokenizer
    words = model[0].auto_model.get_input_embeddings()
    table = words.weight.detach().to(torch.float32).numpy()
    names = [WORD_VECTORS] + [
        name for name in tokenizer.model_input_names if name in ("attention_mask", "token_type_ids")
    ]
    sample = tokenizer(PROBE_TEXTS[:2], padding=True, return_tensors="pt")
    sample[WORD_VECTORS] = words(sample["input_ids"]).detach()
    wrapper = _sentence_encoder(model, names)
    files.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=files.directory, prefix=".export-") as scratch:
        graph = Path(scratch) / "model.onnx"
        axes = {name: {0: "batch", 1: "tokens"} for name in names}
        axes["embedding"] = {0: "batch"}
        # The exporter warns about tracing details (advanced indexing, data-dependent branches) that
        # the check below settles on real outputs; its warnings would only alarm operators.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, tuple(sample[name] for name in names), str(graph), input_names=names,
                output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
        manifest = {
            "format": EXPORT_FORMAT,
            "model_id": model_id,
            "dim": embedding_dimension(model),
            "max_length": int(model.max_seq_length),
            "inputs": names,
            "pad_id": int(tokenizer.pad_token_id or 0),
            "pad_token": str(tokenizer.pad_token or "[PAD]"),
        }
        tokenizer_json = Path(scratch) / "tokenizer.json"
        tokenizer_json.write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
        word_table = Path(scratch) / "words.npy"
        np.save(word_table, np.ascontiguousarray(table))
        _verify(model, OnnxEmbedder(graph, tokenizer_json, word_table, manifest, threads=1))
        os.replace(graph, files.graph)
        os.replace(tokenizer_json, files.tokenizer)
        os.replace(word_table, files.word_table)
        staged = Path(scratch) / "manifest.json"
        staged.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(staged, files.manifest)


def _verify(model: object, exported: OnnxEmbedder) -> None:
    expected = np.asarray(
        model.encode(PROBE_TEXTS, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False),  # type: ignore[attr-defined]
        dtype=np.float32,
    )
    got = exported.embed(PROBE_TEXTS)
    worst = float(np.abs(expected - got).max()) if got.shape == expected.shape else float("inf")
    if worst > TOLERANCE:
        raise ExportMismatchError(
            f"exported encoder differs from the model by {worst:.2e} (> {TOLERANCE:.0e})"
        )


def _sentence_encoder(model: object, names: list[str]) -> object:
    import torch

    class SentenceEncoder(torch.nn.Module):
        """Positional inputs (as ONNX wants: the tokens' word vectors, then the attention mask and
        token types) -> the model's unit-length sentence embedding."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            named = dict(zip(names, inputs, strict=True))
            transformer, *rest = list(self.model)  # type: ignore[call-overload]
            tokens = transformer.auto_model(**named, return_dict=False)[0]
            features = {"token_embeddings": tokens, "attention_mask": named["attention_mask"]}
            for module in rest:  # pooling, and whatever else the model stacks on (Dense, Normalize)
                features = module(features)
            return torch.nn.functional.normalize(features["sentence_embedding"], p=2.0, dim=1)

    return SentenceEncoder()


def main(argv: list[str]) -> int:
    """``python -m music_core.embed.onnx_export MODEL_PATH MODEL_ID DIRECTORY STEM``"""
    model_path, model_id, directory, stem = argv
    export_query_encoder(model_path, model_id, QueryEncoderFiles(Path(directory), stem))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
