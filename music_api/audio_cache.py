"""A bounded local disk cache of the audio the API streams.

A listener seeking through a track sends one range request per seek, and every one of them used to be
a GET to the bucket: about 2.7 ms of the object store's CPU and 4 ms of the API's per megabyte range, so
the bucket capped streaming at a fraction of what a web server reads from disk (``make bench-stream``).
When an object is asked for a second time within ``admit_seconds``, one background thread per API
worker copies the whole object here; later requests read the local copy (the page cache is shared by
every worker). A single request (a library scan, a preview) does not push the hot copies out.

Copies are named by the object's key and ETag, written to a ``.part`` file, flushed to disk and renamed
into place, so a reader never sees half a copy and a new version of an object never reuses an old copy.
A copy is used for at most ``revalidate_seconds`` before the object is stat'ed again: a replaced or
deleted object stops being served from here within that time. A copy whose size is wrong is deleted
and made again. Beyond ``max_bytes`` the least recently used copies go first; objects larger than a
quarter of the cache are never copied (they stream from the bucket). Only files named like copies are
ever deleted, and the directory must be private (music_core/private_dir.py)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from music_core.private_dir import private_directory
from music_core.storage import ObjectStore

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
PART = ".part"
_COPY_NAME = re.compile(r"[0-9a-f]{64}(\.[0-9a-f]{16}\.part)?")


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
        admit_seconds: float = 600.0,
        stale_part_seconds: float = 600.0,
        queued: int = 4,
        remembered: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_object_bytes = max_bytes // 4
        self._revalidate, self._admit, self._stale_part = (
            revalidate_seconds,
            admit_seconds,
            stale_part_seconds,
        )
        self._queued, self._remembered, self._clock = queued, remembered, clock
        self._checked: OrderedDict[str, tuple[float, AudioCopy]] = OrderedDict()
        self._asked: OrderedDict[str, float] = OrderedDict()  # keys asked for once, not copied yet
        self._failed: OrderedDict[str, float] = OrderedDict()
        self._filling: set[str] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio-cache")
        private_directory(directory, "audio copies")

    def path(self, key: str, etag: str) -> Path:
        return self.directory / hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()

    def eligible(self, size: int) -> bool:
        return 0 < size <= self.max_object_bytes

    def _remember(self, table: OrderedDict, key: str, value: object) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > self._remembered:
            table.popitem(last=False)

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
        """The copy of this version of the object (its size and ETag from a stat), if there is one. A copy
        of the wrong size (damaged, or cut short by a crash of the disk) is deleted."""
        path = self.path(key, etag)
        try:
            found = os.stat(path, follow_symlinks=False).st_size
            if found == size:
                os.utime(path, follow_symlinks=False)  # the least recently used copies go first
            else:
                path.unlink()
        except OSError:
            found = -1
        if found != size:
            self.forget(key)
            return None
        copy = AudioCopy(path, size, etag)
        with self._lock:
            self._remember(self._checked, key, (self._clock(), copy))
        return copy

    def schedule_fill(self, store: ObjectStore, key: str, size: int, etag: str) -> bool:
        """Copy the object in the background. False when it is not eligible, asked for only once so far,
        already queued or being copied, too many copies are queued, or its last copy failed less than a
        revalidation period ago."""
        if not self.eligible(size) or not etag or self._closing.is_set():
            return False  # without an ETag a copy could not tell one version of the object from another
        now = self._clock()
        with self._lock:
            failed = self._failed.get(key)
            if failed is not None and now - failed < self._revalidate:
                return False
            asked = self._asked.get(key)
            if asked is None or now - asked >= self._admit:
                self._remember(self._asked, key, now)
                return False
            if key in self._filling or len(self._filling) >= self._queued:
                return False
            self._filling.add(key)
            self._asked.pop(key, None)
            self._failed.pop(key, None)
        try:
            self._executor.submit(self._fill_quietly, store, key, etag)
        except RuntimeError:  # closed meanwhile
            with self._lock:
                self._filling.discard(key)
            return False
        return True

    def _fill_quietly(self, store: ObjectStore, key: str, etag: str) -> None:
        try:
            self.fill(store, key, etag)
        except Exception as exc:  # a full disk or a broken connection must not reach the request path
            log.warning("audio cache: copying %s failed: %s", key, exc.__class__.__name__)
            with self._lock:
                self._remember(self._failed, key, self._clock())
            with contextlib.suppress(OSError):
                self.evict()  # a full disk: make room for the next one
        finally:
            with self._lock:
                self._filling.discard(key)

    def fill(self, store: ObjectStore, key: str, etag: str) -> AudioCopy | None:
        """Copy this version of the object. None when it is already there, another worker is copying
        it, the object has changed or gone, or the cache is closing; then evict beyond the size limit.

        Each copy is written to a ``.part`` file of its own (a random name, created exclusively) through
        one descriptor and checked with ``fstat``, so no other writer can ever truncate, replace or
        delete it; two workers that copy the same object at once each rename a complete file."""
        final = self.path(key, etag)
        if final.exists() or self._being_copied(final):
            return None
        opened = store.open_stream(key, CHUNK)
        if opened is None:
            return None
        info, chunks = opened
        part = final.with_name(f"{final.name}.{secrets.token_hex(8)}{PART}")
        done = False
        try:
            if info.etag != etag or not self.eligible(info.size):
                return None
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    if self._closing.is_set():
                        return None
                    out.write(chunk)
                out.flush()
                os.fsync(fd)  # a crash must not leave a renamed copy of zeros
                written = os.fstat(fd).st_size
            if written != info.size:
                raise OSError(f"copied {written} bytes of {info.size}")
            os.replace(part, final)
            done = True
        finally:
            chunks.close()
            if not done:
                part.unlink(missing_ok=True)
        self.evict()
        return AudioCopy(final, info.size, info.etag)

    def _being_copied(self, final: Path) -> bool:
        """Whether another worker is writing this copy (a ``.part`` of it younger than a crash's)."""
        now = time.time()
        for part in self.directory.glob(f"{final.name}.*{PART}"):
            try:
                if now - part.stat(follow_symlinks=False).st_mtime < self._stale_part:
                    return True
            except FileNotFoundError:
                continue
        return False

    def evict(self) -> int:
        """Delete the least recently used copies until the cache (copies being written included) fits
        ``max_bytes``, and ``.part`` files left by crashed workers; the bytes freed. Files not named like
        copies are never touched."""
        copies, total, freed, now = [], 0, 0, time.time()
        for entry in os.scandir(self.directory):
            if not _COPY_NAME.fullmatch(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if entry.name.endswith(PART):
                if now - st.st_mtime >= self._stale_part:
                    freed += _unlink(entry.path, st.st_size)
                else:
                    total += st.st_size
                continue
            copies.append((st.st_mtime, st.st_size, entry.path))
            total += st.st_size
        for _, size, path in sorted(copies):
            if total <= self.max_bytes:
                break
            freed += _unlink(path, size)
            total -= size
        return freed

    def usage(self) -> dict[str, object]:
        """For storage statistics: where the copies are, how many, their bytes and the limit."""
        copies = size = 0
        for entry in os.scandir(self.directory):
            if _COPY_NAME.fullmatch(entry.name) and not entry.name.endswith(PART):
                try:
                    size += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
                copies += 1
        return {"path": str(self.directory), "copies": copies, "bytes": size, "limit_bytes": self.max_bytes}

    def close(self) -> None:
        """Stop: queued copies are dropped and the one being written stops at its next chunk (so a worker
        does not wait for a large copy to finish before it exits)."""
        self._closing.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _unlink(path: str, size: int) -> int:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size
