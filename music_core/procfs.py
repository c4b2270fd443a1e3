"""Process facts from Linux's /proc, for deciding whether processes we started still run."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the process name: state, ppid, pgrp, …; None when the
    process is gone or /proc is unreadable."""
    try:
        return (PROC / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def started_at(pid: int) -> float | None:
    """When a process started, in seconds since the epoch; None where that is unreadable."""
    fields = stat_fields(pid)
    try:
        with (PROC / "stat").open("rb") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith(b"btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    if fields is None:
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat: start time in ticks


def group_has_running(pgid: int) -> bool:
    """Whether a process of the group still runs; exited ones nobody reaped yet do not count.
    Without a readable /proc, any member counts."""
    if not PROC.is_dir():
        return True
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(entry.name)
        if fields is not None and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
