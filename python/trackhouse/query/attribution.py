"""Attribution: django-attribution's `Conversion.objects.with_attribution(...)`, in SQL.

`attribute_conversions` reads the `touchpoints` and `conversions` marts and
computes first- or last-touch attribution for whatever window it is given, per
call: no rebuild is needed to try a 7-day window or a per-source one. With the
settings a `dbt build` used (vars `window_days`, `source_windows`), it returns
the rows of the `conversion_attribution` mart for that model — the rules are
the same (see docs/attribution.md):

- eligible touchpoints: same stitched identity, ``touched_at < converted_at``
  (strictly) and ``touched_at >= converted_at - window``, where the window is
  ``source_windows[utm_source]`` days for that exact (case-sensitive) source,
  else ``source_windows["default"]`` when given, else ``window_days``; a window
  of 0 leaves nothing eligible;
- first touch = the earliest eligible touchpoint, last touch = the latest, in
  the order (touched_at, touchpoint_id);
- a conversion without eligible touchpoints is listed with touchpoint_id None.

`attribution_credits` does the same for the multi-touch models of the
`attribution_credits` mart (linear, position_based, time_decay with any
half-life, data_driven: the Markov removal effect learnt from the paths of
that window), and `attribution_by_channel` sums either per channel.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import TrackhouseError, ValueErrorWithKnownValues
from ..parsing import TRACKING_PARAMETERS
from ..settings import Settings, load_settings
from . import (
    double_type,
    epoch_seconds,
    fetch_marts,
    relation,
    snapshot_derived,
)

if TYPE_CHECKING:
    import pyarrow as pa

ATTRIBUTION_MODELS = ("first_touch", "last_touch")
MULTI_TOUCH_MODELS = ("linear", "position_based", "time_decay", "data_driven")
ALL_MODELS = ATTRIBUTION_MODELS + MULTI_TOUCH_MODELS
BY_OPTIONS = ("channel",)
DEFAULT_HALF_LIFE_DAYS = 7.0
# Squarings of the transition matrix (2^32 steps): as in int_channel_removal_effects.
MARKOV_SQUARINGS = 32
# The 12 tracking parameters are the mart columns of the same names.
TRACKING_COLUMNS = TRACKING_PARAMETERS
# The columns of the conversion_attribution mart, in its order.
COLUMNS = (
    "conversion_id",
    "attribution_model",
    "touchpoint_id",
    "touched_at",
    *TRACKING_COLUMNS,
    "referrer",
    "channel",
    "stitched_id",
    "event",
    "converted_at",
    "value",
    "currency",
    "is_valid",
    "window_days",
    "eligible_touchpoints",
)
# What `--format table` shows (JSON has every column).
TABLE_COLUMNS = (
    "conversion_id",
    "event",
    "converted_at",
    "value",
    "currency",
    "touchpoint_id",
    "touched_at",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "channel",
)


class AttributionArgumentError(TrackhouseError, ValueError):
    """A window or a source window is not a whole number of days >= 0."""


def _days(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AttributionArgumentError(
            f"{name} is {value!r}, but attribution windows are whole numbers of days >= 0 "
            "(0 attributes nothing); pass e.g. 7, 14 or 30."
        )
    return value


def _window_days(
    window_days: int, source_windows: Mapping[str, int] | None
) -> tuple[int, dict[str, int]]:
    """The default window and the per-source windows (without "default"), checked."""
    default = _days(window_days, "window_days")
    windows = dict(source_windows or {})
    for source in windows:
        if not isinstance(source, str):
            raise AttributionArgumentError(
                f"source_windows keys are utm_source values (strings), got {source!r}; "
                "write them like {'google': 14, 'email': 7}."
            )
    if "default" in windows:
        default = _days(windows.pop("default"), "source_windows['default']")
    for source, days in sorted(windows.items()):
        _days(days, f"source_windows[{source!r}]")
    return default, windows


def window_expression(
    window_days: int, source_windows: Mapping[str, int] | None
) -> tuple[str, dict[str, Any]]:
    """The window in days of a touchpoint as SQL over `utm_source`, with its binds.

    Mirrors the dbt macro `attribution_window_days`: an exact, case-sensitive
    source match, else `source_windows["default"]`, else `window_days`.
    """
    default, windows = _window_days(window_days, source_windows)
    if not windows:
        return str(default), {}
    params: dict[str, Any] = {}
    cases = []
    for i, (source, days) in enumerate(sorted(windows.items())):
        params[f"source_{i}"] = source
        cases.append(f"when :source_{i} then {days}")
    return f"case utm_source {' '.join(cases)} else {default} end", params


def attribution_sql(
    settings: Settings,
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    exclude_direct: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The query `attribute_conversions` runs, and its binds."""
    if model not in ATTRIBUTION_MODELS:
        raise ValueErrorWithKnownValues(
            "attribution model",
            model,
            ATTRIBUTION_MODELS,
            "Pick one of them (multi-touch credits: attribution_credits(model=...)).",
        )
    if exclude_direct and model != "last_touch":
        raise AttributionArgumentError(
            f"exclude_direct applies to last_touch (last non-direct click), not {model!r}; "
            "pass model='last_touch' or drop exclude_direct."
        )
    window, params = window_expression(window_days, source_windows)
    order = "" if model == "first_touch" else " desc"
    # Last non-direct: Direct touchpoints have timelines of their own and rank after
    # all others (chosen only when a conversion has nothing else).
    direct_class = "case when channel = 'Direct' then 1 else 0 end" if exclude_direct else "0"
    direct_first = "sequenced.direct_class, " if exclude_direct else ""
    # The end of each timeline's eligible numbers that the model wants.
    end = "ranges.seq_before_first + 1" if model == "first_touch" else "ranges.last_seq"
    valid = "where is_valid" if valid_only else ""
    tracking = ",\n            ".join(f"touchpoints.{c}" for c in TRACKING_COLUMNS)
    # As the conversion_attribution mart: no conversion-touchpoint pairs, so a call is
    # linear in the marts whatever one identity holds. Each identity's touchpoints of
    # one window length (and, for last non-direct, of one class) are numbered in
    # (touched_at, touchpoint_id) order; each conversion marks those timelines at
    # itself (exclusive) and window_days before (inclusive), and a running maximum
    # reads how many touchpoints lie before each mark. The numbers between are the
    # eligible touchpoints: their count, and the candidate at the model's end.
    sql = f"""
        with
        conversions as (
            select * from {relation("conversions", settings)}
            {valid}
        ),
        touchpoints as (
            select * from {relation("touchpoints", settings)}
        ),
        windowed_touchpoints as (
            select
                touchpoint_id,
                stitched_id,
                touched_at,
                {direct_class} as direct_class,
                {window} as window_days
            from touchpoints
        ),
        sequenced as (
            select
                *,
                row_number() over (
                    partition by stitched_id, window_days, direct_class
                    order by touched_at, touchpoint_id
                ) as seq
            from windowed_touchpoints
        ),
        timelines as (
            select distinct stitched_id, window_days, direct_class from windowed_touchpoints
        ),
        marks as (
            select
                conversions.conversion_id,
                timelines.stitched_id,
                timelines.window_days,
                timelines.direct_class,
                conversions.converted_at as timeline_at,
                1 as is_upper
            from conversions
            inner join timelines on conversions.stitched_id = timelines.stitched_id
            union all
            select
                conversions.conversion_id,
                timelines.stitched_id,
                timelines.window_days,
                timelines.direct_class,
                conversions.converted_at - timelines.window_days * interval '1 day',
                0 as is_upper
            from conversions
            inner join timelines on conversions.stitched_id = timelines.stitched_id
        ),
        timeline_rows as (
            select
                conversion_id, stitched_id, window_days, direct_class, timeline_at,
                is_upper, 0 as kind, cast(null as bigint) as seq
            from marks
            union all
            select
                null, stitched_id, window_days, direct_class, touched_at,
                null, 1, seq
            from sequenced
        ),
        read_marks as (
            select
                conversion_id, stitched_id, window_days, direct_class, is_upper, kind,
                coalesce(max(seq) over (
                    partition by stitched_id, window_days, direct_class
                    order by timeline_at, kind
                    rows between unbounded preceding and current row
                ), 0) as touchpoints_before
            from timeline_rows
        ),
        timeline_ranges as (
            select
                conversion_id, stitched_id, window_days, direct_class,
                max(case when is_upper = 0 then touchpoints_before end) as seq_before_first,
                max(case when is_upper = 1 then touchpoints_before end) as last_seq
            from read_marks
            where kind = 0
            group by conversion_id, stitched_id, window_days, direct_class
        ),
        -- The timelines with eligible touchpoints, each carrying its conversion's count
        -- (a window, not a second aggregate joined back: PostgreSQL misjudged that join's
        -- size and looped over every pair of conversions).
        ranges as (
            select
                *,
                sum(last_seq - seq_before_first) over (partition by conversion_id)
                    as touchpoint_count
            from timeline_ranges
            where last_seq > seq_before_first
        ),
        candidates as (
            select
                ranges.conversion_id,
                sequenced.touchpoint_id,
                sequenced.touched_at,
                sequenced.direct_class,
                sequenced.window_days,
                ranges.touchpoint_count,
                row_number() over (
                    partition by ranges.conversion_id
                    order by
                        {direct_first}sequenced.touched_at{order},
                        sequenced.touchpoint_id{order}
                ) as touch_rank
            from ranges
            inner join sequenced
                on ranges.stitched_id = sequenced.stitched_id
                and ranges.window_days = sequenced.window_days
                and ranges.direct_class = sequenced.direct_class
                and sequenced.seq = {end}
        ),
        chosen as (
            select conversion_id, touchpoint_id, window_days, touchpoint_count
            from candidates
            where touch_rank = 1
        )
        select
            conversions.conversion_id,
            '{model}' as attribution_model,
            touchpoints.touchpoint_id,
            touchpoints.touched_at,
            {tracking},
            touchpoints.referrer,
            touchpoints.channel,
            conversions.stitched_id,
            conversions.event,
            conversions.converted_at,
            conversions.value,
            conversions.currency,
            conversions.is_valid,
            chosen.window_days,
            coalesce(chosen.touchpoint_count, 0) as eligible_touchpoints
        from conversions
        left join chosen
            on conversions.conversion_id = chosen.conversion_id
        left join touchpoints
            on chosen.touchpoint_id = touchpoints.touchpoint_id
        order by conversions.converted_at, conversions.conversion_id
    """
    return sql, params


