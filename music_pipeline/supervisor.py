"""`music-analyzer up`: services, migrations, Dagster webserver + daemon and the API, under one roof.

Ctrl-C (or SIGTERM) stops every process started here, children first, then the embedded services.
Running it again resumes on the same data directory.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from music_api.search_client import RemoteSemanticIndex
from music_core.bucket_cors import put_bucket_cors
from music_core.db.migrate import migrate
from music_core.embedded import (
    EmbeddedServices,
    port_is_open,
    spawn_logged,
    wait_until,
    with_generated_secrets,
)
from music_core.procfs import group_has_running
from music_core.settings import Settings
from music_core.uploads import LocalFile, expand_paths, upload_to_inbox
from music_pipeline.cli import store_for
from music_pipeline.instance import PROJECT_ROOT, prepare_dagster_home

DEMO_DIR = PROJECT_ROOT / "demo"


class Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)  # Dagster shuts its code servers down on SIGINT
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass  # a code server waits for its run workers: the group is ended below
            except ProcessLookupError:
                pass
        end_process_group(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return group_has_running(pgid)  # not only zombies nobody reaped yet


def end_process_group(pgid: int, grace: float = 10.0) -> None:
    """End what a child left in its process group. The daemon's code server and a run worker it
    started outlive the daemon on SIGINT, and a run worker ignores it: it then went on working
    against services that were being stopped, and its run looked alive to the next start."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _group_alive(pgid):
            return
        try:
            os.killpg(pgid, sig)
        except OSError:  # gone, or the id now belongs to someone else's processes
            return
        deadline = time.monotonic() + wait
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    return Child(name, spawn_logged(args, log, cwd=PROJECT_ROOT, env=env), log)


def _upload_demo(settings: Settings, store) -> int:  # noqa: ANN001
    marker = settings.data_path / ".demo-uploaded"
    if marker.exists() or not DEMO_DIR.is_dir():
        return 0
    count = 0
    for item in expand_paths([DEMO_DIR]):
        if isinstance(item, LocalFile):
            upload_to_inbox(store, settings.inbox_prefix, item)
            count += 1
    marker.write_text("demo audio uploaded once; delete this file to upload it again\n")
    return count


