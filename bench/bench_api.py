"""API benchmark: 10k generated tracks (rows; the embedding model's vectors of their passages; FAISS index and
search graph in the bucket) behind the real API under uvicorn, loaded by N concurrent httpx clients in a
separate process.

Two phases per worker count: "cold" (every request is a query or track never asked before, so the
response cache misses) and "cached" (a small set of queries and tracks, requested once unmeasured, then
repeated). Prints one JSON object with p50/p95/p99 per request kind, throughput, errors and targets.
The rate limit is set to 10^9 per minute so that the limiter cannot be what produces errors.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import hashlib
import json
import os
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from common import REPO, process_cpu_seconds
from serving import (
    RATE_LIMIT,
    api_env,
    free_port,
    free_port_block,
    start_api,
    start_search_service,
    stop_api,
    wait_healthy,
)

KINDS = ("semantic", "hybrid", "detail", "list")
CACHED_KINDS = ("semantic", "hybrid", "detail")  # list answers are not cached by the API
MIX = {"semantic": 0.3, "hybrid": 0.3, "detail": 0.3, "list": 0.1}
DIM = 384
GENRES = ("Rock", "Pop", "Jazz", "Blues", "Folk", "Metal", "Country", "Soul", "Hip-Hop", "Electronic",
          "Classical", "Reggae")  # fmt: skip
EXTENSIONS = ("mp3", "flac", "wav", "m4a", "ogg", "opus")
_WORDS = """
love heart night baby time life world dream fire rain sun moon star light dark road home sky river ocean
wind girl boy soul blue gold cold summer winter city train fly run dance sing cry fall rise burn shine
kiss hold touch feel know want need give take break stay leave stand walk ride drive hide find lose call
remember forget believe pray wait hope hurt heal free wild young old lonely crazy sweet bitter broken strong
wrong right true lie truth angel devil heaven hell stone glass paper water blood bone eyes hands lips face
voice song music radio guitar drum bell church street window door wall floor bed morning evening midnight
tonight tomorrow yesterday forever never always again away together alone apart close far deep high low
little big slow fast loud quiet silver golden silent empty open shadow mirror thunder lightning storm snow
ice flame smoke ash dust sand shore wave island mountain valley field flower rose garden tree leaf seed
bird wolf horse lion snake dragon king queen prince soldier sailor stranger friend lover brother sister
mother father child money dollar gold diamond ring crown sword gun bullet war peace battle freedom chain
prison key secret promise memory story letter name word line page book picture photograph film dream
""".split()


def _vocabulary(size: int = 4000) -> tuple[list[str], list[float]]:
    """The real words first, then made-up ones (a lyrics-sized vocabulary), with Zipf weights (s = 1)."""
    rng = random.Random(3)
    onsets, vowels, codas = "bdfgklmnprstvz", "aeiou", ["", "n", "r", "s", "l", "m"]
    words = list(dict.fromkeys(_WORDS))
    seen = set(words)
    while len(words) < size:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(rng.randint(2, 3))
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words, [1.0 / (i + 1) for i in range(len(words))]


_VOCAB = _vocabulary()


def _zipf_words(rng: random.Random, n: int) -> list[str]:
    return rng.choices(_VOCAB[0], weights=_VOCAB[1], k=n)


# --- synthetic data ------------------------------------------------------------------------------------


def _lrc_time(seconds: float) -> str:
    return f"[{int(seconds // 60):02d}:{seconds % 60:05.2f}]"


def generate_rows(n: int, seed: int = 7) -> dict[str, list[tuple]]:
    """Rows for every table the API reads, shaped like the pipeline's (see music_core/db)."""
    from psycopg.types.json import Jsonb

    rng = random.Random(seed)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    out: dict[str, list[tuple]] = {k: [] for k in ("files", "aliases", "stages", "transcripts", "lyrics",
                                                    "comparisons", "texts")}  # fmt: skip
    for i in range(n):
        track = hashlib.sha256(f"bench-track-{i}".encode()).hexdigest()
        artist = " ".join(w.title() for w in _zipf_words(rng, 2))
        title = " ".join(w.title() for w in _zipf_words(rng, rng.randint(1, 4)))
        ext = EXTENSIONS[i % len(EXTENSIONS)]
        filename = f"{artist} - {title} {i}.{ext}"
        duration = round(rng.uniform(90, 420), 2)
        size = int(duration * rng.choice((16_000, 40_000, 176_400)))
        uploaded = now - dt.timedelta(seconds=rng.randint(0, 730 * 86400))
        genre = rng.choice(GENRES)
        out["files"].append((
            track, filename, f"originals/{track[:2]}/{track}.{ext}", size, f"audio/{ext}", ext, ext, duration,
            44100, 2, 128000, artist, title, f"Album {rng.randint(1, 500)}", genre, rng.randint(1960, 2026),
            f"converted/{track[:2]}/{track}.flac", int(duration * 32000), duration, uploaded,
            Jsonb({"bench": True}),
        ))  # fmt: skip
        for a in range(rng.choice((1, 1, 1, 2))):
            name = filename if a == 0 else f"copy of {filename}"
            out["aliases"].append(
                (track, name, f"inbox/{name}", rng.choice(("", "albums", "live")), 1 + a, uploaded)
            )
        for stage in ("audio_file", "converted_audio", "transcription", "embedding", "lyrics", "comparison"):
            out["stages"].append((track, stage, "done", None, Jsonb([]), 1, uploaded))
        words = _zipf_words(rng, rng.randint(120, 400))
        step = duration / (len(words) + 1)
        timed = [{"start": round(k * step, 2), "end": round(k * step + step * 0.8, 2), "word": w,
                  "probability": round(rng.uniform(0.5, 1.0), 3)} for k, w in enumerate(words)]  # fmt: skip
        segments = [{"start": timed[k]["start"], "end": timed[min(k + 9, len(timed) - 1)]["end"],
                     "text": " ".join(words[k : k + 10]), "confidence": round(rng.uniform(0.6, 1.0), 3)}
                    for k in range(0, len(words), 10)]  # fmt: skip
        text = " ".join(words)
        out["transcripts"].append((track, text, "en", 0.8, False, 12.5, 0.08, "tiny.en@bench", "1",
                                   Jsonb(segments), Jsonb(timed), uploaded))  # fmt: skip
        lines = [" ".join(words[k : k + 8]) for k in range(0, len(words), 8)]
        lyrics_text = "\n".join(lines)
        synced = "\n".join(f"{_lrc_time(k * 8 * step)} {line}" for k, line in enumerate(lines))
        lyrics_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        out["lyrics"].append(
            (lyrics_id, track, "sidecar", lyrics_text, synced, False, artist, title, uploaded)
        )
        ops = [{"kind": rng.choice(("equal", "equal", "replace", "delete", "insert")), "lyrics": line,
                "transcript": line} for line in lines]  # fmt: skip
        matches = [{"line": line, "matched": round(rng.uniform(0.3, 1.0), 3)} for line in lines]
        alignment = {
            "ops": ops,
            "lines": matches,
            "lrc_timing": {"lines": len(lines), "median_s": 0.4, "max_s": 2.1},
        }
        out["comparisons"].append((track, lyrics_id, 0.2, 0.12, round(rng.uniform(40, 100), 2), Jsonb(alignment),
                                   Jsonb(["a chorus sung again"]), synced, uploaded))  # fmt: skip
        half = len(words) // 2
        out["texts"].append((track, [("transcript", 0, " ".join(words[:half])),
                                     ("transcript", 1, " ".join(words[half:])),
                                     ("lyrics", 0, lyrics_text), ("title", 0, f"{title} {artist}")]))  # fmt: skip
    return out