def attribute_conversions(
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    settings: Settings | None = None,
    exclude_direct: bool = False,
    as_arrow: bool = False,
) -> list[dict[str, Any]] | pa.Table:
    """One row per conversion: the touchpoint credited under `model`, with its
    12 tracking parameters and referrer (None when unattributed), ordered by
    conversion time. The seed's ``Conversion.objects.valid().with_attribution(
    last_touch, window_days=30, source_windows={...})``; `valid_only=False`
    includes unconfirmed and deactivated conversions. Keys are the columns of
    the `conversion_attribution` mart. `exclude_direct=True` (last_touch only)
    is last non-direct click: Direct touchpoints are passed over unless the
    conversion has nothing else (the `last_non_direct_touchpoint_id` of the
    `conversion_paths` mart).

    `as_arrow=True` returns the same rows as a `pyarrow.Table` instead of dicts:
    the columns of `COLUMNS` in that order, typed as the mart (`arrow_schema()`).
    On DuckDB it is built from columns without a Python object per value, the
    fast way to a DataFrame (``.to_pandas()``, ``polars.from_arrow``); on
    PostgreSQL the fetched rows are converted.

    >>> attribute_conversions("first_touch", window_days=7, source_windows={"google": 14})
    >>> attribute_conversions(as_arrow=True).to_pandas()
    """
    settings = settings or load_settings()
    sql, params = attribution_sql(
        settings, model, window_days, source_windows, valid_only, exclude_direct
    )
    if settings.is_duckdb:
        index = snapshot_derived(
            settings, _INDEX_MARTS, "attribution", lambda memory: _touch_index(memory, settings)
        )
        if index is not None:
            return index.attribute(
                model, window_days, source_windows, valid_only, exclude_direct, as_arrow
            )
    rows = fetch_marts(sql, params, settings, _INDEX_MARTS, POSTGRES_PLANNER)
    for row in rows:
        # The same types on both targets (DuckDB returns the literal as str anyway).
        if row["window_days"] is not None:
            row["window_days"] = int(row["window_days"])
        row["eligible_touchpoints"] = int(row["eligible_touchpoints"])
    if as_arrow:
        import pyarrow as pa

        return pa.Table.from_pylist(rows, schema=arrow_schema())
    return rows


