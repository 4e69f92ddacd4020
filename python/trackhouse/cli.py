"""The `trackhouse` command line (click + rich tables), in dbt's conventions.

Every command takes the common options anywhere on the line, before or after the
subcommand (`trackhouse --target postgres query usage` = `trackhouse query usage
--target postgres`): `--target`, `--format table|json|csv`; query commands also
`--limit`. Tables are for people (times to the second, columns marked `(UTC)` or
with the report time zone, at most TABLE_LIMIT rows unless `--limit`); JSON and
CSV are for programs (every row and column, times in full ISO 8601).

Exit codes (EXIT_*): 0 ok; 1 failure (the warehouse or the data said no, or
`load --strict` rejected lines); 2 usage (an unknown option, a bad value: the
message names it and the valid ones); 3 the warehouse is busy (another process
holds the DuckDB file; try again later); 130 interrupted; 141 the reader of the
output went away (`trackhouse query ... | head`), quietly, as for SIGPIPE.

Adding a command: a function under `@cli.command()` (or `@query.command()` for
`trackhouse query ...`) with `@common_options` (and `@limit_option` when it
prints rows); read the options with `Options.of(ctx)`, print rows with `emit`,
return an exit code. Imports of heavy modules stay inside the command, so
`trackhouse --help` is fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .errors import TrackhouseError, WarehouseBusyError
from .output import FORMATS, TABLE_LIMIT, render

if TYPE_CHECKING:
    from .settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUSY = 3
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# -- the options every command accepts ----------------------------------------------
@dataclass
class Options:
    """The common options, wherever they were given (the last one wins)."""

    target: str | None = None
    format: str | None = None
    limit: int | None = None

    @classmethod
    def of(cls, ctx: click.Context) -> Options:
        return ctx.find_root().ensure_object(cls)

    @property
    def fmt(self) -> str:
        return self.format or "table"

    def settings(self) -> Settings:
        from .settings import load_settings

        return load_settings(self.target)


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(Options.of(ctx), name, value)

    return callback


def common_options(f: F) -> F:
    """`--target` and `--format`, accepted on the group and on every command."""
    f = click.option(
        "--target",
        "-t",
        metavar="NAME",
        expose_value=False,
        callback=_remember("target"),
        help="profile target: duckdb or postgres (default: $TRACKHOUSE_TARGET, else duckdb)",
    )(f)
    f = click.option(
        "--format",
        "-f",
        type=click.Choice(FORMATS),
        expose_value=False,
        callback=_remember("format"),
        help="table for people (default), json or csv for programs",
    )(f)
    return f


def limit_option(f: F) -> F:
    """`--limit N` for commands that print rows."""
    return click.option(
        "--limit",
        "-n",
        type=click.IntRange(min=0),
        metavar="N",
        expose_value=False,
        callback=_remember("limit"),
        help=f"at most N rows; 0 = all (default: {TABLE_LIMIT} in a table, all in JSON/CSV)",
    )(f)


# -- printing ----------------------------------------------------------------------
class PipeClosed(click.exceptions.Exit):
    """The reader of stdout went away; end quietly."""

    def __init__(self) -> None:
        super().__init__(EXIT_PIPE_CLOSED)


def write(text: str, *, err: bool = False) -> None:
    """Print a line (or lines); a closed pipe ends the command quietly."""
    stream = sys.stderr if err else sys.stdout
    try:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
    except BrokenPipeError:
        # Later flushes (at exit) must not complain again: point stdout at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise PipeClosed() from None


def emit(
    ctx: click.Context,
    rows: Sequence[dict[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    time_zone: str | None = None,
) -> None:
    """Rows in the chosen format; a table keeps to the limit and says what it left out."""
    opts = Options.of(ctx)
    limit = opts.limit if opts.limit is not None else (TABLE_LIMIT if opts.fmt == "table" else 0)
    shown = rows[:limit] if limit else rows
    if opts.fmt == "table" and sys.stdout.isatty() and shown:
        from rich.console import Console

        from .output import rich_table

        console = Console(soft_wrap=False)
        try:
            console.print(rich_table(shown, columns, time_zone=time_zone))
        except BrokenPipeError:  # pragma: no cover - a terminal closing under us
            raise PipeClosed() from None
    else:
        write(render(shown, opts.fmt, columns=columns, time_zone=time_zone))
    if len(shown) < len(rows):
        write(
            f"({len(rows) - len(shown):,} more rows not shown; --limit 0 shows all"
            + (", --format csv or json gives every column)" if columns else ")"),
            err=True,
        )


def report_time_zone(settings: Settings, given: str | None = None) -> str:
    """The zone local dates are in: `given`, else the last build's, else UTC."""
    if given:
        return given
    if settings.is_spark:  # no SQLAlchemy engine on Spark
        from . import spark

        return spark.report_timezone_name(settings) or "UTC"
    from . import overview
    from .engine import get_engine

    with get_engine(settings).connect() as conn:
        return overview.report_timezone_name(conn, settings.mart_schema) or "UTC"


