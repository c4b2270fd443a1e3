"""NVIDIA Parakeet through transformers, CTC (``ParakeetForCTC``) or TDT (``ParakeetForTDT``) as the saved
checkpoint's config says, from a local directory or a hub id, on GPU when present. Audio is processed in
short windows: the conformer's attention grows with length.

Word times come from encoder frames. CTC: each non-blank emission starts at its frame (repeats merge).
TDT: greedy ``generate`` returns each step's token and predicted duration; a token starts at the sum of
the previous durations and lasts its own (at least one frame). A SentencePiece piece that begins with
"▁" starts a new word; a word's probability is the mean of its pieces' softmax maxima.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_core.asr.types import ChunkResult, Segment, Word

WORD_START = "▁"
SAMPLE_RATE = 16_000
# model_type in config.json -> (decoder kind, transformers class)
DECODERS = {"parakeet_ctc": ("ctc", "ParakeetForCTC"), "parakeet_tdt": ("tdt", "ParakeetForTDT")}


@dataclass(frozen=True)
class Piece:
    text: str
    start: float
    end: float
    probability: float


def checkpoint_kind(config: Any) -> tuple[str, str]:
    """(kind, class name) from a loaded config: its model_type, else its declared architectures."""
    if config.model_type in DECODERS:
        return DECODERS[config.model_type]
    for arch in getattr(config, "architectures", None) or []:
        for kind, name in DECODERS.values():
            if arch == name:
                return kind, name
    raise ValueError(
        f"unsupported Parakeet checkpoint type {config.model_type!r}; "
        f"use a CTC or TDT checkpoint ({', '.join(DECODERS)})"
    )


class ParakeetTranscriber:
    def __init__(self, model: str, *, threads: int = 2, window_seconds: float = 30.0) -> None:
        import torch  # heavy: imported when the backend is built
        import transformers
        from transformers import AutoConfig, AutoProcessor

        local = Path(model).exists()
        config = AutoConfig.from_pretrained(model, local_files_only=local)
        self.kind, class_name = checkpoint_kind(config)
        torch.set_num_threads(max(1, threads))
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.processor = AutoProcessor.from_pretrained(model, local_files_only=local)
        model_class = getattr(transformers, class_name)
        self.model = model_class.from_pretrained(model, local_files_only=local).to(self.device).eval()
        self.model_id = f"parakeet:{Path(model).name if local else model}"
        self.model_version = _version(Path(model)) if local else "hub"
        fe = self.processor.feature_extractor
        self.frame_seconds = (
            fe.hop_length / fe.sampling_rate * self.model.config.encoder_config.subsampling_factor
        )
        self.window = int(window_seconds * fe.sampling_rate)
        if self.kind == "ctc":
            self.blank_id = self.model.config.pad_token_id
        else:
            self.blank_id = self.model.config.blank_token_id
            # Greedy TDT generate starts the decoder from the blank token; checkpoints without a
            # generation_config.json do not say so.
            if self.model.generation_config.decoder_start_token_id is None:
                self.model.generation_config.decoder_start_token_id = self.blank_id
        self.skip_ids = {self.blank_id, self.model.config.pad_token_id}

    def transcribe_chunk(self, audio: np.ndarray) -> ChunkResult:
        segments = []
        for start in range(0, audio.shape[0], self.window):
            piece = audio[start : start + self.window]
            segment = self._window(piece, start / SAMPLE_RATE)
            if segment is not None:
                segments.append(segment)
        return ChunkResult(tuple(segments), "en")

    def _window(self, audio: np.ndarray, offset: float) -> Segment | None:
        inputs = self.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").to(self.device)
        with self._torch.inference_mode():
            pieces = self._ctc(inputs, offset) if self.kind == "ctc" else self._tdt(inputs, offset)
        timed = _words(pieces)
        if not timed:
            return None
        text = " ".join(w.word for w in timed)
        return Segment(
            timed[0].start, timed[-1].end, text, float(np.mean([w.probability for w in timed])), timed
        )

    def _token(self, token: int) -> str:
        return self.processor.tokenizer.convert_ids_to_tokens(token) or ""

    def _ctc(self, inputs: Any, offset: float) -> list[Piece]:
        torch = self._torch
        logits = self.model(**inputs).logits[0]
        probs = torch.softmax(logits.float(), dim=-1)
        best = probs.argmax(dim=-1).tolist()
        confidence = probs.max(dim=-1).values.tolist()
        pieces: list[Piece] = []
        previous = None
        for frame, token in enumerate(best):
            if token == previous or token in self.skip_ids:
                previous = token
                continue
            previous = token
            time = offset + frame * self.frame_seconds
            pieces.append(Piece(self._token(token), time, time + self.frame_seconds, confidence[frame]))
        return pieces

    def _tdt(self, inputs: Any, offset: float) -> list[Piece]:
        from transformers import LogitsProcessorList

        torch = self._torch
        vocab = self.model.config.vocab_size
        recorder = _TokenLogits(torch, vocab)
        frames = int(
            self.model.encoder._get_subsampling_output_length(inputs["attention_mask"].sum(-1)).max()
        )
        if frames < 1:  # a sliver of audio at the end of a window: nothing to decode
            return []
        out = self.model.generate(
            **inputs,
            logits_processor=LogitsProcessorList([recorder]),
            max_new_tokens=frames * self.model.config.max_symbols_per_step,
        )
        tokens = out.sequences[0].tolist()
        durations = out.durations[0].tolist()
        # sequences[0] is the decoder start token; step i's token is sequences[i + 1]
        probabilities = [float(p[0]) for p in recorder.probabilities]
        pieces: list[Piece] = []
        frame = 0
        for i, (token, duration) in enumerate(zip(tokens, durations, strict=True)):
            if i > 0 and token not in self.skip_ids:
                start = offset + frame * self.frame_seconds
                end = start + max(1, duration) * self.frame_seconds
                pieces.append(Piece(self._token(token), start, end, probabilities[i - 1]))
            frame += duration
        return pieces


class _TokenLogits:
    """A logits processor for greedy TDT: the joint head's last ``len(durations)`` outputs are duration
    logits, not tokens, so they are masked out of the token choice; each step's token probability
    (softmax over the token logits) is recorded for the confidence figures."""

    def __init__(self, torch: Any, vocab_size: int) -> None:
        self.torch = torch
        self.vocab_size = vocab_size
        self.probabilities: list[list[float]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        tokens = scores[:, : self.vocab_size].float()
        self.probabilities.append(self.torch.softmax(tokens, dim=-1).max(dim=-1).values.tolist())
        masked = scores.clone()
        masked[:, self.vocab_size :] = -float("inf")
        return masked


def _words(pieces: list[Piece]) -> tuple[Word, ...]:
    words: list[list] = []  # [text, start, end, probabilities]
    for p in pieces:
        if p.text.startswith(WORD_START) or not words:
            words.append([p.text.lstrip(WORD_START), p.start, p.end, [p.probability]])
        else:
            words[-1][0] += p.text
            words[-1][2] = p.end
            words[-1][3].append(p.probability)
    return tuple(Word(s, e, t, float(np.mean(ps))) for t, s, e, ps in words if t.strip())


def _version(path: Path) -> str:
    weights = path / "model.safetensors"
    if not weights.exists():
        return "unversioned"
    with weights.open("rb") as fh:
        return hashlib.sha256(fh.read(1024 * 1024)).hexdigest()[:12]