def arrow_schema() -> pa.Schema:
    """The columns of `attribute_conversions(..., as_arrow=True)`: `COLUMNS`, typed
    as the `conversion_attribution` mart's."""
    import pyarrow as pa

    types = dict.fromkeys(COLUMNS, pa.string())
    types.update(
        touched_at=pa.timestamp("us"),
        converted_at=pa.timestamp("us"),
        value=pa.decimal128(18, 2),
        is_valid=pa.bool_(),
        window_days=pa.int32(),
        eligible_touchpoints=pa.int64(),
    )
    return pa.schema(list(types.items()))


_INDEX_MARTS = ("conversions", "touchpoints")
# PostgreSQL's estimates through these queries' window functions and unions are far
# off (1 row for 20,000 candidates), and it chose nested loops over what it took
# for tiny inputs: at 200,000 touchpoints a call ran for minutes. Every join here is
# on equalities, so hash and merge joins serve; and the inflated costs made it
# JIT-compile each call (~1 s). Set for the query's transaction only.
POSTGRES_PLANNER = {"enable_nestloop": "off", "jit": "off"}
# A pair is inside a window of n days when its age (converted_at - touched_at, in
# microseconds) is at most n days: the mart's `touched_at >= converted_at - n * interval
# '1 day'` on timestamps without time zone (microseconds, days of 86,400 s).
_DAY_US = 86_400_000_000
# Windows longer than any age (some 290,000 years) are clamped rather than overflow.
_MAX_US = 2**63 - 1
# The pair index (_TouchIndex) holds every pair of a conversion and an earlier
# touchpoint of its identity: about 3 per row of the two marts for ordinary traffic
# (bench/attribution.py), but quadratic in one identity's history. One identity with
# 10% of 200k touchpoints and 20k conversions (a kiosk, a QA user, an `undefined`
# anonymous id) makes 21.7M pairs: a 12 s first call and a 4.4 GiB peak. Above this
# many pairs per row (and at least _MIN_INDEX_PAIRS), calls run attribution_sql on the
# in-memory copies instead: the same rows, 0.7-3.7 s per call there, memory bounded by
# the query (bench/README.md).
_MAX_PAIRS_PER_ROW = 8
_MIN_INDEX_PAIRS = 1_000_000
_CONVERSION_COLUMNS = (
    "conversion_id", "stitched_id", "event", "converted_at", "value", "currency", "is_valid"
)  # fmt: skip
_TOUCHPOINT_COLUMNS = ("touchpoint_id", "touched_at", *TRACKING_COLUMNS, "referrer", "channel")


class _Conversions(NamedTuple):
    """The conversions a call lists (all of them, or the valid ones), in the
    output's order: their columns, and where each one's pairs lie in the pair
    arrays (`lo` up to `hi`, excluded)."""

    table: pa.Table
    lo: pa.Array
    hi: pa.Array


def _touch_index(memory: Any, settings: Settings) -> _TouchIndex | None:
    """The pair index of this copy of the marts, or None when one identity's history
    would make it quadratic (see _MAX_PAIRS_PER_ROW): calls then run the query."""
    conversions = relation("conversions", settings)
    touchpoints = relation("touchpoints", settings)
    pairs, rows = memory.execute(
        f"""
        select
            (
                select count(*)
                from {conversions} as c
                inner join {touchpoints} as t
                    on c.stitched_id = t.stitched_id and t.touched_at < c.converted_at
            ),
            (select count(*) from {conversions}) + (select count(*) from {touchpoints})
        """
    ).fetchone()
    if pairs > max(_MIN_INDEX_PAIRS, _MAX_PAIRS_PER_ROW * rows):
        return None
    return _TouchIndex(memory, settings)


