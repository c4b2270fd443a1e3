"""Export benchmark: a ~1 GB batch export (POST /export, tar.gz and zip) through the real API under uvicorn
over the embedded SeaweedFS and PostgreSQL, next to ``tar czf`` of the same files on local disk.

The audio is generated WAV (pink noise, 44.1 kHz 16-bit stereo) registered as real tracks. Each archive is
streamed to disk, then opened with tarfile / zipfile and every audio member's sha256 compared with its
track id (the content hash), so a fast wrong archive cannot pass. The API server's peak RSS is its VmHWM
from /proc, reset (clear_refs) just before each export; the baseline RSS before the export is reported
too. With ``--search-service`` (as `up` runs it) the encoder and index live in the search service,
whose RSS is reported apart. Prints one JSON object; target: the API's peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from bench_api import tree_cpu_seconds
from serving import (
    api_env,
    make_audio,
    proc_status,
    reset_peak_rss,
    services,
    start_api,
    start_search_service,
    stop_api,
    wait_healthy,
)

TARGET_MB = 150
BYTES_PER_SECOND = 176_400  # 44.1 kHz, 16-bit, stereo


def verify(path: Path, fmt: str, expected: list[str]) -> dict[str, Any]:
    """Every expected track's audio member is present with the right sha256; the metadata is valid JSON."""
    seen: dict[str, str] = {}
    metadata = None

    def check(name: str, read: Any) -> None:
        nonlocal metadata
        if name == "export_metadata.json":
            metadata = json.loads(read())
            return
        digest = hashlib.sha256()
        with read() as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        seen[name] = digest.hexdigest()

    if fmt == "tar.gz":
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name == "export_metadata.json":
                    check(member.name, lambda m=member: tar.extractfile(m).read())  # type: ignore[union-attr]
                elif member.isfile():
                    check(member.name, lambda m=member: tar.extractfile(m))
    else:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.filename == "export_metadata.json":
                    check(info.filename, lambda i=info: zf.read(i))
                else:
                    check(info.filename, lambda i=info: zf.open(i))
    digests = sorted(seen.values())
    wanted = sorted(expected)
    tracks = len((metadata or {}).get("tracks", []))
    return {"members": len(seen) + (metadata is not None), "audio_sha256_ok": digests == wanted,
            "metadata_tracks": tracks, "valid": digests == wanted and tracks == len(expected)}  # fmt: skip


