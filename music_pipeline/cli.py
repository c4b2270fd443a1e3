"""Console script ``music-analyzer``: up, ingest, process, status, migrate."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from music_core.db.migrate import migrate
from music_core.embedded import EmbeddedServices, ServiceEndpoints
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
        ids = select_tracks(ep.database_url, track_ids=args.tracks, genre=args.genre)
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
    hp = sub.add_parser("hash-password", help="print a MUSIC_API_USERS entry (password from stdin)")
    hp.add_argument("name")
    hp.add_argument("--role", choices=["reader", "admin"], default="reader")
    hp.set_defaults(func=cmd_hash_password)
    key = sub.add_parser("new-api-key", help="make an API key and print its MUSIC_API_KEYS entry")
    key.add_argument("name")
    key.add_argument("--role", choices=["reader", "admin"], default="reader")
    key.set_defaults(func=cmd_new_api_key)
    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    return int(args.func(Settings(), args))


if __name__ == "__main__":
    sys.exit(main())
