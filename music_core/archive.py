"""Streamed archives (zip via stream-zip, tar.gz via tarfile in stream mode): constant memory, the
bytes of each member are pulled from the object store only when the archive writer reaches them."""

from __future__ import annotations

import datetime as dt
import io
import queue
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from stream_zip import ZIP_AUTO, stream_zip

from music_core.naming import safe_relative_key


@dataclass(frozen=True)
class Member:
    path: str  # inside the archive; made safe here
    size: int
    modified: dt.datetime
    chunks: Callable[[], Iterable[bytes]]  # called lazily, once


def safe_member_path(path: str) -> str:
    """No absolute paths, no ``..``, no control characters, bounded segments."""
    return safe_relative_key(path.lstrip("/"))


def zip_stream(members: Iterable[Member]) -> Iterator[bytes]:
    def files() -> Iterator[tuple]:
        for m in members:
            # ZIP_AUTO picks zip64 only when a member needs it; audio does not compress, text does.
            yield safe_member_path(m.path), m.modified, 0o644, ZIP_AUTO(m.size), m.chunks()

    yield from stream_zip(files())


class _QueueWriter(io.RawIOBase):
    """A write-only file feeding a bounded queue: the writer thread blocks while the client is slow."""

    def __init__(self, out: queue.Queue, stop: threading.Event) -> None:
        self.out, self.stop = out, stop

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        while True:
            if self.stop.is_set():
                raise BrokenPipeError("the client stopped reading")
            try:
                self.out.put(bytes(data), timeout=0.2)
                return len(data)
            except queue.Full:
                continue


class _ChunkReader(io.RawIOBase):
    """Adapts an iterable of chunks to the read() tarfile expects."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


_DONE = object()


def tar_gz_stream(members: Iterable[Member], max_pending: int = 16) -> Iterator[bytes]:
    """tarfile writes synchronously, so it runs in a thread; a bounded queue carries its output.
    At most ``max_pending`` writes (tens of KB each) are held at once, whatever the member sizes."""
    out: queue.Queue = queue.Queue(maxsize=max_pending)
    failure: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        try:
            with tarfile.open(fileobj=_QueueWriter(out, stop), mode="w|gz") as tar:  # type: ignore[call-overload]
                for m in members:
                    info = tarfile.TarInfo(safe_member_path(m.path))
                    info.size, info.mtime, info.mode = m.size, int(m.modified.timestamp()), 0o644
                    tar.addfile(info, io.BufferedReader(_ChunkReader(m.chunks()), buffer_size=256 * 1024))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            if not stop.is_set():
                failure.append(exc)
        finally:
            while True:  # a slow client may still be reading: wait for room unless it left
                try:
                    out.put(_DONE, timeout=0.2)
                    break
                except queue.Full:
                    if stop.is_set():
                        break

    worker = threading.Thread(target=write, daemon=True, name="tar-writer")
    worker.start()
    try:
        while (item := out.get()) is not _DONE:
            yield item
    finally:
        stop.set()  # the client went away (or we are done): the writer stops at its next write
        worker.join(timeout=5)
    if failure:
        raise failure[0]
