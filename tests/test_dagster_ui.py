"""The Dagster UI in a real browser: `dagster dev` on a fresh DuckDB warehouse, a file
dropped in the landing folder loaded by the sensor (once), "Materialize all" clicked
in headless Chromium, the run succeeding, the schedules toggled in the UI, and
screenshots of the asset graph saved under test-output/dagster-ui/.

Needs Chromium (`bash scripts/system-deps.sh`). Every wait has a deadline and the
server's process group is always stopped, so the test cannot hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = ROOT / "test-output" / "dagster-ui"
LOCATION = "orchestration.definitions"
REPOSITORY = "__repository__"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("dagster")]

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the server may still be starting
            last_error = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DagsterDev:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.process.poll() is not None:
            raise AssertionError(f"dagster dev exited:\n{self.log_tail()}")
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"GraphQL {exc.code}: {exc.read()[:2000]!r}") from exc
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return dict(body["data"])

    def runs(self, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        data = self.graphql(
            """query Runs($filter: RunsFilter) {
                runsOrError(filter: $filter, limit: 50) {
                    __typename
                    ... on Runs { results { runId status jobName tags { key value } } }
                }
            }""",
            {"filter": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}},
        )
        return list(data["runsOrError"]["results"])

    def run_failures(self, run_id: str) -> list[str]:
        data = self.graphql(
            """query Logs($runId: ID!) {
                logsForRun(runId: $runId, limit: 1000) {
                    __typename
                    ... on EventConnection {
                        events { __typename ... on MessageEvent { message } }
                    }
                }
            }""",
            {"runId": run_id},
        )
        events = data["logsForRun"].get("events", [])
        return [e["message"] for e in events if "Failure" in e["__typename"]]

    def instigators(self) -> list[str]:
        """The names of the code location's schedules and sensors."""
        data = self.graphql(
            """query Instigators($selector: RepositorySelector!) {
                repositoryOrError(repositorySelector: $selector) {
                    ... on Repository { schedules { name } sensors { name } }
                }
            }""",
            {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}},
        )
        repository = data["repositoryOrError"]
        return [i["name"] for i in repository["schedules"] + repository["sensors"]]

    def instigator_status(self, kind: str, name: str) -> tuple[str, int]:
        """(status, number of ticks) of a schedule or sensor."""
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        field, arg = (
            ("scheduleOrError", "scheduleSelector")
            if kind == "schedule"
            else (
                "sensorOrError",
                "sensorSelector",
            )
        )
        type_name = kind.capitalize()
        name_key = f"{kind}Name"
        data = self.graphql(
            f"""query State($selector: {type_name}Selector!) {{
                {field}({arg}: $selector) {{
                    __typename
                    ... on {type_name} {{ {kind}State {{ status ticks(limit: 50) {{ status }} }} }}
                }}
            }}""",
            {"selector": {**selector, name_key: name}},
        )
        state = data[field][f"{kind}State"]
        return str(state["status"]), len(state["ticks"])


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `bash scripts/system-deps.sh`")
    from trackhouse.demo import write_demo_file

    tmp = tmp_path_factory.mktemp("dagster-ui")
    home = tmp / "dagster_home"
    landing = tmp / "landing"
    home.mkdir()
    landing.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    dropped = landing / "demo-events.ndjson"
    write_demo_file(dropped, users=80, days=45, seed=11)
    past = time.time() - 60
    os.utime(dropped, (past, past))

    env = {
        **os.environ,
        "TRACKHOUSE_TARGET": "duckdb",
        "TRACKHOUSE_DUCKDB_PATH": str(tmp / "warehouse.duckdb"),
        "TRACKHOUSE_PROJECT_DIR": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "DAGSTER_HOME": str(home),
        "TRACKHOUSE_LANDING_DIR": str(landing),
        "TRACKHOUSE_LANDING_INTERVAL_SECONDS": "3",
        "TRACKHOUSE_LANDING_SETTLE_SECONDS": "1",
        "TRACKHOUSE_LOCK_TIMEOUT": "60",
    }
    env.pop("TRACKHOUSE_RAW_SCHEMA", None)
    port = free_port()
    log = tmp / "dagster-dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            cwd=home,  # its dagster.yaml is the instance's; nothing is written to the repo
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: the webserver, daemon, code server
        )
    server = DagsterDev(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for(
            "the webserver",
            lambda: urllib.request.urlopen(f"{server.url}/server_info", timeout=5).read(),
            timeout=120,
        )
        wait_for(
            "the code location to load",
            lambda: server.graphql("{ assetNodes { id } }")["assetNodes"],
            timeout=120,
        )
        yield server
    finally:
        _stop(process)
        OUTPUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, OUTPUT / "dagster-dev.log")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for dagster dev (it stops its children), then SIGKILL whatever is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _browser(playwright: Any) -> Any:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000
    )


