"""Small builders of Segment-spec events for tests: explicit, readable scenarios."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def _base(kind: str, at: str, message_id: str | None, **fields: Any) -> dict[str, Any]:
    event = {"type": kind, "messageId": message_id or f"msg-{next(_ids)}", "timestamp": at}
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


def page(
    at: str,
    url: str,
    *,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    referrer: str | None = None,
    user_agent: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"page": {"url": url, "referrer": referrer}}
    if user_agent:
        context["userAgent"] = user_agent
    return _base("page", at, message_id, anonymousId=anonymous_id, userId=user_id, context=context)


def track(
    at: str,
    event: str,
    *,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    message_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    return _base(
        "track",
        at,
        message_id,
        anonymousId=anonymous_id,
        userId=user_id,
        event=event,
        properties=properties,
    )


def identify(
    at: str,
    user_id: str,
    *,
    anonymous_id: str | None = None,
    message_id: str | None = None,
    **traits: Any,
) -> dict[str, Any]:
    return _base(
        "identify", at, message_id, anonymousId=anonymous_id, userId=user_id, traits=traits or None
    )


def alias(at: str, previous_id: str, user_id: str, message_id: str | None = None) -> dict[str, Any]:
    return _base("alias", at, message_id, previousId=previous_id, userId=user_id)


def group(
    at: str, user_id: str, group_id: str, *, message_id: str | None = None, **traits: Any
) -> dict[str, Any]:
    return _base("group", at, message_id, userId=user_id, groupId=group_id, traits=traits or None)


def statistic(
    at: str,
    metric: str,
    value: Any,
    period: str,
    date: str,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    message_id: str | None = None,
) -> dict[str, Any]:
    props = {
        "metric": metric,
        "value": value,
        "period": period,
        "date": date,
        "object_type": object_type,
        "object_id": object_id,
    }
    return _base(
        "statistic", at, message_id, properties={k: v for k, v in props.items() if v is not None}
    )
