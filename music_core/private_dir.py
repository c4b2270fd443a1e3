"""Directories that hold what other local users must not replace or read (a socket, audio copies)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotPrivate(RuntimeError):
    pass


def private_directory(directory: Path, purpose: str) -> None:
    """Create ``directory`` 0700, or accept an existing one only if it is a real directory (not a link) of
    ours that no other user can write to: someone who could would be able to put their own files in
    place of ours. An existing directory's mode is never changed."""
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise NotPrivate(f"{directory} is not a directory")
    if info.st_uid != os.getuid():
        raise NotPrivate(f"{directory} belongs to another user; choose a directory of your own for {purpose}")
    if info.st_mode & 0o022:
        raise NotPrivate(f"other users may write to {directory}; choose a private directory for {purpose}")
