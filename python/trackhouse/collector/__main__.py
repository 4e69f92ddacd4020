"""`python -m trackhouse.collector serve|hash-key ...` (the same as `trackhouse serve`)."""

from __future__ import annotations

import argparse
import sys

from ..errors import TrackhouseError
from .config import DEFAULT_MAX_SPOOL_BYTES, hash_write_key


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trackhouse.collector",
        description="The Segment-compatible HTTP collector of trackhouse.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collector (uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8088, help="port (default 8088)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--spool-dir",
        help="spool directory (default: the warehouse's, $TRACKHOUSE_SPOOL_DIR or beside it)",
    )
    serve.add_argument(
        "--write-key",
        action="append",
        default=[],
        metavar="SOURCE=sha256:HEX",
        help="a source and its write key's hash (repeat for several sources)",
    )
    serve.add_argument("--config", help="TOML file with a [collector] table")
    serve.add_argument(
        "--cors-origin", action="append", default=[], help="a browser origin allowed to send"
    )
    serve.add_argument(
        "--max-spool-bytes",
        type=int,
        default=None,
        help=f"answer 429 once the spool holds this much (default {DEFAULT_MAX_SPOOL_BYTES:,})",
    )
    serve.add_argument("--public-url", help="the URL browsers reach the collector at")
    serve.add_argument("--demo", action="store_true", help="serve a demo page at /")
    serve.add_argument("--node-modules", help="node_modules with @segment/analytics-next (--demo)")
    serve.add_argument("--no-access-log", action="store_true", help="no JSON access lines")
    serve.add_argument(
        "--forwarded-allow-ips", help="trust X-Forwarded-* from these proxy addresses"
    )
    serve.add_argument("--log-level", default="info")
    hash_key = commands.add_parser("hash-key", help="print the sha256: form of a write key")
    hash_key.add_argument("key")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "hash-key":
        print(hash_write_key(args.key))
        return 0
    from .server import serve

    try:
        serve(
            args.host,
            args.port,
            args.workers,
            args.spool_dir,
            args.write_key,
            config_file=args.config,
            cors_origins=args.cors_origin,
            demo=args.demo,
            max_spool_bytes=args.max_spool_bytes,
            public_url=args.public_url,
            node_modules=args.node_modules,
            access_log=not args.no_access_log,
            forwarded_allow_ips=args.forwarded_allow_ips,
            log_level=args.log_level,
        )
    except TrackhouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
