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


WORD = "<longest word piece>"
ENCODER = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
           "subsampling_conv_channels": 8}  # fmt: skip


def _tiny_tokenizer(*special: str):  # noqa: ANN202 - transformers.ParakeetTokenizer
    """A SentencePiece-style (Unigram + Metaspace) tokenizer trained here, with "<pad>" and ``special``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import ParakeetTokenizer

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    corpus = ["ask not what your country can do for you", "ask what you can do for your country"] * 20
    tok.train_from_iterator(
        corpus, trainers.UnigramTrainer(vocab_size=60, special_tokens=["<unk>"], unk_token="<unk>")
    )
    tokenizer = ParakeetTokenizer(tokenizer_object=tok, unk_token="<unk>")
    tokenizer.add_special_tokens({"pad_token": "<pad>", "additional_special_tokens": list(special)})
    return tokenizer


def _resolve(tokenizer, force_token: str | None) -> str | None:  # noqa: ANN001
    if force_token == WORD:
        force_token = max((p for p in tokenizer.get_vocab() if p.startswith("▁")), key=len)
    if force_token is not None and force_token not in tokenizer.get_vocab():
        raise ValueError(f"{force_token!r} is not in the vocabulary")
    return force_token


def tiny_parakeet_ctc(dest: Path, force_token: str | None = None) -> tuple[Path, str | None]:
    """A Parakeet CTC checkpoint with random weights and a SentencePiece-style tokenizer trained here.

    ``force_token`` biases the CTC head so every frame emits that piece ("<pad>" is the CTC blank,
    ``WORD`` the longest word-initial piece of the vocabulary). Returns the folder and the piece."""
    import torch
    from transformers import ParakeetCTCConfig, ParakeetFeatureExtractor, ParakeetForCTC, ParakeetProcessor

    tokenizer = _tiny_tokenizer()
    config = ParakeetCTCConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, encoder_config=ENCODER
    )
    model = ParakeetForCTC(config)
    force_token = _resolve(tokenizer, force_token)
    if force_token is not None:
        with torch.no_grad():
            model.ctc_head.weight.zero_()
            model.ctc_head.bias.fill_(-10.0)
            model.ctc_head.bias[tokenizer.convert_tokens_to_ids(force_token)] = 10.0
    model.save_pretrained(dest)
    ParakeetProcessor(ParakeetFeatureExtractor(), tokenizer).save_pretrained(dest)
    return dest, force_token


def tiny_parakeet_tdt(
    dest: Path, force_token: str | None = None, force_duration: int = 1
) -> tuple[Path, str | None]:
    """A Parakeet TDT (token-and-duration transducer) checkpoint with random weights, saved like a real
    one (config.json says ``parakeet_tdt``; no generation_config decoder start, as in older exports).

    ``force_token`` biases the joint network so every step emits that piece ("<blank>" is the TDT
    blank, ``WORD`` the longest word-initial piece) with a duration of ``force_duration`` frames."""
    import torch
    from transformers import ParakeetFeatureExtractor, ParakeetForTDT, ParakeetProcessor, ParakeetTDTConfig

    tokenizer = _tiny_tokenizer("<blank>")
    config = ParakeetTDTConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        blank_token_id=tokenizer.convert_tokens_to_ids("<blank>"), encoder_config=ENCODER,
        decoder_hidden_size=16, num_decoder_layers=1,
    )  # fmt: skip
    model = ParakeetForTDT(config)
    force_token = _resolve(tokenizer, force_token)
    if force_token is not None:
        with torch.no_grad():
            model.joint.head.weight.zero_()
            model.joint.head.bias.fill_(-10.0)
            model.joint.head.bias[tokenizer.convert_tokens_to_ids(force_token)] = 10.0
            model.joint.head.bias[config.vocab_size + list(config.durations).index(force_duration)] = 10.0
    model.save_pretrained(dest)
    ParakeetProcessor(ParakeetFeatureExtractor(), tokenizer, decoder_type="tdt").save_pretrained(dest)
    return dest, force_token
