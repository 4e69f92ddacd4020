"""Ingestion: NDJSON files -> the raw tables, one asset per raw table.

`raw_files` is a multi-asset with one asset `raw/<table>` for every table of
`trackhouse.schema`; the dbt sources (models/staging/_sources.yml) map to the
same keys (see transform.py), so the asset graph runs from the files to every
mart in one piece. The loading itself is `trackhouse.loader.load_files`; this
module only reports what it did.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from trackhouse import schema as raw_schema
from trackhouse.engine import ensure_schema
from trackhouse.errors import TrackhouseError
from trackhouse.loader import LoadReport, load_files

from .environment import WAREHOUSE_POOL, Environment
from .metadata import markdown_table, raw_table_metadata
from .resources import Warehouse

INGESTION_GROUP = "ingestion"
RAW_PREFIX = "raw"
RAW_TABLES: tuple[str, ...] = tuple(t.name for t in raw_schema.DATA_TABLES)
REJECTIONS_CHECK = "no_rejected_lines"


def raw_asset_key(table: str) -> dg.AssetKey:
    """The asset key of a raw table (also the key of the dbt source on that table)."""
    return dg.AssetKey([RAW_PREFIX, table])


class LoadFilesConfig(dg.Config):
    paths: list[str] = Field(
        default=[],
        description=(
            "NDJSON files to load (absolute, or relative to the project directory). "
            "Empty: load nothing, only create the raw tables if needed and refresh their "
            "counts. The landing sensor launches one run per new file."
        ),
    )
    spool_dir: str = Field(
        default="",
        description=(
            "A spool directory to drain as well (trackhouse.spool.drain: the collector's and "
            "the Python API's spooled events). The landing sensor sets it when the spool "
            "has sealed segments."
        ),
    )


@dataclass
class FileOutcome:
    path: str
    report: LoadReport | None = None
    error: str | None = None

    @property
    def unusable(self) -> bool:
        """Could not be read, or every line of it was rejected."""
        if self.error is not None:
            return True
        r = self.report
        assert r is not None
        return r.rejected > 0 and r.accepted == 0 and r.duplicates == 0

    @property
    def problem(self) -> str:
        """Why the file is unusable, in the loader's words."""
        if self.error is not None:
            return self.error
        first = self.report.rejections[0].reason if self.report and self.report.rejections else ""
        return f"every line was rejected, e.g. {first}"


def _total(outcomes: list[FileOutcome]) -> LoadReport:
    total = LoadReport()
    for o in outcomes:
        if o.report:
            total.received += o.report.received
            total.accepted += o.report.accepted
            total.rejected += o.report.rejected
            total.duplicates += o.report.duplicates
    return total


def load_each(paths: list[Path], warehouse: Warehouse, log: Any) -> list[FileOutcome]:
    """Load file by file, so each file's counts and problems are reported on their own."""
    outcomes = []
    settings = warehouse.settings()
    for path in paths:
        outcome = FileOutcome(str(path))
        try:
            outcome.report = load_files([path], settings=settings, progress=False)
        except TrackhouseError as exc:
            outcome.error = str(exc)
            log.error(f"{path}: {exc}")
        else:
            log.info(f"{path}: {outcome.report.summary()}")
            for r in outcome.report.rejections:
                log.warning(f"{path} line {r.line_number}: {r.reason}")
        outcomes.append(outcome)
    return outcomes


def _files_table(outcomes: list[FileOutcome]) -> str:
    rows = []
    for o in outcomes:
        r = o.report or LoadReport()
        rows.append(
            {
                "file": Path(o.path).name,
                "received": r.received,
                "accepted": r.accepted,
                "rejected": r.rejected,
                "duplicates": r.duplicates,
                "problem": o.error or "",
            }
        )
    return markdown_table(
        rows, ["file", "received", "accepted", "rejected", "duplicates", "problem"]
    )


