"""django-attribution vs trackhouse (issue 16): `attribute_conversions` against the
real Django app's `Conversion.objects.valid().with_attribution(last_touch,
window_days=30)` on SQLite, on the same people, touchpoints and conversions.

    .venv/bin/python bench/django_attribution.py [--touchpoints 1000000] [--conversions 100000]
                                                 [--identities 50000] [--calls 30]
                                                 [--django-calls 5] [--django-budget 300]
                                                 [--keep]

1. The Django side runs the REAL app: the PyPI package `django-attribution`
   (with Django) installed in its own virtualenv, bench/results/django-venv,
   created on first use (`python -m venv` + `pip install django
   django-attribution`). This script is run again with that venv's Python as
   a worker (`--worker load|time`), which imports only the standard library
   and Django.
2. Raw rows are generated and the attribution marts built exactly as
   bench/attribution.py does (its `generate` and `dbt`, imported), in a
   temporary DuckDB warehouse.
3. The marts are copied into the app's models in a SQLite file through the
   Django ORM (settings.configure, migrate, bulk_create): one Identity per
   stitched_id, one Touchpoint per mart touchpoint (created_at = touched_at,
   url, referrer and the 12 tracking parameters, NULL -> ''), one Conversion
   per mart conversion (created_at = converted_at, event, value, currency,
   is_confirmed, is_active: the app's `valid()` is is_active and is_confirmed,
   the mart's is_valid). Primary keys are assigned in mart-id order so answers
   map back.
4. Timed, wall clock and CPU, first call of a fresh process then the median of
   repeated calls: the app's
   `list(Conversion.objects.valid().with_attribution(last_touch,
   window_days=30).values("id", "attribution_data"))` in the Django venv
   (repeats bounded by --django-calls and --django-budget seconds), and
   `attribute_conversions()` (last_touch, 30 days, valid only) in this venv
   (its first call copies the marts and prepares the conversion/touchpoint
   pairs), in both its forms: rows as dicts (in this process) and
   `as_arrow=True`, a pyarrow.Table (in a fresh process of this venv, a worker
   like the Django ones, which also checks that the table's rows are the
   dicts).
5. Answers compared per valid conversion: the app's attribution_data (it holds
   the 12 tracking parameters and the referrer, not the touchpoint) against
   trackhouse's row, and the chosen touchpoint itself, from one extra untimed
   call of the same query with the touchpoint's pk added to the JSON object
   (a subclass of the app's LastTouchAttributionModel). Disagreements are
   classified (ties on touched_at: the app orders by created_at alone).

Prints a table and adds this scale's run to bench/results/django_attribution.json
(runs keyed by scale). Nothing is asserted about speed; every figure carries the
1-minute load average when it was taken.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DJANGO_VENV = RESULTS / "django-venv"
OUT = RESULTS / "django_attribution.json"
# django_attribution.settings.TRACKING_PARAMETERS; the worker checks it still is.
TRACKING = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "fbclid", "gclid", "msclkid", "ttclid", "li_fat_id", "twclid", "igshid",
)  # fmt: skip
TOUCHPOINT_CSV = ("pk", "identity_pk", "touched_us", "url", "referrer", *TRACKING)
CONVERSION_CSV = (
    "pk", "identity_pk", "converted_us", "event", "value", "currency", "is_confirmed", "is_active"
)  # fmt: skip
CHUNK = 5000


def log(message: str) -> None:
    print(
        f"[django_attribution {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True
    )


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(started: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - started[0], time.process_time() - started[1]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# -- worker: runs in the Django venv (standard library and Django only) -----------
def _django_setup(sqlite: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sqlite}},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_attribution",
        ],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()


def _moment(micros: str) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))


def _rows(path: Path) -> Any:
    with path.open(newline="") as handle:
        yield from csv.DictReader(handle)


def _chunked(objects: Any, model: Any) -> int:
    from django.db import transaction

    total, batch = 0, []
    with transaction.atomic():
        for obj in objects:
            batch.append(obj)
            if len(batch) == CHUNK:
                model.objects.bulk_create(batch)
                total += len(batch)
                batch = []
        if batch:
            model.objects.bulk_create(batch)
            total += len(batch)
    return total


def worker_load(sqlite: str, data: Path) -> dict[str, Any]:
    """migrate, then bulk_create the exported marts into the app's models."""
    _django_setup(sqlite)
    from decimal import Decimal

    from django.core.management import call_command
    from django_attribution.models import Conversion, Identity, Touchpoint

    started = clock()
    call_command("migrate", verbosity=0)
    log(f"worker: migrated {sqlite}")
    identities = _chunked(
        (Identity(pk=int(r["pk"])) for r in _rows(data / "identities.csv")),
        Identity,
    )
    log(f"worker: {identities:,} identities")
    touchpoints = _chunked(
        (
            Touchpoint(
                pk=int(r["pk"]),
                identity_id=int(r["identity_pk"]),
                created_at=_moment(r["touched_us"]),
                url=r["url"],
                referrer=r["referrer"],
                **{name: r[name] for name in TRACKING},
            )
            for r in _rows(data / "touchpoints.csv")
        ),
        Touchpoint,
    )
    log(f"worker: {touchpoints:,} touchpoints")
    conversions = _chunked(
        (
            Conversion(
                pk=int(r["pk"]),
                identity_id=int(r["identity_pk"]),
                created_at=_moment(r["converted_us"]),
                event=r["event"],
                conversion_value=Decimal(r["value"]) if r["value"] else None,
                currency=r["currency"],
                is_confirmed=r["is_confirmed"] == "true",
                is_active=r["is_active"] == "true",
            )
            for r in _rows(data / "conversions.csv")
        ),
        Conversion,
    )
    log(f"worker: {conversions:,} conversions")
    wall, cpu = since(started)
    return {
        "identities": identities,
        "touchpoints": touchpoints,
        "conversions": conversions,
        "load_seconds": round(wall, 1),
        "load_cpu_seconds": round(cpu, 1),
        "sqlite_bytes": Path(sqlite).stat().st_size,
        "load_average": load_average(),
    }


