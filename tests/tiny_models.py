"""Tiny random models built from configs and saved like real ones, so the real loading code runs."""

from __future__ import annotations

from pathlib import Path


def tiny_sentence_transformer(dest: Path, dim: int = 48) -> Path:
    """A BERT-style sentence-transformers model (random weights) whose vectors have ``dim`` dimensions."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from music_core.embed.embedder import default_model

    tokenizer = BertTokenizerFast.from_pretrained(default_model()[0])  # a real vocabulary, offline
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=dim, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=dim * 2, max_position_embeddings=128,
    )  # fmt: skip
    raw = dest / "raw"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    word = models.Transformer(str(raw), max_seq_length=128)
    pooling = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling]).save(str(dest / "model"))
    return dest / "model"
