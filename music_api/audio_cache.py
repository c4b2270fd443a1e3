"""A bounded local disk cache of the audio the API streams.

A listener seeking through a track sends one range request per seek, and every one of them used to be
a GET to the bucket: about 2.7 ms of the object store's CPU and 4 ms of the API's per megabyte range, so
the bucket capped streaming at a fraction of what a web server reads from disk (``make bench-stream``).
After the first request for an object, one background thread per API worker copies the whole object
here; later requests read the local copy (the page cache is shared by every worker).

Copies are named by the object's key and ETag, written to a ``.part`` file and renamed into place, so a
reader never sees half a copy and a new version of an object never reuses an old copy. A copy is used
for at most ``revalidate_seconds`` before the object is stat'ed again: a replaced or deleted object
stops being served from here within that time. Beyond ``max_bytes`` the least recently used copies go
first; objects larger than a quarter of the cache are never copied (they stream from the bucket)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from music_core.storage import ObjectStore

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
PART = ".part"


@dataclass(frozen=True)
class AudioCopy:
    path: Path
    size: int
    etag: str


class AudioCache:
    def __init__(
        self,
        directory: Path,
        max_bytes: int,
        *,
        revalidate_seconds: float = 60.0,
        stale_part_seconds: float = 600.0,
        remembered: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_object_bytes = max_bytes // 4
        self._revalidate, self._stale_part, self._remembered = (
            revalidate_seconds,
            stale_part_seconds,
            remembered,
        )
        self._clock = clock
        self._checked: OrderedDict[str, tuple[float, AudioCopy]] = OrderedDict()
        self._failed: dict[str, float] = {}
        self._filling: set[str] = set()
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio-cache")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, key: str, etag: str) -> Path:
        return self.directory / hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()

    def eligible(self, size: int) -> bool:
        return 0 < size <= self.max_object_bytes

    def fresh(self, key: str) -> AudioCopy | None:
        """The copy of ``key`` found when the object was last stat'ed, if that was recent (no I/O)."""
        with self._lock:
            entry = self._checked.get(key)
            if entry is None:
                return None
            if self._clock() - entry[0] >= self._revalidate:
                del self._checked[key]
                return None
            return entry[1]

    def forget(self, key: str) -> None:
        with self._lock:
            self._checked.pop(key, None)

    def revalidate(self, key: str, size: int, etag: str) -> AudioCopy | None:
        """The copy of this version of the object (its size and ETag from a stat), if there is one."""
        path = self.path(key, etag)
        try:
            found = path.stat().st_size
            os.utime(path)  # the least recently used copies are evicted first
        except FileNotFoundError:
            found = -1
        if found != size:
            self.forget(key)
            return None
        copy = AudioCopy(path, size, etag)
        with self._lock:
            self._checked[key] = (self._clock(), copy)
            self._checked.move_to_end(key)
            while len(self._checked) > self._remembered:
                self._checked.popitem(last=False)
        return copy

    def schedule_fill(self, store: ObjectStore, key: str, size: int) -> bool:
        """Copy the object in the background (one copy at a time per worker). False when it is not
        eligible, already being copied, or its last copy failed less than a revalidation period ago."""
        if not self.eligible(size):
            return False
        with self._lock:
            if key in self._filling or self._clock() - self._failed.get(key, -1e18) < self._revalidate:
                return False
            self._filling.add(key)
        self._executor.submit(self._fill_quietly, store, key)
        return True

    def _fill_quietly(self, store: ObjectStore, key: str) -> None:
        try:
            self.fill(store, key)
        except Exception as exc:  # a full disk or a broken connection must not reach the request path
            log.warning("audio cache: copying %s failed: %s", key, exc.__class__.__name__)
            with self._lock:
                self._failed[key] = self._clock()
        finally:
            with self._lock:
                self._filling.discard(key)

    def fill(self, store: ObjectStore, key: str) -> AudioCopy | None:
        """Copy the current version of the object (None when it is missing, too large, or another
        worker is copying it right now), then evict beyond the size limit."""
        opened = store.open_stream(key, CHUNK)
        if opened is None:
            return None
        info, chunks = opened
        final = self.path(key, info.etag)
        part = final.with_name(final.name + PART)
        try:
            if not self.eligible(info.size) or final.exists() or not self._claim(part):
                return None
            try:
                with part.open("wb") as out:
                    for chunk in chunks:
                        out.write(chunk)
                if part.stat().st_size != info.size:
                    raise OSError(f"copied {part.stat().st_size} bytes of {info.size}")
                os.replace(part, final)
            finally:
                part.unlink(missing_ok=True)
        finally:
            chunks.close()
        self.evict()
        return AudioCopy(final, info.size, info.etag)

    def _claim(self, part: Path) -> bool:
        """Create the ``.part`` file, unless another worker is writing it; one left by a crash is replaced."""
        for _ in range(2):
            try:
                os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                return True
            except FileExistsError:
                try:
                    age = time.time() - part.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < self._stale_part:
                    return False
                part.unlink(missing_ok=True)
        return False

    def evict(self) -> int:
        """Delete the least recently used copies until the cache fits ``max_bytes``; bytes freed."""
        copies = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(PART) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            copies.append((st.st_mtime, st.st_size, entry.path))
        total, freed = sum(c[1] for c in copies), 0
        for _, size, path in sorted(copies):
            if total <= self.max_bytes:
                break
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            total -= size
            freed += size
        return freed

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
