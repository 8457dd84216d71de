"""Lantern configuration and wire format: request bodies, defensive response parsing.

No HTTP here (that is ``lantern.py``): these functions turn a record into the JSON body and
a status code + headers + body bytes into either a ``SourceResult`` or a
``phone_core.errors`` exception carrying the ``Detail`` for the record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phone_core.credits import Price
from phone_core.errors import FatalSourceError, RetryableSourceError, SourceError
from phone_core.models import Detail, SourceResult
from phone_core.ranking import Candidate
from phone_core.settings import Settings
from phone_core.sources.base import Lookup
from phone_core.sources.vendor_base import parse_time, phones_result

NAME = "lantern"
PATH = "/v1/enrich/phone"
_PHONE_KEYS = ("phone_number", "phone", "mobile_phone", "number")
_LIST_KEYS = ("phones", "phone_numbers")
_TYPE_KEYS = ("line_type", "type", "phone_type", "phoneType")
_KEPT_RAW = ("credits_consumed", "cached", "request_id")
_MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class LanternConfig:
    """Everything the source needs, from the ``lantern_*`` settings (or a test)."""

    base_url: str
    api_key: str = field(repr=False)  # never in logs or reprs
    price: Price = field(default_factory=lambda: Price(NAME))
    region: str = "US"
    connect_timeout_sec: float = 3.0
    read_timeout_sec: float = 10.0
    concurrency: int = 10
    max_attempts: int = 4
    backoff_base_sec: float = 0.5
    backoff_max_sec: float = 20.0
    breaker_failures: int = 8
    breaker_pause_sec: float = 10.0
    max_body_bytes: int = 65536


def config_from_settings(settings: Settings) -> LanternConfig:
    if not settings.lantern_base_url:
        raise ValueError("lantern_base_url is not set")
    key = settings.lantern_api_key.get_secret_value() if settings.lantern_api_key else ""
    return LanternConfig(
        base_url=settings.lantern_base_url,
        api_key=key,
        price=Price(
            NAME,
            settings.lantern_lookup_cost,
            settings.lantern_found_cost,
            settings.lantern_failed_cost,
        ),
        region=settings.default_region,
        connect_timeout_sec=settings.lantern_connect_timeout_sec,
        read_timeout_sec=settings.lantern_read_timeout_sec,
        concurrency=settings.lantern_concurrency,
        max_attempts=settings.lantern_max_attempts,
        backoff_base_sec=settings.lantern_backoff_base_sec,
        backoff_max_sec=settings.lantern_backoff_max_sec,
        breaker_failures=settings.lantern_breaker_failures,
        breaker_pause_sec=settings.lantern_breaker_pause_sec,
        max_body_bytes=settings.lantern_max_body_bytes,
    )


def request_body(lookup: Lookup) -> dict[str, str]:
    """The JSON body: stable ``record_id`` plus only the fields the record has."""
    p = lookup.person
    fields = {
        "first_name": p.first_name,
        "last_name": p.last_name,
        "company": p.company_name,
        "domain": p.company_url,
        "linkedin_id": p.linkedin,
        "email": p.email,
    }
    body = {"record_id": lookup.record_id}
    body.update({k: v for k, v in fields.items() if v})
    return body


def parse_retry_after(value: object) -> float | None:
    """Seconds from a JSON ``retry_after`` or a ``Retry-After`` header (delta form only)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return min(seconds, _MAX_RETRY_AFTER)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _label(item: Mapping[str, Any]) -> object:
    for key in _TYPE_KEYS:
        if item.get(key):
            return item.get(key)
    return None


def phone_candidates(payload: Mapping[str, Any]) -> list[Candidate]:
    """Every phone-looking value in the vendor's order, with its line type label if any."""
    out: list[Candidate] = []
    scopes: list[Mapping[str, Any]] = [payload]
    for key in ("data", "result", "person"):
        inner = payload.get(key)
        if isinstance(inner, Mapping):
            scopes.append(inner)
    for scope in scopes:
        for key in _PHONE_KEYS[:2]:
            value = scope.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                out.append(Candidate(str(value), scope.get("line_type")))
        for key in _LIST_KEYS:
            items = scope.get(key)
            if not isinstance(items, list):
                continue
            for item in items[:20]:
                if isinstance(item, str | int) and not isinstance(item, bool):
                    out.append(Candidate(str(item)))
                elif isinstance(item, Mapping):
                    for sub in _PHONE_KEYS:
                        value = item.get(sub)
                        if isinstance(value, str | int) and not isinstance(value, bool):
                            out.append(Candidate(str(value), _label(item)))
                            break
    return [c for c in out if str(c.raw).strip()]


def parse_found(payload: Mapping[str, Any], price: Price, region: str) -> SourceResult:
    """A 2xx JSON object -> found (the best valid number by ``phone_core.ranking``), not
    found, or invalid phone. ``verified_at``: the payload's, else the time of the answer."""
    raw = {k: payload[k] for k in _KEPT_RAW if k in payload}
    return phones_result(
        NAME,
        phone_candidates(payload),
        price,
        region,
        verified_at=parse_time(payload.get("verified_at")),
        raw=raw,
    )


def check_status(status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Raise the ``SourceError`` a non-2xx status means; return for 2xx."""
    if 200 <= status < 300:
        return
    if status == 429:
        payload = _json_object(body) or {}
        retry_after = parse_retry_after(payload.get("retry_after"))
        if retry_after is None:
            retry_after = parse_retry_after(headers.get("retry-after"))
        raise RetryableSourceError(
            Detail.UPSTREAM_RATE_LIMITED.value, "HTTP 429", retry_after=retry_after
        )
    if status >= 500:
        raise RetryableSourceError(Detail.UPSTREAM_5XX.value, f"HTTP {status}")
    if status in (401, 403):
        raise FatalSourceError(Detail.UPSTREAM_AUTH.value, f"HTTP {status}")
    if status == 402:
        raise FatalSourceError(Detail.UPSTREAM_CREDITS.value, "HTTP 402")
    if 400 <= status < 500:
        raise SourceError(Detail.UPSTREAM_REJECTED.value, f"HTTP {status}")
    raise SourceError(Detail.UPSTREAM_BAD_RESPONSE.value, f"HTTP {status}")


def parse_response(
    status: int, headers: Mapping[str, str], body: bytes, price: Price, region: str
) -> SourceResult:
    """Status + headers (lower-case keys) + body -> result, or raise a ``SourceError``."""
    check_status(status, headers, body)
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise SourceError(Detail.UPSTREAM_BAD_RESPONSE.value, "not a JSON content type")
    payload = _json_object(body)
    if payload is None:
        raise SourceError(Detail.UPSTREAM_BAD_RESPONSE.value, "body is not a JSON object")
    return parse_found(payload, price, region)