# -- the group ---------------------------------------------------------------------
@click.group(
    context_settings=CONTEXT,
    epilog="""\b
Examples:
  trackhouse demo --load                      # demo events into warehouse.duckdb
  trackhouse load exports/*.ndjson.gz         # Segment/RudderStack NDJSON, - = stdin
  trackhouse summary                          # what is loaded and built
  trackhouse query usage --calendar --start 2026-01-01 --format csv
  trackhouse query attribution --model first_touch --limit 10
  trackhouse query active-users --grain week --target postgres

\b
Exit codes: 0 ok, 1 failure, 2 usage error, 3 warehouse busy (retry later),
130 interrupted, 141 output pipe closed.""",
)
@click.version_option(package_name="trackhouse", prog_name="trackhouse")
@common_options
def cli() -> None:
    """Product usage, statistics and attribution in your warehouse.

    Reads profiles.yml (the one dbt uses) for the target; see the README.
    """


@cli.command(epilog="\b\nExamples:\n  trackhouse init\n  trackhouse init --roles --target postgres")
@common_options
@click.option("--roles", is_flag=True, help="also create the writer/transformer/reader roles")
@click.pass_context
def init(ctx: click.Context, roles: bool) -> int:
    """Create the raw schema (idempotent)."""
    from .engine import ensure_schema

    settings = Options.of(ctx).settings()
    ensure_schema(settings)
    write(f"raw schema {settings.raw_schema!r} is ready in target {settings.target!r}")
    if roles:
        from .roles import create_roles

        for line in create_roles(settings):
            write(line)
    return EXIT_OK


def _split_events(_ctx: click.Context, _param: click.Parameter, value: str | None) -> set | None:
    if not value:
        return None
    return {e.strip() for e in value.split(",") if e.strip()} or None


def _return_freed_arrow_memory() -> None:
    """`trackhouse load` is a process of its own: Arrow's default pool (mimalloc)
    held ~100 MB of freed batches for the rest of a 1M-line load; the system
    allocator hands them back (bench/notes/load.md). A library caller's pool is
    left as it is."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


@cli.command(
    epilog="""\b
