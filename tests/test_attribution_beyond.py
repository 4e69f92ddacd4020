"""Beyond first/last touch: channels, time decay, data-driven (Markov), paths.

Checked as a marketer would: each default channel rule on a touchpoint that
should meet it, the worked example of docs/attribution.md computed by hand,
and the query API and CLI giving the marts' numbers.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import orjson
import pytest

from trackhouse.loader import load_files
from trackhouse.query.attribution import (
    ALL_MODELS,
    AttributionArgumentError,
    attribute_conversions,
    attribution_by_channel,
    attribution_credits,
    run_attribution_query,
)

from factories import page, track

SHOP = "https://shop.example"
MARTS = ("+attribution_credits", "+conversion_paths", "+conversion_attribution")

# (touchpoint id, query string, referrer) -> the channel the default rules give.
CHANNEL_CASES: list[tuple[str, str, str | None, str]] = [
    ("direct", "utm_source=(direct)&utm_medium=(none)", None, "Direct"),
    ("gclid_only", "gclid=abc", None, "Paid Search"),
    ("gclid_social_source", "utm_source=facebook&gclid=abc", None, "Paid Search"),
    ("msclkid", "msclkid=m1&utm_source=bing", None, "Paid Search"),
    ("google_cpc", "utm_source=Google&utm_medium=CPC", None, "Paid Search"),
    ("bing_ppc", "utm_source=bing&utm_medium=ppc", None, "Paid Search"),
    ("li_fat_id", "li_fat_id=l1", None, "Paid Social"),
    ("ttclid", "ttclid=t1&utm_source=tiktok", None, "Paid Social"),
    ("facebook_paid", "utm_source=facebook&utm_medium=paid_social", None, "Paid Social"),
    ("youtube", "utm_source=youtube&utm_medium=cpc", None, "Video"),
    ("video_medium", "utm_source=partner&utm_medium=video", None, "Video"),
    ("display", "utm_source=network&utm_medium=banner", None, "Display"),
    ("facebook_social", "utm_source=facebook&utm_medium=social", None, "Organic Social"),
    ("fbclid_only", "fbclid=f1", None, "Organic Social"),
    ("igshid_only", "igshid=i1", None, "Organic Social"),
    ("t_co_referrer", "utm_campaign=launch", "https://t.co/abc", "Organic Social"),
    ("social_medium", "utm_source=mastodon&utm_medium=social", None, "Organic Social"),
    (
        "google_referrer",
        "utm_campaign=launch",
        "https://www.google.co.uk/search?q=x",
        "Organic Search",
    ),
    ("duckduckgo", "utm_source=duckduckgo", None, "Organic Search"),
    ("organic_medium", "utm_source=someengine&utm_medium=organic", None, "Organic Search"),
    ("newsletter", "utm_source=newsletter&utm_medium=email", None, "Email"),
    ("email_medium", "utm_source=crm&utm_medium=e-mail", None, "Email"),
    ("affiliate", "utm_source=partner&utm_medium=affiliate", None, "Affiliates"),
    ("referral", "utm_source=blog&utm_medium=referral", None, "Referral"),
    ("blog_referrer", "utm_campaign=launch", "https://blog.example.org/post", "Referral"),
    ("tacos_referrer", "utm_campaign=launch", "https://tacos.com/", "Referral"),
    ("campaign_only", "utm_campaign=launch", None, "Unassigned"),
    ("odd_medium", "utm_source=partner&utm_medium=carrier-pigeon", None, "Unassigned"),
]


def build_models_only(warehouse, *select: str) -> None:
    """Seeds and models without their data tests (the worked example runs them)."""
    warehouse.dbt(
        "build", "--select", *select,
        "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
    )  # fmt: skip


def test_default_channel_rules(warehouse):
    events = [
        page(
            "2024-05-01T08:00:00Z",
            f"{SHOP}/?{query}",
            anonymous_id=f"v-{name}",
            referrer=referrer,
            message_id=name,
        )
        for name, query, referrer, _ in CHANNEL_CASES
    ]
    load_files([warehouse.write_ndjson(events)], settings=warehouse.settings)
    build_models_only(warehouse, "+conversion_attribution")
    got = {r["touchpoint_id"]: r["channel"] for r in warehouse.table("touchpoints")}
    assert got == {name: channel for name, _, _, channel in CHANNEL_CASES}


def day(n: float) -> str:
    """An ISO instant n days after 2024-05-01 00:00 UTC."""
    seconds = round(n * 86400)
    return f"2024-05-{1 + seconds // 86400:02d}T{seconds % 86400 // 3600:02d}:00:00Z"


EMAIL = "utm_source=newsletter&utm_medium=email"
PAID_SEARCH = "gclid=g"
DIRECT = "utm_source=direct"


def worked_example() -> list[dict[str, Any]]:
    """docs/attribution.md: Email only assists, Paid Search only closes.

    u1 and u2: Email (day 0), Paid Search (day 3), purchase (day 6);
    u3: Email, no conversion; u4: Paid Search, no conversion.
    u5: a purchase with Paid Search then Direct (last non-direct: Paid Search)
    is deactivated, so it is not a conversion for the Markov chain; its
    touchpoints form u5's non-converting path.
    """
    events: list[dict[str, Any]] = []
    for user in ("u1", "u2"):
        events += [
            page(day(0), f"{SHOP}/?{EMAIL}", user_id=user, message_id=f"{user}-email"),
            page(day(3), f"{SHOP}/?{PAID_SEARCH}", user_id=user, message_id=f"{user}-search"),
            track(day(6), "purchase", user_id=user, message_id=f"{user}-buy", value=90),
        ]
    events += [
        page(day(1), f"{SHOP}/?{EMAIL}", user_id="u3", message_id="u3-email"),
        page(day(1), f"{SHOP}/?{PAID_SEARCH}", user_id="u4", message_id="u4-search"),
    ]
    return events


def credits_by(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], Decimal]:
    return {
        (r["attribution_model"], r["conversion_id"], r["touchpoint_id"]): r["credit"] for r in rows
    }


def test_data_driven_worked_example_and_time_decay(warehouse):
    events = worked_example()
    load_files([warehouse.write_ndjson(events)], settings=warehouse.settings)
    warehouse.build(*MARTS, vars={"time_decay_half_life_days": 3})

    effects = {r["channel"]: r for r in warehouse.table("int_channel_removal_effects")}
    # By hand (docs/attribution.md): P = 3/4*2/3*2/3 + 1/4*2/3 = 1/2; without Email 1/6.
    assert effects["Email"]["conversion_probability"] == pytest.approx(1 / 2)
    assert effects["Email"]["conversion_probability_without"] == pytest.approx(1 / 6)
    assert effects["Email"]["removal_effect"] == pytest.approx(2 / 3)
    assert effects["Paid Search"]["removal_effect"] == pytest.approx(1)

    credits = credits_by(warehouse.table("attribution_credits"))
    for user in ("u1", "u2"):
        buy = f"{user}-buy"
        # Email only assists: last touch gives it nothing, data-driven 2/3 / (2/3 + 1) = 0.4.
        assert credits[("last_touch", buy, f"{user}-search")] == 1
        assert ("last_touch", buy, f"{user}-email") not in credits
        assert credits[("data_driven", buy, f"{user}-email")] == Decimal("0.4")
        assert credits[("data_driven", buy, f"{user}-search")] == Decimal("0.6")
        # Half-life 3 days: ages 6 and 3 days weigh 1/4 and 1/2 -> 1/3 and 2/3.
        assert credits[("time_decay", buy, f"{user}-email")] == Decimal("0.333333")
        assert credits[("time_decay", buy, f"{user}-search")] == Decimal("0.666667")
    per_conversion: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for (model, conversion, _), credit in credits.items():
        per_conversion[model, conversion] += credit
    assert {model for model, _ in per_conversion} == set(ALL_MODELS)
    assert all(total == 1 for total in per_conversion.values())

    # The value follows the credit: 90 -> 36 + 54.
    by_channel = attribution_by_channel("data_driven", settings=warehouse.settings)
    assert [(r["channel"], r["conversions"], r["value"]) for r in by_channel] == [
        ("Email", Decimal("0.8"), Decimal("72")),
        ("Paid Search", Decimal("1.2"), Decimal("108")),
    ]

    # The API gives the mart's rows for the mart's settings, for every model.
    mart = warehouse.table(
        "attribution_credits", "converted_at, conversion_id, touchpoint_position"
    )
    for model in ALL_MODELS:
        api = attribution_credits(model, half_life_days=3, settings=warehouse.settings)
        assert api == [r for r in mart if r["attribution_model"] == model], model
    # Another half-life per call: 1 day -> weights 1/64 and 1/8 -> 1/9 and 8/9.
    quick = credits_by(
        attribution_credits("time_decay", half_life_days=1, settings=warehouse.settings)
    )
    assert quick[("time_decay", "u1-buy", "u1-email")] == Decimal("0.111111")
    assert quick[("time_decay", "u1-buy", "u1-search")] == Decimal("0.888889")

    # Paths: one row per conversion and per identity that did not convert.
    paths = {(r["path_kind"], r["path_id"]): r for r in warehouse.table("conversion_paths")}
    assert paths["conversion", "u1-buy"]["channel_path"] == "Email > Paid Search"
    assert paths["conversion", "u1-buy"]["touch_count"] == 2
    assert paths["conversion", "u1-buy"]["days_from_first_touch"] == Decimal("6")
    assert paths["non_conversion", "u3"]["channel_path"] == "Email"
    assert paths["non_conversion", "u4"]["channel_path"] == "Paid Search"
    assert set(paths) == {
        ("conversion", "u1-buy"),
        ("conversion", "u2-buy"),
        ("non_conversion", "u3"),
        ("non_conversion", "u4"),
    }

    # The CLI: same numbers, in JSON.
    out = warehouse.cli(
        "query", "attribution", "--model", "data_driven", "--by", "channel", "--format", "json"
    ).stdout
    assert [(r["channel"], r["conversions"]) for r in orjson.loads(out)] == [
        ("Email", 0.8),
        ("Paid Search", 1.2),
    ]
    out = warehouse.cli(
        "query", "attribution", "--model", "time_decay", "--half-life", "3", "--format", "json"
    ).stdout
    assert [r["credit"] for r in orjson.loads(out)] == [
        0.333333,
        0.666667,
        0.333333,
        0.666667,
    ]


def test_last_non_direct_and_paths(warehouse):
    events = [
        page(day(0), f"{SHOP}/?{EMAIL}", user_id="w1", message_id="w1-email"),
        page(day(1), f"{SHOP}/?{PAID_SEARCH}", user_id="w1", message_id="w1-search"),
        page(day(2), f"{SHOP}/?{DIRECT}", user_id="w1", message_id="w1-direct"),
        track(day(3), "purchase", user_id="w1", message_id="w1-buy", value=10),
        page(day(0), f"{SHOP}/?{DIRECT}", user_id="w2", message_id="w2-direct"),
        track(day(1), "purchase", user_id="w2", message_id="w2-buy", value=10),
        track(day(1), "signup", user_id="w3", message_id="w3-signup"),
    ]
    load_files([warehouse.write_ndjson(events)], settings=warehouse.settings)
    build_models_only(warehouse, *MARTS)
    paths = {r["path_id"]: r for r in warehouse.table("conversion_paths")}
    assert paths["w1-buy"]["channel_path"] == "Email > Paid Search > Direct"
    assert paths["w1-buy"]["last_channel"] == "Direct"
    assert paths["w1-buy"]["last_non_direct_touchpoint_id"] == "w1-search"
    assert paths["w2-buy"]["last_non_direct_touchpoint_id"] == "w2-direct"  # only Direct
    assert paths["w3-signup"]["touch_count"] == 0 and paths["w3-signup"]["channel_path"] is None

    rows = attribute_conversions("last_touch", exclude_direct=True, settings=warehouse.settings)
    assert {r["conversion_id"]: r["touchpoint_id"] for r in rows} == {
        p["path_id"]: p["last_non_direct_touchpoint_id"]
        for p in paths.values()
        if p["path_kind"] == "conversion"
    }
    assert {r["conversion_id"]: r["channel"] for r in rows}["w1-buy"] == "Paid Search"
    # The channel is carried by conversion_attribution too.
    mart = warehouse.table("conversion_attribution", "conversion_id, attribution_model")
    assert [(r["conversion_id"], r["attribution_model"], r["channel"]) for r in mart][:2] == [
        ("w1-buy", "first_touch", "Email"),
        ("w1-buy", "last_touch", "Direct"),
    ]


def test_attribution_arguments_are_checked():
    with pytest.raises(AttributionArgumentError, match="half-life is a number of days > 0"):
        attribution_credits("time_decay", half_life_days=0)
    with pytest.raises(ValueError, match="'shapley' is not one of"):
        attribution_credits("shapley")
    with pytest.raises(AttributionArgumentError, match="applies to last_touch"):
        attribute_conversions("first_touch", exclude_direct=True)
    with pytest.raises(AttributionArgumentError, match="--half-life applies to --model time_decay"):
        run_attribution_query("linear", half_life_days=3)