def worker_time(sqlite: str, calls: int, budget: float) -> dict[str, Any]:
    """Time the app's with_attribution(last_touch, 30 days) on valid conversions."""
    _django_setup(sqlite)
    from importlib.metadata import version

    from django.db import connection
    from django_attribution.attribution_models import LastTouchAttributionModel, last_touch
    from django_attribution.conf import attribution_settings
    from django_attribution.models import Conversion

    if tuple(attribution_settings.TRACKING_PARAMETERS) != TRACKING:
        sys.exit("django-attribution's tracking parameters changed: update TRACKING here")

    def query(model: Any = last_touch) -> Any:
        return (
            Conversion.objects.valid()
            .with_attribution(model, window_days=30)
            .values("id", "attribution_data")
        )

    sql, params = query().query.sql_with_params()
    started = clock()
    first_rows = list(query())
    first_wall, first_cpu = since(started)
    first_load = load_average()
    log(
        f"worker: first call {first_wall:.2f}s wall / {first_cpu:.2f}s CPU,"
        f" {len(first_rows):,} rows"
    )
    walls, cpus, loads = [], [], []
    spent = first_wall
    while len(walls) < calls and (not walls or spent < budget):
        started = clock()
        rows = list(query())
        wall, cpu = since(started)
        walls.append(wall)
        cpus.append(cpu)
        loads.append(load_average())
        spent += wall
        log(f"worker: call {len(walls) + 1}: {wall:.2f}s wall / {cpu:.2f}s CPU")
    same_each_call = [(r["id"], r["attribution_data"]) for r in rows] == [
        (r["id"], r["attribution_data"]) for r in first_rows
    ]

    class LastTouchWithPk(LastTouchAttributionModel):
        """The app's last touch with the touchpoint's pk added to the JSON object."""

        def _get_attribution_fields(self) -> dict[str, str]:
            return {**super()._get_attribution_fields(), "touchpoint_pk": "id"}

    started = clock()
    with_pk = list(query(LastTouchWithPk()))
    pk_wall, _ = since(started)
    log(f"worker: the same query with the touchpoint pk, {pk_wall:.2f}s (not timed)")
    first_data = {r["id"]: r["attribution_data"] for r in first_rows}
    with connection.cursor() as cursor:
        cursor.execute("explain query plan " + sql, params)
        plan = [row[-1] for row in cursor.fetchall()]
    return {
        "versions": {name: version(name) for name in ("django", "django-attribution")},
        "sqlite_version": connection.Database.sqlite_version,
        "sql": sql,
        "params": [str(p) for p in params],
        "query_plan": plan,
        "first_call_seconds": round(first_wall, 3),
        "first_call_cpu_seconds": round(first_cpu, 3),
        "first_call_load_average": first_load,
        "repeated_calls": len(walls),
        "median_wall_seconds": round(median(walls), 3) if walls else None,
        "median_cpu_seconds": round(median(cpus), 3) if cpus else None,
        "call_seconds": [round(w, 3) for w in walls],
        "call_load_averages": loads,
        "same_rows_each_call": same_each_call,
        "with_pk_call_seconds": round(pk_wall, 3),
        "rows": len(first_rows),
        "answers": {r["id"]: r["attribution_data"] for r in first_rows},
        "chosen_pk": {r["id"]: r["attribution_data"].get("touchpoint_pk") for r in with_pk},
        # The pk variant picks what the timed query picks (its other keys are equal).
        "with_pk_same_data": sum(
            {k: v for k, v in r["attribution_data"].items() if k != "touchpoint_pk"}
            == first_data.get(r["id"])
            for r in with_pk
        ),
    }