_COPIES = {
    "files": "COPY music_files (id, original_filename, storage_path, file_size, content_type, container, codec,"
    " duration, sample_rate, channels, bit_rate, artist, title, album, genre, year, converted_path,"
    " converted_size, converted_duration, uploaded_at, metadata) FROM STDIN",
    "aliases": "COPY file_aliases (file_id, original_name, object_key, folder, upload_count, first_seen_at)"
    " FROM STDIN",
    "stages": "COPY track_stages (file_id, stage, status, error, warnings, attempts, updated_at) FROM STDIN",
    "transcripts": "COPY transcriptions (file_id, transcription_text, language, confidence, no_vocals,"
    " processing_time, real_time_factor, model_id, model_version, segments, words, created_at) FROM STDIN",
    "lyrics": "COPY lyrics (id, file_id, source, lyrics_text, synced_lyrics, instrumental, artist, title,"
    " fetched_at) FROM STDIN",
    "comparisons": "COPY comparisons (file_id, lyrics_id, wer, cer, similarity, alignment, reasons, synced_lrc,"
    " created_at) FROM STDIN",
}


def passage_vectors(texts: list[str], encoder_cache: Path) -> Any:
    """The model's own embeddings of each passage's first 32 words (the full passages would take
    about ten minutes to embed here). Uniform random vectors, which no model produces, are the HNSW
    search graph's worst case and would make semantic latency look worse than any real library."""
    from music_core.embed.query_embedder import load_query_embedder

    encoder = load_query_embedder(None, encoder_cache, threads=2)  # the API's cache: exported once
    return encoder.embed([" ".join(text.split()[:32]) for text in texts], batch_size=64)


