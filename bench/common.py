"""Shared helpers for benchmarks: embedded services in a temporary data dir, and the dev audio."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_AUDIO = REPO.parent / "shared" / "dev-audio"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def process_cpu_seconds(pid: int | str) -> float:
    """User + system CPU of one live process (from /proc); OSError when it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def named_cpu_seconds(name: str) -> float:
    """User + system CPU of the live processes called ``name`` (exited ones are not counted)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == name:
                total += process_cpu_seconds(proc.name)
        except (OSError, ValueError, IndexError):
            continue
    return total


def dev_audio_manifest() -> list[dict] | None:
    path = SHARED_AUDIO / "manifest.json"
    if not path.exists():
        print(f"note: {SHARED_AUDIO} is absent; this benchmark needs it for references", file=sys.stderr)
        return None
    return json.loads(path.read_text())


@contextmanager
def pipeline_services(data: Path, **settings_overrides: object) -> Iterator[tuple]:
    """(settings, endpoints, store, instance, resources) on embedded services under ``data``."""
    import dagster as dg

    from music_core.db.migrate import migrate
    from music_core.embedded import EmbeddedServices
    from music_core.settings import Settings
    from music_pipeline.cli import store_for
    from music_pipeline.definitions import build_resources
    from music_pipeline.instance import prepare_dagster_home

    values: dict[str, object] = {
        "data_dir": data, "embedded_s3_port": 28333, "embedded_redis_port": 28390,
        "lyrics_providers": ["tags", "sidecar"],  # benchmarks stay offline and repeatable
    }  # fmt: skip
    values.update(settings_overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type]
    with EmbeddedServices(settings, with_redis=False) as ep:
        os.environ.update(ep.as_env())
        migrate(ep.database_url)
        store = store_for(settings, ep)
        store.ensure_bucket()
        instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))
        try:
            yield settings, ep, store, instance, build_resources(settings)
        finally:
            instance.dispose()
