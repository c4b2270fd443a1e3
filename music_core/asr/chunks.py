"""Decode audio into bounded float32 chunks at 16 kHz mono (memory stays flat for hour-long files)."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from music_core.audio.errors import AudioError

SAMPLE_RATE = 16_000


def iter_chunks(source: str, chunk_seconds: float, timeout_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of at most ``chunk_seconds`` (the last may be shorter)."""
    limit = int(chunk_seconds * SAMPLE_RATE)
    try:
        container = av.open(source, timeout=timeout_seconds)
    except av.error.FFmpegError as exc:
        raise AudioError(f"cannot read converted audio: {exc.strerror or exc}") from exc
    with container:
        if not container.streams.audio:
            raise AudioError("converted audio has no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        size = 0
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    size += pending[-1].shape[0]
                    while size >= limit:
                        joined = np.concatenate(pending)
                        yield joined[:limit]
                        rest = joined[limit:]
                        pending, size = ([rest] if rest.size else []), rest.size
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
                size += pending[-1].shape[0]
        except av.error.FFmpegError as exc:
            raise AudioError(f"converted audio is corrupt: {exc.strerror or exc}") from exc
        if size:
            joined = np.concatenate(pending)
            while joined.size:
                yield joined[:limit]
                joined = joined[limit:]