def load_database(database_url: str, rows: dict[str, list[tuple]], model_id: str, encoder_cache: Path) -> int:
    """COPY every table; vectors in binary COPY through pgvector's dumper. Returns vectors written."""
    import psycopg
    from pgvector.psycopg import register_vector

    passages = [
        (track, source, chunk, text) for track, chunks in rows["texts"] for source, chunk, text in chunks
    ]
    vectors = passage_vectors([text for *_, text in passages], encoder_cache)
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        with conn.cursor() as cur:
            for table, statement in _COPIES.items():
                with cur.copy(statement) as copy:
                    for row in rows[table]:
                        copy.write_row(row)
            with cur.copy(
                "COPY embeddings (file_id, source, chunk, model_id, dim, content, embedding)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "text", "int4", "text", "int4", "text", "vector"])
                for (track, source, chunk, text), vec in zip(passages, vectors, strict=True):
                    copy.write_row((track, source, chunk, model_id, DIM, text, vec))
        count = len(passages)
        conn.execute("ANALYZE")
    return count


def build_index(database_url: str, store: Any, model_id: str) -> dict[str, Any]:
    """What the vector_index asset does (ids and vectors from pgvector, FAISS and its search graph,
    versioned in the bucket); a no-op on a kept data dir whose index is current."""
    from music_core.db.connection import connect
    from music_core.index_sync import sync_index

    with connect(database_url) as conn:
        manifest = sync_index(store, conn, model_id).manifest
    return {"version": manifest.version, "vectors": manifest.count, "key": manifest.key,
            "search_graph": manifest.search_key}  # fmt: skip


def existing_track_ids(database_url: str) -> list[str]:
    """The tracks a kept data dir already holds."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM music_files ORDER BY seq").fetchall()]


# --- measuring -----------------------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (from /proc)."""
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            total += process_cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_busy() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[rank], 2)


def summarise(samples: list[list], seconds: float) -> dict[str, Any]:
    """samples: [kind, ms, status, cache, error]"""
    by_kind: dict[str, Any] = {}
    errors: dict[str, int] = {}
    for kind in KINDS:
        mine = [s for s in samples if s[0] == kind]
        ok = sorted(s[1] for s in mine if s[4] is None)
        hits = sum(1 for s in mine if s[3] == "HIT")
        by_kind[kind] = {
            "requests": len(mine), "p50_ms": percentile(ok, 50), "p95_ms": percentile(ok, 95),
            "p99_ms": percentile(ok, 99), "max_ms": round(ok[-1], 2) if ok else None,
            "cache_hit_ratio": round(hits / len(mine), 3) if mine else None,
        }  # fmt: skip
    for s in samples:
        if s[4] is not None:
            errors[f"{s[0]}: {s[4]}"] = errors.get(f"{s[0]}: {s[4]}", 0) + 1
    return {
        "requests": len(samples), "seconds": round(seconds, 2),
        "throughput_rps": round(len(samples) / seconds, 1) if seconds else None,
        "errors": sum(errors.values()), "error_kinds": errors, "by_kind": by_kind,
    }  # fmt: skip


# --- load generator (runs in its own process) ----------------------------------------------------------


def _request(kind: str, item: Any) -> tuple[str, dict[str, Any]]:
    if kind in ("semantic", "hybrid"):
        return "/search", {"q": item, "mode": kind, "limit": 10}
    if kind == "detail":
        return f"/tracks/{item}", {}
    return "/tracks", item