class _TouchIndex:
    """`attribute_conversions` on DuckDB without the join per call (issue 16).

    Built once per in-memory copy of the marts (taken again when the warehouse
    changes): every pair of a conversion and a touchpoint of its stitched identity
    strictly before it, as Arrow arrays sorted by (conversion, position in
    (touched_at, touchpoint_id) order) — what every window has in common — with
    each pair's age (converted_at - touched_at). A call is then a few vectorised
    passes over the pairs, no per-pair Python: the mask of pairs inside its window
    (the mart's predicate, `_DAY_US`), a running count of the mask, and per
    conversion, from the counts at the two ends of its pairs, how many are eligible
    and the first or last of them. The chosen pairs' touchpoint columns are taken
    from the touchpoint columns held in pair order; for dicts, each conversion's
    row is prepared on the first call for dicts and each touchpoint's columns the
    first time it is chosen. The rows equal `attribution_sql`'s
    (tests/test_attribution.py compares both on every window).
    """

    def __init__(self, memory: Any, settings: Settings) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        touchpoints_mart = relation("touchpoints", settings)
        # Our own tables, in the private in-memory database of the copy (replaced if an
        # earlier build of them was interrupted).
        memory.execute("create schema if not exists trackhouse_index")
        memory.execute(
            f"""
            create or replace table trackhouse_index.conversions as
            select
                row_number() over (order by converted_at, conversion_id) - 1 as ci,
                {", ".join(_CONVERSION_COLUMNS)}
            from {relation("conversions", settings)}
            """
        )
        memory.execute(
            f"""
            create or replace table trackhouse_index.pairs as
            select
                c.ci,
                t.rowid as ti,
                epoch_us(c.converted_at) - epoch_us(t.touched_at) as age_us,
                t.utm_source,
                not coalesce(t.channel = 'Direct', false) as not_direct,
                row_number() over (
                    partition by c.ci order by t.touched_at, t.touchpoint_id
                ) as position
            from trackhouse_index.conversions as c
            inner join {touchpoints_mart} as t
                on c.stitched_id = t.stitched_id and t.touched_at < c.converted_at
            """
        )
        pairs = memory.sql(
            "select ti, age_us, utm_source, not_direct "
            "from trackhouse_index.pairs order by ci, position"
        ).to_arrow_table()
        self.pair_ti = pairs["ti"].combine_chunks()
        self.pair_age = pairs["age_us"].combine_chunks()
        self.pair_not_direct = pairs["not_direct"].combine_chunks()
        # utm_source as a code per pair (the last code: NULL) for per-source windows.
        sources = pc.dictionary_encode(pairs["utm_source"]).combine_chunks()
        self.sources: list[str] = sources.dictionary.to_pylist()
        self.pair_source = pc.fill_null(sources.indices, len(self.sources))
        # The copy is created at once and never changed: its rowids are 0..n-1, so a
        # touchpoint's rowid (ti) is its row here.
        touchpoints = memory.sql(
            f"select {', '.join(_TOUCHPOINT_COLUMNS)} from {touchpoints_mart} order by rowid"
        ).to_arrow_table()
        self.touchpoint_count = touchpoints.num_rows
        # The touchpoint columns by pair: a call takes the chosen pairs' values in
        # increasing pair order, reading these columns front to back rather than all
        # over the touchpoints'. Columns with few distinct values (sources, channels,
        # referrers) are dictionary-encoded (`touchpoint_values`: their dictionaries'
        # values as Python objects, shared by the dicts of the rows); a column of NULLs
        # only is kept as it is, and not taken from.
        self.pair_columns: dict[str, pa.Array] = {}
        self.touchpoint_values: dict[str, list[Any]] = {}
        for name in _TOUCHPOINT_COLUMNS:
            column = touchpoints[name].combine_chunks()
            if column.null_count == len(column):
                self.pair_columns[name] = column
                continue
            if name != "touchpoint_id" and pa.types.is_string(column.type):  # the id: unique
                encoded = pc.dictionary_encode(column)
                if len(encoded.dictionary) * 4 <= len(column):
                    self.touchpoint_values[name] = encoded.dictionary.to_pylist()
                    column = encoded
            self.pair_columns[name] = column.take(self.pair_ti)
        bounds = memory.sql(
            """
            with counted as (
                select conversions.ci, coalesce(paired.n, 0) as n
                from trackhouse_index.conversions as conversions
                left join (
                    select ci, count(*) as n from trackhouse_index.pairs group by ci
                ) as paired using (ci)
            )
            select
                cast(sum(n) over (order by ci) - n as bigint) as lo,
                cast(sum(n) over (order by ci) as bigint) as hi
            from counted
            order by ci
            """
        ).to_arrow_table()
        table = memory.sql(
            f"select {', '.join(_CONVERSION_COLUMNS)} from trackhouse_index.conversions order by ci"
        ).to_arrow_table()
        lo = bounds["lo"].combine_chunks()
        hi = bounds["hi"].combine_chunks()
        self.all = _Conversions(table, lo, hi)
        valid = pc.fill_null(table["is_valid"], False).combine_chunks()
        self.valid = _Conversions(table.filter(valid), lo.filter(valid), hi.filter(valid))
        self.zero = pa.array([0], pa.int64())
        # Everything a call needs of the pairs is in the arrays above.
        memory.execute("drop table trackhouse_index.pairs")
        # For dicts, made on the first call that returns them (see _conversion_rows).
        self.memory = memory
        self.conversion_rows: dict[bool, list[dict[str, Any]]] = {}
        self.touchpoint_rows: list[dict[str, Any] | None] = [None] * self.touchpoint_count
        self.lock = threading.Lock()

    def _choose(
        self,
        conversions: _Conversions,
        model: str,
        window_days: int,
        source_windows: Mapping[str, int] | None,
        exclude_direct: bool,
    ) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Per conversion: the chosen pair, the window that applied to it (both null
        when no touchpoint is eligible), and how many touchpoints are eligible."""
        import pyarrow as pa
        import pyarrow.compute as pc

        default, windows = _window_days(window_days, source_windows)
        if windows:
            days = [windows.get(source, default) for source in self.sources] + [default]
            limit = pa.array([min(d * _DAY_US, _MAX_US) for d in days], pa.int64())
            eligible = pc.less_equal(self.pair_age, pc.take(limit, self.pair_source))
        else:
            eligible = pc.less_equal(self.pair_age, min(default * _DAY_US, _MAX_US))

        def ends(mask: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
            """The pairs of `mask`, and per conversion how many of them come before
            its pairs and up to its last pair."""
            running = pa.concat_arrays([self.zero, pc.cumulative_sum(pc.cast(mask, pa.int64()))])
            before = pc.take(running, conversions.lo)
            through = pc.take(running, conversions.hi)
            return pc.indices_nonzero(mask), before, through

        pairs, before, through = ends(eligible)
        count = pc.subtract(through, before)
        attributed = pc.greater(count, 0)
        # The k-th marked pair overall is pairs[k]: a conversion's first is
        # pairs[before], its last pairs[through - 1].
        nth = before if model == "first_touch" else pc.subtract(through, 1)
        chosen = pc.take(pairs, pc.if_else(attributed, nth, None))
        if exclude_direct:
            # The last non-direct eligible pair where there is one.
            kept, kept_before, kept_through = ends(pc.and_(eligible, self.pair_not_direct))
            last_kept = pc.if_else(
                pc.greater(kept_through, kept_before), pc.subtract(kept_through, 1), None
            )
            chosen = pc.coalesce(pc.take(kept, last_kept), chosen)
        if windows:
            window = pc.take(pa.array(days, pa.int32()), pc.take(self.pair_source, chosen))
        else:
            window = pc.if_else(attributed, pa.scalar(default, pa.int32()), None)
        return chosen, window, count

    def _touchpoint_column(self, name: str, chosen: pa.Array) -> pa.Array:
        """The touchpoint column `name` of the `chosen` pairs (null at null)."""
        import pyarrow as pa

        column = self.pair_columns[name]
        if column.null_count == len(column):
            return pa.nulls(len(chosen), column.type)
        taken = column.take(chosen)
        return taken.dictionary_decode() if name in self.touchpoint_values else taken

    def _conversion_rows(self, valid_only: bool) -> list[dict[str, Any]]:
        """Each conversion's row with its columns (the touchpoint's None, no eligible
        touchpoints), in the order of `all` or `valid`: what a call copies and fills."""
        with self.lock:
            if not self.conversion_rows:
                cursor = self.memory.cursor()
                try:
                    cursor.execute(
                        f"select {', '.join(_CONVERSION_COLUMNS)} "
                        "from trackhouse_index.conversions order by ci"
                    )
                    fetched = cursor.fetchall()
                finally:
                    cursor.close()
                empty = {**dict.fromkeys(COLUMNS), "eligible_touchpoints": 0}
                rows = [
                    {**empty, **dict(zip(_CONVERSION_COLUMNS, values, strict=True))}
                    for values in fetched
                ]
                self.conversion_rows[False] = rows
                self.conversion_rows[True] = [row for row in rows if row["is_valid"]]
            return self.conversion_rows[valid_only]

    def _touchpoint_rows(self, tis: list[int | None], chosen: pa.Array) -> list[Any]:
        """The touchpoint columns as dicts, by touchpoint (ti): those of the `chosen`
        pairs (touchpoints `tis`) made the first time they are chosen.

        Filling rows from these dicts is mostly waiting for memory, so they touch
        as few places as they can: the values of dictionary-encoded columns are
        shared objects, and the dicts (with their other values) are made in the
        order they were first asked for, conversion after conversion, which later
        calls for similar windows read them in much the same order."""
        import pyarrow as pa

        with self.lock:
            rows = self.touchpoint_rows
            new = [i for i, ti in enumerate(tis) if ti is not None and rows[ti] is None]
            if new:
                at = chosen.take(pa.array(new, pa.int64()))
                columns = []
                for name, column in self.pair_columns.items():
                    if column.null_count == len(column):
                        columns.append([None] * len(new))
                    elif name in self.touchpoint_values:
                        values = self.touchpoint_values[name]
                        codes = column.indices.take(at).to_pylist()
                        columns.append([None if c is None else values[c] for c in codes])
                    else:
                        columns.append(column.take(at).to_pylist())
                for i, values in zip(new, zip(*columns, strict=True), strict=True):
                    if rows[tis[i]] is None:  # not a touchpoint met earlier in `new`
                        rows[tis[i]] = dict(zip(_TOUCHPOINT_COLUMNS, values, strict=True))
            return rows

    def attribute(
        self,
        model: str,
        window_days: int,
        source_windows: Mapping[str, int] | None,
        valid_only: bool,
        exclude_direct: bool,
        as_arrow: bool,
    ) -> list[dict[str, Any]] | pa.Table:
        import pyarrow as pa

        conversions = self.valid if valid_only else self.all
        chosen, window, count = self._choose(
            conversions, model, window_days, source_windows, exclude_direct
        )
        if as_arrow:
            columns = dict(
                zip(conversions.table.column_names, conversions.table.columns, strict=True)
            )
            for name in _TOUCHPOINT_COLUMNS:
                columns[name] = self._touchpoint_column(name, chosen)
            columns.update(
                attribution_model=pa.repeat(pa.scalar(model), len(chosen)),
                window_days=window,
                eligible_touchpoints=count,
            )
            return pa.Table.from_arrays([columns[c] for c in COLUMNS], schema=arrow_schema())
        tis = self.pair_ti.take(chosen).to_pylist()
        touchpoints = self._touchpoint_rows(tis, chosen)
        # A prepared row copied and updated ({**row, ...}) is faster than a dict built
        # from its 26 values.
        return [
            {**row, "attribution_model": model}
            if t is None
            else {
                **row,
                **touchpoints[t],  # type: ignore[dict-item]
                "attribution_model": model,
                "window_days": days,
                "eligible_touchpoints": n,
            }
            for row, t, days, n in zip(
                self._conversion_rows(valid_only),
                tis,
                window.to_pylist(),
                count.to_pylist(),
                strict=True,
            )
        ]


# -- multi-touch credits: the attribution_credits mart, for any window --------
# The columns of the attribution_credits mart, in its order.
CREDIT_COLUMNS = (
    "conversion_id",
    "attribution_model",
    "touchpoint_id",
    "touched_at",
    "touchpoint_position",
    "touchpoint_count",
    "credit",
    "attributed_value",
    "currency",
    "is_valid",
    "stitched_id",
    "event",
    "converted_at",
    *TRACKING_COLUMNS,
    "referrer",
    "channel",
)
CREDIT_TABLE_COLUMNS = (
    "conversion_id",
    "event",
    "converted_at",
    "touchpoint_id",
    "channel",
    "utm_source",
    "utm_campaign",
    "credit",
    "attributed_value",
    "currency",
)


def _round_double(expr: str, places: int, settings: Settings) -> str:
    """The dbt macro `round_double`, per engine, so the numbers are the mart's."""
    if settings.target == "duckdb" or settings.is_spark:
        return f"round(cast({expr} as double), {places})"
    return f"cast(round(cast({expr} as numeric), {places}) as double precision)"


