"""NVIDIA NeMo transcription worker, run by *another* Python environment's interpreter.

NeMo cannot share a virtual environment with dagster (it pins an antlr4 runtime that breaks dagster), so
it lives in its own environment and this file runs there. It needs only the standard library and
``nemo_toolkit[asr]``: it never imports this project, so it can be run by path::

    /opt/nemo-env/bin/python music_core/asr/nemo_worker.py --model parakeet.nemo a.wav b.flac

prints one JSON line per file, in the shape of this project's transcription output (text, segments with
start/end/text/confidence, words with start/end/word/probability, confidence, no_vocals, language,
model_id, model_version, duration, processing_time, real_time_factor; ``error`` when a file failed).

Without files it serves requests: after a ``{"ready": true, ...}`` line it reads one JSON request per
line on stdin (``{"audio": "/path.wav"}``) and answers each with one JSON line, until stdin closes.
The ``nemo`` ASR backend (``music_core.asr.backends``) drives it that way, so the model loads once.
Only protocol lines go to stdout; NeMo's own output is sent to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import wave
from pathlib import Path
from typing import IO, Any

PROTOCOL = 1


def model_version(path: str) -> str:
    """Short content hash of the start of the .nemo archive (cheap, and changes with the weights)."""
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read(1024 * 1024)).hexdigest()[:12]


def model_id(path: str) -> str:
    return f"nemo:{Path(path).stem}"


def audio_duration(path: str) -> float | None:
    try:
        import soundfile  # a NeMo dependency; reads FLAC/OGG as well

        return float(soundfile.info(path).duration)
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - unreadable audio: NeMo reports the real problem
        return None
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (OSError, wave.Error, EOFError):
        return None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    item = getattr(value, "item", None)  # torch / numpy scalars
    number = float(item() if item else value)
    return number if number == number else None  # NaN is no confidence


def hypothesis_json(hyp: Any) -> dict[str, Any]:
    """Text, words and segments from a NeMo ``Hypothesis`` transcribed with ``timestamps=True``."""
    text = (getattr(hyp, "text", None) if not isinstance(hyp, str) else hyp) or ""
    stamps = getattr(hyp, "timestamp", None) or {}
    confidences = list(getattr(hyp, "word_confidence", None) or [])
    words = []
    for i, w in enumerate(stamps.get("word") or []):
        word = str(w.get("word", "")).strip()
        if not word:
            continue
        probability = _float(confidences[i]) if i < len(confidences) else None
        start, end = float(w["start"]), float(w["end"])
        words.append({"start": start, "end": max(start, end), "word": word, "probability": probability})
    segments = []
    for s in stamps.get("segment") or []:
        start, end = float(s["start"]), float(s["end"])
        inside = [
            w["probability"] for w in words if start <= w["start"] <= end and w["probability"] is not None
        ]
        segments.append(
            {
                "start": start,
                "end": max(start, end),
                "text": str(s.get("segment", "")).strip(),
                "confidence": sum(inside) / len(inside) if inside else None,
            }
        )
    if not segments and text.strip():
        known = [w["probability"] for w in words if w["probability"] is not None]
        segments.append(
            {
                "start": words[0]["start"] if words else 0.0,
                "end": words[-1]["end"] if words else 0.0,
                "text": text.strip(),
                "confidence": sum(known) / len(known) if known else None,
            }
        )
    return {"text": text.strip(), "segments": segments, "words": words}


class NemoModel:
    def __init__(self, path: str, device: str, threads: int) -> None:
        import torch
        from nemo.collections.asr.models import ASRModel

        torch.set_num_threads(max(1, threads))
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = ASRModel.restore_from(restore_path=path, map_location=torch.device(device))
        self.model.eval()
        self._enable_word_confidence()
        self.path = path
        self.id = model_id(path)
        self.version = model_version(path)

    def _enable_word_confidence(self) -> None:
        """Greedy max-probability word confidence (CTC, RNN-T and TDT decoders all support it)."""
        try:
            from omegaconf import open_dict

            decoding = self.model.cfg.decoding
            with open_dict(decoding):
                decoding.preserve_alignments = True
                decoding.confidence_cfg = {
                    "preserve_word_confidence": True,
                    "preserve_token_confidence": True,
                    "exclude_blank": True,
                    "aggregation": "mean",
                    "method_cfg": {"name": "max_prob"},
                }
            self.model.change_decoding_strategy(decoding)
        except Exception as exc:  # noqa: BLE001 - transcripts still work, without confidence figures
            print(f"nemo_worker: word confidence unavailable: {exc}", file=sys.stderr)

    def transcribe(self, path: str) -> dict[str, Any]:
        started = time.perf_counter()
        hypotheses = self.model.transcribe([path], batch_size=1, timestamps=True, verbose=False)
        if isinstance(hypotheses, tuple):  # older RNN-T models return (best, all)
            hypotheses = hypotheses[0]
        result = hypothesis_json(hypotheses[0])
        words = [w["probability"] for w in result["words"] if w["probability"] is not None]
        elapsed = time.perf_counter() - started
        duration = audio_duration(path)
        return {
            "file": path,
            **result,
            "language": None,
            "confidence": sum(words) / len(words) if words else None,
            "no_vocals": not result["text"],
            "model_id": self.id,
            "model_version": self.version,
            "duration": duration,
            "processing_time": elapsed,
            "real_time_factor": elapsed / duration if duration else None,
            "error": None,
        }


def _answer(model: NemoModel, path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        return {"file": path, "error": "audio file not found"}
    try:
        return model.transcribe(path)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the worker
        return {"file": path, "error": f"{type(exc).__name__}: {exc}"[:500]}


def _emit(out: IO[str], payload: dict[str, Any]) -> None:
    out.write(json.dumps(payload, ensure_ascii=False) + "\n")
    out.flush()


def _protocol_stream() -> IO[str]:
    """A private copy of stdout for protocol lines; fd 1 itself then points at stderr, so anything
    NeMo, Lightning or C extensions print cannot corrupt the protocol."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="path to a .nemo checkpoint")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("files", nargs="*", help="audio files; none = serve JSON requests on stdin")
    args = parser.parse_args(argv)
    out = _protocol_stream()
    if not Path(args.model).is_file():
        _emit(out, {"ready": False, "error": f"model file not found: {args.model}"})
        return 2
    try:
        model = NemoModel(args.model, args.device, args.threads)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as one clear line
        _emit(out, {"ready": False, "error": f"cannot load model: {type(exc).__name__}: {exc}"[:500]})
        return 2
    if args.files:
        for path in args.files:
            _emit(out, _answer(model, path))
        return 0
    _emit(out, {"ready": True, "protocol": PROTOCOL, "model_id": model.id, "model_version": model.version})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            path = str(request["audio"])
        except (ValueError, KeyError, TypeError):
            _emit(out, {"file": None, "error": 'bad request: expected {"audio": path}'})
            continue
        _emit(out, _answer(model, path))
    return 0


if __name__ == "__main__":
    # Run by path, this folder is first on sys.path: its modules (types.py, ...) must not shadow any
    # library NeMo imports later.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.exit(main())
