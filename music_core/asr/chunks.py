"""Decode audio into bounded float32 chunks at 16 kHz mono (memory stays flat for hour-long files)."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from music_core.audio.errors import AudioError

SAMPLE_RATE = 16_000
# A chunk does not end at its exact length, where a word may be sung across the cut and lost to
# both halves: it ends after the quietest quarter second of its last 30 seconds (a pause, mostly).
QUIET_SEARCH_SECONDS = 30.0
QUIET_WINDOW_SECONDS = 0.25


def quiet_cut(audio: np.ndarray, limit: int, search: int, window: int) -> int:
    """Where a chunk of at most ``limit`` samples of ``audio`` ends: after the quietest ``window``
    among the last ``search`` samples before ``limit`` (the latest one of equal quiet)."""
    start = max(0, limit - search)
    region = audio[start:limit].astype(np.float64)
    if region.size <= window:
        return limit
    energy = np.concatenate(([0.0], np.cumsum(region * region)))
    sums = energy[window:] - energy[:-window]  # energy of each window, by where it starts
    latest_quietest = sums.size - 1 - int(np.argmin(sums[::-1]))
    return start + latest_quietest + window


def iter_chunks(source: str, chunk_seconds: float, timeout_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of at most ``chunk_seconds`` (the last may be shorter), each ending
    in the quietest moment near its end (see quiet_cut); together they are the whole file."""
    limit = int(chunk_seconds * SAMPLE_RATE)
    search = int(min(QUIET_SEARCH_SECONDS, chunk_seconds / 4) * SAMPLE_RATE)
    window = int(QUIET_WINDOW_SECONDS * SAMPLE_RATE)
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
                        cut = quiet_cut(joined, limit, search, window)
                        yield joined[:cut]
                        rest = joined[cut:]
                        pending, size = ([rest] if rest.size else []), rest.size
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
                size += pending[-1].shape[0]
        except av.error.FFmpegError as exc:
            raise AudioError(f"converted audio is corrupt: {exc.strerror or exc}") from exc
        if size:
            joined = np.concatenate(pending)
            while joined.size > limit:
                cut = quiet_cut(joined, limit, search, window)
                yield joined[:cut]
                joined = joined[cut:]
            if joined.size:
                yield joined
