"""Console script ``music-analyzer``: up, ingest, process, status, pin-lyrics, provider-key, migrate."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from music_core.db.migrate import migrate
from music_core.embedded import EmbeddedServices, ServiceEndpoints, with_generated_secrets
from music_core.settings import Settings
from music_core.storage import ObjectStore


def store_for(settings: Settings, ep: ServiceEndpoints) -> ObjectStore:
    return ObjectStore(
        ep.s3_endpoint, ep.s3_access_key, ep.s3_secret_key,
        bucket=settings.bucket, secure=ep.s3_secure, region=settings.s3_region,
    )  # fmt: skip


@contextmanager
def connected(settings: Settings, with_redis: bool = False) -> Iterator[tuple[ServiceEndpoints, ObjectStore]]:
    """Connect to the configured services, starting embedded ones for this command if needed."""
    with EmbeddedServices(settings, with_redis=with_redis) as ep:
        os.environ.update(ep.as_env())
        migrate(ep.database_url)
        store = store_for(settings, ep)
        store.ensure_bucket()
        yield ep, store


def _print_report(rows: list[dict[str, Any]], as_json: bool) -> None:
    for row in rows:
        if as_json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        else:
            stages = " ".join(f"{k}={v}" for k, v in row["stages"].items())
            extra = f"  duplicate of {row['duplicate_of']}" if row.get("duplicate_of") else ""
            err = f"  error: {row['error']}" if row["error"] else ""
            print(f"{(row['track_id'] or '-')[:12]}  {row['file']}  {stages}{extra}{err}")


def cmd_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from music_core.uploads import LocalFile, expand_paths, upload_to_inbox

    failures = 0
    with connected(settings) as (_, store):
        for item in expand_paths(args.paths):
            if isinstance(item, LocalFile):
                key = upload_to_inbox(store, settings.inbox_prefix, item)
                print(f"uploaded {item.path} -> s3://{settings.bucket}/{key}")
            else:
                failures += 1
                print(f"skipped {item[0]}: {item[1]}", file=sys.stderr)
    return 1 if failures else 0


def cmd_process(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from music_core.stages import STAGES
    from music_pipeline.definitions import build_resources
    from music_pipeline.instance import prepare_dagster_home
    from music_pipeline.oneshot import process_paths

    if args.until is not None and args.until not in STAGES:
        print(f"unknown stage {args.until!r}; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    with connected(settings) as (ep, store):
        instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))
        try:
            rows = process_paths(
                args.paths, store=store, database_url=ep.database_url, instance=instance,
                resources=build_resources(settings), batch=settings.tracks_per_run, workers=settings.workers,
                reprocess=args.reprocess, until_stage=args.until,
            )  # fmt: skip
        finally:
            instance.dispose()
    _print_report(rows, args.json)
    return 0


def cmd_reprocess(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from music_pipeline.definitions import build_resources
    from music_pipeline.instance import prepare_dagster_home
    from music_pipeline.oneshot import materialize_tracks, select_tracks, status_report

    if not (args.all or args.genre or args.tracks):
        print("name tracks, or use --genre NAME or --all", file=sys.stderr)
        return 2
    with connected(settings) as (ep, _):
        try:
            ids = select_tracks(ep.database_url, track_ids=args.tracks, genre=args.genre)
        except LookupError as exc:
            print(exc.args[0], file=sys.stderr)
            return 2
        if not ids:
            print("no matching tracks", file=sys.stderr)
            return 1
        instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))
        try:
            materialize_tracks(instance, build_resources(settings), ids, settings.tracks_per_run, args.stage)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        finally:
            instance.dispose()
        rows = [r for r in status_report(ep.database_url) if r["track_id"] in set(ids)]
    _print_report(rows, args.json)
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from music_pipeline.oneshot import status_report

    with connected(settings) as (ep, _):
        _print_report(status_report(ep.database_url), args.json)
    return 0


@contextmanager
def _partition_forgetter(settings: Settings) -> Iterator[Any]:
    """The Dagster instance the UI shows, and a callback that drops removed tracks' partitions."""
    import functools

    import dagster as dg

    from music_pipeline.defs.partitions import forget_partitions
    from music_pipeline.instance import prepare_dagster_home

    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(settings)))
    try:
        yield instance, functools.partial(forget_partitions, instance)
    finally:
        instance.dispose()


