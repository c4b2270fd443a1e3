"""`music-analyzer up` as a new user runs it: demo files flow through every stage without a click,
Ctrl-C leaves no process behind, and a second start resumes on the same data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from music_core.procfs import stat_fields
from music_pipeline.supervisor import end_process_group
from tests.conftest import OFFLINE_PROVIDERS, free_port, free_port_block
from tests.lifecycle import processes_using
from tests.test_embedded import wait_gone

DEMO_TRACKS = 6  # demo/ holds six media files with distinct content


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "music_pipeline.cli", "up"],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float, proc: subprocess.Popen, log: Path):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"timed out; log tail:\n{log.read_text()[-3000:]}")


def tracks(api: str, token: str) -> dict | None:
    try:
        r = httpx.get(f"{api}/tracks", params={"limit": 50}, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def stop(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    return proc.wait(90)


def test_up_processes_demo_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    api_port, ui_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_") and k != "DAGSTER_HOME"} | {
        "MUSIC_DATA_DIR": str(data),
        "MUSIC_API_PORT": str(api_port),
        "MUSIC_DAGSTER_PORT": str(ui_port),
        "MUSIC_EMBEDDED_S3_PORT": str(free_port_block()),
        "MUSIC_EMBEDDED_REDIS_PORT": str(free_port()),
        "MUSIC_SENSOR_INTERVAL_SECONDS": "5",
        "MUSIC_LYRICS_PROVIDERS": OFFLINE_PROVIDERS,
    }
    log = tmp_path / "up.log"
    api = f"http://127.0.0.1:{api_port}"
    proc = start(env, log)
    try:
        wait_for(lambda: "music-analyzer is up" in log.read_text(), 240, proc, log)
        token = json.loads((data / "secrets.json").read_text())["api_token"]
        text = log.read_text()
        assert token in text and f"http://127.0.0.1:{ui_port}" in text

        def all_done() -> dict | None:
            page = tracks(api, token)
            if not page or page["total"] < DEMO_TRACKS:
                return None
            finished = all(
                i["stages"].get("comparison") in {"done", "failed", "skipped"} for i in page["items"]
            )
            return page if finished else None

        page = wait_for(all_done, 300, proc, log)
        assert page["total"] == DEMO_TRACKS
        for item in page["items"]:
            assert item["stages"]["converted_audio"] == item["stages"]["transcription"] == "done", item
        # Semantic search goes through the search service `up` started for the API workers.
        text = log.read_text()
        assert text.index("music-analyzer is up") < text.index("semantic search is ready.")
        auth = {"Authorization": f"Bearer {token}"}
        found = httpx.get(f"{api}/search", params={"q": "ask not what your country can do", "mode": "semantic"},
                          headers=auth, timeout=60)  # fmt: skip
        assert found.status_code == 200 and found.json()["results"], found.text
        assert httpx.get(f"{api}/health").json()["checks"]["search_service"]["ok"] is True
        ui = httpx.get(f"http://127.0.0.1:{ui_port}/server_info")
        assert ui.status_code == 200
    finally:
        code = stop(proc) if proc.poll() is None else proc.returncode
    assert code == 0, log.read_text()[-3000:]
    assert "stopped." in log.read_text()
    assert wait_gone(data) == []

    # Second start: resumes on the same data, uploads no demo again, and stops cleanly again.
    log2 = tmp_path / "up2.log"
    proc = start(env, log2)
    try:
        wait_for(lambda: "music-analyzer is up" in log2.read_text(), 240, proc, log2)
        page = wait_for(lambda: tracks(api, token), 60, proc, log2)
        assert page["total"] == DEMO_TRACKS
        assert "demo files were uploaded" not in log2.read_text()
    finally:
        code = stop(proc) if proc.poll() is None else proc.returncode
    assert code == 0
    assert wait_gone(data) == [], [p.cmdline() for p in processes_using(data)]


def test_each_listener_is_checked_on_its_own_host(tmp_path: Path) -> None:
    """The API may listen on the LAN while Dagster stays on loopback: each port is probed where it
    listens (probing Dagster on the API's address timed out after 180 s and tore everything down)."""
    from music_core.settings import Settings
    from music_pipeline.supervisor import _listeners

    lan = Settings(_env_file=None, data_dir=tmp_path, api_host="192.168.1.10")  # type: ignore[call-arg]
    assert _listeners(lan) == [
        ("192.168.1.10", lan.api_port, "API"), ("127.0.0.1", lan.dagster_port, "Dagster UI"),
    ]  # fmt: skip
    everywhere = Settings(_env_file=None, data_dir=tmp_path, api_host="0.0.0.0", dagster_host="0.0.0.0")  # type: ignore[call-arg]  # noqa: S104
    assert [host for host, _, _ in _listeners(everywhere)] == ["127.0.0.1", "127.0.0.1"]


def test_stopping_a_child_ends_what_it_left_in_its_process_group() -> None:
    """A run worker outlives the daemon that started it and ignores SIGINT and SIGTERM."""
    child = subprocess.Popen(
        ["sh", "-c", "sh -c 'trap \"\" INT TERM; sleep 300' & echo $!; exit 0"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    grandchild = int(child.stdout.readline())
    child.wait(10)
    started = time.monotonic()
    end_process_group(child.pid, grace=1.0)
    assert time.monotonic() - started < 10
    assert not _running(grandchild)


def _running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def test_the_search_socket_fits_a_unix_socket_path(tmp_path: Path) -> None:
    from music_pipeline.supervisor import search_socket_path

    assert search_socket_path(tmp_path) == tmp_path / "run" / "search.sock"
    deep = tmp_path / ("a-very-long-folder-name-" * 6) / "data"
    other = tmp_path / ("a-very-long-folder-name-" * 6) / "data2"
    socket = search_socket_path(deep)
    assert len(os.fsencode(socket)) <= 100 and socket.name == "search.sock"
    assert socket != search_socket_path(other)  # two data dirs never share a service
