"""The API process stays light: every uvicorn worker carries what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("dagster", "av", "torch", "transformers", "faster_whisper", "music_core.stages", "music_pipeline")


def test_the_api_loads_no_pipeline_code_and_no_decoder() -> None:
    """Dagster, the stage code with PyAV's FFmpeg libraries (16 MB of every worker, pulled in by the
    stage names retention needs), torch and transformers stay out of the API."""
    code = (
        "import json, sys\n"
        "import music_api.main\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