def _reasons_table(outcomes: list[FileOutcome]) -> str:
    rows = [
        {"file": Path(r.source).name, "line": r.line_number, "reason": r.reason}
        for o in outcomes
        if o.report
        for r in o.report.rejections
    ]
    rows += [
        {"file": Path(o.path).name, "line": "", "reason": o.error} for o in outcomes if o.error
    ]
    return markdown_table(rows, ["file", "line", "reason"])


def _resolve(path: str, project_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else project_dir / p


def build_ingestion_assets(environment: Environment) -> dg.AssetsDefinition:
    kind = str(environment.settings.output["type"])
    specs = [
        dg.AssetSpec(
            raw_asset_key(table.name),
            description=table.comment,
            group_name=INGESTION_GROUP,
            kinds={"python", kind},
            metadata={"table": f"{environment.settings.raw_schema}.{table.name}"},
        )
        for table in raw_schema.DATA_TABLES
    ]
    rejections_check = dg.AssetCheckSpec(
        REJECTIONS_CHECK,
        asset=raw_asset_key("rejected"),
        description=(
            "Every line of the loaded files was accepted (or was a duplicate). Fails with "
            "the loader's reasons when a line was rejected; severity ERROR when a file was "
            "unusable (unreadable, or nothing in it accepted)."
        ),
    )

    @dg.multi_asset(
        name="raw_files",
        specs=specs,
        check_specs=[rejections_check],
        pool=WAREHOUSE_POOL,
        description=(
            "Loads NDJSON event files (Segment / RudderStack spec) into the raw tables with "
            "trackhouse.loader.load_files. Loading a file again changes nothing: the ledger "
            "de-duplicates by messageId."
        ),
    )
    def raw_files(
        context: dg.AssetExecutionContext, config: LoadFilesConfig, warehouse: Warehouse
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        settings = warehouse.settings()
        ensure_schema(settings)
        paths = [_resolve(p, settings.project_dir) for p in config.paths]
        outcomes = load_each(paths, warehouse, context.log)
        if config.spool_dir:
            from .sensors import drain_spool  # (sensors imports this module)

            outcomes.append(
                drain_spool(
                    _resolve(config.spool_dir, settings.project_dir), warehouse, context.log
                )
            )
        tables = raw_table_metadata(settings)

        total = _total(outcomes)
        load_summary: dict[str, Any] = {
            "files": len(outcomes),
            "received": total.received,
            "accepted": total.accepted,
            "rejected": total.rejected,
            "duplicates skipped": total.duplicates,
        }
        if outcomes:
            load_summary["per file"] = dg.MetadataValue.md(_files_table(outcomes))

        for name in RAW_TABLES:
            metadata = dict(tables.get(name, {}))
            if name == "events":
                metadata |= load_summary
            if name == "rejected" and (total.rejected or any(o.error for o in outcomes)):
                metadata["rejection reasons"] = dg.MetadataValue.md(_reasons_table(outcomes))
            yield dg.MaterializeResult(asset_key=raw_asset_key(name), metadata=metadata)

        unusable = [o for o in outcomes if o.unusable]
        problems = total.rejected > 0 or bool(unusable)
        yield dg.AssetCheckResult(
            check_name=REJECTIONS_CHECK,
            asset_key=raw_asset_key("rejected"),
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR if unusable else dg.AssetCheckSeverity.WARN,
            metadata={
                "rejected lines": total.rejected,
                "unusable files": len(unusable),
                **({"reasons": dg.MetadataValue.md(_reasons_table(outcomes))} if problems else {}),
            },
        )
        if unusable:
            raise dg.Failure(
                description=(
                    f"{len(unusable)} of {len(outcomes)} file(s) could not be loaded: "
                    + "; ".join(f"{Path(o.path).name}: {o.problem}" for o in unusable)
                ),
                metadata={"reasons": dg.MetadataValue.md(_reasons_table(unusable))},
            )

    return raw_files
