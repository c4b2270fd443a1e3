"""The API process stays light: every uvicorn worker carries what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("dagster", "av", "torch", "transformers", "faster_whisper", "music_core.stages", "music_pipeline")
ENCODER = ("numpy", "faiss", "onnxruntime", "tokenizers", "music_api.semantic")


def loaded_after(setup: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``setup``."""
    code = f"import json, sys\n{setup}\nprint(json.dumps([m for m in {modules!r} if m in sys.modules]))\n"
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_api_loads_no_pipeline_code_and_no_decoder() -> None:
    """Dagster, the stage code with PyAV's FFmpeg libraries (16 MB of every worker, pulled in by the
    stage names retention needs), torch and transformers stay out of the API."""
    assert loaded_after("import music_api.main", HEAVY) == []


def test_with_the_search_service_a_worker_loads_no_encoder_index_or_numpy() -> None:
    """A worker that uses the search service builds its app without numpy, FAISS, ONNX Runtime or the
    tokenizers (about 50 MB of each worker, before the model and the index)."""
    setup = (
        "from music_api.main import create_app\n"
        "from music_core.settings import Settings\n"
        "create_app(Settings(_env_file=None, database_url='postgresql://x@127.0.0.1:1/x',"
        " s3_endpoint='127.0.0.1:1', redis_url='redis://127.0.0.1:1/0', api_token='t' * 32,"
        " search_socket='/nonexistent/search.sock'))"
    )
    assert loaded_after(setup, ENCODER) == []
    without = setup.replace(", search_socket='/nonexistent/search.sock'", "")
    assert "music_api.semantic" in loaded_after(without, ENCODER)  # the check can fail: in process it loads
