"""Streaming benchmark: the API's GET /tracks/{id}/audio (real uvicorn, audio read from the embedded
SeaweedFS) against Debian's nginx serving the same file from local disk with sendfile, in the same run.

One ~10 MB WAV is registered as a real track. For each server, N client threads (each with one keep-alive
connection, raw sockets so the client costs little CPU) first do random 1 MB range GETs, then whole-file
GETs, for a fixed time each. Every response is checked byte for byte against the file (and a sample by
sha256, which for the whole file is the track id), so a fast wrong answer cannot win. As a reference the
same GETs also go straight to SeaweedFS (a presigned URL; the Range header is not signed): the ceiling of
anything that streams from the bucket. Prints one JSON object: MB/s (10^6 bytes) per server and phase, the
API/nginx ratios, latencies, errors, CPU seconds of each server; target API/nginx >= 0.5.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench_api import machine_busy, percentile, tree_cpu_seconds
from serving import api_env, free_port, make_audio, services, start_api, stop_api, wait_healthy

RANGE = 1_000_000
TARGET = 0.5


# --- nginx ---------------------------------------------------------------------------------------------


def nginx_exe() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise SystemExit("nginx is not installed: run `make nginx` (Debian's nginx package)")
    return found


def start_nginx(work: Path, root: Path, workers: int) -> tuple[subprocess.Popen, str]:
    """nginx in the foreground with its own config, pid file, logs and temp dirs under ``work``."""
    port = free_port()
    temp = work / "nginx-temp"
    temp.mkdir()
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers would otherwise drop to nobody
    conf = work / "nginx.conf"
    conf.write_text(f"""{user}daemon off;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {work}/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    types {{ audio/wav wav; }}
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
    log = (work / "nginx-stderr.log").open("ab")
    proc = subprocess.Popen(
        [nginx_exe(), "-p", str(work), "-c", str(conf), "-e", str(work / "nginx-error.log")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"nginx exited with {proc.returncode}: {(work / 'nginx-error.log').read_text()}"
            )
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    stop_nginx(proc)
    raise TimeoutError("nginx did not start listening")


def stop_nginx(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# --- a lean HTTP/1.1 client -------------------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive connection; bodies are received straight into a buffer (recv_into)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.address = (host, port)
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.sock: socket.socket | None = None
        self.pending = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self, path: str, extra: dict[str, str]) -> tuple[int, dict[str, str], bytearray]:
        if self.sock is None:
            self.sock = self._connect()
        sock = self.sock
        lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        sock.sendall(f"GET {path} HTTP/1.1\r\n{self.fixed}{lines}\r\n".encode())
        data = self.pending
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                self.close()
                raise HttpError("connection closed before the headers")
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        if "content-length" not in headers:
            self.close()
            raise HttpError("no Content-Length")
        n = int(headers["content-length"])
        body = bytearray(n)
        view = memoryview(body)
        got = min(n, len(rest))
        view[:got] = rest[:got]
        self.pending = rest[got:]
        while got < n:
            k = sock.recv_into(view[got:], n - got)
            if k == 0:
                self.close()
                raise HttpError("connection closed in the body")
            got += k
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body


# --- load -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    sha256_checked: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def run_phase(
    base_url: str, path: str, headers: dict[str, str], data: bytes, digest: str, *, whole: bool,
    clients: int, duration: float, seed: int, sha_every: int,
) -> dict[str, Any]:  # fmt: skip
    host, port = base_url.removeprefix("http://").split(":")
    size = len(data)
    source = memoryview(data)
    tallies = [Tally() for _ in range(clients)]
    clock = {"started": 0.0, "deadline": 0.0}

    def go() -> None:  # run by the last thread to reach the barrier, before any is released
        clock["started"] = time.perf_counter()
        clock["deadline"] = clock["started"] + duration

    start_gate = threading.Barrier(clients + 1, action=go)

    def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        conn = Connection(host, int(port), headers)
        tally = tallies[n]
        try:
            conn.get(path, {"Range": "bytes=0-1023"})  # connect and warm up, unmeasured
        except (OSError, HttpError) as exc:
            tally.error(f"warm-up: {type(exc).__name__}")
        start_gate.wait()
        count = 0
        while time.perf_counter() < clock["deadline"]:
            if whole:
                first, last, extra = 0, size - 1, {}
            else:
                first = rng.randrange(0, size - RANGE + 1)
                last = first + RANGE - 1
                extra = {"Range": f"bytes={first}-{last}"}
            started = time.perf_counter()
            try:
                status, got, body = conn.get(path, extra)
            except (OSError, HttpError) as exc:
                tally.error(type(exc).__name__)
                conn.close()
                continue
            elapsed = (time.perf_counter() - started) * 1000
            count += 1
            expected_status = 200 if whole else 206
            if status != expected_status:
                tally.error(f"HTTP {status}")
            elif not whole and got.get("content-range") != f"bytes {first}-{last}/{size}":
                tally.error("wrong Content-Range")
            elif body != source[first : last + 1]:
                tally.error("wrong bytes")
            elif count % sha_every == 0 and not _sha_ok(body, data, first, last, digest, whole):
                tally.error("wrong sha256")
            else:
                tally.latencies_ms.append(elapsed)
                tally.bytes += len(body)
                tally.sha256_checked += count % sha_every == 0
        conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start_gate.wait()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - clock["started"]
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    ok = sorted(x for t in tallies for x in t.latencies_ms)
    errors: dict[str, int] = {}
    for t in tallies:
        for k, v in t.errors.items():
            errors[k] = errors.get(k, 0) + v
    total = sum(t.bytes for t in tallies)
    return {
        "mb_per_s": round(total / seconds / 1e6, 1), "requests_ok": len(ok), "errors": errors,
        "error_count": sum(errors.values()), "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95),
        "seconds": round(seconds, 2), "bytes": total, "sha256_checked": sum(t.sha256_checked for t in tallies),
        "client_cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2),
    }  # fmt: skip


