"""The `trackhouse` command line: init, load, demo, summary, query."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import TrackhouseError
from .output import FORMATS, render
from .settings import load_settings


def _cmd_init(args: argparse.Namespace) -> int:
    from .engine import ensure_schema

    settings = load_settings(args.target)
    ensure_schema(settings)
    print(f"raw schema {settings.raw_schema!r} is ready in target {settings.target!r}")
    if args.roles:
        from .roles import create_roles

        for line in create_roles(settings):
            print(line)
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    from .loader import load_files

    allowed = None
    if args.allowed_events:
        allowed = {e.strip() for e in args.allowed_events.split(",") if e.strip()}
    settings = load_settings(args.target)
    report = load_files(
        args.files,
        settings=settings,
        allowed_events=allowed,
        progress=args.progress,
        batch_size=args.batch_size,
    )
    if args.format == "json":
        print(render([report.as_dict()], "json"))
    else:
        for r in report.rejections:
            print(f"rejected {r.source}:{r.line_number}: {r.reason}", file=sys.stderr)
        if report.rejected > len(report.rejections):
            print(
                f"... and {report.rejected - len(report.rejections):,} more rejected lines; "
                f"all are in {settings.raw_schema}.rejected with their reasons",
                file=sys.stderr,
            )
        print(report.summary())
    if not report.balanced:  # pragma: no cover - an invariant, reported loudly if broken
        print("error: the counts do not add up; please report this", file=sys.stderr)
        return 3
    return 1 if (args.strict and report.rejected) else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import write_demo_file

    count = write_demo_file(args.output, users=args.users, days=args.days, seed=args.seed)
    print(f"wrote {count:,} demo events to {args.output}")
    if args.load:
        args.files, args.allowed_events, args.progress = [args.output], None, None
        args.batch_size, args.strict, args.format = 100_000, False, "table"
        return _cmd_load(args)
    return 0


def _cmd_summary(args: argparse.Namespace) -> int:
    from .summary import summary

    print(summary(load_settings(args.target)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackhouse",
        description="Product usage, statistics and attribution in your warehouse.",
    )
    parser.add_argument(
        "--target",
        help="profile target (default: $TRACKHOUSE_TARGET or the profile's default, duckdb)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create the raw schema (idempotent)")
    p.add_argument(
        "--roles", action="store_true", help="also create the writer/transformer/reader roles"
    )
    p.set_defaults(func=_cmd_init)

    p = sub.add_parser("load", help="load NDJSON event files (Segment spec; .gz ok; - = stdin)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--allowed-events", help="comma-separated conversion event names; others are rejected"
    )
    p.add_argument("--batch-size", type=int, default=100_000, help="events per transaction")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress line on stderr (default: on a terminal, for files over 5 MB)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any line is rejected")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=_cmd_load)

    p = sub.add_parser("demo", help="generate realistic demo events (deterministic per seed)")
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--output", default="data/demo-events.ndjson.gz")
    p.add_argument("--load", action="store_true", help="load the file right away")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("summary", help="headline numbers from the marts")
    p.set_defaults(func=_cmd_summary)

    q = sub.add_parser("query", help="query the marts (table, or JSON with --format json)")
    qsub = q.add_subparsers(dest="query", required=True)
    from .query import activity, attribution, statistics

    for module in (activity, attribution, statistics):
        module.add_cli(qsub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TrackhouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; every batch written so far is complete, re-run to finish", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
