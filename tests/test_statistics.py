"""Statistics (SPEC 2.5): the built-in metrics, incremental runs, recorded statistics,
a user's own metric, and the query API / CLI — checked against counts done in Python.

The expected values are computed here from the events themselves (distinct keys
per window, in the report time zone), independently of the SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import sqlalchemy as sa

from trackhouse.engine import get_engine
from trackhouse.loader import load_files
from trackhouse.query.statistics import statistics

from factories import identify, page, statistic, track

TZ = ZoneInfo("Europe/Amsterdam")
WINDOWS = {"day": 1, "week": 7, "days_28": 28, "month": 30, "lifetime": None}
MARTS = ("statistics_by_date", "statistics_by_date_and_object")
SELECT = ("+statistics_by_date", "+statistics_by_date_and_object", "trackhouse_metrics")
# Unit tests run once, in the main scenario; data tests only when all their parents are
# built here (other marts' tests are theirs).
NO_UNIT_TESTS = ("--exclude", "test_type:unit", "--indirect-selection", "cautious")

Facts = list[tuple[str, date, str | None, Decimal]]  # key, local date, object, value


# -- the scenario -------------------------------------------------------------------
def visit(at: str, user_id: str) -> dict[str, Any]:
    """A page view of a signed-in user without tracking parameters: activity only."""
    return page(at, "https://app.example/dashboard", user_id=user_id)


def landing(at: str, source: str, path: str = "/", user_agent: str | None = None) -> dict:
    return page(
        at,
        f"https://shop.example{path}?utm_source={source}",
        anonymous_id=f"anon-{at}-{source}",
        user_agent=user_agent,
    )


def conversion(at: str, conversion_id: str, event: str, **properties: Any) -> dict:
    return track(
        at, event, anonymous_id=f"anon-{conversion_id}", conversion_id=conversion_id, **properties
    )


FIRST_LOAD = [
    # users: u2 joins at 23:30 UTC on Feb 1, which is Feb 2 in Amsterdam
    identify("2024-02-01T09:00:00Z", "u1", created_at="2024-02-01T09:00:00Z", account_id="acme"),
    identify("2024-02-01T23:30:00Z", "u2", created_at="2024-02-01T23:30:00Z", account_id="acme"),
    identify("2024-02-15T12:00:00Z", "u3", created_at="2024-02-15T12:00:00Z", account_id="globex"),
    identify("2024-03-01T12:00:00Z", "u4", created_at="2024-03-01T12:00:00Z"),
    # activity
    visit("2024-02-03T10:00:00Z", "u1"),
    visit("2024-02-10T10:00:00Z", "u1"),
    visit("2024-03-15T10:00:00Z", "u1"),
    visit("2024-03-20T10:00:00Z", "u1"),
    visit("2024-02-03T08:00:00Z", "u2"),
    visit("2024-02-03T15:00:00Z", "u2"),
    visit("2024-03-05T10:00:00Z", "u2"),
    visit("2024-03-18T10:00:00Z", "u3"),
    visit("2024-03-19T23:30:00Z", "u4"),  # Mar 20 in Amsterdam
    # touchpoints; the bot and the /admin/ page are no touchpoints
    landing("2024-02-05T10:00:00Z", "google"),
    landing("2024-02-05T11:00:00Z", "google"),
    landing("2024-03-10T10:00:00Z", "newsletter"),
    landing("2024-03-10T11:00:00Z", "google", user_agent="Mozilla/5.0 (compatible; Googlebot/2.1)"),
    landing("2024-03-12T10:00:00Z", "google", path="/admin/"),
    # conversions: c4 is not confirmed, so not valid; c3 has no value
    conversion("2024-02-05T12:00:00Z", "c1", "purchase", value=10.00, currency="EUR"),
    conversion("2024-02-06T12:00:00Z", "c2", "purchase", value=5.50, currency="EUR"),
    conversion("2024-03-10T12:00:00Z", "c3", "signup"),
    conversion(
        "2024-03-11T12:00:00Z", "c4", "purchase", value=20, currency="USD", is_confirmed=False
    ),
    conversion("2024-03-12T12:00:00Z", "c5", "purchase", value=7.25, currency="USD"),
]

# Arrives after the first build: events weeks in the past, a deactivation, recordings.
SECOND_LOAD = [
    identify("2024-02-05T10:00:00Z", "u5", created_at="2024-02-05T10:00:00Z", account_id="globex"),
    visit("2024-02-20T10:00:00Z", "u1"),
    visit("2024-03-21T10:00:00Z", "u3"),
    landing("2024-02-20T10:00:00Z", "google"),
    conversion("2024-03-21T09:00:00Z", "c2", "purchase", is_active=False),
    statistic("2024-03-21T09:00:00Z", "users.user_count", 10, "day", "2024-03-01"),
    statistic("2024-03-21T09:00:00Z", "twitter.follower_count", 500, "lifetime", "2024-03-21"),
    statistic(
        "2024-03-21T09:00:00Z",
        "activity.active_users",
        42,
        "week",
        "2024-03-15",
        object_type="account",
        object_id="acme",
    ),
    # a lifetime value by object on a date without data: the computed one resumes after it
    statistic(
        "2024-03-21T09:00:00Z",
        "users.user_count",
        99,
        "lifetime",
        "2024-03-10",
        object_type="account",
        object_id="acme",
    ),
]

FIRST_VARS = {"report_timezone": "Europe/Amsterdam", "as_of": "2024-03-20"}
SECOND_VARS = {"report_timezone": "Europe/Amsterdam", "as_of": "2024-03-22"}


# -- the oracle: the same statistics computed in Python -------------------------------
def local_date(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(TZ).date()


def builtin_facts(events: list[dict[str, Any]]) -> dict[str, Facts]:
    """What each built-in metric counts, read straight from the events."""
    accounts: dict[str, str | None] = {}
    joined: dict[str, str] = {}
    conversions: dict[str, dict[str, Any]] = {}
    activity: set[tuple[str, date]] = set()
    touchpoints: Facts = []
    for e in sorted(events, key=lambda e: e["timestamp"]):
        user = e.get("userId")
        if user:
            activity.add((user, local_date(e["timestamp"])))
        if e["type"] == "identify":
            joined.setdefault(user, e["traits"]["created_at"])
            accounts[user] = e["traits"].get("account_id") or accounts.get(user)
        elif e["type"] == "page" and "utm_source=" in e["context"]["page"]["url"]:
            url = e["context"]["page"]["url"]
            if "/admin/" in url or "bot" in e["context"].get("userAgent", "").lower():
                continue
            source = url.split("utm_source=")[1]
            touchpoints.append((e["messageId"], local_date(e["timestamp"]), source, Decimal(1)))
        elif e["type"] == "track":
            props = e["properties"]
            state = conversions.setdefault(
                props["conversion_id"],
                {"date": local_date(e["timestamp"]), "event": e["event"], "valid": True},
            )
            for flag in ("is_confirmed", "is_active"):
                if props.get(flag) is False:
                    state["valid"] = False
            if "value" in props:
                state["value"] = Decimal(str(props["value"])).quantize(Decimal("0.01"))
                state["currency"] = props.get("currency", "EUR")
    valid = {cid: c for cid, c in conversions.items() if c["valid"]}
    return {
        "users.user_count": [
            (u, local_date(at), accounts.get(u), Decimal(1)) for u, at in joined.items()
        ],
        "activity.active_users": [(u, d, accounts.get(u), Decimal(1)) for u, d in activity],
        "attribution.touchpoint_count": touchpoints,
        "attribution.conversion_count": [
            (cid, c["date"], c["event"], Decimal(1)) for cid, c in valid.items()
        ],
        "attribution.conversion_value": [
            (cid, c["date"], c["currency"], c["value"]) for cid, c in valid.items() if "value" in c
        ],
    }


def window_value(facts: Facts, period: str, day: date, summing: bool) -> Decimal:
    days = WINDOWS[period]
    inside = [f for f in facts if f[1] <= day and (days is None or f[1] > day - timedelta(days))]
    if summing:
        return sum((f[3] for f in inside), Decimal(0))
    return Decimal(len({f[0] for f in inside}))


def dates(first: date, last: date) -> Iterable[date]:
    return (first + timedelta(n) for n in range((last - first).days + 1))


def expected_rows(events: list[dict[str, Any]], as_of: date) -> tuple[dict, dict]:
    """{(metric, period, date): value} by date and {(..., object_type, object_id): value}.

    By object these are the dense series (every date from the object's first date to
    as_of): what the query API answers. sparse() gives the rows the mart stores."""
    object_types = {
        "users.user_count": "account",
        "activity.active_users": "account",
        "attribution.touchpoint_count": "utm_source",
        "attribution.conversion_count": "event",
        "attribution.conversion_value": "currency",
    }
    by_date: dict[tuple, Decimal] = {}
    by_object: dict[tuple, Decimal] = {}
    for metric, facts in builtin_facts(events).items():
        facts = [f for f in facts if f[1] <= as_of]
        summing = metric.endswith("value")
        if not facts:
            continue
        groups: dict[str, Facts] = defaultdict(list)
        for f in facts:
            if f[2] is not None:
                groups[f[2]].append(f)
        # By date, conversion_value sums the default currency only (var `currency`,
        # EUR); its rows still start at the first conversion of any currency.
        dated = [f for f in facts if f[2] == "EUR"] if metric.endswith("value") else facts
        for period in WINDOWS:
            for day in dates(min(f[1] for f in facts), as_of):
                by_date[metric, period, day] = window_value(dated, period, day, summing)
            for obj, obj_facts in groups.items():
                for day in dates(min(f[1] for f in obj_facts), as_of):
                    key = (metric, period, day, object_types[metric], obj)
                    by_object[key] = window_value(obj_facts, period, day, summing)
    return by_date, by_object


def sparse(events: list[dict[str, Any]], by_object: dict[tuple, Decimal]) -> dict:
    """The by-object rows the mart keeps: day on dates with data, a rolling period where
    its window holds data, lifetime on dates with data and on the day after a recorded
    lifetime value (where the computed value resumes)."""
    data_dates: dict[tuple[str, str], set[date]] = defaultdict(set)
    for metric, facts in builtin_facts(events).items():
        for f in facts:
            if f[2] is not None:
                data_dates[metric, f[2]].add(f[1])
    recorded_lifetime = {
        (k[0], k[4], k[2] + timedelta(1)) for k in recorded_rows(events)[1] if k[1] == "lifetime"
    }
    kept = {}
    for key, value in by_object.items():
        metric, period, day, _, obj = key
        days = WINDOWS[period] or 1
        has_data = any(day - timedelta(n) in data_dates[metric, obj] for n in range(days))
        if has_data or (period == "lifetime" and (metric, obj, day) in recorded_lifetime):
            kept[key] = value
    return kept


def recorded_rows(events: list[dict[str, Any]]) -> tuple[dict, dict]:
    by_date: dict[tuple, Decimal] = {}
    by_object: dict[tuple, Decimal] = {}
    for e in events:
        if e["type"] == "statistic":
            p = e["properties"]
            key = (p["metric"], p["period"], date.fromisoformat(p["date"]))
            if "object_type" in p:
                by_object[(*key, p["object_type"], p["object_id"])] = Decimal(p["value"])
            else:
                by_date[key] = Decimal(p["value"])
    return by_date, by_object


# -- reading the marts ---------------------------------------------------------------
def mart_rows(warehouse, name: str) -> dict[tuple, Decimal]:
    rows = warehouse.table(name, order_by="metric, period, date")
    return {
        (
            f"{r['domain']}.{r['metric']}",
            r["period"],
            r["date"],
            *((r["object_type"], r["object_id"]) if "object_id" in r else ()),
        ): Decimal(r["value"])
        for r in rows
    }


def assert_same(actual: dict, expected: dict, what: str) -> None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(k for k in set(actual) & set(expected) if actual[k] != expected[k])
    assert not (missing or extra or wrong), (
        f"{what}: {len(missing)} rows missing {missing[:5]}, {len(extra)} unexpected {extra[:5]}, "
        f"{len(wrong)} wrong {[(k, actual[k], expected[k]) for k in wrong[:5]]}"
    )


def load(warehouse, events: list[dict[str, Any]], name: str) -> None:
    report = load_files([warehouse.write_ndjson(events, name)], settings=warehouse.settings)
    assert report.rejected == 0, report.rejections


def build(warehouse, vars: dict[str, Any], *extra: str) -> None:
    warehouse.dbt("build", "--select", *SELECT, *extra, vars=vars)


def run(warehouse, vars: dict[str, Any], *extra: str) -> None:
    """Models only: the data tests ran in the first build."""
    warehouse.dbt("run", "--select", *SELECT, *extra, vars=vars)


# -- tests -----------------------------------------------------------------------------
def test_builtin_metrics_full_incremental_late_events_and_recorded(warehouse):
    # 1. A full build: every metric, every period, by date and by object.
    load(warehouse, FIRST_LOAD, "first.ndjson")
    build(warehouse, FIRST_VARS, *NO_UNIT_TESTS)
    by_date, by_object = expected_rows(FIRST_LOAD, date(2024, 3, 20))
    first = {m: mart_rows(warehouse, m) for m in MARTS}
    if warehouse.target == "postgres":  # dbt_project.yml: indexes on the delete+insert keys
        indexes = warehouse.query(
            "select tablename, indexdef from pg_indexes where schemaname = :schema",
            {"schema": warehouse.settings.mart_schema},
        )
        assert {
            (r["tablename"], r["indexdef"].split(" USING btree ")[1])
            for r in indexes
            if r["tablename"] in MARTS
        } >= {
            ("statistics_by_date", "(metric, period, date)"),
            ("statistics_by_date_and_object", "(metric, object_type, period, date)"),
        }
    assert_same(first["statistics_by_date"], by_date, "first build, by date")
    stored = sparse(FIRST_LOAD, by_object)
    assert_same(first["statistics_by_date_and_object"], stored, "first build, by object")
    assert len(stored) < len(by_object) / 2  # sparse: far fewer rows than the dense series
    # What a person would look at (the comparisons above are the real test):
    # a week counts users, not user-days; u2 joined on Feb 2 in Amsterdam;
    # google has no rows before its first touchpoint; acme has 0 sign-ups on Feb 3.
    assert first["statistics_by_date"]["activity.active_users", "week", date(2024, 2, 3)] == 2
    assert first["statistics_by_date"]["users.user_count", "day", date(2024, 2, 2)] == 1
    by_source = {k[2] for k in first["statistics_by_date_and_object"] if k[4] == "google"}
    assert min(by_source) == date(2024, 2, 5)
    acme = first["statistics_by_date_and_object"]
    assert ("users.user_count", "day", date(2024, 2, 3), "account", "acme") not in acme
    assert acme["users.user_count", "week", date(2024, 2, 3), "account", "acme"] == 2

    # 2. Late events weeks old, a deactivated conversion, recordings; as_of moves on 2 days.
    load(warehouse, SECOND_LOAD, "second.ndjson")
    run(warehouse, SECOND_VARS)
    incremental = {m: mart_rows(warehouse, m) for m in MARTS}
    everything = FIRST_LOAD + SECOND_LOAD
    by_date, by_object = expected_rows(everything, date(2024, 3, 22))
    recorded_by_date, recorded_by_object = recorded_rows(SECOND_LOAD)
    assert by_date["users.user_count", "day", date(2024, 3, 1)] == 1  # computed ...
    by_date.update(recorded_by_date)  # ... but the recorded value wins
    stored = sparse(everything, by_object)
    stored.update(recorded_by_object)
    by_object.update(recorded_by_object)  # the dense series, as the API answers
    assert_same(incremental["statistics_by_date"], by_date, "incremental, by date")
    assert_same(incremental["statistics_by_date_and_object"], stored, "incremental, by object")

    # 3. A full refresh gives exactly the same rows.
    run(warehouse, SECOND_VARS, "--full-refresh")
    for mart in MARTS:
        assert mart_rows(warehouse, mart) == incremental[mart], f"{mart}: incremental != full"

    # 4. The query API and the CLI answer every date of every series (by object: the
    # dense series, filled in from the sparse mart: 0, or lifetime carried forward).
    for metric, period, obj, start, with_cli in [
        ("activity.active_users", "week", None, "2024-02-02", True),
        ("attribution.conversion_value", "lifetime", None, "2024-02-02", False),
        ("users.user_count", "month", "account", "2024-02-02", False),
        ("attribution.touchpoint_count", "day", True, "2024-02-02", True),
        ("users.user_count", "lifetime", "account", "2024-03-05", True),
        ("activity.active_users", "lifetime", True, None, False),
        ("activity.active_users", "week", "account", "2024-03-01", False),
    ]:
        rows = statistics(
            metric, period, start, "2024-03-21", object=obj, settings=warehouse.settings
        )
        answers = by_object if obj else incremental[MARTS[0]]
        expected = {
            k: v
            for k, v in answers.items()
            if k[0] == metric
            and k[1] == period
            and date.fromisoformat(start or "2000-01-01") <= k[2] <= date(2024, 3, 21)
            and (obj in (None, True) or k[3] == obj)
        }
        got = {
            (
                f"{r['domain']}.{r['metric']}",
                r["period"],
                r["date"],
                *((r["object_type"], r["object_id"]) if obj else ()),
            ): r["value"]
            for r in rows
        }
        assert got == expected and rows, (metric, period, obj)
        assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
        if not with_cli:
            continue
        args = ["--metric", metric, "--period", period, "--start", start]
        args += ["--end", "2024-03-21", "--format", "json"]
        if obj is True:
            args.append("--by-object")
        elif obj:
            args += ["--object-type", obj]
        cli_rows = orjson.loads(warehouse.cli("query", "statistics", *args).stdout)
        assert [{**r, "date": date.fromisoformat(r["date"])} for r in cli_rows] == [
            {**r, "value": float(r["value"]) if r["value"] % 1 else int(r["value"])} for r in rows
        ]

    # 5. Mistakes name the valid values; a known metric outside its dates is just empty.
    with pytest.raises(ValueError, match=r"activity\.active_users"):
        statistics("activity.active_user", "day", settings=warehouse.settings)
    with pytest.raises(ValueError, match="day, days_28, lifetime, month, week"):
        statistics("activity.active_users", "year", settings=warehouse.settings)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        statistics("activity.active_users", "day", start="March 1", settings=warehouse.settings)
    with pytest.raises(ValueError, match="account"):
        statistics("users.user_count", "day", object="acount", settings=warehouse.settings)
    assert statistics("users.user_count", "day", "2030-01-01", settings=warehouse.settings) == []
    proc = warehouse.cli("query", "statistics", "--metric", "nope", "--period", "day", check=False)
    assert proc.returncode == 2 and "'domain.metric'" in proc.stderr


# One more day after FIRST_LOAD: what a daily incremental run sees.
NEXT_DAY = [
    visit("2024-03-21T10:00:00Z", "u2"),
    landing("2024-03-21T11:00:00Z", "newsletter"),
    conversion("2024-03-21T12:00:00Z", "c6", "purchase", value=3, currency="EUR"),
]


def _index_columns(warehouse, tables: Iterable[str]) -> list[tuple[str, str]]:
    """(table, indexed columns) of every index on `tables`, one entry per index."""
    rows = warehouse.query(
        "select tablename, indexdef from pg_indexes where schemaname = :schema",
        {"schema": warehouse.settings.mart_schema},
    )
    return sorted(
        (r["tablename"], r["indexdef"].split(" USING btree ")[1])
        for r in rows
        if r["tablename"] in tables
    )


def test_a_table_built_without_its_indexes_gets_them_at_the_next_build(warehouse):
    """dbt creates a model's indexes only when it creates the table: an incremental
    mart built by an older trackhouse, before the index was configured, gets it at the
    next incremental build (the post-hook create_missing_indexes), and only once."""
    if warehouse.target != "postgres":
        pytest.skip("indexes are a PostgreSQL config (DuckDB has none to create)")
    load(warehouse, FIRST_LOAD, "first.ndjson")
    build(warehouse, FIRST_VARS, *NO_UNIT_TESTS)
    configured = _index_columns(warehouse, MARTS)
    assert ("statistics_by_date", "(metric, period, date)") in configured
    schema = warehouse.settings.mart_schema
    with get_engine(warehouse.settings).begin() as conn:  # as an older build left them
        for (name,) in conn.execute(
            sa.text(
                "select indexname from pg_indexes where schemaname = :s and tablename in :t"
            ).bindparams(sa.bindparam("t", expanding=True)),
            {"s": schema, "t": list(MARTS)},
        ):
            conn.execute(sa.text(f'drop index "{schema}"."{name}"'))
    assert _index_columns(warehouse, MARTS) == []
    before = {m: mart_rows(warehouse, m) for m in MARTS}

    run(warehouse, FIRST_VARS)  # incremental: the tables stay, the indexes come back
    assert _index_columns(warehouse, MARTS) == configured
    assert {m: mart_rows(warehouse, m) for m in MARTS} == before
    run(warehouse, FIRST_VARS)  # present: nothing created twice
    assert _index_columns(warehouse, MARTS) == configured


def test_one_more_day_recomputes_only_the_last_days_and_equals_a_full_refresh(warehouse):
    """After one more day of events the incremental run recomputes from the last stored
    date minus lookback_days (or the day a value changed), not all history: a stored
    `week` row of an older date, changed by hand, is left as it is (the daily values
    it is checked against did not change). Apart from that row the marts equal a full
    refresh, by date and by object."""
    schema = warehouse.settings.mart_schema
    marked = {
        "statistics_by_date": ("activity.active_users", "week", date(2024, 3, 1)),
        "statistics_by_date_and_object": (
            "attribution.touchpoint_count",
            "week",
            date(2024, 2, 6),
            "utm_source",
            "google",
        ),
    }
    load(warehouse, FIRST_LOAD, "first.ndjson")
    warehouse.dbt("seed", vars=FIRST_VARS)
    run(warehouse, FIRST_VARS)
    first = {m: mart_rows(warehouse, m) for m in MARTS}
    with get_engine(warehouse.settings).begin() as conn:
        for mart, key in marked.items():
            assert key in first[mart], key
            objects = " and object_id = :object_id" if len(key) > 3 else ""
            conn.execute(
                sa.text(
                    f'update "{schema}"."{mart}" set value = value + 1000 '
                    f"where metric = :metric and period = :period and date = :date{objects}"
                ),
                {
                    "metric": key[0].split(".")[1],
                    "period": key[1],
                    "date": key[2],
                    "object_id": key[-1],
                },
            )

    load(warehouse, NEXT_DAY, "next.ndjson")
    next_vars = {**FIRST_VARS, "as_of": "2024-03-21"}
    run(warehouse, next_vars)
    incremental = {m: mart_rows(warehouse, m) for m in MARTS}
    run(warehouse, next_vars, "--full-refresh")
    for mart, key in marked.items():
        assert incremental[mart][key] == first[mart][key] + 1000, f"{mart}: {key} recomputed"
        incremental[mart][key] -= 1000
        full = mart_rows(warehouse, mart)
        assert_same(incremental[mart], full, f"{mart}: incremental, one more day")
        assert max(k[2] for k in full) == date(2024, 3, 21)


ORDERS = [
    # order_id, ordered_at (UTC), country, amount, status
    ("o1", "2024-05-01 08:00:00", "NL", "12.50", "paid"),
    ("o2", "2024-05-01 22:30:00", "DE", "20.00", "paid"),  # May 2 in Amsterdam
    ("o3", "2024-05-03 09:00:00", "NL", "7.25", "cancelled"),
    ("o4", "2024-05-09 09:00:00", "NL", "1.00", "paid"),
    ("o5", "2024-05-09 10:00:00", "NL", "1.00", "paid"),
]


def compile_inline(warehouse, sql: str, vars: dict[str, Any], check: bool = True):
    return warehouse.dbt("compile", "--inline", sql, "--quiet", vars=vars, check=check)


def test_a_user_defined_metric_over_their_own_table(warehouse):
    """A user's orders table, their own metric: the tracker macros as a model would call them."""
    schema = warehouse.settings.mart_schema
    with get_engine(warehouse.settings).begin() as conn:
        conn.execute(sa.text(f'create schema if not exists "{schema}"'))
        conn.execute(
            sa.text(
                f'create table "{schema}".shop_orders (order_id varchar, ordered_at timestamp, '
                "country varchar, amount numeric(12, 2), status varchar)"
            )
        )
        for order in ORDERS:
            conn.execute(
                sa.text(f'insert into "{schema}".shop_orders values (:i, :t, :c, :a, :s)'),
                dict(zip("itcas", order, strict=True)),
            )
    table = f'"{schema}"."shop_orders"'
    vars = {"report_timezone": "Europe/Amsterdam", "as_of": "2024-05-10"}
    paid = [o for o in ORDERS if o[4] != "cancelled"]

    def orders_facts(rows):
        return [(o[0], local_date(o[1].replace(" ", "T") + "Z"), o[2], Decimal(o[3])) for o in rows]

    facts = orders_facts(paid)

    # Counting by date with two periods only (each computed on its own on every date),
    # and summing by object (country) with every period: one compile for both.
    separator = "-- next tracker --"
    compiled = compile_inline(
        warehouse,
        "{{ trackhouse.track_by_date(metric='shop.order_count', relation='" + table + "', "
        "timestamp_column='ordered_at', count_distinct='order_id', "
        "where=\"status <> 'cancelled'\", periods=['lifetime', 'day']) }}\n"
        + separator
        + "\n{{ trackhouse.track_by_date_and_object(metric='shop.revenue', relation='"
        + table
        + "', timestamp_column='ordered_at', sum_column='amount', object_column='country', "
        "object_type='country', where=\"status = 'paid'\") }}",
        vars,
    ).stdout
    count_sql, revenue_sql = compiled.split(separator)

    rows = warehouse.query(count_sql)
    expected = {
        ("shop", "order_count", period, day): window_value(facts, period, day, False)
        for period in ("day", "lifetime")
        for day in dates(date(2024, 5, 1), date(2024, 5, 10))
    }
    got = {(r["domain"], r["metric"], r["period"], r["date"]): Decimal(r["value"]) for r in rows}
    assert got == expected
    assert got["shop", "order_count", "lifetime", date(2024, 5, 9)] == 4

    # By object the tracker is sparse: a row where the window holds orders of the
    # country (lifetime: on the dates with orders), e.g. no NL day row on May 2.
    rows = warehouse.query(revenue_sql)
    expected = {}
    for country in ("NL", "DE"):
        mine = [f for f in facts if f[2] == country]
        for period in WINDOWS:
            for day in dates(min(f[1] for f in mine), date(2024, 5, 10)):
                window = WINDOWS[period] or 1
                if any(day - timedelta(window) < f[1] <= day for f in mine):
                    expected[period, day, country] = window_value(mine, period, day, True)
    assert ("day", date(2024, 5, 2), "NL") not in expected
    assert expected["lifetime", date(2024, 5, 9), "NL"] == Decimal("14.50")
    got = {(r["period"], r["date"], r["object_id"]): Decimal(r["value"]) for r in rows}
    assert got == expected
    assert {r["object_type"] for r in rows} == {"country"}

    # Mistakes are reported at compile time with the fix (the same on every target).
    if warehouse.target != "duckdb":
        return
    proc = compile_inline(
        warehouse,
        "{{ trackhouse.track_by_date(metric='shop.order_count', relation='" + table + "', "
        "timestamp_column='ordered_at', count_distinct='order_id', periods=['weekly']) }}",
        vars,
        check=False,
    )
    assert proc.returncode != 0
    assert 'period "weekly" is not one of day, week, days_28, month, lifetime' in proc.stdout