def _sha_ok(body: bytearray, data: bytes, first: int, last: int, digest: str, whole: bool) -> bool:
    want = digest if whole else hashlib.sha256(memoryview(data)[first : last + 1]).hexdigest()
    return hashlib.sha256(body).hexdigest() == want


def service_pids(data: Path) -> dict[str, int]:
    """The embedded services started under ``data`` (top processes only: their trees are summed)."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if any(str(data).encode() in a for a in argv):
            found[int(entry.name)] = (Path(argv[0].decode(errors="replace")).name, ppid)
    return {f"{name}-{pid}": pid for pid, (name, ppid) in found.items() if ppid not in found}


def measured(
    name: str, pids: dict[str, int], fn: Any, profile: Path | None = None, **kwargs: Any
) -> dict[str, Any]:
    """``fn`` with the CPU of the servers and the machine around it; with ``profile``, py-spy samples
    the API meanwhile (collapsed stacks, for flame graphs)."""
    spy = None
    if profile is not None and "api" in pids:
        profile.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pids["api"]), "--subprocesses",
             "--gil", "--format", "raw", "--rate", "100", "--duration", str(int(kwargs["duration"])),
             "--output", str(profile / f"{name.replace(' ', '-')}.txt"), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu0 = {k: tree_cpu_seconds(p) for k, p in pids.items()}
    busy0 = machine_busy()
    result = fn(**kwargs)
    busy1 = machine_busy()
    if spy is not None:
        spy.wait(60)
    result["server_cpu_s"] = {k: round(tree_cpu_seconds(p) - cpu0[k], 1) for k, p in pids.items()}
    result["machine_busy_fraction"] = round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3)
    print(f"{name}: {result['mb_per_s']} MB/s, {result['requests_ok']} ok, {result['error_count']} errors",
          file=sys.stderr)  # fmt: skip
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients (threads, one connection each)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per server and phase")
    parser.add_argument("--seconds-of-audio", type=float, default=60.0, help="WAV length (60 s = 10.6 MB)")
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn workers (`up` runs 2)")
    parser.add_argument("--nginx-workers", type=int, default=2, help="nginx worker_processes")
    parser.add_argument("--sha-every", type=int, default=8, help="sha256 every n-th response of a client")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the four measurements, alternating servers"
    )
    parser.add_argument("--warm-up", action="store_true", help="preload the embedding model, as `up` does")
    parser.add_argument("--no-copies", dest="copies", action="store_false",
                        help="MUSIC_STREAM_CACHE_BYTES=0: every GET from the bucket (a cold object's path)")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="py-spy the API during its phases into this folder")
    parser.add_argument("--no-s3-direct", dest="s3_direct", action="store_false",
                        help="skip the reference runs that GET the same object straight from SeaweedFS")  # fmt: skip
    args = parser.parse_args()

    from music_core.ingest import register_local_file
    from music_core.naming import original_key

    report: dict[str, Any] = {"benchmark": "stream", "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                              "cores": os.cpu_count(), "clients": args.clients, "duration_s": args.duration,
                              "range_bytes": RANGE, "api_workers": args.api_workers, "copies": args.copies,
                              "nginx_workers": args.nginx_workers, "target_ratio": TARGET}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        work = Path(tmp)
        audio = make_audio(work / "bench-stream.wav", args.seconds_of_audio, seed=5)
        with services(work / "data") as (settings, ep, store):
            upload = register_local_file(store, ep.database_url, audio, "bench-stream.wav")
            data = audio.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != upload.track_id:
                raise RuntimeError("the track id is not the file's sha256")
            www = work / "www"
            www.mkdir()
            shutil.copyfile(audio, www / "bench-stream.wav")  # the same bytes, on local disk for nginx
            report["file_bytes"] = len(data)
            api_key = secrets.token_urlsafe(32)
            env = api_env(settings, ep, api_key) | ({} if args.copies else {"MUSIC_STREAM_CACHE_BYTES": "0"})
            api, api_url = start_api(env, work / "api.log", workers=args.api_workers, warm_up=args.warm_up)
            nginx = None
            try:
                wait_healthy(api_url, api)
                nginx, nginx_url = start_nginx(work, www, args.nginx_workers)
                backing = service_pids(work / "data")
                report["services"] = sorted(backing)
                sides = {
                    "nginx": (nginx_url, "/bench-stream.wav", {}, {"nginx": nginx.pid}),
                    "api": (api_url, f"/tracks/{upload.track_id}/audio?version=original",
                            {"X-API-Key": api_key}, {"api": api.pid, **backing}),
                }  # fmt: skip
                if args.s3_direct:  # the API's own backend, read directly: the ceiling of the API path
                    signed = urlsplit(
                        store.presigned_get(original_key(upload.track_id))
                    )  # Range is not signed
                    weed = {k: v for k, v in backing.items() if k.startswith("weed")}
                    sides["s3_direct"] = (
                        f"http://{signed.netloc}",
                        f"{signed.path}?{signed.query}",
                        {},
                        weed,
                    )
                runs: dict[str, list[dict[str, Any]]] = {}
                for round_ in range(args.rounds):
                    for phase in ("range", "whole"):
                        for side, (url, path, headers, pids) in sides.items():
                            runs.setdefault(f"{side}_{phase}", []).append(measured(
                                f"{side} {phase} round {round_ + 1}", pids, run_phase, args.profile, base_url=url, path=path,
                                headers=headers, data=data, digest=digest, whole=phase == "whole",
                                clients=args.clients, duration=args.duration, seed=round_ + 1,
                                sha_every=args.sha_every,
                            ))  # fmt: skip
            finally:
                if nginx is not None:
                    stop_nginx(nginx)
                stop_api(api)
    report["runs"] = runs
    summary: dict[str, Any] = {}
    for phase in ("range", "whole"):
        api_mb = [r["mb_per_s"] for r in runs[f"api_{phase}"]]
        nginx_mb = [r["mb_per_s"] for r in runs[f"nginx_{phase}"]]
        ratio = round(sum(api_mb) / max(sum(nginx_mb), 1e-9), 3)
        summary[phase] = {"api_mb_per_s": api_mb, "nginx_mb_per_s": nginx_mb, "ratio": ratio,
                          "ratio_ge_target": ratio >= TARGET}  # fmt: skip
        if f"s3_direct_{phase}" in runs:
            direct = [r["mb_per_s"] for r in runs[f"s3_direct_{phase}"]]
            summary[phase]["s3_direct_mb_per_s"] = direct
            summary[phase]["api_vs_s3_direct"] = round(sum(api_mb) / max(sum(direct), 1e-9), 3)
    errors = sum(r["error_count"] for rs in runs.values() for r in rs)
    report["summary"] = summary
    report["errors"] = errors
    report["target_met"] = errors == 0 and all(s["ratio_ge_target"] for s in summary.values())
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
