"""Dagster orchestration: the definitions load as one asset graph from the raw files to
every mart, the landing sensor loads each file once, failing files are reported with
the loader's reasons, two runs never write the warehouse at once, and everything
materializes for real on a temporary DuckDB.

DuckDB only (the Dagster glue is the same on both targets; dbt and the loader are
tested on PostgreSQL elsewhere), so no `warehouse` fixture: the fixture below sets
the environment a Dagster process would see.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import orjson
import pytest

from factories import identify, page, track

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAW_TABLES = {
    "events",
    "activity",
    "touchpoints",
    "conversion_events",
    "identity_links",
    "users",
    "accounts",
    "statistics",
    "rejected",
}
# SPEC section 3.
SPEC_MARTS = {
    "activity_hourly",
    "active_users",
    "usage_calendar_monthly",
    "usage_subscription_periods",
    "statistics_by_date",
    "statistics_by_date_and_object",
    "identities",
    "touchpoints",
    "conversions",
    "conversion_attribution",
}
POOL = "trackhouse_warehouse"
BLOCKED = f"blocked by limit for pool {POOL}"

pytestmark = pytest.mark.xdist_group("dagster")


# -- environment --------------------------------------------------------------


@dataclass
class DagsterEnv:
    tmp: Path
    env: dict[str, str]
    landing: Path
    defs: dg.Definitions
    manifest: dict[str, Any]

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.get()

    def write(self, name: str, events: list[dict[str, Any]] | list[bytes], folder: Path) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for e in events:
                f.write(e if isinstance(e, bytes) else orjson.dumps(e))
                f.write(b"\n")
        return path

    def count(self, relation: str) -> int:
        from trackhouse.query import fetch

        return int(fetch(f"select count(*) as n from {relation}")[0]["n"])


def dagster_environment(tmp: Path) -> dict[str, str]:
    """The variables a Dagster process of this project sees, pointed at `tmp`."""
    home = tmp / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "DAGSTER_HOME": str(home),
        "TRACKHOUSE_LANDING_DIR": str(tmp / "landing"),
        "TRACKHOUSE_SPOOL_DIR": str(tmp / "spool"),
        # Long enough that a file written during a test stays "being written".
        "TRACKHOUSE_LANDING_SETTLE_SECONDS": "120",
        "TRACKHOUSE_LOCK_TIMEOUT": "60",
    }


@pytest.fixture(scope="module")
def dagster_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterEnv]:
    tmp = tmp_path_factory.mktemp("dagster")
    env = dagster_environment(tmp)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("TRACKHOUSE_RAW_SCHEMA", raising=False)
        from orchestration.definitions import build_definitions
        from orchestration.environment import load_environment
        from orchestration.project import prepare_manifest

        environment = load_environment()
        # A fresh parse: the tests never see a manifest older than the models.
        manifest = json.loads(prepare_manifest(environment.settings, refresh=True).read_text())
        defs = build_definitions(environment)
        yield DagsterEnv(tmp, env, Path(env["TRACKHOUSE_LANDING_DIR"]), defs, manifest)


def _models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


# -- pure functions -------------------------------------------------------------


def test_dbt_arguments_are_built_from_the_run_config() -> None:
    from orchestration.dbt_cli import dbt_build_args, marts_selection, parse_vars
    from trackhouse.errors import ConfigError

    no_unit_tests = ["--exclude-resource-type", "unit_test"]
    assert dbt_build_args() == ["build", *no_unit_tests]
    assert dbt_build_args(unit_tests=True) == ["build"]
    assert dbt_build_args(full_refresh=True, unit_tests=True) == ["build", "--full-refresh"]
    vars = parse_vars("{window_days: 14, report_timezone: Europe/Amsterdam}")
    assert vars == {"window_days": 14, "report_timezone": "Europe/Amsterdam"}
    assert dbt_build_args(vars=vars) == [
        "build",
        *no_unit_tests,
        "--vars",
        '{"report_timezone": "Europe/Amsterdam", "window_days": 14}',
    ]
    assert parse_vars('{"as_of": "2024-05-31"}') == {"as_of": "2024-05-31"}
    assert parse_vars("  ") == {}
    with pytest.raises(ConfigError, match=r"not a mapping.*\{name: value"):
        parse_vars("[1, 2]")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_vars("{window_days: [")
    assert marts_selection(["activity", "attribution"]) == (
        "+path:models/marts/activity +path:models/marts/attribution"
    )
    with pytest.raises(ConfigError):
        marts_selection([])


def test_run_target_folders_are_per_run_and_pruned(tmp_path: Path) -> None:
    from orchestration.dbt_cli import prune_run_folders, run_target_path
    from trackhouse.errors import ConfigError

    base = tmp_path / "target" / "dagster"
    assert run_target_path(base, "0f1e-2d3c") == base / "runs" / "0f1e-2d3c"
    with pytest.raises(ConfigError, match="cannot name a folder"):
        run_target_path(base, "../escape")
    for i in range(5):
        folder = run_target_path(base, f"run-{i}")
        folder.mkdir(parents=True)
        os.utime(folder, (1_000_000 + i, 1_000_000 + i))
    removed = prune_run_folders(base, keep=2)
    assert sorted(p.name for p in removed) == ["run-0", "run-1", "run-2"]
    assert sorted(p.name for p in (base / "runs").iterdir()) == ["run-3", "run-4"]
    assert prune_run_folders(tmp_path / "nowhere") == []


def test_landing_files_cursor_and_settling() -> None:
    from orchestration.sensors import (
        LandedFile,
        files_to_load,
        is_landing_file,
        next_cursor,
        parse_cursor,
    )

    for name in ["a.ndjson", "b.jsonl", "c.json", "d.ndjson.gz", "E.NDJSON"]:
        assert is_landing_file(name), name
    for name in [".a.ndjson", "_a.ndjson", "a.ndjson.tmp", "a.ndjson.part", "a.csv", "a.gz"]:
        assert not is_landing_file(name), name

    second = 1_000_000_000
    now = 1_000 * second
    old = LandedFile(now - 60 * second, "/l/old.ndjson", 10)
    fresh = LandedFile(now - 1 * second, "/l/fresh.ndjson", 10)
    assert old.run_key == f"/l/old.ndjson|10|{now - 60 * second}"
    assert files_to_load([old, fresh], {}, now, settle_seconds=5) == [old]
    cursor = parse_cursor(next_cursor([old, fresh], {}, [old]))
    assert cursor == {"/l/old.ndjson": old.run_key}
    assert files_to_load([old, fresh], cursor, now, settle_seconds=5) == []
    grown = LandedFile(now - 30 * second, "/l/old.ndjson", 20)  # appended to: a new identity
    assert files_to_load([grown], cursor, now, settle_seconds=5) == [grown]
    # A file that left the folder is forgotten.
    assert parse_cursor(next_cursor([fresh], cursor, [])) == {}
    assert parse_cursor(None) == {} and parse_cursor("not json") == {}


def test_translator_keys_and_groups() -> None:
    from orchestration.transform import group_for, source_asset_key

    source = {"resource_type": "source", "source_name": "trackhouse_raw", "name": "users"}
    assert source_asset_key(source) == dg.AssetKey(["raw", "users"])
    with pytest.raises(dg.DagsterInvalidDefinitionError, match=r"crm\.contacts has no ingestion"):
        source_asset_key({"resource_type": "source", "source_name": "crm", "name": "contacts"})
    assert group_for(source) == "ingestion"
    assert group_for({"resource_type": "seed", "fqn": ["trackhouse", "bot_user_agents"]}) == "seeds"
    model = {"resource_type": "model"}
    assert group_for({**model, "fqn": ["trackhouse", "staging", "stg_events"]}) == "staging"
    intermediate = ["trackhouse", "intermediate", "activity", "int_users_resolved"]
    assert group_for({**model, "fqn": intermediate}) == "intermediate"
    mart = ["trackhouse", "marts", "attribution", "conversion_attribution"]
    assert group_for({**model, "fqn": mart}) == "attribution"


def test_markdown_tables_and_time_columns() -> None:
    from orchestration.metadata import markdown_table, time_column

    table = markdown_table([{"a": 1, "b": "x|y"}, {"a": None, "b": 2.5}], ["a", "b"])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "|  | 2.50 |"]
    assert "(no rows)" in markdown_table([], ["a", "b"])
    columns = {
        "user_id": {"data_type": "varchar"},
        "hour_start": {"data_type": "timestamp"},
        "day": {"data_type": "date"},
    }
    assert time_column(columns) == "hour_start"
    assert time_column({"n": {"data_type": "integer"}, "x": {}}) is None


def test_a_dbt_parse_error_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dagster-dbt prepares the manifest; when dbt cannot parse the project, loading
    fails with dbt's message instead of using the previous manifest."""
    from orchestration.project import prepare_manifest
    from trackhouse.errors import ConfigError
    from trackhouse.settings import load_settings

    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "tiny.sql"
    model.write_text("select 1 as x\n")
    (tmp_path / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nprofile: trackhouse\nconfig-version: 2\n"
    )
    shutil.copy(ROOT / "profiles.yml", tmp_path / "profiles.yml")
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(tmp_path / "tiny.duckdb"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    settings = load_settings("duckdb", tmp_path)
    manifest = prepare_manifest(settings)
    assert "model.tiny.tiny" in json.loads(manifest.read_text())["nodes"]

    model.write_text("select * from {{ ref('no_such_model') }}\n")
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")  # as under `dagster dev`
    with pytest.raises(ConfigError, match="no_such_model") as failed:
        prepare_manifest(settings)
    assert "dbt parse --profiles-dir . --project-dir ." in str(failed.value)


def test_dagster_dev_parses_only_a_changed_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `dagster dev` every process of a run loads the code location: an unchanged
    project keeps its manifest (no `dbt parse`), while an edited model, a new file or a
    changed environment variable gives a new manifest at the next load."""
    from orchestration.project import prepare_manifest
    from trackhouse.settings import load_settings

    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "tiny.sql"
    model.write_text("select 1 as x\n")
    (tmp_path / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nprofile: trackhouse\nconfig-version: 2\n"
        "models:\n  tiny:\n    +meta:\n"
        "      owner: \"{{ env_var('TRACKHOUSE_TINY_OWNER', 'a') }}\"\n"
    )
    shutil.copy(ROOT / "profiles.yml", tmp_path / "profiles.yml")
    monkeypatch.setenv("TRACKHOUSE_DUCKDB_PATH", str(tmp_path / "tiny.duckdb"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    settings = load_settings("duckdb", tmp_path)

    def nodes() -> dict[str, Any]:
        return json.loads(prepare_manifest(settings).read_text())["nodes"]

    def parsed_at() -> int:
        return prepare_manifest(settings).stat().st_mtime_ns

    assert nodes()["model.tiny.tiny"]["meta"]["owner"] == "a"
    first = parsed_at()
    assert parsed_at() == first  # loaded again, nothing changed: not parsed again

    model.write_text("select 2 as x\n")  # an edit
    assert "select 2" in nodes()["model.tiny.tiny"]["raw_code"]
    (tmp_path / "models" / "other.sql").write_text("select 3 as y\n")  # a new model
    assert "model.tiny.other" in nodes()
    monkeypatch.setenv("TRACKHOUSE_TINY_OWNER", "b")  # what the project reads from the env
    assert nodes()["model.tiny.tiny"]["meta"]["owner"] == "b"
    again = parsed_at()
    assert again != first and parsed_at() == again


def test_dagster_definitions_validate_in_the_project_root(dagster_env: DagsterEnv) -> None:
    """`dagster definitions validate` with no arguments: [tool.dagster] names the module."""
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate"],
        cwd=ROOT,
        env={**os.environ, **dagster_env.env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_environment_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.environment import load_environment
    from trackhouse.errors import ConfigError

    monkeypatch.setenv("TRACKHOUSE_PROJECT_DIR", str(ROOT))
    environment = load_environment({"TRACKHOUSE_LANDING_DIR": "drop"})
    assert environment.landing_dir == ROOT / "drop"
    assert load_environment({}).landing_dir == ROOT / "data" / "landing"
    with pytest.raises(ConfigError, match=r"TRACKHOUSE_LANDING_SETTLE_SECONDS='soon'.*number"):
        load_environment({"TRACKHOUSE_LANDING_SETTLE_SECONDS": "soon"})


@pytest.mark.parametrize("target", ["duckdb", "postgres"])
def test_resources_follow_the_target(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """One switch, TRACKHOUSE_TARGET, moves dbt and the loader together."""
    from orchestration.environment import build_resources, load_environment

    monkeypatch.setenv("TRACKHOUSE_PROJECT_DIR", str(ROOT))
    monkeypatch.setenv("TRACKHOUSE_TARGET", target)
    resources = build_resources(load_environment({}))
    assert resources["dbt"].target == target
    settings = resources["warehouse"].settings()
    assert settings.target == target
    assert settings.sqlalchemy_url.startswith("duckdb" if target == "duckdb" else "postgresql")
    with resources["warehouse"].dbt_environment():
        assert os.environ["TRACKHOUSE_TARGET"] == target
    assert resources["landing"].directory == ROOT / "data" / "landing"


# -- the definitions ------------------------------------------------------------


def test_definitions_load_as_one_graph(dagster_env: DagsterEnv) -> None:
    from orchestration.transform import TrackhouseTranslator

    defs = dagster_env.defs
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()

    # One ingestion multi-asset produces every raw table.
    raw_keys = {dg.AssetKey(["raw", t]) for t in RAW_TABLES}
    assert raw_keys <= keys
    raw_assets = {defs.resolve_assets_def(k) for k in raw_keys}
    assert len(raw_assets) == 1
    (raw_def,) = raw_assets
    assert set(raw_def.keys) == raw_keys
    assert all(graph.get(k).group_name == "ingestion" for k in raw_keys)
    assert all(graph.get(k).is_materializable for k in raw_keys)

    # Every dbt source is one of those keys: nothing in the graph is an external stub.
    manifest = dagster_env.manifest
    translator = TrackhouseTranslator()
    source_keys = {
        translator.get_asset_spec(manifest, uid, None).key for uid in manifest["sources"]
    }
    assert source_keys == raw_keys
    assert all(graph.get(k).is_materializable for k in keys)

    # Every dbt model is an asset; staging reads the raw assets only.
    models = _models(manifest)
    assert {dg.AssetKey([name]) for name in models} <= keys
    for name in models:
        parents = graph.get(dg.AssetKey([name])).parent_keys
        if name.startswith("stg_"):
            assert parents and parents <= raw_keys, name
            assert graph.get(dg.AssetKey([name])).group_name == "staging"

    # Every mart hangs under ingestion: one graph from the raw files.
    marts = {
        n for n, node in models.items() if node["original_file_path"].startswith("models/marts/")
    }
    assert marts
    for mart in marts:
        upstream = dg.AssetSelection.assets(mart).upstream().resolve(graph)
        assert upstream & raw_keys, f"{mart} is not connected to the raw files"
        area = models[mart]["original_file_path"].split("/")[2]
        assert graph.get(dg.AssetKey([mart])).group_name == area
    assert graph.get(dg.AssetKey(["activity_hourly"])).group_name == "activity"
    assert graph.get(dg.AssetKey(["conversion_attribution"])).group_name == "attribution"

    # dbt tests are asset checks; the load has its own check.
    checks = graph.asset_check_keys
    mart_test = "unique_touchpoints_touchpoint_id"
    assert dg.AssetCheckKey(dg.AssetKey(["touchpoints"]), mart_test) in checks
    assert dg.AssetCheckKey(dg.AssetKey(["raw", "rejected"]), "no_rejected_lines") in checks
    source_test = "source_unique_trackhouse_raw_events_message_id"
    assert dg.AssetCheckKey(dg.AssetKey(["raw", "events"]), source_test) in checks

    # Ingestion and dbt share the warehouse pool.
    dbt_def = defs.resolve_assets_def(dg.AssetKey(["activity_hourly"]))
    assert raw_def.op.pool == POOL
    assert dbt_def.op.pool == POOL


def test_every_spec_mart_is_an_asset(dagster_env: DagsterEnv) -> None:
    keys = dagster_env.defs.resolve_asset_graph().get_all_asset_keys()
    missing = {m for m in SPEC_MARTS if dg.AssetKey([m]) not in keys}
    assert not missing, f"marts of SPEC section 3 not in the dbt project: {sorted(missing)}"


def test_schedules_and_sensor(dagster_env: DagsterEnv) -> None:
    from orchestration.project import marts_by_area

    defs = dagster_env.defs
    graph = defs.resolve_asset_graph()
    hourly = defs.resolve_schedule_def("hourly_activity_attribution")
    daily = defs.resolve_schedule_def("daily_full_build")
    assert hourly.cron_schedule == "5 * * * *"
    assert daily.cron_schedule == "30 3 * * *"
    for schedule in (hourly, daily):
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED  # toggled in the UI

    def selected(job_name: str) -> set[str]:
        job = defs.resolve_job_def(job_name)
        return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}

    by_area = marts_by_area(dagster_env.manifest)
    hourly_assets = selected(hourly.job_name)
    assert by_area["activity"] | by_area["attribution"] <= hourly_assets
    for name in hourly_assets:  # everything upstream of the marts comes along
        parents = graph.get(dg.AssetKey([name])).parent_keys
        assert {p.to_user_string() for p in parents if p.path[0] != "raw"} <= hourly_assets
    assert any(name.startswith("stg_") for name in hourly_assets)
    assert not by_area.get("statistics", set()) & hourly_assets
    daily_assets = selected(daily.job_name)
    dbt_keys = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] != "raw"}
    assert daily_assets == dbt_keys  # statistics included

    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "load_landing_file"

    # The shipped dagster.yaml gives the pool one slot.
    with dagster_env.instance() as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


# -- the landing sensor -----------------------------------------------------------


def _tick(defs: dg.Definitions, cursor: str | None) -> tuple[list[dg.RunRequest], str | None]:
    sensor = defs.resolve_sensor_def("landing_sensor")
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"landing": defs.resources["landing"]}
        )
        data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_landing_sensor_loads_each_file_once(dagster_env: DagsterEnv) -> None:
    landing = dagster_env.landing
    events = [
        page("2024-05-01T10:00:00Z", "https://x.example/?utm_source=ads", anonymous_id="s-a"),
        identify("2024-05-01T10:05:00Z", "sensor-user", anonymous_id="s-a"),
    ]
    first = dagster_env.write("2024/05/first.ndjson", events, landing)
    _age(first, 600)
    dagster_env.write(".hidden.ndjson", events, landing)
    dagster_env.write("copying.ndjson.part", events, landing)
    (landing / "README.txt").write_text("not data")
    fresh = dagster_env.write("fresh.ndjson", [track("2024-05-02T09:00:00Z", "signup")], landing)

    requests, cursor = _tick(dagster_env.defs, None)
    assert len(requests) == 1
    (request,) = requests
    stat = first.stat()
    assert request.run_key == f"{first.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    assert request.run_config["ops"]["raw_files"]["config"]["paths"] == [str(first.resolve())]

    # Launch it as the daemon would: the file lands in the raw tables.
    job = dagster_env.defs.resolve_job_def("load_landing_file")
    with dagster_env.instance() as instance:
        result = job.execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
    assert result.success
    assert dagster_env.count('"trackhouse_raw"."identity_links"') >= 1
    loaded = result.asset_materializations_for_node("raw_files")
    events_meta = next(m for m in loaded if m.asset_key == dg.AssetKey(["raw", "events"]))
    assert events_meta.metadata["accepted"].value == 2

    # The next tick, and a restart that reads the stored cursor, launch nothing.
    _age(fresh, 0)  # still being written (the run above may outlast the settle time)
    assert _tick(dagster_env.defs, cursor)[0] == []
    assert _tick(dagster_env.defs, str(cursor))[0] == []
    # Without a cursor the same file gets the same run key, which Dagster never runs twice.
    assert [r.run_key for r in _tick(dagster_env.defs, None)[0]] == [request.run_key]

    # The fresh file once it has settled; then a file that grew is loaded again.
    _age(fresh, 300)
    requests, cursor = _tick(dagster_env.defs, cursor)
    assert [r.run_config["ops"]["raw_files"]["config"]["paths"] for r in requests] == [
        [str(fresh.resolve())]
    ]
    with open(first, "ab") as f:
        f.write(orjson.dumps(page("2024-05-03T10:00:00Z", "https://x.example/", user_id="u")))
        f.write(b"\n")
    _age(first, 200)
    requests, cursor = _tick(dagster_env.defs, cursor)
    assert [r.tags["trackhouse/file"] for r in requests] == [str(first.resolve())]
    assert requests[0].run_key != request.run_key
    assert _tick(dagster_env.defs, cursor)[0] == []


def test_a_failing_file_is_reported_with_the_loaders_reasons(dagster_env: DagsterEnv) -> None:
    folder = dagster_env.tmp / "bad"
    partial = dagster_env.write(
        "partial.ndjson",
        [
            page("2024-05-04T10:00:00Z", "https://x.example/?utm_source=a", anonymous_id="f-1"),
            b'{"type": "page", "timestamp": "2024-05-04T10:00:00Z"',
            track("2024-05-04T11:00:00Z", "signup", anonymous_id="f-1"),
        ],
        folder,
    )
    garbage = dagster_env.write("garbage.ndjson", [b"user_id,event", b"u1,signup"], folder)
    missing = folder / "missing.ndjson"

    job = dagster_env.defs.resolve_job_def("load_landing_file")
    with dagster_env.instance() as instance:
        result = job.execute_in_process(
            run_config={
                "ops": {
                    "raw_files": {"config": {"paths": [str(partial), str(garbage), str(missing)]}}
                }
            },
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.step_failure_data.user_failure_data.description
    assert "2 of 3 file(s) could not be loaded" in description
    assert "garbage.ndjson: every line was rejected, e.g. malformed JSON" in description
    assert "missing.ndjson: no such file" in description

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_rejected_lines" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["rejected lines"].value == 3
    reasons = check.metadata["reasons"].value
    assert "| partial.ndjson | 2 | malformed JSON" in reasons
    assert "| garbage.ndjson | 1 | malformed JSON" in reasons

    # The data that was good landed, and the raw assets say so.
    materialized = {m.asset_key: m for m in result.asset_materializations_for_node("raw_files")}
    events_meta = materialized[dg.AssetKey(["raw", "events"])].metadata
    assert (events_meta["received"].value, events_meta["accepted"].value) == (5, 2)
    assert (
        "malformed JSON"
        in materialized[dg.AssetKey(["raw", "rejected"])].metadata["rejection reasons"].value
    )


# -- one writer, and everything for real ------------------------------------------------


def _logs(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    return list(instance.all_logs(run_id))


def _step_window(instance: dg.DagsterInstance, run_id: str, step: str) -> tuple[float, float]:
    start = end = None
    for record in _logs(instance, run_id):
        event = record.dagster_event
        if event is None or event.step_key != step:
            continue
        if event.event_type_value == "STEP_START":
            start = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            end = record.timestamp
    assert start is not None and end is not None, f"{step} of run {run_id} did not run"
    return start, end


def _wait_blocked(instance: dg.DagsterInstance, job_name: str, deadline: float) -> str:
    """The id of the run of `job_name` once one of its steps waits for the pool."""
    while time.time() < deadline:
        for run in instance.get_runs(filters=dg.RunsFilter(job_name=job_name)):
            if any(BLOCKED in (r.message or "") for r in _logs(instance, run.run_id)):
                return run.run_id
        time.sleep(0.5)
    raise AssertionError(f"no run of {job_name} waited for the pool {POOL}")


@pytest.mark.slow
def test_everything_materializes_and_writers_take_turns(dagster_env: DagsterEnv) -> None:
    from trackhouse.demo import write_demo_file

    demo = dagster_env.tmp / "demo" / "events.ndjson"
    demo.parent.mkdir()
    write_demo_file(demo, users=120, days=60, seed=7)
    late = dagster_env.write(
        "late.ndjson",
        [
            identify("2024-06-01T08:00:00Z", "late-user", anonymous_id="late-anon"),
            page("2024-06-01T08:01:00Z", "https://app.example.com/", user_id="late-user"),
        ],
        dagster_env.tmp / "demo",
    )
    config = dagster_env.tmp / "load-late.yaml"
    config.write_text(json.dumps({"ops": {"raw_files": {"config": {"paths": [str(late)]}}}}))
    defs = dagster_env.defs
    everything = defs.resolve_implicit_global_asset_job_def()

    with dagster_env.instance() as instance:
        # A writer holds the warehouse (the pool's only slot) while both runs start.
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(POOL)
        assert storage.get_concurrency_info(POOL).slot_count == 1
        holder = str(uuid.uuid4())
        assert storage.claim_concurrency_slot(POOL, holder, "holder").is_claimed

        # 1. "Materialize all" in this process, loading the demo file first.
        outcome: dict[str, Any] = {}

        def materialize_all() -> None:
            try:
                outcome["result"] = everything.execute_in_process(
                    run_config={"ops": {"raw_files": {"config": {"paths": [str(demo)]}}}},
                    instance=dg.DagsterInstance.get(),
                    raise_on_error=False,
                )
            except BaseException as exc:  # reported below
                outcome["error"] = exc

        thread = threading.Thread(target=materialize_all, daemon=True)
        thread.start()
        # 2. A separate process loads another file, as a launched run would.
        loader = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "job",
                "execute",
                "-m",
                "orchestration.definitions",
                "-j",
                "load_landing_file",
                "-c",
                str(config),
            ],
            cwd=dagster_env.tmp,
            env={**os.environ, **dagster_env.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.time() + 120
            in_process = _wait_blocked(instance, everything.name, deadline)
            launched = _wait_blocked(instance, "load_landing_file", deadline)
            storage.free_concurrency_slots_for_run(holder)
            output, _ = loader.communicate(timeout=300)
            thread.join(timeout=300)
        finally:
            if loader.poll() is None:
                loader.kill()
            storage.free_concurrency_slots_for_run(holder)
        assert loader.returncode == 0, output[-4000:]
        assert "error" not in outcome, outcome.get("error")
        result = outcome["result"]
        assert result.success, [
            e.message for e in result.all_events if "FAILURE" in e.event_type_value
        ]
        assert instance.get_run_by_id(launched).status == dg.DagsterRunStatus.SUCCESS

        # The three warehouse steps ran one after the other, never at the same time.
        windows = sorted(
            [
                _step_window(instance, launched, "raw_files"),
                _step_window(instance, in_process, "raw_files"),
                _step_window(instance, in_process, "trackhouse_dbt"),
            ]
        )
        for (_, end), (start, _) in itertools.pairwise(windows):
            assert end <= start, windows

    # The marts hold the demo data.
    assert dagster_env.count('"trackhouse_raw"."events"') > 1000
    assert dagster_env.count('"trackhouse_raw"."users" where user_id = \'late-user\'') == 1
    models = _models(dagster_env.manifest)
    for mart in sorted(SPEC_MARTS & set(models)):
        assert dagster_env.count(f'"main"."{mart}"') > 0, mart

    # What a person sees on the asset pages.
    materialized = {
        m.asset_key.to_user_string(): m.metadata
        for m in result.asset_materializations_for_node("trackhouse_dbt")
    }
    hourly = materialized["activity_hourly"]
    assert hourly["dagster/row_count"].value == dagster_env.count('"main"."activity_hourly"')
    assert "latest hour_start" in hourly
    monthly = materialized["usage_calendar_monthly"]["preview: monthly usage (last 12 months)"]
    lines = monthly.value.splitlines()
    assert lines[0] == "| calendar_year_month | registered_users | activated_users | active_users |"
    assert len(lines) >= 3 and lines[2].startswith("| 20")
    campaigns = materialized["conversion_attribution"][
        "preview: top campaigns by last-touch conversions"
    ].value.splitlines()
    assert campaigns[0] == "| utm_source | utm_campaign | conversions |"
    assert len(campaigns) >= 3 and "(no rows)" not in campaigns[2]
    grid = materialized["retention_cohorts"][
        "preview: retention by monthly sign-up cohort (share still active)"
    ].value.splitlines()
    assert grid[0].startswith("| cohort | users | M0 |") and "100%" in grid[2]
    by_channel = materialized["attribution_credits"][
        "preview: valid conversions credited per channel, by model"
    ].value.splitlines()
    assert "| data_driven |" in by_channel[0] and "time_decay" in by_channel[0]
    # dbt tests ran as asset checks, the raw tables' source tests included; none failed
    # at ERROR severity (a run with one fails: dbt exits non-zero).
    checks = result.get_asset_check_evaluations()
    assert any(c.asset_key == dg.AssetKey(["raw", "events"]) for c in checks)
    assert any(c.asset_key == dg.AssetKey(["activity_hourly"]) for c in checks)
    errors = [
        c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert not errors
