"""Helpers to find processes that belong to one data directory (for no-orphan checks)."""

from __future__ import annotations

from pathlib import Path

import psutil


def processes_using(data_dir: Path) -> list[psutil.Process]:
    marker = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.environ() if marker not in cmdline else {}
            if (
                marker in cmdline
                or marker in environ.get("DAGSTER_HOME", "")
                or marker in environ.get("MUSIC_DATA_DIR", "")
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found