Examples:
  trackhouse load exports/*.ndjson.gz
  cat day.ndjson | trackhouse load - --format json
  trackhouse load day.ndjson --allowed-events signup,purchase --strict
  trackhouse load --spool                 # drain the warehouse's spool (API, collector)
  trackhouse load --spool data/spool""",
)
@common_options
@click.argument("files", nargs=-1, metavar="FILE...")
@click.option(
    "--spool",
    "spool_dir",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DIR]",
    help="drain a spool instead of files (default DIR: the warehouse's spool)",
)
@click.option(
    "--allowed-events",
    metavar="A,B",
    callback=_split_events,
    help="comma-separated conversion event names; others are rejected",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="events per transaction [default: 100000 on DuckDB, 25000 on PostgreSQL]",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="progress line on stderr (default: on a terminal, for files over 5 MB)",
)
@click.option("--strict", is_flag=True, help="exit 1 when any line is rejected")
@click.pass_context
def load(
    ctx: click.Context,
    files: tuple[str, ...],
    spool_dir: str | None,
    allowed_events: set[str] | None,
    batch_size: int | None,
    progress: bool | None,
    strict: bool,
) -> int:
    """Load NDJSON event files (Segment spec; .gz ok; - = stdin), or drain a spool.

    Prints received = accepted + rejected + duplicates skipped; rejected lines are
    kept, with their reasons, in the raw schema's `rejected` table.
    """
    opts = Options.of(ctx)
    settings = opts.settings()
    _return_freed_arrow_memory()
    if spool_dir is not None:
        if files:
            raise click.UsageError("give FILE... or --spool, not both")
        from .spool import drain

        report = drain(spool_dir or settings.spool_dir, settings, progress=bool(progress))
    else:
        if not files:
            raise click.UsageError("Missing argument 'FILE...' (or --spool to drain a spool)")
        from .loader import load_files

        report = load_files(
            list(files),
            settings=settings,
            allowed_events=allowed_events,
            progress=progress,
            batch_size=batch_size,
        )
    if opts.fmt == "json":
        write(render([report.as_dict()], "json"))
    elif opts.fmt == "csv":  # one row of counts (the rejections are in the rejected table)
        counts = report.as_dict()
        del counts["rejections"]
        counts["files"] = ";".join(str(f) for f in counts["files"])
        write(render([counts], "csv"))
    else:
        for r in report.rejections:
            write(f"rejected {r.source}:{r.line_number}: {r.reason}", err=True)
        if report.rejected > len(report.rejections):
            write(
                f"... and {report.rejected - len(report.rejections):,} more rejected lines; "
                f"all are in {settings.raw_schema}.rejected with their reasons",
                err=True,
            )
        write(report.summary())
    if not report.balanced:  # pragma: no cover - an invariant, reported loudly if broken
        write("error: the counts do not add up; please report this", err=True)
        return EXIT_FAILURE
    return EXIT_FAILURE if (strict and report.rejected) else EXIT_OK


@cli.command(epilog="\b\nExample:\n  trackhouse demo --users 2000 --days 365 --load")
@common_options
@click.option("--users", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=120, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--output", default="data/demo-events.ndjson.gz", show_default=True)
@click.option("--load", "and_load", is_flag=True, help="load the file right away")
@click.pass_context
def demo(ctx: click.Context, users: int, days: int, seed: int, output: str, and_load: bool) -> int:
    """Generate realistic demo events (deterministic per seed)."""
    from .demo import write_demo_file

    count = write_demo_file(output, users=users, days=days, seed=seed)
    write(f"wrote {count:,} demo events to {output}")
    if and_load:
        Options.of(ctx).format = "table"
        return int(
            ctx.invoke(
                load,
                files=(output,),
                spool_dir=None,
                allowed_events=None,
                batch_size=None,
                progress=None,
                strict=False,
            )
        )
    return EXIT_OK


@cli.command(epilog="\b\nExamples:\n  trackhouse summary\n  trackhouse summary --format json")
@common_options
@click.pass_context
def summary(ctx: click.Context) -> int:
    """Headline numbers: rows loaded, marts built, the latest month, top campaigns."""
    from .summary import collect, to_text

    opts = Options.of(ctx)
    found = collect(opts.settings())
    if opts.fmt == "json":
        write(render([found], "json"))
    elif opts.fmt == "csv":
        rows = [{"table": name, "rows": n} for name, n in found["raw_tables"].items()]
        rows += [{"table": name, "rows": n} for name, n in found["marts"].items()]
        write(render(rows, "csv"))
    else:
        write(to_text(found))
    return EXIT_OK


@cli.group(epilog="\b\nExample:\n  trackhouse spool status --format json")
def spool() -> None:
    """The durable spool between the application/collector and the warehouse."""


@spool.command("status")
@common_options
@click.argument("directory", required=False, metavar="[DIR]")
@click.pass_context
def spool_status(ctx: click.Context, directory: str | None) -> int:
    """What waits in a spool (default: the warehouse's spool directory)."""
    from .spool import status

    opts = Options.of(ctx)
    found = status(directory or opts.settings().spool_dir)
    if opts.fmt == "table":
        for key, value in found.items():
            write(f"{key}: {value}")
    else:
        write(render([found], opts.fmt))
    return EXIT_OK


@cli.command(
    epilog="""\b
Examples:
  trackhouse hash-key 'the-web-write-key'          # -> sha256:...
  trackhouse serve --write-key web=sha256:... --cors-origin https://shop.example
  trackhouse serve --demo --write-key demo=sha256:...""",
)
@common_options
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", type=click.IntRange(1, 65535), default=8088, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--spool-dir", help="spool directory (default: the warehouse's)")
@click.option(
    "--write-key",
    multiple=True,
    metavar="SOURCE=sha256:HEX",
    help="a source and its write key's hash (repeat for several sources)",
)
@click.option("--config", "config_file", help="TOML file with a [collector] table")
@click.option("--cors-origin", multiple=True, help="a browser origin allowed to send")
@click.option("--max-spool-bytes", type=click.IntRange(min=1), help="answer 429 above this")
@click.option("--public-url", help="the URL browsers reach the collector at")
@click.option("--demo", is_flag=True, help="serve a demo page with the browser SDK at /")
@click.option("--node-modules", help="node_modules with @segment/analytics-next (--demo)")
@click.option("--access-log/--no-access-log", default=True, help="JSON access lines")
@click.option("--forwarded-allow-ips", help="trust X-Forwarded-* from these proxy addresses")
@click.option("--log-level", default="info", show_default=True)
@click.pass_context
def serve(ctx: click.Context, **options: Any) -> int:
    """The Segment-compatible HTTP collector (see docs/collector.md)."""
    from .collector.server import serve as run_collector

    Options.of(ctx).settings()  # the target's spool is the default spool
    run_collector(
        options.pop("host"),
        options.pop("port"),
        options.pop("workers"),
        options.pop("spool_dir"),
        list(options.pop("write_key")),
        cors_origins=list(options.pop("cors_origin")),
        **options,
    )
    return EXIT_OK


@cli.command("hash-key")
@click.argument("key")
def hash_key(key: str) -> int:
    """Print the sha256: form of a write key (what --write-key and the config take)."""
    from .collector.config import hash_write_key

    write(hash_write_key(key))
    return EXIT_OK


@cli.command(
    epilog="""\b
Examples:
  trackhouse forget user-42
  trackhouse forget user-42 user-43 --format json
Then run `dbt build` (or let the schedule run): the marts follow.""",
)
@common_options
@click.argument("user_ids", nargs=-1, required=True, metavar="USER_ID...")
@click.pass_context
def forget(ctx: click.Context, user_ids: tuple[str, ...]) -> int:
    """Forget people: delete every raw row of these users and their devices, and
    refuse their ids from now on (docs/privacy.md)."""
    from .privacy import forget as forget_users

    if any(not u.strip() for u in user_ids):
        raise click.UsageError("a USER_ID is empty; pass the user ids to forget")
    opts = Options.of(ctx)
    report = forget_users(list(user_ids), opts.settings())
    if opts.fmt == "table":
        write(report.summary())
    else:
        write(render([report.as_dict()], opts.fmt))
    return EXIT_OK


@cli.command(
    epilog="""\b
Examples:
  trackhouse prune --dry-run
  trackhouse prune --raw-retention-days 90 --user-agent-retention-days 30""",
)
@common_options
@click.option("--dry-run", is_flag=True, help="count what would be blanked, change nothing")
@click.option(
    "--raw-retention-days",
    type=click.IntRange(min=0),
    help="blank ledger payloads and drop rejected lines older than N days (default: dbt var)",
)
@click.option(
    "--url-query-retention-days",
    type=click.IntRange(min=0),
    help="strip URL query strings (all but tracking parameters) older than N days",
)
@click.option(
    "--user-agent-retention-days",
    type=click.IntRange(min=0),
    help="blank user agents older than N days (bots keep their pattern)",
)
@click.pass_context
def prune(
    ctx: click.Context,
    dry_run: bool,
    raw_retention_days: int | None,
    url_query_retention_days: int | None,
    user_agent_retention_days: int | None,
) -> int:
    """Keep raw data only as long as allowed: blank what is older than the retention
    settings (the marts keep their aggregates; docs/privacy.md)."""
    from .privacy import prune as prune_raw

    opts = Options.of(ctx)
    report = prune_raw(
        opts.settings(),
        raw_retention_days=raw_retention_days,
        url_query_retention_days=url_query_retention_days,
        user_agent_retention_days=user_agent_retention_days,
        dry_run=dry_run,
    )
    if opts.fmt == "table":
        write(report.summary())
    else:
        write(render([report.as_dict()], opts.fmt))
    return EXIT_OK


# -- trackhouse query ...: one command per question -----------------------------------
@cli.group(
    epilog="""\b
Examples:
  trackhouse query active-users --start 2026-10-01 --end 2026-11-01
  trackhouse query usage --calendar --start 2026-01-01 --format json
  trackhouse query attribution --model first_touch --window-days 14 --source-window google=7
  trackhouse query statistics --metric activity.active_users --period week""",
)
@common_options
@limit_option
def query() -> None:
    """Query the marts: a table, or every row with --format json|csv.

    Defaults (report time zone, as_of, subscription start) come from the last
    `dbt build` (the trackhouse_settings table), so answers match the marts.
    """


def activity_options(f: F) -> F:
    for option in reversed(
        (
            click.option(
                "--start", metavar="T", help="inclusive start: 2024-05-01, 2024-05-01T12:00 or ...Z"
            ),
            click.option("--end", metavar="T", help="exclusive end (same formats)"),
            click.option("--account", metavar="ID", help="only this account's users"),
            click.option(
                "--timezone", metavar="TZ", help="report time zone (default: the last build's)"
            ),
            click.option(
                "--as-of",
                metavar="D",
                help="last reported date, YYYY-MM-DD (default: the last build's)",
            ),
        )
    ):
        f = option(f)
    return f


@query.command(
    "active-users",
    epilog="""\b
Examples:
  trackhouse query active-users --start 2026-10-01 --end 2026-11-01
  trackhouse query active-users --grain month --account acme --format csv""",
)
@common_options
@limit_option
@click.option(
    "--grain", type=click.Choice(("day", "week", "month")), help="one row per period of this grain"
)
@activity_options
@click.pass_context
def active_users(
    ctx: click.Context,
    grain: str | None,
    start: str | None,
    end: str | None,
    account: str | None,
    timezone: str | None,
    as_of: str | None,
) -> int:
    """Distinct active users in [start, end), or per day/week/month with --grain."""
    from .query import activity

    settings = Options.of(ctx).settings()
    if grain:
        rows = activity.active_users_by_period(
            grain,
            start,
            end,
            account_id=account,
            timezone=timezone,
            as_of=as_of,
            settings=settings,
        )
    else:
        tz = activity.report_timezone(settings, timezone)
        count = activity.count_active_users(
            start, end, account_id=account, timezone=timezone, settings=settings
        )
        rows = [
            {
                "period_start": activity.to_instant(start, tz, "start"),
                "period_end": activity.to_instant(end, tz, "end"),
                "active_users": count,
            }
        ]
    emit(ctx, rows, time_zone=report_time_zone(settings, timezone))
    return EXIT_OK


@query.command(
    epilog="""\b
Examples:
  trackhouse query usage --calendar --start 2026-01-01 --end 2027-01-01
  trackhouse query usage --subscription-start 2026-01-31 --kind quarter
  trackhouse query usage --daily --account acme --format csv""",
)
@common_options
@limit_option
@click.option("--calendar", is_flag=True, help="per calendar month")
@click.option("--daily", is_flag=True, help="per day (labels from the anchor)")
@click.option(
    "--subscription-start",
    metavar="T",
    help="subscription anchor (default with --account: the account's subscription start)",
)
@click.option(
    "--kind", type=click.Choice(("month", "quarter", "year")), default="month", show_default=True
)
@activity_options
@click.pass_context
def usage(
    ctx: click.Context,
    calendar: bool,
    daily: bool,
    subscription_start: str | None,
    kind: str,
    start: str | None,
    end: str | None,
    account: str | None,
    timezone: str | None,
    as_of: str | None,
) -> int:
    """Registered / activated / active users per calendar month, subscription period or day."""
    from .query import activity

    if calendar and daily:
        raise click.UsageError("--calendar and --daily exclude each other; pass one of them")
    if not (calendar or daily) and subscription_start is None and account is None:
        raise click.UsageError(
            "trackhouse query usage needs --calendar, --daily, or --subscription-start T "
            "(or --account ID to use that account's subscription start)"
        )
    settings = Options.of(ctx).settings()
    common: dict[str, Any] = {
        "account_id": account,
        "timezone": timezone,
        "as_of": as_of,
        "settings": settings,
    }
    if calendar:
        rows = activity.calendar_monthly_usage(start, end, **common)
    elif daily:
        rows = activity.daily_usage(start, end, subscription_start=subscription_start, **common)
    else:
        rows = activity.subscription_usage(subscription_start, start, end, kind, **common)
    emit(ctx, rows, time_zone=report_time_zone(settings, timezone))
    return EXIT_OK


@query.command(
    epilog="""\b
Examples:
  trackhouse query attribution                       # last touch, 30-day window
  trackhouse query attribution --model first_touch --window-days 14
  trackhouse query attribution --source-window google=7 --source-window default=30
  trackhouse query attribution --model last_touch --exclude-direct   # last non-direct
  trackhouse query attribution --model time_decay --half-life 3
  trackhouse query attribution --model data_driven --by channel
  trackhouse query attribution --format csv > attribution.csv   # every row and column""",
)
@common_options
@limit_option
@click.option(
    "--model",
    type=click.Choice(
        ("first_touch", "last_touch", "linear", "position_based", "time_decay", "data_driven")
    ),
    default="last_touch",
    show_default=True,
)
@click.option(
    "--window-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    metavar="N",
    help="default window (days)",
)
@click.option(
    "--source-window",
    multiple=True,
    metavar="SRC=N",
    help="window for one exact utm_source (repeat it for several); default=N sets the "
    "default window",
)
@click.option(
    "--half-life",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="DAYS",
    help="time_decay: a touchpoint's weight halves every DAYS days (default 7)",
)
@click.option("--by", type=click.Choice(("channel",)), default=None, help="sum credits per channel")
@click.option(
    "--exclude-direct",
    is_flag=True,
    help="last_touch: skip Direct touchpoints unless there is nothing else",
)
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="include unconfirmed and deactivated conversions (default: valid ones only)",
)
@click.pass_context
def attribution(
    ctx: click.Context,
    model: str,
    window_days: int,
    source_window: tuple[str, ...],
    half_life: float | None,
    by: str | None,
    exclude_direct: bool,
    include_all: bool,
) -> int:
    """Attribution of conversions by any model (first/last touch, multi-touch), any window.

    first_touch/last_touch: which touchpoint each conversion is credited to;
    linear, position_based, time_decay, data_driven: each eligible touchpoint's
    credit; --by channel sums the credits per channel. Computed for the window
    given (the marts use the dbt vars). A table shows the main columns; --format
    json or csv gives all of them.
    """
    from .query.attribution import parse_source_window, run_attribution_query

    source_windows = dict(parse_source_window(s) for s in source_window)
    rows, columns = run_attribution_query(
        model=model,
        window_days=window_days,
        source_windows=source_windows or None,
        valid_only=not include_all,
        half_life_days=half_life,
        by=by,
        exclude_direct=exclude_direct,
        settings=Options.of(ctx).settings(),
    )
    emit(ctx, rows, columns=columns)
    return EXIT_OK


@query.command(
    epilog="""\b
Examples:
  trackhouse query statistics --metric users.user_count --period day --start 2026-10-01
  trackhouse query statistics --metric activity.active_users --period month --by-object""",
)
@common_options
@limit_option
@click.option("--metric", required=True, metavar="D.M", help="domain.metric, e.g. users.user_count")
@click.option(
    "--period", required=True, type=click.Choice(("day", "week", "days_28", "month", "lifetime"))
)
@click.option("--start", metavar="D", help="first date, YYYY-MM-DD (inclusive)")
@click.option("--end", metavar="D", help="last date, YYYY-MM-DD (inclusive)")
@click.option(
    "--by-object", is_flag=True, help="one row per object (statistics_by_date_and_object)"
)
@click.option(
    "--object-type",
    metavar="T",
    help="by object, only this object type (e.g. account); implies --by-object",
)
@click.pass_context
def statistics(
    ctx: click.Context,
    metric: str,
    period: str,
    start: str | None,
    end: str | None,
    by_object: bool,
    object_type: str | None,
) -> int:
    """A metric's statistics per date (and per object) from the statistics marts.

    Rows of statistics_by_date (or statistics_by_date_and_object with --by-object);
    dates are inclusive, in the report time zone.
    """
    from .query.statistics import statistics as read_statistics

    settings = Options.of(ctx).settings()
    object_filter: bool | str | None = object_type or (True if by_object else None)
    rows = read_statistics(metric, period, start, end, object=object_filter, settings=settings)
    emit(ctx, rows, time_zone=report_time_zone(settings))
    return EXIT_OK


def date_range_options(f: F) -> F:
    f = click.option("--end", metavar="D", help="periods starting before D (YYYY-MM-DD)")(f)
    return click.option("--start", metavar="D", help="periods starting on or after D")(f)


@query.command(
    epilog="\b\nExamples:\n  trackhouse query retention --grain week\n"
    "  trackhouse query retention --grain month --start 2026-01-01 --format csv",
)
@common_options
@limit_option
@click.option("--grain", type=click.Choice(("week", "month")), default="week", show_default=True)
@date_range_options
@click.pass_context
def retention(ctx: click.Context, grain: str, start: str | None, end: str | None) -> int:
    """Retention cohorts: users by sign-up week/month x periods since, share still active."""
    from .query.engagement import RETENTION_COLUMNS
    from .query.engagement import retention as query_retention

    rows = query_retention(grain, start, end, Options.of(ctx).settings())
    emit(ctx, rows, columns=RETENTION_COLUMNS)
    return EXIT_OK


@query.command(
    epilog="\b\nExamples:\n  trackhouse query stickiness --start 2026-10-01\n"
    "  trackhouse query stickiness --monthly",
)
@common_options
@limit_option
@click.option("--monthly", is_flag=True, help="distribution of active days per user per month")
@date_range_options
@click.pass_context
def stickiness(ctx: click.Context, monthly: bool, start: str | None, end: str | None) -> int:
    """Stickiness: DAU, WAU, MAU and DAU/WAU, DAU/MAU per day (or active days per month)."""
    from .query import engagement

    settings = Options.of(ctx).settings()
    if monthly:
        rows = engagement.active_days_distribution(start, end, settings)
        emit(ctx, rows, columns=engagement.ACTIVE_DAYS_COLUMNS)
    else:
        rows = engagement.stickiness(start, end, settings)
        emit(ctx, rows, columns=engagement.STICKINESS_COLUMNS)
    return EXIT_OK


@query.command(
    epilog="\b\nExamples:\n  trackhouse query lifecycle --grain month\n"
    "  trackhouse query lifecycle --grain week --account acme",
)
@common_options
@limit_option
@click.option(
    "--grain", type=click.Choice(("day", "week", "month")), default="week", show_default=True
)
@click.option("--account", default=None, help="one account's users (default: the whole site)")
@date_range_options
@click.pass_context
def lifecycle(
    ctx: click.Context, grain: str, account: str | None, start: str | None, end: str | None
) -> int:
    """Lifecycle: new, returning, resurrecting and dormant users per period (PostHog's)."""
    from .query.engagement import LIFECYCLE_COLUMNS
    from .query.engagement import lifecycle as query_lifecycle

    rows = query_lifecycle(grain, account, start, end, Options.of(ctx).settings())
    emit(ctx, rows, columns=LIFECYCLE_COLUMNS)
    return EXIT_OK


# More queries go here: @query.command() + @common_options + @limit_option, the SQL
# in trackhouse.query.<area>, printed with emit().


# -- running -----------------------------------------------------------------------
def _error(message: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # stderr closed too: nothing to tell
        click.echo(f"error: {message}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="trackhouse",
            standalone_mode=False,
        )
    except click.UsageError as exc:
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return EXIT_FAILURE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        _error("interrupted; every batch written so far is complete, re-run to finish")
        return EXIT_INTERRUPTED
    except WarehouseBusyError as exc:
        _error(f"the warehouse is busy: {exc}")
        return EXIT_BUSY
    except TrackhouseError as exc:
        _error(str(exc))
        # A value the command cannot use (a bad bound, an unknown metric) is a usage error.
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_FAILURE
    except Exception as exc:
        import sqlalchemy as sa

        from .engine import _is_lock_error

        if isinstance(exc, sa.exc.DBAPIError) and _is_lock_error(exc):
            _error(
                f"the warehouse is busy: {exc.orig}\n(another process holds the DuckDB file; "
                "try again when it is done)"
            )
            return EXIT_BUSY
        if isinstance(exc, sa.exc.DBAPIError):
            _error(f"the warehouse refused: {exc.orig}")
            return EXIT_FAILURE
        raise
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