def _print_cleanup(outcome: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**outcome.__dict__}, ensure_ascii=False, default=str))
        return
    verb = "would remove" if outcome.dry_run else "removed"
    print(f"{outcome.action}: {verb} {outcome.file_count} item(s), {outcome.bytes} bytes "
          f"(cleanup_log {outcome.log_id})")  # fmt: skip
    for track in outcome.details.get("tracks", [])[:50]:
        print(f"  {track['track_id'][:12]}  {track['filename']}  {track['bytes']} bytes")


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    from music_core.retention.options import RemovalOptions
    from music_core.retention.rules import RetentionRule
    from music_core.retention.run import run_retention

    options = RemovalOptions.keep_originals() if args.keep_originals else RemovalOptions.everything()
    try:
        rule = RetentionRule(args.older_than_days, options, args.genre, args.limit)
    except ValueError as exc:
        print(f"retention: {exc}", file=sys.stderr)
        return 2
    with connected(settings, with_redis=True) as (ep, store), _partition_forgetter(settings) as (_, forget):
        outcome = run_retention(
            ep.database_url, store, rule, execute=args.execute, performed_by=f"cli:{_whoami()}",
            cache_url=ep.redis_url, forget=forget,
        )  # fmt: skip
    _print_cleanup(outcome, args.json)
    return 1 if outcome.details.get("failed") else 0


def cmd_orphans(settings: Settings, args: argparse.Namespace) -> int:
    import datetime as dt

    from music_core.retention.run import run_orphan_sweep
    from music_pipeline.defs.partitions import tracks_partitions

    with (
        connected(settings, with_redis=True) as (ep, store),
        _partition_forgetter(settings) as (inst, forget),
    ):
        outcome = run_orphan_sweep(
            ep.database_url, store, inst.get_dynamic_partitions(tracks_partitions.name), execute=args.execute,
            performed_by=f"cli:{_whoami()}", grace=dt.timedelta(minutes=args.grace_minutes),
            cache_url=ep.redis_url, forget=forget,
        )  # fmt: skip
    _print_cleanup(outcome, args.json)
    return 0


