"""Shared by bench_api, bench_stream and bench_export: free loopback ports, embedded services, generated audio registered as real tracks,
and the real API under uvicorn in its own process (so its CPU and memory can be read from /proc)."""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import REPO

BENCH_DIR = Path(__file__).resolve().parent
RATE_LIMIT = 1_000_000_000  # the limiter still runs (Redis round trips) but cannot reject


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_block() -> int:
    """A base port whose SeaweedFS neighbours (base..base+5, base+10001..base+10005) are all free."""
    for _ in range(200):
        base = random.randrange(20000, 30000)
        if all(_port_free(p) for p in [base + i for i in range(6)] + [base + 10000 + i for i in range(1, 6)]):
            return base
    raise RuntimeError("no free port block")


def create_app_without_warm_up() -> Any:
    """The real app, minus the start-up preload of the embedding model (streaming and export never use
    it; ``--warm-up`` in the benches serves ``music_api.main:create_app`` exactly as ``up`` does)."""
    from music_api.main import create_app

    return create_app(warm_up=False)


@contextmanager
def services(data: Path) -> Iterator[tuple[Any, Any, Any]]:
    """(settings, endpoints, store) on embedded PostgreSQL, SeaweedFS and Redis under ``data``."""
    from music_core.db.migrate import migrate
    from music_core.embedded import EmbeddedServices
    from music_core.settings import Settings
    from music_core.storage import ObjectStore

    settings = Settings(_env_file=None, data_dir=data, embedded_s3_port=free_port_block(),
                        embedded_redis_port=free_port())  # type: ignore[call-arg]  # fmt: skip
    with EmbeddedServices(settings) as ep:
        migrate(ep.database_url)
        store = ObjectStore(ep.s3_endpoint, ep.s3_access_key, ep.s3_secret_key, bucket=settings.bucket)
        store.ensure_bucket()
        yield settings, ep, store


def make_audio(path: Path, seconds: float, seed: int) -> Path:
    """A 44.1 kHz 16-bit stereo WAV of pink noise (176,400 bytes per second), made by the project's FFmpeg."""
    from music_core.audio.convert import ffmpeg_exe

    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", f"anoisesrc=d={seconds}:c=pink:r=44100:a=0.3:seed={seed}",
         "-ac", "2", "-c:a", "pcm_s16le", str(path)],
        check=True,
    )  # fmt: skip
    return path


def api_env(settings: Any, ep: Any, api_key: str) -> dict[str, str]:
    from music_core.passwords import hash_key, hash_password

    return {**os.environ, **ep.as_env(), "MUSIC_BUCKET": settings.bucket, "MUSIC_DATA_DIR": str(settings.data_dir),
            "MUSIC_API_KEYS": json.dumps([f"bench:reader:{hash_key(api_key)}"]),
            "MUSIC_API_USERS": json.dumps([f"benchuser:reader:{hash_password(secrets.token_urlsafe(12))}"]),
            "MUSIC_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT), "PYTHONPATH": f"{REPO}{os.pathsep}{BENCH_DIR}"}  # fmt: skip


def start_api(
    env: dict[str, str], log: Path, *, workers: int = 1, warm_up: bool = False
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    app = "music_api.main:create_app" if warm_up else "serving:create_app_without_warm_up"
    args = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    return proc, f"http://127.0.0.1:{port}"


def start_search_service(env: dict[str, str], socket: Path, log: Path) -> subprocess.Popen:
    """``python -m music_api.search_service`` as `up` runs it; returns once its model and index are
    loaded. Sets MUSIC_SEARCH_SOCKET in ``env`` for the API started after it."""
    from music_api.search_client import RemoteSemanticIndex

    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "music_api.search_service", "--socket", str(socket)],
            env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    env["MUSIC_SEARCH_SOCKET"] = str(socket)
    client = RemoteSemanticIndex(socket)
    try:
        loaded = client.wait_until_loaded(300, alive=lambda: proc.poll() is None)
    finally:
        client.close()
    if loaded:
        return proc
    if proc.poll() is not None:
        raise RuntimeError(f"the search service exited with {proc.returncode}; see {log}")
    stop_api(proc)
    raise TimeoutError("the search service did not load its model")


def stop_api(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the API did not become healthy")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of one process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