def export_once(base_url: str, api_key: str, ids: list[str], fmt: str, out: Path, pid: int) -> dict[str, Any]:
    import httpx

    reset = reset_peak_rss(pid)
    before = proc_status(pid)
    sampled = [before["VmRSS"]]
    done = threading.Event()

    def sample() -> None:  # a second opinion on the peak, and the only one if clear_refs is refused
        while not done.wait(0.05):
            try:
                sampled.append(proc_status(pid)["VmRSS"])
            except OSError:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0 = tree_cpu_seconds(pid)
    size = 0
    started = time.perf_counter()
    first_byte = None
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=300) as client:
        with (
            client.stream("POST", "/export", json={"ids": ids, "format": fmt}) as response,
            out.open("wb") as fh,
        ):
            if response.status_code != 200:
                raise RuntimeError(f"POST /export answered {response.status_code}: {response.read()[:500]!r}")
            for chunk in response.iter_raw(1 << 20):
                if first_byte is None:
                    first_byte = time.perf_counter() - started
                fh.write(chunk)
                size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    after = proc_status(pid)
    return {"seconds": round(seconds, 2), "first_byte_s": round(first_byte or 0.0, 3), "archive_bytes": size,
            "api_cpu_s": round(tree_cpu_seconds(pid) - cpu0, 1), "rss_before_mb": round(before["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(after["VmHWM"] / 1024, 1) if reset else None,
            "sampled_max_rss_mb": round(max(sampled) / 1024, 1), "hwm_reset": reset}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--mb-per-file", type=float, default=50.0, help="10^6 bytes of WAV per file")
    parser.add_argument("--formats", default="tar.gz,zip")
    parser.add_argument(
        "--warm-up",
        action="store_true",
        help="serve music_api.main:create_app with its own warmed-up encoder and index",
    )
    parser.add_argument("--search-service", action="store_true",
                        help="as `up` does: the encoder and index in the search service, the API using it")  # fmt: skip
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    if set(formats) - {"tar.gz", "zip"}:
        parser.error("--formats takes tar.gz and/or zip")

    from music_core.ingest import register_local_file

    report: dict[str, Any] = {"benchmark": "export", "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                              "cores": os.cpu_count(), "files": args.files, "warm_up": args.warm_up,
                              "target_peak_rss_mb": TARGET_MB,
                              "search_service": args.search_service,
                              "server": "music_api.main:create_app over the search service (as `up`)" if args.search_service
                              else "music_api.main:create_app, its own encoder preloaded" if args.warm_up
                              else "create_app(warm_up=False): the embedding model is not loaded"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        audio_dir = work / "audio"
        audio_dir.mkdir()
        t = time.perf_counter()
        seconds = round(args.mb_per_file * 1e6 / BYTES_PER_SECOND, 2)
        paths = [
            make_audio(audio_dir / f"track {i:02d}.wav", seconds, seed=100 + i) for i in range(args.files)
        ]
        total = sum(p.stat().st_size for p in paths)
        report["input_bytes"] = total
        report["generate_s"] = round(time.perf_counter() - t, 1)
        with services(work / "data") as (settings, ep, store):
            t = time.perf_counter()
            ids = [register_local_file(store, ep.database_url, p, p.name).track_id for p in paths]
            report["register_s"] = round(time.perf_counter() - t, 1)
            api_key = secrets.token_urlsafe(32)
            env = api_env(settings, ep, api_key)
            search = (
                start_search_service(env, work / "run" / "search.sock", work / "search.log")
                if args.search_service
                else None
            )
            warm = args.warm_up or args.search_service
            api, api_url = start_api(env, work / "api.log", warm_up=warm)
            try:
                wait_healthy(api_url, api)
                time.sleep(20 if warm else 1)  # let the start-up (and any model preload) settle
                if search is not None:
                    report["search_service_rss_mb"] = round(proc_status(search.pid)["VmRSS"] / 1024, 1)
                report["api_rss_idle_mb"] = round(proc_status(api.pid)["VmRSS"] / 1024, 1)
                report["api_peak_rss_before_exports_mb"] = round(proc_status(api.pid)["VmHWM"] / 1024, 1)
                exports: dict[str, Any] = {}
                for fmt in formats:
                    out = work / f"export.{fmt}"
                    result = export_once(api_url, api_key, ids, fmt, out, api.pid)
                    result["mb_per_s"] = round(total / result["seconds"] / 1e6, 1)
                    t = time.perf_counter()
                    result["verified"] = verify(out, fmt, ids)
                    result["verify_s"] = round(time.perf_counter() - t, 1)
                    out.unlink()
                    exports[fmt] = result
                    print(
                        f"{fmt}: {result['mb_per_s']} MB/s, peak RSS {result['peak_rss_mb']} MB",
                        file=sys.stderr,
                    )
            finally:
                stop_api(api)
                if search is not None:
                    stop_api(search)
        t = time.perf_counter()
        local = work / "local.tar.gz"
        subprocess.run(["tar", "czf", str(local), "-C", str(audio_dir), "."], check=True)
        tar_s = time.perf_counter() - t
        report["tar_czf"] = {"seconds": round(tar_s, 2), "mb_per_s": round(total / tar_s / 1e6, 1),
                             "archive_bytes": local.stat().st_size}  # fmt: skip
    report["exports"] = exports
    peaks = [
        e["peak_rss_mb"] if e["peak_rss_mb"] is not None else e["sampled_max_rss_mb"]
        for e in exports.values()
    ]
    report["peak_rss_mb"] = max(peaks)
    for e in exports.values():
        e["throughput_vs_tar_czf"] = round(e["mb_per_s"] / report["tar_czf"]["mb_per_s"], 2)
    report["all_archives_valid"] = all(e["verified"]["valid"] for e in exports.values())
    report["target_met"] = report["all_archives_valid"] and report["peak_rss_mb"] < TARGET_MB
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