def cmd_duplicates(settings: Settings, args: argparse.Namespace) -> int:
    from music_core.retention.run import run_duplicates

    with connected(settings, with_redis=True) as (ep, store), _partition_forgetter(settings) as (_, forget):
        outcome = run_duplicates(
            ep.database_url, store, merge=args.merge, performed_by=f"cli:{_whoami()}",
            max_bit_error_rate=settings.duplicate_max_bit_error_rate, cache_url=ep.redis_url, forget=forget,
        )  # fmt: skip
    _print_cleanup(outcome, args.json)
    return 0


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_hash_password(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from music_core.passwords import hash_password

    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass("password: ")
    if len(password) < 8:
        print("use at least 8 characters", file=sys.stderr)
        return 2
    print(f"{args.name}:{args.role}:{hash_password(password)}")
    return 0


def cmd_new_api_key(settings: Settings, args: argparse.Namespace) -> int:
    import secrets

    from music_core.passwords import hash_key

    key = secrets.token_urlsafe(32)
    print(f"key (shown once): {key}")
    print(f"add to MUSIC_API_KEYS: {args.name}:{args.role}:{hash_key(key)}")
    return 0


def cmd_pin_lyrics(settings: Settings, args: argparse.Namespace) -> int:
    """Pin lyrics text (a file, LRC allowed) or a lyrics page's text to a track: it wins over every provider."""
    import httpx

    from music_core.cache_generation import bump_generation
    from music_core.db import lyrics as lyrics_db
    from music_core.db import tracks
    from music_core.db.connection import connect

    try:
        if args.text_file:
            found = lyrics_db.pinned_from(args.text_file.read_text(encoding="utf-8", errors="replace"))
        else:
            from music_core.lyrics.extract import page_lyrics
            from music_core.lyrics.http import ProviderHttp

            http = ProviderHttp("pin")
            try:
                text = page_lyrics(http, args.url)
            finally:
                http.close()
            if not text:
                print(f"no lyrics found at {args.url}", file=sys.stderr)
                return 1
            found = lyrics_db.pinned_from(text, url=args.url)
    except (OSError, ValueError) as exc:  # unreadable file, junk text
        print(f"cannot pin: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:  # unreachable page
        print(f"cannot pin: {args.url} unavailable ({type(exc).__name__})", file=sys.stderr)
        return 1
    with connected(settings, with_redis=True) as (ep, _), connect(ep.database_url) as conn:
        try:
            track_id = tracks.resolve_track(conn, args.track)
        except LookupError as exc:
            print(exc, file=sys.stderr)
            return 1
        lyrics_db.pin_lyrics(conn, track_id, found)
        bump_generation(ep.redis_url)  # the track's cached detail shows the pinned lyrics at once
    print(f"pinned {len(found.text.splitlines())} lines to {track_id[:12]}; "
          f"run `music-analyzer reprocess {track_id[:12]} --stage lyrics` to redo the comparison")  # fmt: skip
    return 0


def cmd_provider_key(settings: Settings, args: argparse.Namespace) -> int:
    """Store (from stdin, never argv), delete or list the web lyrics providers' keys in api_config."""
    from pydantic import SecretStr

    from music_core import provider_keys
    from music_core.db.connection import connect

    with connected(settings) as (ep, _), connect(ep.database_url) as conn:
        try:
            if args.action == "list":
                for row in provider_keys.list_masked(settings, conn):
                    print(json.dumps(row, ensure_ascii=False))
                return 0
            if not args.provider:
                print("name the provider: " + ", ".join(provider_keys.SETTING), file=sys.stderr)
                return 2
            if args.action == "delete":
                return 0 if provider_keys.delete_key(conn, args.provider) else 1
            value = SecretStr(sys.stdin.readline().strip())
            provider_keys.set_key(conn, args.provider, value, settings.secret_key)
        except provider_keys.ProviderKeyError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(f"stored the {args.provider} key encrypted in api_config")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with EmbeddedServices(settings, with_redis=False) as ep:
        applied = migrate(ep.database_url)
    print("applied: " + (", ".join(applied) or "nothing (up to date)"))
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from music_pipeline.supervisor import run_until_stopped

    return run_until_stopped(settings, upload_demo=not args.no_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="music-analyzer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start services, Dagster and the API; Ctrl-C stops them all")
    up.add_argument("--no-demo", action="store_true", help="do not upload the demo audio on first start")
    up.set_defaults(func=cmd_up)
    ingest = sub.add_parser("ingest", help="upload files and folders into the bucket inbox")
    ingest.add_argument("paths", nargs="+")
    ingest.set_defaults(func=cmd_ingest)
    process = sub.add_parser("process", help="ingest and run every stage in-process, then report")
    process.add_argument("paths", nargs="+")
    process.add_argument("--json", action="store_true", help="one JSON object per input file")
    process.add_argument("--reprocess", action="store_true", help="run stages again for known content")
    process.add_argument("--until", metavar="STAGE", help="stop after this stage, e.g. converted_audio")
    process.set_defaults(func=cmd_process)
    again = sub.add_parser("reprocess", help="run stages again: one track, a genre, or everything")
    again.add_argument("tracks", nargs="*", help="track ids (a unique prefix is enough)")
    again.add_argument("--genre", help="every track of this genre")
    again.add_argument("--all", action="store_true", help="every track (e.g. after a model change)")
    again.add_argument("--stage", help="start from this stage (default: all stages), e.g. transcription")
    again.add_argument("--json", action="store_true")
    again.set_defaults(func=cmd_reprocess)
    status = sub.add_parser("status", help="per-track stage states for everything known")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    ret = sub.add_parser("retention", help="preview (default) or execute a retention rule")
    ret.add_argument("--older-than-days", type=float, required=True, metavar="DAYS")
    ret.add_argument("--genre", help="only tracks of this genre")
    ret.add_argument("--keep-originals", action="store_true", help="drop derived data only")
    ret.add_argument("--limit", type=int, help="at most this many tracks")
    ret.add_argument("--execute", action="store_true", help="remove; without it, only report")
    ret.add_argument("--json", action="store_true")
    ret.set_defaults(func=cmd_retention)
    orph = sub.add_parser("orphans", help="objects without rows, rows without objects, stray partitions")
    orph.add_argument("--grace-minutes", type=int, default=60, help="younger objects are never orphans")
    orph.add_argument("--execute", action="store_true")
    orph.add_argument("--json", action="store_true")
    orph.set_defaults(func=cmd_orphans)
    dup = sub.add_parser("duplicates", help="exact and perceptual duplicates; --merge keeps the best copy")
    dup.add_argument(
        "--merge", action="store_true", help="keep the best copy, move names onto it, remove others"
    )
    dup.add_argument("--json", action="store_true")
    dup.set_defaults(func=cmd_duplicates)
    hp = sub.add_parser("hash-password", help="print a MUSIC_API_USERS entry (password from stdin)")
    hp.add_argument("name")
    hp.add_argument("--role", choices=["reader", "admin"], default="reader")
    hp.set_defaults(func=cmd_hash_password)
    key = sub.add_parser("new-api-key", help="make an API key and print its MUSIC_API_KEYS entry")
    key.add_argument("name")
    key.add_argument("--role", choices=["reader", "admin"], default="reader")
    key.set_defaults(func=cmd_new_api_key)
    pin = sub.add_parser("pin-lyrics", help="pin lyrics (a text/LRC file or a page URL) to a track")
    pin.add_argument("track", help="track id (a unique prefix is enough)")
    what = pin.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="a lyrics page; its lyrics are extracted and stored")
    what.add_argument("--text-file", type=Path, help="UTF-8 text or LRC file")
    pin.set_defaults(func=cmd_pin_lyrics)
    pk = sub.add_parser("provider-key", help="store (stdin), delete or list Genius/Brave/Tavily keys")
    pk.add_argument("action", choices=["set", "delete", "list"])
    pk.add_argument("provider", nargs="?", choices=["genius", "brave", "tavily"])
    pk.set_defaults(func=cmd_provider_key)
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    settings = Settings()
    if args.func not in (cmd_hash_password, cmd_new_api_key):  # these two never touch the data dir
        settings = with_generated_secrets(settings)
    return int(args.func(settings, args))


if __name__ == "__main__":
    sys.exit(main())