def worker(args: argparse.Namespace) -> None:
    # bench/ is first on sys.path, and bench/statistics.py would shadow the
    # standard library's (Django's SQLite backend imports it).
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    if args.worker == "load":
        result = worker_load(args.sqlite, Path(args.data))
    elif args.worker == "arrow":
        result = worker_arrow(args.calls)
    else:
        result = worker_time(args.sqlite, args.django_calls, args.django_budget)
    Path(args.result).write_text(json.dumps(result, default=str))


# -- driver: runs in trackhouse's venv ---------------------------------------------
def django_python() -> Path:
    """The Django venv's Python, creating the venv and installing the app if needed."""
    python = DJANGO_VENV / "bin" / "python"
    probe = [str(python), "-c", "import django, django_attribution"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    log(f"creating {DJANGO_VENV} and installing django, django-attribution from PyPI")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(DJANGO_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "django", "django-attribution"]
    proc = subprocess.run(pip, capture_output=True, text=True)
    if proc.returncode != 0 or subprocess.run(probe, capture_output=True).returncode != 0:
        sys.exit(f"could not install django-attribution into {DJANGO_VENV}:\n{proc.stderr[-3000:]}")
    return python


def run_worker(python: Path, *args: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result = Path(handle.name)
    try:
        proc = subprocess.run(
            [str(python), str(Path(__file__).resolve()), *args, "--result", str(result)],
            cwd=ROOT,
        )
        if proc.returncode != 0:
            sys.exit(f"the Django worker ({' '.join(args[:2])}) failed: exit {proc.returncode}")
        return json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)


def export_marts(db: Path, data: Path) -> dict[str, Any]:
    """The marts as CSV for the worker (integer pks in mart-id order), and the maps
    back from pks to trackhouse ids."""
    import duckdb

    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(
            """
            create temp table identity_pks as
            select stitched_id, row_number() over (order by stitched_id) as pk
            from (
                select stitched_id from main.identities
                union select stitched_id from main.touchpoints
                union select stitched_id from main.conversions
            )
            """
        )
        con.execute(
            """
            create temp table touchpoint_pks as
            select touchpoint_id, row_number() over (order by touchpoint_id) as pk
            from main.touchpoints
            """
        )
        con.execute(
            """
            create temp table conversion_pks as
            select conversion_id, row_number() over (order by conversion_id) as pk
            from main.conversions
            """
        )
        con.execute(
            f"copy (select pk from identity_pks order by pk) to '{data / 'identities.csv'}' "
            "(header)"
        )
        strings = ", ".join(f"coalesce(t.{c}, '') as {c}" for c in ("url", "referrer", *TRACKING))
        con.execute(
            f"""
            copy (
                select p.pk, i.pk as identity_pk, epoch_us(t.touched_at) as touched_us, {strings}
                from main.touchpoints as t
                inner join touchpoint_pks as p using (touchpoint_id)
                inner join identity_pks as i using (stitched_id)
                order by p.pk
            ) to '{data / "touchpoints.csv"}' (header)
            """
        )
        con.execute(
            f"""
            copy (
                select
                    p.pk, i.pk as identity_pk, epoch_us(c.converted_at) as converted_us,
                    coalesce(c.event, '') as event, c.value, coalesce(c.currency, '') as currency,
                    coalesce(c.is_confirmed, false) as is_confirmed,
                    coalesce(c.is_active, false) as is_active
                from main.conversions as c
                inner join conversion_pks as p using (conversion_id)
                inner join identity_pks as i using (stitched_id)
                order by p.pk
            ) to '{data / "conversions.csv"}' (header)
            """
        )
        # is_valid must be what the app's valid() will see.
        mismatched = con.execute(
            "select count(*) from main.conversions where coalesce(is_valid, false) "
            "<> (coalesce(is_confirmed, false) and coalesce(is_active, false))"
        ).fetchone()[0]
        touchpoint_ids = dict(
            con.execute("select pk, touchpoint_id from touchpoint_pks").fetchall()
        )
        conversion_ids = dict(
            con.execute("select pk, conversion_id from conversion_pks").fetchall()
        )
        touched_at = dict(
            con.execute("select touchpoint_id, touched_at from main.touchpoints").fetchall()
        )
        marts = con.execute(
            "select (select count(*) from main.touchpoints),"
            " (select count(*) from main.conversions),"
            " (select count(*) from main.conversions where is_valid),"
            " (select count(*) from identity_pks)"
        ).fetchone()
    finally:
        con.close()
    return {
        "touchpoint_ids": touchpoint_ids,
        "conversion_ids": conversion_ids,
        "touched_at": touched_at,
        "marts": dict(
            zip(
                ("touchpoints", "conversions", "valid_conversions", "identities"),
                marts,
                strict=True,
            )
        ),
        "is_valid_mismatches": mismatched,
    }


def time_trackhouse(calls: int, as_arrow: bool = False) -> tuple[dict[str, Any], Any]:
    """attribute_conversions() timed: the first call of this process, then `calls`
    more; its figures and the first call's answer (dicts, or a pyarrow.Table)."""
    from trackhouse.query.attribution import attribute_conversions
    from trackhouse.settings import load_settings

    form = "Arrow" if as_arrow else "dicts"
    settings = load_settings("duckdb", ROOT)
    started = clock()
    answer = attribute_conversions(settings=settings, as_arrow=as_arrow)
    first_wall, first_cpu = since(started)
    first_load = load_average()
    log(f"trackhouse ({form}): first call {first_wall * 1000:.0f} ms, {len(answer):,} rows")
    walls, cpus, loads = [], [], []
    for _ in range(calls):
        started = clock()
        attribute_conversions(settings=settings, as_arrow=as_arrow)
        wall, cpu = since(started)
        walls.append(wall)
        cpus.append(cpu)
        loads.append(load_average())
    figures = {
        "first_call_ms": round(first_wall * 1000, 1),
        "first_call_cpu_ms": round(first_cpu * 1000, 1),
        "first_call_load_average": first_load,
        "repeated_calls": calls,
        "median_wall_ms": round(median(walls) * 1000, 1),
        "median_cpu_ms": round(median(cpus) * 1000, 1),
        "call_load_averages": [min(loads), max(loads)],
        "load_average": load_average(),
        "rows": len(answer),
    }
    log(
        f"trackhouse ({form}): median {figures['median_wall_ms']} ms wall /"
        f" {figures['median_cpu_ms']} ms CPU over {calls} calls"
        f" (load average {figures['load_average']})"
    )
    return figures, answer


def worker_arrow(calls: int) -> dict[str, Any]:
    """The Arrow form timed in a process of its own (its first call is a first call),
    then one untimed call for dicts: are the table's rows the dicts?"""
    import duckdb  # noqa: F401 - imported before its first call, as in the driver (export_marts)

    from trackhouse.query.attribution import attribute_conversions
    from trackhouse.settings import load_settings

    figures, table = time_trackhouse(calls, as_arrow=True)
    rows = attribute_conversions(settings=load_settings("duckdb", ROOT))
    figures["same_rows_as_dicts"] = table.to_pylist() == rows
    return figures


def compare(
    rows: list[dict[str, Any]], django: dict[str, Any], maps: dict[str, Any]
) -> dict[str, Any]:
    """Per valid conversion: the same touchpoint? the same attribution_data?"""
    conversion_ids, touchpoint_ids = maps["conversion_ids"], maps["touchpoint_ids"]
    touched_at = maps["touched_at"]
    ours = {r["conversion_id"]: r for r in rows}
    answers = {conversion_ids[int(pk)]: data for pk, data in django["answers"].items()}
    chosen = {
        conversion_ids[int(pk)]: touchpoint_ids[tp] if tp is not None else None
        for pk, tp in django["chosen_pk"].items()
    }
    common = ours.keys() & chosen.keys()
    kinds: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    same_touchpoint = same_data = 0
    for conversion_id in sorted(common):
        row, theirs = ours[conversion_id], chosen[conversion_id]
        expected = {c: row[c] or "" for c in TRACKING}
        expected["referrer"] = row["referrer"] or ""
        data = answers.get(conversion_id)
        if (data == {} and row["touchpoint_id"] is None) or data == expected:
            same_data += 1
        if row["touchpoint_id"] == theirs:
            same_touchpoint += 1
            continue
        if row["touchpoint_id"] is None:
            kind = "only the app attributes"
        elif theirs is None:
            kind = "only trackhouse attributes"
        elif touched_at[row["touchpoint_id"]] == touched_at[theirs]:
            kind = "tie on touched_at (app orders by created_at alone)"
        else:
            kind = "different touched_at"
        kinds[kind] = kinds.get(kind, 0) + 1
        if len(examples) < 5:
            examples.append(
                {
                    "conversion_id": conversion_id,
                    "converted_at": str(row["converted_at"]),
                    "trackhouse": row["touchpoint_id"],
                    "trackhouse_touched_at": str(touched_at.get(row["touchpoint_id"])),
                    "app": theirs,
                    "app_touched_at": str(touched_at.get(theirs)),
                    "kind": kind,
                }
            )
    return {
        "trackhouse_valid_conversions": len(ours),
        "app_valid_conversions": len(chosen),
        "in_both": len(common),
        "same_touchpoint": same_touchpoint,
        "same_attribution_data": same_data,
        "attributed_trackhouse": sum(r["touchpoint_id"] is not None for r in rows),
        "attributed_app": sum(tp is not None for tp in chosen.values()),
        "disagreements": kinds,
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--touchpoints", type=int, default=1_000_000)
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--identities", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=30, help="repeated trackhouse calls")
    parser.add_argument(
        "--django-calls", type=int, default=5, help="repeated app calls (after the first)"
    )
    parser.add_argument(
        "--django-budget",
        type=float,
        default=300.0,
        help="stop repeating app calls once this many seconds are spent (at least one repeat)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouse and SQLite file")
    parser.add_argument("--worker", choices=("load", "time", "arrow"), help=argparse.SUPPRESS)
    parser.add_argument("--sqlite", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from _common import duckdb_env
    from attribution import MODELS, dbt, generate

    python = django_python()
    workdir = Path(tempfile.mkdtemp(prefix="trackhouse-bench-django-attribution-"))
    db, sqlite = workdir / "bench.duckdb", workdir / "django.sqlite3"
    env = duckdb_env(db)
    os.environ.update(env)
    target = ["--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    scale = {k: getattr(args, k) for k in ("touchpoints", "conversions", "identities")}
    run: dict[str, Any] = {"scale": scale, "started_load_average": load_average()}
    try:
        log(f"generating {scale} into {db}")
        started = clock()
        run["generated"] = generate(db, args.touchpoints, args.conversions, args.identities)
        log(f"generated {run['generated']} in {since(started)[0]:.1f}s; dbt seed + run")
        dbt(env, "seed", "--select", "bot_user_agents", "channel_rules", "channel_hosts", *target)
        run["dbt_run_seconds"] = round(dbt(env, "run", "--select", *MODELS, *target), 1)
        log(f"dbt run {run['dbt_run_seconds']}s; exporting the marts")
        maps = export_marts(db, workdir / "data")
        run["marts"] = maps["marts"]
        run["is_valid_mismatches"] = maps["is_valid_mismatches"]
        log(f"marts {maps['marts']}; loading them into the app on SQLite ({python})")
        run["django_load"] = run_worker(
            python, "--worker", "load", "--sqlite", str(sqlite), "--data", str(workdir / "data")
        )
        log(f"loaded in {run['django_load']['load_seconds']}s; timing the app")
        django = run_worker(
            python,
            "--worker",
            "time",
            "--sqlite",
            str(sqlite),
            "--django-calls",
            str(args.django_calls),
            "--django-budget",
            str(args.django_budget),
        )
        run["django"] = {k: v for k, v in django.items() if k not in ("answers", "chosen_pk")}
        log("timing trackhouse")
        run["trackhouse"], rows = time_trackhouse(args.calls)
        log("timing trackhouse's Arrow form in a fresh process")
        run["trackhouse_arrow"] = run_worker(
            Path(sys.executable), "--worker", "arrow", "--calls", str(args.calls)
        )
        run["comparison"] = compare(rows, django, maps)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    app, same = run["django"], run["comparison"]
    # The run's keys for each form: ratio_median, ratio_median_arrow, ...
    forms = {
        "attribute_conversions()": ("", run["trackhouse"]),
        "attribute_conversions(as_arrow=True)": ("_arrow", run["trackhouse_arrow"]),
    }
    app_median = app["median_wall_seconds"] or app["first_call_seconds"]
    for suffix, ours in forms.values():
        run[f"ratio_median{suffix}"] = round(app_median * 1000 / ours["median_wall_ms"], 1)
        run[f"ratio_first_call{suffix}"] = round(
            app["first_call_seconds"] * 1000 / ours["first_call_ms"], 1
        )
    print(
        f"\n{scale['touchpoints']:,} touchpoints, {scale['conversions']:,} conversions, "
        f"{scale['identities']:,} identities; {same['trackhouse_valid_conversions']:,} valid"
    )
    print(f"{'':38} {'first call':>12} {'median wall':>12} {'median CPU':>11} {'load':>6}")
    print(
        f"{'django-attribution (SQLite)':38} {app['first_call_seconds']:11.2f}s"
        f" {app_median:11.2f}s {app['median_cpu_seconds'] or 0:10.2f}s"
        f" {app['first_call_load_average']:6.2f}"
    )
    for label, (suffix, ours) in forms.items():
        print(
            f"{label:38} {ours['first_call_ms']:10.0f}ms"
            f" {ours['median_wall_ms']:10.1f}ms {ours['median_cpu_ms']:9.1f}ms"
            f" {ours['load_average']:6.2f}"
        )
        print(
            f"    ratio (app / trackhouse): median {run[f'ratio_median{suffix}']}x,"
            f" first {run[f'ratio_first_call{suffix}']}x"
        )
    print(f"Arrow rows equal the dicts: {run['trackhouse_arrow']['same_rows_as_dicts']}")
    print(
        f"same touchpoint {same['same_touchpoint']:,} / {same['in_both']:,}; same attribution_data"
        f" {same['same_attribution_data']:,}; disagreements {same['disagreements'] or 'none'}"
    )
    results: dict[str, Any] = {}
    if OUT.exists():
        results = json.loads(OUT.read_text())
    results.setdefault("runs", {})
    key = f"{scale['touchpoints']}tp-{scale['conversions']}cv-{scale['identities']}id"
    results["runs"][key] = run
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2, default=str))
    log(f"wrote {OUT} ({key})")


if __name__ == "__main__":
    main()
