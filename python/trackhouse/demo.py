"""Synthetic demo data: realistic Segment-spec NDJSON events for a small SaaS product.

`generate_events(users, days, seed, end)` simulates `users` people over the `days` days
before `end` (the window is ``[end - days, end)`` at midnight UTC) and yields the events
a Segment / RudderStack export of that product would contain, in timestamp order:

- **accounts** — ``users // 40 + 2`` customer accounts (at least 3 when there are enough
  users), each announced by ``group`` calls carrying ``traits.name`` and
  ``traits.subscription_start``; the first accounts start on the 31st, 30th and 29th of
  a month (billing periods that need clamping), the others on any day. Each account's
  owner signs up on its subscription day; about 80% of later users join an account
  (``identify`` ``traits.account_id`` + ``group``), the rest stay without one.
- **sign-ups**, growing over time: every user first visits the marketing site
  anonymously (``anonymousId`` ``anon-…``); ~60% of those visits come from a campaign
  whose tracking parameters are in ``context.page.url`` (utm_source google / Google /
  facebook / newsletter / linkedin / bing, utm_medium cpc / social / email, campaigns,
  sometimes utm_term / utm_content and gclid / fbclid / msclkid, now and then
  URL-encoded spaces, padded values, a repeated parameter or an over-long value), with
  a referrer and a browser user agent. Some come back through a second campaign. The
  sign-up is an ``identify`` (``traits.created_at``, ``traits.is_active`` ~90% true,
  ``traits.account_id``) plus a ``signup`` track event without a value.
- **multi-device users** (~15%): a second device with its own campaign touchpoint,
  later linked by ``identify`` or ``alias`` (``previousId`` → ``userId``); some of them
  convert on that device before it is linked, and a few "second devices" are a shared
  computer that already belongs to another user (no merge: first user wins).
- **daily activity** with a weekly rhythm (weekends ~30% of weekdays) and churn:
  logged-in ``page`` views on ``https://app.example.com/…`` with ``userId``, a few
  sessions per active day at office hours; ~1.5% come in through a newsletter link.
- **conversions** (``track``): ``signup``, ``trial_started`` and ``purchase``
  (``value`` 19.99 / 49.90 / 99.00 EUR, some USD prices, coupons, monthly renewals,
  ``plan`` / ``order_id`` / ``billing`` as custom data). ~20% of purchases are sent
  unconfirmed with a ``conversion_id`` and confirmed hours or days later (a few fail
  and are deactivated instead); ~5% are refunded (``is_active`` false) later; a few
  guests buy without an account (``anonymousId`` only).
- **noise that must not count**: bot page views with campaign URLs (Googlebot,
  bingbot, AhrefsBot, python-requests) and campaign URLs on ``/admin/`` and ``/api/``.
- **statistics** (trackhouse extension): ``support.tickets_closed`` per day for the last
  two weeks, a few per account, and one corrected value (the later one wins).

Everything is drawn from ``random.Random(seed)``: the same seed and ``end`` give the same
events byte for byte. The only non-deterministic input is ``end=None``, which means
``datetime.date.today()``. Memory grows with the output (events are sorted before they
are yielded); the defaults produce roughly 40k events in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, quote_plus

import orjson

from .errors import ConfigError

Event = dict[str, Any]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

WEBSITE = "https://www.example.com"
APP = "https://app.example.com"

# utm_source, weight, utm_medium, click-id parameter, referrer
_SOURCES: tuple[tuple[str, int, str, str | None, str | None], ...] = (
    ("google", 30, "cpc", "gclid", "https://www.google.com/"),
    ("Google", 4, "cpc", "gclid", "https://www.google.com/"),
    ("facebook", 18, "social", "fbclid", "https://l.facebook.com/"),
    ("newsletter", 16, "email", None, None),
    ("linkedin", 12, "social", None, "https://www.linkedin.com/"),
    ("bing", 8, "cpc", "msclkid", "https://www.bing.com/"),
)
_SOURCE_WEIGHTS = [source[1] for source in _SOURCES]
_CAMPAIGNS = {
    "cpc": ("brand", "product_analytics", "competitor_terms", "summer sale"),
    "social": ("spring_launch", "retargeting", "summer sale", "webinar-2026"),
    "email": ("weekly_digest", "product_update", "summer sale", "winback"),
}
_TERMS = ("product analytics", "usage tracking", "marketing attribution", "saas metrics")
_CONTENTS = ("banner_a", "banner_b", "cta-top", "cta-footer", "video")
_CLICK_ID_PREFIX = {"gclid": "Cj0KCQjw", "fbclid": "IwAR", "msclkid": ""}
_ORGANIC_REFERRERS = (None, None, "https://duckduckgo.com/", "https://news.ycombinator.com/")

_LANDING_PATHS = ("/", "/", "/pricing", "/features/attribution", "/blog/what-is-product-analytics")
_BROWSE_PATHS = ("/pricing", "/features", "/features/usage", "/customers", "/docs/quickstart")
_APP_PATHS = (
    "/dashboard",
    "/dashboard",
    "/dashboard",
    "/reports",
    "/reports/attribution",
    "/reports/usage",
    "/projects",
    "/settings",
    "/settings/team",
    "/billing",
)

_DESKTOP_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
)
_MOBILE_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
)
_BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.31.0",
)
_EXCLUDED_PATHS = ("/admin/login", "/admin/users/", "/api/v1/events", "/api/health")

_COMPANY_FIRST = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wonka")
_COMPANY_SECOND = ("Labs", "Analytics", "GmbH", "Industries", "Cloud", "Studio", "Partners")
# (plan, EUR price, USD price)
_PLANS = (("starter", 19.99, 21.99), ("pro", 49.90, 54.90), ("business", 99.00, 109.00))
_PLAN_WEIGHTS = (45, 40, 15)


@dataclass(slots=True)
class _Account:
    account_id: str
    traits: dict[str, str]
    start_ms: int
    weight: float


@dataclass(slots=True)
class _Device:
    anonymous_id: str
    user_agent: str


@dataclass(slots=True)
class _User:
    user_id: str
    traits: dict[str, Any]
    devices: list[_Device]
    signup_ms: int
    stop_ms: int  # churned (or window end): no activity from here on
    account: _Account | None


class _Simulation:
    """Holds the random stream and the events drawn so far (times in ms from the start)."""

    def __init__(self, users: int, days: int, seed: int, end: dt.date) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.users = users
        self.days = days
        self.span = days * DAY_MS
        first = end - dt.timedelta(days=days)
        dates = [first + dt.timedelta(days=d) for d in range(days)]
        self.day_prefix = [f"{d.isoformat()}T" for d in dates]
        self.dates = dates
        self.weekend = [d.weekday() >= 5 for d in dates]
        self.events: list[tuple[int, int, Event]] = []
        self.orders = 0
        self.shared_devices: list[_Device] = []

    # -- output -------------------------------------------------------------
    def timestamp(self, at: int) -> str:
        day, rest = divmod(at, DAY_MS)
        hour, rest = divmod(rest, HOUR_MS)
        minute, rest = divmod(rest, MINUTE_MS)
        second, milli = divmod(rest, SECOND_MS)
        return f"{self.day_prefix[day]}{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}000Z"

    def emit(self, at: int, kind: str, **fields: Any) -> bool:
        """Queue one event at `at`; events outside the window have not happened: dropped."""
        if not 0 <= at < self.span:
            return False
        event: Event = {"type": kind, "messageId": "", "timestamp": "", **fields}
        self.events.append((at, len(self.events), event))
        return True

    def sorted_events(self) -> Iterator[Event]:
        self.events.sort(key=lambda item: (item[0], item[1]))
        for number, (at, _, event) in enumerate(self.events):
            event["messageId"] = f"demo-{self.seed}-{number}"
            event["timestamp"] = self.timestamp(at)
            yield event

    # -- building blocks ------------------------------------------------------
    def anonymous_id(self) -> str:
        return f"anon-{self.rng.getrandbits(64):016x}"

    def device(self, mobile: bool = False) -> _Device:
        agents = _MOBILE_AGENTS if mobile or self.rng.random() < 0.25 else _DESKTOP_AGENTS
        return _Device(self.anonymous_id(), self.rng.choice(agents))

    def click_id(self, parameter: str) -> str:
        return f"{_CLICK_ID_PREFIX[parameter]}{self.rng.getrandbits(128):032x}"

    def campaign_query(self) -> tuple[str, str | None]:
        """A query string with tracking parameters, and the referrer that goes with it."""
        rng = self.rng
        source, _, medium, click, referrer = rng.choices(_SOURCES, _SOURCE_WEIGHTS)[0]
        campaign = rng.choice(_CAMPAIGNS[medium])
        if rng.random() < 0.01:
            campaign = f"  {campaign.title()}  \t"  # stripped and collapsed downstream
        params = [("utm_source", source), ("utm_medium", medium), ("utm_campaign", campaign)]
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params)
        if medium == "cpc" and rng.random() < 0.5:
            query += f"&utm_term={quote_plus(rng.choice(_TERMS))}"
        if rng.random() < 0.3:
            query += f"&utm_content={rng.choice(_CONTENTS)}"
        if rng.random() < 0.003:
            query += f"&utm_content={'x' * 240}"  # longer than max_utm_length: not used
        if click is not None and rng.random() < 0.5:
            query += f"&{click}={self.click_id(click)}"
        if rng.random() < 0.02:
            query += f"&utm_source={rng.choice(_SOURCES)[0]}"  # repeated: the last one wins
        return query, referrer

    def page(
        self,
        at: int,
        device: _Device,
        url: str,
        *,
        referrer: str | None = None,
        user_id: str | None = None,
    ) -> None:
        path = url.split("://", 1)[-1].partition("/")[2].partition("?")[0]
        page: dict[str, str] = {"path": f"/{path}", "url": url}
        if referrer:
            page["referrer"] = referrer
        fields: dict[str, Any] = {"anonymousId": device.anonymous_id}
        if user_id is not None:
            fields["userId"] = user_id
        self.emit(
            at,
            "page",
            **fields,
            context={"page": page, "userAgent": device.user_agent},
            properties={"path": page["path"]},
        )

    def visit(self, at: int, device: _Device, campaign_share: float, pages: int) -> None:
        """An anonymous session on the marketing site: a landing page and a few more."""
        rng = self.rng
        url = f"{WEBSITE}{rng.choice(_LANDING_PATHS)}"
        if rng.random() < campaign_share:
            query, referrer = self.campaign_query()
            url = f"{url}?{query}"
        else:
            referrer = rng.choice(_ORGANIC_REFERRERS)
        self.page(at, device, url, referrer=referrer)
        for _ in range(pages - 1):
            at += rng.randint(10 * SECOND_MS, 3 * MINUTE_MS)
            next_url = f"{WEBSITE}{rng.choice(_BROWSE_PATHS)}"
            self.page(at, device, next_url, referrer=url.partition("?")[0])
            url = next_url

    def growing_time(self) -> int:
        """A moment in the window, more likely late than early (the product grows)."""
        return int(self.span * (0.02 + 0.97 * self.rng.random() ** 0.6))

    # -- accounts ----------------------------------------------------------------
    def accounts(self) -> list[_Account]:
        count = min(max(3, self.users // 40 + 2), self.users)
        last_start_day = max(1, int(self.days * 0.6))
        accounts = []
        for index in range(count):
            wanted_day = (31, 30, 29)[index] if index < 3 else self.rng.randint(1, 28)
            day = self.subscription_day(wanted_day, last_start_day)
            start_ms = day * DAY_MS
            name = f"{self.rng.choice(_COMPANY_FIRST)} {self.rng.choice(_COMPANY_SECOND)}"
            traits = {
                "name": name,
                "subscription_start": f"{self.dates[day].isoformat()}T00:00:00Z",
            }
            weight = min(self.rng.paretovariate(1.2), 20.0)
            accounts.append(_Account(f"acct-{index + 1:03d}", traits, start_ms, weight))
        return accounts

    def subscription_day(self, day_of_month: int, last_day: int) -> int:
        """A window day index falling on `day_of_month` if one exists, else any day."""
        matching = [d for d in range(last_day) if self.dates[d].day == day_of_month]
        return self.rng.choice(matching) if matching else self.rng.randrange(last_day)

    def pick_account(self, accounts: list[_Account], signup_ms: int) -> _Account | None:
        if self.rng.random() >= 0.8:
            return None
        open_accounts = [a for a in accounts if a.start_ms <= signup_ms]
        if not open_accounts:
            return None
        return self.rng.choices(open_accounts, [a.weight for a in open_accounts])[0]

    # -- one user's life ------------------------------------------------------
    def user(self, index: int, signup_ms: int, account: _Account | None) -> None:
        rng = self.rng
        device = self.device()
        is_active = rng.random() < 0.9
        traits: dict[str, Any] = {
            "created_at": self.timestamp(signup_ms),
            "is_active": is_active,
        }
        if account is not None:
            traits["account_id"] = account.account_id
        if not is_active:
            stop_ms = signup_ms + int(rng.expovariate(1 / 5) * DAY_MS)
        elif rng.random() < 0.3:
            stop_ms = signup_ms + int(rng.expovariate(1 / 25) * DAY_MS)
        else:
            stop_ms = self.span
        user = _User(
            f"user-{index + 1:04d}", traits, [device], signup_ms, min(stop_ms, self.span), account
        )
        self.before_signup(device, signup_ms)
        self.signup(user)
        if rng.random() < 0.15:
            self.second_device(user)
        self.activity(user, engagement=rng.uniform(0.15, 0.85))
        self.conversions(user)
        if len(self.shared_devices) < 50 and rng.random() < 0.1:
            self.shared_devices.append(device)

    def before_signup(self, device: _Device, signup_ms: int) -> None:
        rng = self.rng
        first_ms = signup_ms - int(min(rng.expovariate(1 / 3), 20) * DAY_MS)
        if first_ms < 0:
            first_ms = rng.randrange(max(signup_ms - 10 * MINUTE_MS, 1))
        self.visit(first_ms, device, campaign_share=0.6, pages=rng.randint(1, 3))
        if rng.random() < 0.3 and signup_ms - first_ms > 2 * HOUR_MS:
            again_ms = rng.randint(first_ms + HOUR_MS, signup_ms - HOUR_MS)
            self.visit(again_ms, device, campaign_share=0.5, pages=rng.randint(1, 2))

    def signup(self, user: _User) -> None:
        rng = self.rng
        at = user.signup_ms
        device = user.devices[0]
        ids = {"anonymousId": device.anonymous_id, "userId": user.user_id}
        self.page(at - rng.randint(20, 120) * SECOND_MS, device, f"{WEBSITE}/signup")
        self.emit(at, "identify", **ids, traits=user.traits)
        method = rng.choice(("email", "email", "google", "github"))
        self.emit(at + 800, "track", **ids, event="signup", properties={"method": method})
        if user.account is not None:
            self.emit(
                at + 2 * SECOND_MS,
                "group",
                **ids,
                groupId=user.account.account_id,
                traits=user.account.traits,
            )

    def second_device(self, user: _User) -> None:
        """Another device with its own campaign visit, linked later by identify or alias."""
        rng = self.rng
        seen_ms = user.signup_ms + int(rng.expovariate(1 / 10) * DAY_MS)
        if seen_ms >= user.stop_ms:
            return
        shared = bool(self.shared_devices) and rng.random() < 0.07
        device = rng.choice(self.shared_devices) if shared else self.device(mobile=True)
        query, referrer = self.campaign_query()
        self.page(seen_ms, device, f"{WEBSITE}/?{query}", referrer=referrer)
        if rng.random() < 0.2:
            # converts before logging in: stitched to the user once the device is linked
            properties = {"plan": "pro", "trial_days": 14}
            self.emit(
                seen_ms + rng.randint(1, 5) * MINUTE_MS,
                "track",
                anonymousId=device.anonymous_id,
                event="trial_started",
                properties=properties,
            )
        linked_ms = seen_ms + rng.randint(10, 90) * MINUTE_MS
        if rng.random() < 0.5:
            self.emit(
                linked_ms,
                "identify",
                anonymousId=device.anonymous_id,
                userId=user.user_id,
                traits=user.traits,
            )
        else:
            self.emit(linked_ms, "alias", previousId=device.anonymous_id, userId=user.user_id)
        user.devices.append(device)

    def activity(self, user: _User, engagement: float) -> None:
        """Logged-in page views: active days (fewer on weekends), sessions, pages."""
        rng = self.rng
        start_day = user.signup_ms // DAY_MS
        stop_day = (user.stop_ms - 1) // DAY_MS
        for day in range(start_day, stop_day + 1):
            chance = engagement * (0.3 if self.weekend[day] else 1.0)
            if rng.random() >= chance:
                continue
            for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
                hour = min(max(int(rng.gauss(14, 3.5)), 0), 23)
                at = day * DAY_MS + hour * HOUR_MS + rng.randrange(HOUR_MS)
                device = user.devices[-1] if rng.random() < 0.3 else user.devices[0]
                self.session(user, device, at, pages=rng.randint(1, 6))

    def session(self, user: _User, device: _Device, at: int, pages: int) -> None:
        rng = self.rng
        referrer = None
        for _ in range(pages):
            if at >= user.stop_ms:
                return
            url = f"{APP}{rng.choice(_APP_PATHS)}"
            if referrer is None and rng.random() < 0.015:
                url += "?utm_source=newsletter&utm_medium=email&utm_campaign=product_update"
            if at > user.signup_ms:
                self.page(at, device, url, referrer=referrer, user_id=user.user_id)
            referrer = url.partition("?")[0]
            at += rng.randint(15 * SECOND_MS, 5 * MINUTE_MS)

    # -- conversions --------------------------------------------------------------
    def conversions(self, user: _User) -> None:
        rng = self.rng
        trial_ms = None
        if rng.random() < 0.35:
            trial_ms = user.signup_ms + rng.randint(5 * MINUTE_MS, 2 * DAY_MS)
            if trial_ms < user.stop_ms:
                self.emit(
                    trial_ms,
                    "track",
                    **self.conversion_ids(user),
                    event="trial_started",
                    properties={"plan": "pro", "trial_days": 14},
                )
        if rng.random() >= 0.3:
            return
        if trial_ms is not None:
            at = trial_ms + 14 * DAY_MS + rng.randint(-2 * DAY_MS, HOUR_MS)
        else:
            at = user.signup_ms + int(rng.expovariate(1 / 9) * DAY_MS) + MINUTE_MS
        plan, eur, usd = rng.choices(_PLANS, _PLAN_WEIGHTS)[0]
        currency, price = ("USD", usd) if rng.random() < 0.15 else ("EUR", eur)
        monthly = rng.random() < 0.7
        renews = monthly and rng.random() < 0.6
        while at < user.stop_ms and at < self.span:
            self.purchase(at, user, plan, currency, price, monthly)
            if not renews:
                return
            at += 30 * DAY_MS + rng.randint(-HOUR_MS, HOUR_MS)

    def conversion_ids(self, user: _User) -> dict[str, str]:
        """Mostly both ids; some server-side events only the userId, a few only the device."""
        draw = self.rng.random()
        anonymous_id = self.rng.choice(user.devices).anonymous_id
        if draw < 0.65:
            return {"anonymousId": anonymous_id, "userId": user.user_id}
        if draw < 0.95:
            return {"userId": user.user_id}
        return {"anonymousId": anonymous_id}

    def purchase(
        self, at: int, user: _User, plan: str, currency: str, price: float, monthly: bool
    ) -> None:
        rng = self.rng
        self.orders += 1
        order_id = f"order-{self.orders}"
        properties: dict[str, Any] = {
            "value": price,
            "currency": currency,
            "plan": plan,
            "billing": "monthly" if monthly else "yearly",
            "order_id": order_id,
        }
        if not monthly:
            properties["value"] = round(price * 10, 2)  # two months free
        if rng.random() < 0.1:
            properties["coupon"] = "WELCOME20"
            properties["value"] = round(properties["value"] * 0.8, 2)
        self.track_purchase(at, self.conversion_ids(user), properties, order_id)

    def track_purchase(
        self, at: int, ids: dict[str, str], properties: dict[str, Any], order_id: str
    ) -> None:
        """Emit a purchase; some are confirmed later, fail, or are refunded."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.2:
            pending = {**properties, "conversion_id": order_id, "is_confirmed": False}
            self.emit(at, "track", **ids, event="purchase", properties=pending)
            later = at + rng.randint(HOUR_MS, 3 * DAY_MS)
            if rng.random() < 0.85:
                update = {**properties, "conversion_id": order_id, "is_confirmed": True}
            else:  # payment failed
                update = {**pending, "is_active": False}
            self.emit(later, "track", **ids, event="purchase", properties=update)
        elif draw < 0.25:
            placed = {**properties, "conversion_id": order_id}
            self.emit(at, "track", **ids, event="purchase", properties=placed)
            refund = {**placed, "is_confirmed": True, "is_active": False}
            later = at + rng.randint(DAY_MS, 10 * DAY_MS)
            self.emit(later, "track", **ids, event="purchase", properties=refund)
        else:
            self.emit(at, "track", **ids, event="purchase", properties=properties)

    # -- visitors who never sign up, bots, excluded paths, statistics --------------
    def guests(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            device = self.device()
            at = self.growing_time()
            self.visit(at, device, campaign_share=0.6, pages=rng.randint(1, 3))
            if rng.random() < 0.02:  # a guest checkout: anonymousId only
                self.guest_purchase(at + 10 * MINUTE_MS, device)

    def guest_purchase(self, at: int, device: _Device) -> None:
        plan, eur, _ = _PLANS[0]
        self.orders += 1
        order_id = f"order-{self.orders}"
        properties = {"value": eur, "currency": "EUR", "plan": plan, "order_id": order_id}
        self.track_purchase(at, {"anonymousId": device.anonymous_id}, properties, order_id)

    def bots(self, count: int) -> None:
        rng = self.rng
        for _ in range(count):
            device = _Device(self.anonymous_id(), rng.choice(_BOT_AGENTS))
            at = rng.randrange(self.span)
            for _ in range(rng.randint(1, 4)):
                query, _ = self.campaign_query()
                self.page(at, device, f"{WEBSITE}{rng.choice(_LANDING_PATHS)}?{query}")
                at += rng.randint(SECOND_MS, 20 * SECOND_MS)

    def excluded_paths(self, count: int) -> None:
        for _ in range(count):
            query, referrer = self.campaign_query()
            url = f"{WEBSITE}{self.rng.choice(_EXCLUDED_PATHS)}?{query}"
            self.page(self.rng.randrange(self.span), self.device(), url, referrer=referrer)

    def statistics(self, accounts: list[_Account]) -> None:
        rng = self.rng
        metric = "support.tickets_closed"
        first_day = max(0, self.days - 14)
        for day in range(first_day, self.days):
            at = day * DAY_MS + 23 * HOUR_MS + rng.randrange(50 * MINUTE_MS)
            self.statistic(at, metric, rng.randint(0, 12), day)
            for account in accounts[:2]:
                if day >= self.days - 3 and account.start_ms <= day * DAY_MS:
                    objects = {"object_type": "account", "object_id": account.account_id}
                    self.statistic(at + SECOND_MS, metric, rng.randint(0, 4), day, **objects)
        if self.days >= 2:  # a correction recorded the next morning: the later value wins
            day = self.days - 2
            self.statistic((day + 1) * DAY_MS + 9 * HOUR_MS, metric, rng.randint(0, 12), day)

    def statistic(self, at: int, metric: str, value: int, day: int, **objects: str) -> None:
        properties = {
            "metric": metric,
            "value": value,
            "period": "day",
            "date": self.dates[day].isoformat(),
            **objects,
        }
        self.emit(at, "statistic", properties=properties)

    # -- everything -------------------------------------------------------------
    def run(self) -> None:
        accounts = self.accounts()
        for index in range(self.users):
            if index < len(accounts):  # the owner signs up on the subscription day
                account: _Account | None = accounts[index]
                signup_ms = accounts[index].start_ms + self.rng.randint(8 * HOUR_MS, 18 * HOUR_MS)
            else:
                signup_ms = min(self.growing_time(), self.span - 10 * MINUTE_MS)
                account = self.pick_account(accounts, signup_ms)
            self.user(index, signup_ms, account)
        self.guests(self.users * 2)
        self.bots(max(3, self.users // 8))
        self.excluded_paths(max(3, self.users // 15))
        self.statistics(accounts)


def _open_output(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        return gzip.open(path, "wb", compresslevel=6)
    return path.open("wb")


def generate_events(
    users: int = 500, days: int = 120, seed: int = 42, end: dt.date | None = None
) -> Iterator[dict[str, Any]]:
    """Yield synthetic Segment-spec events for `users` people over the `days` before `end`.

    Deterministic for a given (users, days, seed, end); `end=None` means today's date,
    the only input that is not. Timestamps lie in ``[end - days, end)`` (midnight UTC).
    """
    if users < 0:
        raise ConfigError(f"users must be 0 or more, got {users!r}")
    if days < 1:
        raise ConfigError(f"days must be at least 1, got {days!r}; try days=120")
    if end is None:
        end = dt.date.today()
    elif isinstance(end, dt.datetime):
        end = end.date()
    simulation = _Simulation(users, days, seed, end)
    simulation.run()
    return simulation.sorted_events()


def write_demo_file(
    path: str | Path,
    users: int = 500,
    days: int = 120,
    seed: int = 42,
    end: dt.date | None = None,
) -> int:
    """Write the demo events as NDJSON (gzip when `path` ends in .gz); return the line count."""
    path = Path(path)
    lines = 0
    with _open_output(path) as out:
        chunk: list[bytes] = []
        for event in generate_events(users, days, seed, end):
            chunk.append(orjson.dumps(event))
            lines += 1
            if len(chunk) == 10_000:
                out.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")
    return lines