def _half_life(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise AttributionArgumentError(
            f"half_life_days is {value!r}, but a half-life is a number of days > 0 "
            "(a touchpoint's weight halves every half-life); pass e.g. 3 or 7."
        )
    return float(value)


def _squarings_sql(settings: Settings) -> list[str]:
    """CTEs from `matrix_0` to `matrix_{MARKOV_SQUARINGS}`, as the dbt macro
    `squared_transition_matrices` writes them: a CTE per squaring, or on Spark (which
    inlines CTEs: 2^32 copies) a fold over each scenario's dense matrix."""
    rd = _round_double
    if not settings.is_spark:
        return [
            f"""
        matrix_{i} as (
            select
                a.removed_state, a.from_state, b.to_state,
                {rd("sum(a.probability * b.probability)", 15, settings)} as probability
            from matrix_{i - 1} as a
            inner join matrix_{i - 1} as b
                on a.removed_state = b.removed_state and a.to_state = b.from_state
            group by 1, 2, 3
        )"""
            for i in range(1, MARKOV_SQUARINGS + 1)
        ]
    cell = rd(
        "aggregate(sequence(0, size(power) - 1), cast(0 as double), "
        "(total, via_index) -> total + power_row[via_index] * power[via_index][to_index])",
        15,
        settings,
    )
    return [
        """
        matrix_states as (
            select array_sort(array_distinct(flatten(collect_list(array(from_state, to_state)))))
                as states
            from matrix_0
        ),
        matrix_rows as (
            select
                removed_state,
                from_state,
                map_from_entries(collect_list(struct(to_state, probability))) as row_entries
            from matrix_0
            group by removed_state, from_state
        ),
        matrix_dense as (
            select
                scenario_rows.removed_state,
                matrix_states.states,
                transform(matrix_states.states, dense_from -> transform(
                    matrix_states.states,
                    dense_to -> coalesce(
                        try_element_at(try_element_at(scenario_rows.entries, dense_from), dense_to),
                        cast(0 as double)
                    )
                )) as matrix
            from (
                select
                    removed_state,
                    map_from_entries(collect_list(struct(from_state, row_entries))) as entries
                from matrix_rows
                group by removed_state
            ) as scenario_rows
            cross join matrix_states
        )""",
        f"""
        matrix_cells as (
            select
                removed_state,
                inline(aggregate(
                    sequence(1, {MARKOV_SQUARINGS}),
                    matrix,
                    (power, squaring) -> transform(power, power_row -> transform(
                        sequence(0, size(power) - 1), to_index -> {cell}
                    )),
                    power -> flatten(transform(
                        sequence(0, size(power) - 1),
                        from_index -> transform(
                            sequence(0, size(power) - 1),
                            to_index -> named_struct(
                                'from_state', states[from_index],
                                'to_state', states[to_index],
                                'probability', power[from_index][to_index]
                            )
                        )
                    ))
                ))
            from matrix_dense
        ),
        matrix_{MARKOV_SQUARINGS} as (
            select removed_state, from_state, to_state, probability
            from matrix_cells
            where probability <> 0
        )""",
    ]


def markov_sql(settings: Settings, steps: str) -> str:
    """CTEs from `steps` (path_kind, path_id, is_valid, channel, step) to
    `removal_effects` (channel, removal_effect): int_channel_removal_effects."""
    rd = _round_double
    parts = [
        f"""
        markov_steps as (
            select * from {steps} where path_kind = 'non_conversion' or is_valid
        ),
        edges as (
            select '(start)' as from_state, channel as to_state
            from markov_steps where step = 1
            union all
            select
                channel as from_state,
                coalesce(
                    lead(channel) over (partition by path_kind, path_id order by step),
                    case when path_kind = 'conversion' then '(conversion)' else '(null)' end
                ) as to_state
            from markov_steps
        ),
        transitions as (
            select from_state, to_state, count(*) as transition_count
            from edges group by from_state, to_state
        ),
        probabilities as (
            select
                from_state,
                to_state,
                cast(transition_count as {double_type(settings)})
                / sum(transition_count) over (partition by from_state) as probability
            from transitions
        ),
        markov_channels as (select distinct channel from markov_steps),
        scenarios as (
            select '(none)' as removed_state
            union all
            select channel as removed_state from markov_channels
        ),
        matrix_0 as (
            select
                scenarios.removed_state,
                probabilities.from_state,
                case
                    when probabilities.to_state = scenarios.removed_state then '(null)'
                    else probabilities.to_state
                end as to_state,
                sum(probabilities.probability) as probability
            from scenarios
            cross join probabilities
            where probabilities.from_state <> scenarios.removed_state
            group by 1, 2, 3
            union all
            select scenarios.removed_state, absorbing.state, absorbing.state, 1.0
            from scenarios
            cross join (
                select '(conversion)' as state union all select '(null)' as state
            ) as absorbing
        )"""
    ]
    parts += _squarings_sql(settings)
    effect = rd(
        "greatest(0, 1 - removed.conversion_probability / whole.conversion_probability)",
        12,
        settings,
    )
    parts.append(
        f"""
        conversion_probabilities as (
            select
                scenarios.removed_state,
                coalesce(reached.probability, 0) as conversion_probability
            from scenarios
            left join matrix_{MARKOV_SQUARINGS} as reached
                on scenarios.removed_state = reached.removed_state
                and reached.from_state = '(start)'
                and reached.to_state = '(conversion)'
        ),
        removal_effects as (
            select
                markov_channels.channel,
                case when whole.conversion_probability > 0 then {effect} else 0 end
                    as removal_effect
            from markov_channels
            inner join conversion_probabilities as removed
                on markov_channels.channel = removed.removed_state
            cross join (
                select conversion_probability from conversion_probabilities
                where removed_state = '(none)'
            ) as whole
        )"""
    )
    return ",".join(parts)


def credits_sql(
    settings: Settings,
    model: str,
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
) -> tuple[str, dict[str, Any]]:
    """The query `attribution_credits` runs (the mart's SQL, for this window)."""
    if model not in ALL_MODELS:
        raise ValueErrorWithKnownValues("attribution model", model, ALL_MODELS, "Pick one of them.")
    half_life = _half_life(half_life_days)
    window, params = window_expression(window_days, source_windows)
    params["half_life"] = half_life
    raw_credit = {
        "first_touch": "case when touchpoint_position = 1 then 1.0 end",
        "last_touch": "case when touchpoint_position = touchpoint_count then 1.0 end",
        "linear": "1.0 / touchpoint_count",
        "position_based": """case
                when touchpoint_count = 1 then 1.0
                when touchpoint_count = 2 then 0.5
                when touchpoint_position = 1 or touchpoint_position = touchpoint_count then 0.4
                else 0.2 / (touchpoint_count - 2)
            end""",
        "time_decay": "decay_weight / sum(decay_weight) over (partition by conversion_id)",
        "data_driven": """case
                when path_removal_effect > 0
                    then removal_effect / path_removal_effect / channel_touchpoints
                else 1.0 / touchpoint_count
            end""",
    }[model]
    # The Markov chain learns from the paths of valid conversions and the
    # touchpoints eligible for none (int_channel_paths_sequenced), whatever valid_only.
    markov = (
        ","
        + """
        converted_touchpoints as (
            select distinct touchpoint_id from matched where is_valid
        ),
        unconverted as (
            select
                'non_conversion' as path_kind,
                touchpoints.stitched_id as path_id,
                cast(null as boolean) as is_valid,
                touchpoints.channel,
                row_number() over (
                    partition by touchpoints.stitched_id
                    order by touchpoints.touched_at, touchpoints.touchpoint_id
                ) as step
            from touchpoints
            left join converted_touchpoints
                on touchpoints.touchpoint_id = converted_touchpoints.touchpoint_id
            where converted_touchpoints.touchpoint_id is null
        ),
        paths as (
            select
                'conversion' as path_kind,
                conversion_id as path_id,
                is_valid,
                channel,
                touchpoint_position as step
            from matched
            union all
            select * from unconverted
        ),"""
        + markov_sql(settings, "paths")
        if model == "data_driven"
        else ""
    )
    effects_join = (
        "left join removal_effects on matched.channel = removal_effects.channel"
        if model == "data_driven"
        else ""
    )
    effect = "coalesce(removal_effects.removal_effect, 0)" if model == "data_driven" else "0"
    double = double_type(settings)
    converted_epoch = epoch_seconds("matched.converted_at", settings)
    touched_epoch = epoch_seconds("matched.touched_at", settings)
    tracking = ",\n            ".join(f"touchpoints.{c}" for c in TRACKING_COLUMNS)
    sql = f"""
        with
        conversions as (
            select * from {relation("conversions", settings)}
        ),
        touchpoints as (
            select * from {relation("touchpoints", settings)}
        ),
        windowed_touchpoints as (
            select touchpoint_id, stitched_id, touched_at, channel, {window} as window_days
            from touchpoints
        ),
        matched as (
            select
                conversions.conversion_id,
                conversions.converted_at,
                conversions.is_valid,
                windowed_touchpoints.touchpoint_id,
                windowed_touchpoints.touched_at,
                windowed_touchpoints.channel,
                row_number() over (
                    partition by conversions.conversion_id
                    order by windowed_touchpoints.touched_at, windowed_touchpoints.touchpoint_id
                ) as touchpoint_position,
                count(*) over (partition by conversions.conversion_id) as touchpoint_count
            from conversions
            inner join windowed_touchpoints
                on conversions.stitched_id = windowed_touchpoints.stitched_id
                and windowed_touchpoints.touched_at < conversions.converted_at
                and windowed_touchpoints.touched_at
                    >= conversions.converted_at
                    - windowed_touchpoints.window_days * interval '1 day'
        ){markov},
        aged as (
            select
                matched.*,
                (
                    cast({converted_epoch} as {double})
                    - cast({touched_epoch} as {double})
                ) / 86400.0 as age_days,
                {effect} as removal_effect,
                count(*) over (
                    partition by matched.conversion_id, matched.channel
                ) as channel_touchpoints,
                row_number() over (
                    partition by matched.conversion_id, matched.channel
                    order by matched.touchpoint_position
                ) as step_of_channel
            from matched
            {effects_join}
        ),
        decayed as (
            select
                *,
                exp(-ln(2.0) * age_days / :half_life) as decay_weight,
                sum(case when step_of_channel = 1 then removal_effect else 0 end) over (
                    partition by conversion_id
                ) as path_removal_effect
            from aged
        ),
        shares as (
            select * from (
                select
                    conversion_id,
                    touchpoint_id,
                    touchpoint_position,
                    touchpoint_count,
                    {raw_credit} as raw_credit
                from decayed
            ) as all_shares
            where raw_credit is not null
        ),
        rounded_shares as (
            select
                *,
                cast({_round_double("raw_credit", 6, settings)} as numeric(9, 6)) as rounded_credit,
                row_number() over (
                    partition by conversion_id order by touchpoint_position desc
                ) as reverse_position
            from shares
        ),
        credited as (
            select
                *,
                case
                    when reverse_position = 1
                        then 1 - (
                            sum(rounded_credit) over (partition by conversion_id)
                            - rounded_credit
                        )
                    else rounded_credit
                end as exact_credit
            from rounded_shares
        ),
        valued as (
            select
                credited.*,
                conversions.value,
                cast(
                    round(conversions.value * credited.exact_credit, 2) as numeric(18, 2)
                ) as rounded_value
            from credited
            inner join conversions on credited.conversion_id = conversions.conversion_id
        ),
        value_sums as (
            select
                *,
                sum(rounded_value) over (partition by conversion_id) as rounded_value_sum
            from valued
        )
        select
            value_sums.conversion_id,
            '{model}' as attribution_model,
            value_sums.touchpoint_id,
            touchpoints.touched_at,
            cast(value_sums.touchpoint_position as integer) as touchpoint_position,
            cast(value_sums.touchpoint_count as integer) as touchpoint_count,
            cast(value_sums.exact_credit as numeric(9, 6)) as credit,
            cast(
                case
                    when value_sums.reverse_position = 1
                        then value_sums.value
                            - (value_sums.rounded_value_sum - value_sums.rounded_value)
                    else value_sums.rounded_value
                end as numeric(18, 2)
            ) as attributed_value,
            conversions.currency,
            conversions.is_valid,
            conversions.stitched_id,
            conversions.event,
            conversions.converted_at,
            {tracking},
            touchpoints.referrer,
            touchpoints.channel
        from value_sums
        inner join conversions on value_sums.conversion_id = conversions.conversion_id
        inner join touchpoints on value_sums.touchpoint_id = touchpoints.touchpoint_id
        {"where conversions.is_valid" if valid_only else ""}
        order by conversions.converted_at, value_sums.conversion_id, value_sums.touchpoint_position
    """
    return sql, params


def attribution_credits(
    model: str = "linear",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """One row per attributed conversion and credited touchpoint under `model`
    (first_touch, last_touch, linear, position_based, time_decay,
    data_driven), computed for this window: the rows of the
    `attribution_credits` mart for the same settings (vars `window_days`,
    `source_windows`, `time_decay_half_life_days`). Credits sum to exactly 1
    per conversion. `half_life_days` is time_decay's half-life. data_driven
    learns its Markov chain from valid conversions and non-converting paths
    (whatever `valid_only`, which only filters the rows returned).

    >>> attribution_credits("time_decay", half_life_days=3)
    """
    settings = settings or load_settings()
    sql, params = credits_sql(
        settings, model, window_days, source_windows, valid_only, half_life_days
    )
    return fetch_marts(sql, params, settings, ("conversions", "touchpoints"), POSTGRES_PLANNER)


def attribution_by_channel(
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    exclude_direct: bool = False,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """Conversions and value credited to each channel under `model`: one row per
    (channel, currency) with `conversions` (the sum of credits) and `value`
    (the sum of attributed values); channel None = conversions with no eligible
    touchpoint. The same sums as `attribution_credits` (or, for first/last
    touch, `conversion_attribution`) grouped by channel and currency.
    """
    settings = settings or load_settings()
    if model not in ALL_MODELS:
        raise ValueErrorWithKnownValues("attribution model", model, ALL_MODELS, "Pick one of them.")
    if exclude_direct and model != "last_touch":
        raise AttributionArgumentError(
            f"exclude_direct applies to last_touch (last non-direct click), not {model!r}."
        )
    listed = attribute_conversions(
        "last_touch" if model in MULTI_TOUCH_MODELS else model,
        window_days,
        source_windows,
        valid_only,
        settings,
        exclude_direct=exclude_direct,
    )
    sums: dict[tuple[str | None, str | None], list[Any]] = {}

    def add(channel: str | None, currency: str | None, credit: Decimal, value: Any) -> None:
        entry = sums.setdefault((channel, currency), [Decimal(0), None])
        entry[0] += credit
        if value is not None:
            entry[1] = (entry[1] or Decimal(0)) + value

    for row in listed:
        if row["touchpoint_id"] is None:
            add(None, row["currency"], Decimal(1), row["value"])
        elif model in ATTRIBUTION_MODELS:
            add(row["channel"], row["currency"], Decimal(1), row["value"])
    if model in MULTI_TOUCH_MODELS:
        for row in attribution_credits(
            model, window_days, source_windows, valid_only, half_life_days, settings
        ):
            add(row["channel"], row["currency"], row["credit"], row["attributed_value"])
    return [
        {
            "attribution_model": model,
            "channel": channel,
            "currency": currency,
            "conversions": total,
            "value": value,
        }
        for (channel, currency), (total, value) in sorted(
            sums.items(), key=lambda kv: (kv[0][0] is None, kv[0][0] or "", kv[0][1] or "")
        )
    ]


# -- command line (trackhouse.cli) ------------------------------------------------
def parse_source_window(text: str) -> tuple[str, int]:
    """'google=14' -> ('google', 14); the source is everything before the last '='."""
    source, sep, days = text.rpartition("=")
    if not sep or not source or not days.strip().isdigit():
        raise AttributionArgumentError(
            f"--source-window {text!r} must be SOURCE=DAYS with whole days >= 0, "
            "e.g. --source-window google=14 --source-window email=7"
        )
    return source, int(days)


def run_attribution_query(
    model: str = "last_touch",
    window_days: int = 30,
    source_windows: Mapping[str, int] | None = None,
    valid_only: bool = True,
    half_life_days: float | None = None,
    by: str | None = None,
    exclude_direct: bool = False,
    settings: Settings | None = None,
) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """What `trackhouse query attribution` prints: the rows and the columns of
    its table format. first/last touch: `attribute_conversions`; the other
    models: `attribution_credits`; `by="channel"`: `attribution_by_channel`."""
    if half_life_days is not None and model != "time_decay":
        raise AttributionArgumentError(
            f"--half-life applies to --model time_decay, not {model!r}; drop it or pick "
            "--model time_decay."
        )
    half_life = DEFAULT_HALF_LIFE_DAYS if half_life_days is None else half_life_days
    if by is not None:
        if by not in BY_OPTIONS:
            raise ValueErrorWithKnownValues("--by", by, BY_OPTIONS, "Group by one of them.")
        rows = attribution_by_channel(
            model, window_days, source_windows, valid_only, half_life, exclude_direct, settings
        )
        return rows, ("attribution_model", "channel", "currency", "conversions", "value")
    if model in ATTRIBUTION_MODELS:
        rows = attribute_conversions(
            model, window_days, source_windows, valid_only, settings, exclude_direct
        )
        return rows, TABLE_COLUMNS
    if exclude_direct:
        raise AttributionArgumentError(
            f"--exclude-direct applies to --model last_touch, not {model!r}."
        )
    rows = attribution_credits(model, window_days, source_windows, valid_only, half_life, settings)
    return rows, CREDIT_TABLE_COLUMNS