def _banner(settings: Settings, env: dict[str, str], token: str, demo: int, logs: Path) -> str:
    s3 = env["MUSIC_S3_ENDPOINT"]
    lines = [
        "",
        "music-analyzer is up",
        f"  Dagster UI      http://{settings.dagster_host}:{settings.dagster_port}",
        f"  API             http://{settings.api_host}:{settings.api_port}  (docs at /docs)",
        f"  API token       {token}   (Authorization: Bearer <token>)",
        f"  S3 endpoint     http://{s3}  bucket '{settings.bucket}'",
        f"  S3 access key   {env['MUSIC_S3_ACCESS_KEY']}",
        f"  S3 secret key   {env['MUSIC_S3_SECRET_KEY']}",
        f"  data directory  {settings.data_path}",
        f"  logs            {logs}",
        "",
        f"Add music: upload into s3://{settings.bucket}/{settings.inbox_prefix} with any S3 client, or run",
        "  .venv/bin/music-analyzer ingest ~/Music",
        "New files are registered and processed automatically (the sensors are on).",
    ]
    if demo:
        lines.append(f"{demo} demo files were uploaded to the inbox; watch them in the Dagster UI.")
    lines += ["Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def page_origins(settings: Settings) -> list[str]:
    """Origins the web page is served from (loopback has two spellings), plus configured CORS origins."""
    hosts = [settings.api_host]
    if settings.api_host in {"127.0.0.1", "localhost", "0.0.0.0"}:  # noqa: S104 - only compared
        hosts = ["127.0.0.1", "localhost"]
    return list(dict.fromkeys([*(f"http://{h}:{settings.api_port}" for h in hosts), *settings.cors_origins]))


def _listeners(settings: Settings) -> list[tuple[str, int, str]]:
    """(host to reach, port, name) of what `up` serves; a wildcard bind is reached on loopback."""

    def reachable(host: str) -> str:
        return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - a bind address

    return [
        (reachable(settings.api_host), settings.api_port, "API"),
        (reachable(settings.dagster_host), settings.dagster_port, "Dagster UI"),
    ]


# The name a python_module target gets: runs and the UI keep the same code location as before.
CODE_LOCATION = "music_pipeline.definitions"


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def code_server_workspace(dagster_home: Path, port: int) -> Path:
    """A workspace that points the daemon and the webserver at `up`'s own code server. Loading
    workspace.yaml's python_module themselves, they each start a code server, and the daemon starts
    a fresh one every 60 s (Dagster's RELOAD_WORKSPACE_INTERVAL): several CPU-seconds a minute of a
    2-core machine, on an idle pipeline."""
    path = dagster_home / "workspace.yaml"
    path.write_text(
        "# Written by `music-analyzer up` at each start.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {port}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )
    return path


def run_until_stopped(settings: Settings, upload_demo: bool = True) -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    for host, port, what in _listeners(settings):
        if port_is_open(port, host):
            print(
                f"port {port} for the {what} is already in use; is another instance running?", file=sys.stderr
            )
            return 1
    services = EmbeddedServices(settings)
    children: list[Child] = []
    try:
        ep = services.start()
        migrate(ep.database_url)
        store = store_for(settings, ep)
        store.ensure_bucket()
        settings = with_generated_secrets(settings)  # configured values win over the data dir's
        assert settings.api_token is not None and settings.secret_key is not None
        token, secret_key = settings.api_token.get_secret_value(), settings.secret_key.get_secret_value()
        # The web page uploads straight to the bucket through presigned URLs: allow its origin only.
        put_bucket_cors(store, page_origins(settings))
        dagster_home = prepare_dagster_home(settings)
        _end_stopped_runs(dagster_home, ep.as_env())
        env = {
            **os.environ,
            **ep.as_env(),
            "DAGSTER_HOME": str(dagster_home),
            "MUSIC_API_TOKEN": token,
            "MUSIC_SECRET_KEY": secret_key,
            "MUSIC_DATA_DIR": str(settings.data_path),
        }
        bindir = Path(sys.executable).parent
        logs = settings.data_path / "logs"
        code_port = free_loopback_port()
        children.append(
            _spawn(
                "dagster-code-server",
                [str(bindir / "dagster"), "code-server", "start", "-m", CODE_LOCATION,
                 "-d", str(PROJECT_ROOT), "--location-name", CODE_LOCATION,
                 "-h", "127.0.0.1", "-p", str(code_port)],
                env, logs,
            )
        )  # fmt: skip
        wait_until(lambda: port_is_open(code_port) or _any_dead(children), 180, "Dagster code server")
        if _any_dead(children):  # e.g. its port was taken meanwhile: say so before starting the rest
            print(f"the Dagster code server exited; see {children[-1].log}", file=sys.stderr)
            return 1
        workspace = str(code_server_workspace(dagster_home, code_port))
        children.append(
            _spawn("dagster-daemon", [str(bindir / "dagster-daemon"), "run", "-w", workspace], env, logs)
        )
        children.append(
            _spawn(
                "dagster-webserver",
                [str(bindir / "dagster-webserver"), "-w", workspace,
                 "-h", settings.dagster_host, "-p", str(settings.dagster_port)],
                env, logs,
            )
        )  # fmt: skip
        # One search service holds the query encoder and the vector index for every API worker.
        search_socket = search_socket_path(settings.data_path)
        env["MUSIC_SEARCH_SOCKET"] = str(search_socket)
        children.append(
            _spawn("search-service", [sys.executable, "-m", "music_api.search_service", "--socket", str(search_socket)],
                   env, logs)
        )  # fmt: skip
        children.append(
            _spawn(
                "api",
                [sys.executable, "-m", "uvicorn", "music_api.main:create_app", "--factory",
                 "--host", settings.api_host, "--port", str(settings.api_port),
                 "--workers", str(settings.api_workers), "--no-access-log"],
                env, logs,
            )
        )  # fmt: skip
        demo = _upload_demo(settings, store) if upload_demo else 0
        for host, port, what in _listeners(settings):
            wait_until(lambda h=host, p=port: port_is_open(p, h) or _any_dead(children), 180, what)
            if _any_dead(children):
                break
        if not _any_dead(children):
            print(_banner(settings, env, token, demo, logs), flush=True)
            print("semantic search: the search service is loading its model...", flush=True)
        search = SearchReadiness(search_socket)
        while not _any_dead(children):
            search.report_once_ready()
            time.sleep(1)
        dead = [c for c in children if c.proc.poll() is not None]
        for child in dead:
            print(
                f"{child.name} exited with {child.proc.returncode}; last lines of {child.log}:",
                file=sys.stderr,
            )
            print("\n".join(child.log.read_text(errors="replace").splitlines()[-20:]), file=sys.stderr)
        return 1
    except Stop:
        print("\nstopping...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        services.stop()
        print("stopped.", flush=True)


class SearchReadiness:
    """Says once that semantic search answers: until the search service has loaded its model (about a
    minute on a first start, which exports the encoder) semantic searches get 503 "loading"."""

    def __init__(self, socket: Path) -> None:
        # Quiet: failing to connect while the service starts is expected, not worth a warning.
        self.client = RemoteSemanticIndex(socket, health_timeout=0.5, log_failures=False)
        self.done = False

    def report_once_ready(self) -> None:
        if not self.done and self.client.ready():
            self.done = True
            self.client.close()
            print("semantic search is ready.", flush=True)


def _end_stopped_runs(dagster_home: Path, service_env: dict[str, str]) -> None:
    """Runs the last stop or crash left looking in flight are ended before the daemon starts: its
    run queue would count them forever, and their tracks would never be repaired."""
    import dagster as dg

    from music_pipeline.recovery import end_stopped_runs

    os.environ.update(service_env)  # dagster.yaml reads the database URL from the environment
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            ended = end_stopped_runs(instance)
    except Exception as exc:  # noqa: BLE001 - the sensor does it again once the daemon runs
        print(f"warning: could not check for runs the last stop left behind: {exc}", file=sys.stderr)
        return
    if ended:
        print(f"{len(ended)} run(s) stopped with the last `up` marked failed; their tracks run again.")


def search_socket_path(data_path: Path) -> Path:
    """<data>/run/search.sock, or, when that path is too long for a Unix socket (108 bytes on Linux), a
    directory of this user's own directly in $XDG_RUNTIME_DIR or the temp dir (sticky: nobody else can
    rename it), one per data dir."""
    socket = data_path / "run" / "search.sock"
    if len(os.fsencode(socket)) <= 100:
        return socket
    digest = hashlib.sha256(os.fsencode(data_path)).hexdigest()[:12]
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"music-analyzer-{os.getuid()}-{digest}" / "search.sock"


def _any_dead(children: list[Child]) -> bool:
    return any(c.proc.poll() is not None for c in children)
