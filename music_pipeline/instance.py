"""The Dagster instance home: $DAGSTER_HOME with this project's dagster.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

from music_core.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def prepare_dagster_home(settings: Settings) -> Path:
    home = settings.data_path / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home