class Pools:
    """What each request asks for. Cold: never the same thing twice. Cached: a fixed small set."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.rng = random.Random(spec["seed"])
        self.cold = spec["phase"] == "cold"
        self.ids = list(spec["track_ids"])
        self.rng.shuffle(self.ids)
        self.seen: set[tuple[str, str]] = set()
        self.fixed = spec.get("fixed") or {}
        self._next_id = 0

    def query(self, kind: str) -> str:
        while True:
            q = " ".join(_zipf_words(self.rng, self.rng.randint(2, 6)))
            if (kind, q) not in self.seen:
                self.seen.add((kind, q))
                return q

    def listing(self) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": 50, "offset": self.rng.choice((0, 0, 0, 50, 100, 500, 2000)),
                                  "sort": self.rng.choice(("uploaded", "filename", "size", "duration", "genre")),
                                  "order": self.rng.choice(("asc", "desc"))}  # fmt: skip
        roll = self.rng.random()
        if roll < 0.3:
            params["genre"] = self.rng.choice(GENRES)
        elif roll < 0.45:
            params["q"] = self.rng.choice(_WORDS)
        elif roll < 0.55:
            params["has_lyrics"] = "true"
        return params

    def take(self, kind: str) -> Any:
        if kind == "list":
            return self.listing()
        if not self.cold:
            return self.rng.choice(self.fixed[kind])
        if kind == "detail":
            self._next_id += 1
            return self.ids[(self._next_id - 1) % len(self.ids)]
        return self.query(kind)


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    """Each simulated client has its own httpx.AsyncClient and keep-alive connection, like a browser:
    one shared client with a 100-connection pool spent several ms of CPU per request in pool bookkeeping
    on this 2-core machine, CPU taken from the server under test."""
    import httpx

    pools = Pools(spec)
    samples: list[list] = []
    kinds, weights = list(spec["mix"]), list(spec["mix"].values())

    def make_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=spec["base_url"], headers={"X-API-Key": spec["api_key"]}, timeout=30,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )  # fmt: skip

    async def one(client: httpx.AsyncClient, kind: str, item: Any, record: bool) -> None:
        path, params = _request(kind, item)
        started = time.perf_counter()
        error = None
        status, cache = 0, None
        try:
            response = await client.get(path, params=params)
            status, cache = response.status_code, response.headers.get("X-Cache")
            if status != 200:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if record:
            samples.append([kind, (time.perf_counter() - started) * 1000, status, cache, error])

    if spec["phase"] == "fill":  # fill the cache: every fixed item once, unmeasured
        todo = [(k, item) for k in CACHED_KINDS for item in pools.fixed[k]]

        async def filler(n: int) -> None:
            async with make_client() as client:
                for kind, item in todo[n :: spec["clients"]]:
                    await one(client, kind, item, False)

        await asyncio.gather(*(filler(n) for n in range(spec["clients"])))
        return {"samples": [], "seconds": 0.0, "loadgen_cpu_s": 0.0}

    think = spec["think_ms"] / 1000
    ready = asyncio.Event()
    deadline = [0.0]

    async def client_loop(n: int) -> None:
        rng = random.Random(spec["seed"] * 1000 + n)
        async with make_client() as client:
            await ready.wait()
            if think:  # users arrive spread out, not as one burst of ``clients`` requests at t = 0
                await asyncio.sleep(rng.uniform(0, think))
            while time.perf_counter() < deadline[0]:
                kind = rng.choices(kinds, weights=weights)[0]
                await one(client, kind, pools.take(kind), True)
                if think:
                    await asyncio.sleep(rng.uniform(0.5, 1.5) * think)

    tasks = [asyncio.ensure_future(client_loop(n)) for n in range(spec["clients"])]
    await asyncio.sleep(0.2)  # let every client build its AsyncClient first
    # The load generator's own garbage collections would show up as server latency: none while measuring.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline[0] = started + spec["duration"]
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    gc.enable()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"samples": samples, "seconds": elapsed,
            "loadgen_cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2)}  # fmt: skip


def loadgen_main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_load(spec))
    Path(out_path).write_text(json.dumps(result))
    return 0


# --- the server ----------------------------------------------------------------------------------------


def wait_ready(base_url: str, api_key: str, workers: int, proc: subprocess.Popen) -> None:
    """Health first, then semantic queries until every worker has its model and index loaded."""
    import httpx

    wait_healthy(base_url, proc, timeout=240)
    warm = {"base_url": base_url, "api_key": api_key, "workers": workers}

    async def warm_up() -> None:
        async with httpx.AsyncClient(
            base_url=warm["base_url"], headers={"X-API-Key": api_key}, timeout=120
        ) as c:
            for round_ in range(4):
                responses = await asyncio.gather(*(
                    c.get("/search", params={"q": f"warm up query {round_} {k}", "mode": "semantic"})
                    for k in range(8 * workers)
                ))  # fmt: skip
                bad = [r.status_code for r in responses if r.status_code != 200]
                if bad:
                    raise RuntimeError(f"warm-up searches failed: {bad[:5]}")

    asyncio.run(warm_up())


def loadgen(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """One load-generator process (so it never shares an event loop or a GIL with the server)."""
    spec_path, out_path = work / f"spec-{spec['phase']}.json", work / f"out-{spec['phase']}.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, __file__, "--loadgen", str(spec_path), str(out_path)], check=True, cwd=REPO
    )
    return json.loads(out_path.read_text())


def run_phase(
    spec: dict[str, Any], work: Path, watch: dict[str, int], profile: Path | None = None
) -> dict[str, Any]:
    """A measured phase; the CPU figures cover the measured window plus the loadgen's start-up.
    With ``profile``, py-spy samples the API processes meanwhile (collapsed stacks, for flame graphs)."""
    spy = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"api-w{spec['seed']}-{spec['phase']}.txt"
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(watch["api"]), "--subprocesses",
             "--format", "raw", "--rate", "50", "--duration", str(int(spec["duration"])), "--output", str(out),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    cpu0 = {name: tree_cpu_seconds(pid) for name, pid in watch.items()}
    busy0 = machine_busy()
    result = loadgen(spec, work)
    busy1 = machine_busy()
    if spy is not None:
        spy.wait(60)
    summary = summarise(result["samples"], result["seconds"])
    summary["cpu_seconds"] = {
        **{name: round(tree_cpu_seconds(pid) - cpu0[name], 1) for name, pid in watch.items()},
        "loadgen": result["loadgen_cpu_s"],
        "machine_busy_fraction": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3),
    }
    n = max(1, summary["requests"])
    summary["cpu_ms_per_request"] = {
        k: round(summary["cpu_seconds"][k] * 1000 / n, 2) for k in (*watch, "loadgen")
    }
    return summary


def targets(cold: dict[str, Any], cached: dict[str, Any]) -> dict[str, Any]:
    semantic_p95 = cold["by_kind"]["semantic"]["p95_ms"]
    cached_p95 = {k: cached["by_kind"][k]["p95_ms"] for k in CACHED_KINDS}
    worst_cached = max((v for v in cached_p95.values() if v is not None), default=None)
    errors = cold["errors"] + cached["errors"]
    return {
        "semantic_search_p95_ms": semantic_p95,
        "semantic_search_p95_lt_100ms": semantic_p95 is not None and semantic_p95 < 100,
        "cached_reads_worst_p95_ms": worst_cached,
        "cached_reads_p95_lt_50ms": worst_cached is not None and worst_cached < 50,
        "errors": errors,
        "zero_errors": errors == 0,
    }


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--loadgen":
        return loadgen_main(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase (cold, cached)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to try, comma-separated")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between a client's requests")
    parser.add_argument(
        "--cached-set", type=int, default=200, help="distinct items per kind in the cached phase"
    )
    parser.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in MIX.items()),
                        help="request kinds and weights, e.g. semantic=1 for semantic search alone")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, help="keep (and reuse) the services' data here")
    parser.add_argument("--search-service", action="store_true",
                        help="as `up` runs it: the API workers share the search service's encoder and index")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="py-spy the API during each phase into this folder")
    args = parser.parse_args()
    mix = {k: float(v) for k, v in (part.split("=", 1) for part in args.mix.split(","))}
    if not mix or set(mix) - set(KINDS) or any(w < 0 for w in mix.values()) or not sum(mix.values()):
        parser.error(f"--mix takes kind=weight pairs over {', '.join(KINDS)}")

    from music_core.db.migrate import migrate
    from music_core.embed.embedder import describe_model
    from music_core.embedded import EmbeddedServices
    from music_core.settings import Settings
    from music_core.storage import ObjectStore

    load_start = os.getloadavg()
    report: dict[str, Any] = {"benchmark": "api", "loadavg_start": [round(x, 2) for x in load_start]}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        data = args.data_dir or work / "data"
        settings = Settings(_env_file=None, data_dir=data, embedded_s3_port=free_port_block(),
                            embedded_redis_port=free_port())  # type: ignore[call-arg]  # fmt: skip
        with EmbeddedServices(settings) as ep:
            import redis

            setup: dict[str, float] = {}
            t = time.perf_counter()
            migrate(ep.database_url)
            store = ObjectStore(ep.s3_endpoint, ep.s3_access_key, ep.s3_secret_key, bucket=settings.bucket)
            store.ensure_bucket()
            model_id = describe_model(None)
            track_ids = existing_track_ids(ep.database_url)
            if not track_ids:  # a fresh data dir (always, unless --data-dir points at an earlier run)
                rows = generate_rows(args.tracks)
                setup["generate_rows_s"] = round(time.perf_counter() - t, 2)
                t = time.perf_counter()
                load_database(ep.database_url, rows, model_id, settings.query_encoder_cache)
                setup["copy_s"] = round(time.perf_counter() - t, 2)
                track_ids = [r[0] for r in rows["files"]]
                del rows
            t = time.perf_counter()
            index = build_index(ep.database_url, store, model_id)
            setup["faiss_build_upload_s"] = round(time.perf_counter() - t, 2)

            api_key = secrets.token_urlsafe(32)
            env = api_env(settings, ep, api_key)
            rng = random.Random(11)
            fixed_words = random.Random(12)
            fixed = {
                "semantic": [" ".join(_zipf_words(fixed_words, 3)) + f" {k}" for k in range(args.cached_set)],
                "hybrid": [" ".join(_zipf_words(fixed_words, 3)) + f" {k}" for k in range(args.cached_set)],
                "detail": rng.sample(track_ids, min(args.cached_set, len(track_ids))),
            }
            report.update({
                "tracks": len(track_ids), "vectors": index["vectors"], "dimension": DIM, "index": index, "setup": setup,
                "clients": args.clients, "duration_s_per_phase": args.duration, "think_ms": args.think_ms,
                "mix": mix, "cached_set_per_kind": args.cached_set, "auth": "X-API-Key (reader role)",
                "rate_limit_per_minute": RATE_LIMIT,
                "rate_limit_note": "MUSIC_RATE_LIMIT_PER_MINUTE set to 10^9 for the bench: the limiter still runs "
                "(counted per worker and synced to Redis, as in production) but cannot reject",
                "cores": os.cpu_count(), "search_service": args.search_service, "runs": [],
            })  # fmt: skip
            cache = redis.Redis.from_url(ep.redis_url)
            for workers in [int(w) for w in args.workers.split(",")]:
                cache.flushdb()  # no cached answers or counters from the previous run
                search = (
                    start_search_service(env, work / "run" / "search.sock", work / f"search-{workers}.log")
                    if args.search_service
                    else None
                )
                proc, base_url = start_api(env, work / f"api-{workers}.log", workers=workers, warm_up=True)
                try:
                    wait_ready(base_url, api_key, workers, proc)
                    watch = {"api": proc.pid, "postgres": _postmaster_pid(settings.data_path / "pg")}
                    if search is not None:
                        watch["search_service"] = search.pid
                    common = {"base_url": base_url, "api_key": api_key, "clients": args.clients,
                              "duration": args.duration, "think_ms": args.think_ms, "mix": mix, "track_ids": track_ids,
                              "fixed": fixed, "seed": workers}  # fmt: skip
                    cold = run_phase({**common, "phase": "cold"}, work, watch, args.profile)
                    loadgen({**common, "phase": "fill"}, work)  # unmeasured: the cached set, once each
                    cached = run_phase({**common, "phase": "cached"}, work, watch, args.profile)
                finally:
                    stop_api(proc)
                    if search is not None:
                        stop_api(search)
                report["runs"].append({"workers": workers, "cold": cold, "cached": cached,
                                       "targets": targets(cold, cached)})  # fmt: skip
            cache.close()

    def merit(run: dict[str, Any]) -> tuple:  # fewest errors, most targets met, most requests served
        met = sum(
            bool(run["targets"][k]) for k in ("semantic_search_p95_lt_100ms", "cached_reads_p95_lt_50ms")
        )
        return (-run["targets"]["errors"], met, run["cold"]["requests"] + run["cached"]["requests"])

    best = max(report["runs"], key=merit)
    report["best_workers"] = best["workers"]
    report["targets"] = best["targets"]
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
