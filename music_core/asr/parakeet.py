"""NVIDIA Parakeet through transformers (``ParakeetForCTC``), from a local directory or a hub id, on
GPU when present. Audio is processed in short windows: the conformer's attention grows with length.

Word times come from the CTC frames: each non-blank emission starts at its frame; a SentencePiece
piece that begins with "▁" starts a new word.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from music_core.asr.types import ChunkResult, Segment, Word

WORD_START = "▁"


class ParakeetTranscriber:
    def __init__(self, model: str, *, threads: int = 2, window_seconds: float = 30.0) -> None:
        import torch  # heavy: imported when the backend is built
        from transformers import AutoConfig, AutoProcessor, ParakeetForCTC

        local = Path(model).exists()
        config = AutoConfig.from_pretrained(model, local_files_only=local)
        if config.model_type != "parakeet_ctc":
            raise ValueError(
                f"unsupported Parakeet checkpoint type {config.model_type!r}; use a CTC checkpoint"
            )
        torch.set_num_threads(max(1, threads))
        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.processor = AutoProcessor.from_pretrained(model, local_files_only=local)
        self.model = ParakeetForCTC.from_pretrained(model, local_files_only=local).to(self.device).eval()
        self.model_id = f"parakeet:{Path(model).name if local else model}"
        self.model_version = _version(Path(model)) if local else "hub"
        fe = self.processor.feature_extractor
        self.frame_seconds = (
            fe.hop_length / fe.sampling_rate * self.model.config.encoder_config.subsampling_factor
        )
        self.window = int(window_seconds * fe.sampling_rate)
        self.blank_id = self.model.config.pad_token_id

    def transcribe_chunk(self, audio: np.ndarray) -> ChunkResult:
        segments = []
        for start in range(0, audio.shape[0], self.window):
            piece = audio[start : start + self.window]
            segment = self._window(piece, start / 16_000)
            if segment is not None:
                segments.append(segment)
        return ChunkResult(tuple(segments), "en")

    def _window(self, audio: np.ndarray, offset: float) -> Segment | None:
        torch = self._torch
        inputs = self.processor(audio, sampling_rate=16_000, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0]
        probs = torch.softmax(logits.float(), dim=-1)
        best = probs.argmax(dim=-1).tolist()
        confidence = probs.max(dim=-1).values.tolist()
        words: list[list] = []  # [text, start, end, probabilities]
        previous = None
        for frame, token in enumerate(best):
            if token == previous or token == self.blank_id:
                previous = token
                continue
            previous = token
            piece = self.processor.tokenizer.convert_ids_to_tokens(token) or ""
            time = offset + frame * self.frame_seconds
            if piece.startswith(WORD_START) or not words:
                words.append([piece.lstrip(WORD_START), time, time + self.frame_seconds, [confidence[frame]]])
            else:
                words[-1][0] += piece
                words[-1][2] = time + self.frame_seconds
                words[-1][3].append(confidence[frame])
        timed = tuple(Word(s, e, t, float(np.mean(p))) for t, s, e, p in words if t.strip())
        if not timed:
            return None
        text = " ".join(w.word for w in timed)
        return Segment(
            timed[0].start, timed[-1].end, text, float(np.mean([w.probability for w in timed])), timed
        )


def _version(path: Path) -> str:
    weights = path / "model.safetensors"
    if not weights.exists():
        return "unversioned"
    with weights.open("rb") as fh:
        return hashlib.sha256(fh.read(1024 * 1024)).hexdigest()[:12]