def _dismiss_welcome(page: Any) -> None:
    """A fresh instance greets with a newsletter dialog; skip it when it shows."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=3_000)
    except Exception:
        return
    skip.click()


def test_materialize_all_from_the_asset_graph(dagster_dev: DagsterDev) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT.glob("*.png"):
        old.unlink()

    sensor_tag = {"dagster/sensor_name": "landing_sensor"}

    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)

            # The asset graph: click "Materialize all".
            page.goto(f"{dagster_dev.url}/asset-groups", timeout=60_000)
            materialize = page.get_by_role("button", name="Materialize all")
            materialize.wait_for(state="visible")
            _dismiss_welcome(page)
            for group in ("ingestion", "staging", "activity", "attribution", "statistics"):
                assert page.get_by_text(group, exact=True).first.is_visible(), group

            # Meanwhile the daemon's landing sensor has loaded the dropped file. (Deadlines
            # are generous: under `dagster dev` the run worker and each step worker load the
            # code location; an unchanged dbt project is not parsed again in them.)
            sensor_run = wait_for(
                "the landing sensor's run to succeed",
                lambda: next(
                    (r for r in dagster_dev.runs(sensor_tag) if r["status"] == "SUCCESS"), None
                ),
                timeout=420,
                every=1,
            )
            assert sensor_run["jobName"] == "load_landing_file"
            materialize.click()
            toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}")).first
            toast.wait_for(state="visible", timeout=60_000)
            prefix = re.search(r"[0-9a-f]{8}", toast.inner_text()).group(0)  # type: ignore[union-attr]

            def finished() -> dict[str, Any] | None:
                run = next((r for r in dagster_dev.runs() if r["runId"].startswith(prefix)), None)
                if run and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                    return run
                return None

            run = wait_for(f"run {prefix} to finish", finished, timeout=600, every=2)
            assert run["status"] == "SUCCESS", dagster_dev.run_failures(run["runId"])
            assert run["jobName"] == "__ASSET_JOB"

            # The graph after the run: the groups from ingestion to the marts, then one
            # mart's lineage down to the raw tables.
            page.goto(f"{dagster_dev.url}/asset-groups")
            materialize.wait_for(state="visible")
            page.wait_for_timeout(3_000)
            page.screenshot(path=str(OUTPUT / "asset-graph.png"))
            # A wide window fits the whole lineage of a mart, from the raw tables on.
            wide = browser.new_page(viewport={"width": 2400, "height": 1400})
            wide.goto(
                f"{dagster_dev.url}/assets/conversion_attribution"
                "?view=lineage&lineageScope=upstream&lineageDepth=10"
            )
            wide.get_by_text("ingestion", exact=True).first.wait_for(state="visible")
            wide.wait_for_timeout(2_500)
            wide.screenshot(path=str(OUTPUT / "conversion-attribution-lineage.png"))
            wide.close()

            # An asset page shows the metadata: the monthly usage preview.
            page.goto(f"{dagster_dev.url}/assets/usage_calendar_monthly")
            preview = page.get_by_text("preview: monthly usage", exact=False).first
            preview.wait_for(state="visible")
            preview.scroll_into_view_if_needed()
            page.wait_for_timeout(1_000)
            page.screenshot(path=str(OUTPUT / "usage-calendar-monthly.png"))

            # Automation: both schedules are listed and can be switched on and off.
            page.goto(f"{dagster_dev.url}/automation")
            for name in ("hourly_activity_attribution", "daily_full_build", "landing_sensor"):
                page.get_by_text(name, exact=True).wait_for(state="visible")
            assert dagster_dev.instigator_status("schedule", "hourly_activity_attribution")[0] == (
                "STOPPED"
            )
            # Every row's switch is drawn before the row is picked: while some are
            # missing, the innermost div holding the name and "a switch" is the list
            # itself, and its only switch may be another schedule's.
            switches = page.locator("label[class*='formatSwitch']")
            wait_for(
                "a switch on every automation row",
                lambda: switches.count() >= len(dagster_dev.instigators()),
                timeout=60,
            )
            row = (
                page.locator("div")
                .filter(has=page.get_by_text("hourly_activity_attribution", exact=True))
                .filter(has=page.locator("label[class*='formatSwitch']"))
                .last
            )
            switch = row.locator("label[class*='formatSwitch']")
            toggle = row.locator("input[type='checkbox']").last
            wait_for("the schedule switch", toggle.is_enabled, timeout=30)
            assert not toggle.is_checked()
            switch.click()
            wait_for(
                "the hourly schedule to be on",
                lambda: (
                    dagster_dev.instigator_status("schedule", "hourly_activity_attribution")[0]
                    == "RUNNING"
                ),
                timeout=30,
            )
            page.screenshot(path=str(OUTPUT / "automation.png"))
            switch.click()
            wait_for(
                "the hourly schedule to be off again",
                lambda: (
                    dagster_dev.instigator_status("schedule", "hourly_activity_attribution")[0]
                    == "STOPPED"
                ),
                timeout=30,
            )
        except BaseException:
            if page is not None:
                page.screenshot(path=str(OUTPUT / "failure.png"))
            raise
        finally:
            browser.close()

    # The sensor kept looking (several ticks) but launched the file exactly once.
    status, ticks = dagster_dev.instigator_status("sensor", "landing_sensor")
    assert status == "RUNNING" and ticks >= 3
    sensor_runs = dagster_dev.runs(sensor_tag)
    assert len(sensor_runs) == 1, sensor_runs
    (tags,) = [{t["key"]: t["value"] for t in r["tags"]} for r in sensor_runs]
    assert tags["trackhouse/file"].endswith("demo-events.ndjson")
    for name in (
        "asset-graph.png",
        "conversion-attribution-lineage.png",
        "usage-calendar-monthly.png",
        "automation.png",
    ):
        assert (OUTPUT / name).stat().st_size > 10_000, name
