"""What the Sources page, ``GET /v1/sources/stats`` and ``phone-enrich sources`` show:
every adapter with its configuration, its figures over a period, and the suggested order.

Reads only, except ``apply_suggested`` (through ``vendor_config.set_order``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from phone_core import source_stats, vendor_config
from phone_core.errors import InputError
from phone_core.settings import Settings
from phone_core.vendor_config import VendorView

DEFAULT_DAYS = 30


def period(
    start_date: date | None = None, end_date: date | None = None
) -> tuple[datetime, datetime | None]:
    """[start, end) in naive UTC from inclusive UTC dates; default: the last 30 days."""
    today = datetime.now(UTC).date()
    first = start_date or (today - timedelta(days=DEFAULT_DAYS - 1))
    last = end_date or today
    if first > last:
        raise InputError("start_date is after end_date")
    end = None if last == date.max else datetime.combine(last + timedelta(days=1), time.min)
    return datetime.combine(first, time.min), end


def view_dict(v: VendorView) -> dict[str, Any]:
    """One adapter's configuration (never its key: only whether one is set)."""
    return {
        "source": v.name,
        "label": v.label,
        "shape": v.shape,
        "enabled": v.enabled,
        "usable": v.usable,
        "problem": v.problem,
        "order": v.position,
        "price": {
            "lookup": v.price.lookup_cost,
            "found": v.price.found_cost,
            "failed": v.price.failed_cost,
        },
        "rate_per_sec": v.rate_per_sec,
        "concurrency": v.concurrency,
        "base_url": v.base_url,
        "key_set": v.key_set,
        "from_env": sorted(v.from_env),
        "docs_url": v.docs_url,
    }


def listing(engine: Engine, settings: Settings) -> list[dict[str, Any]]:
    """Every adapter, enabled or not, in waterfall order (the directory first when on)."""
    with engine.connect() as conn:
        views = vendor_config.views(conn, settings)
        waterfall = vendor_config.waterfall_names(conn, settings)
    out = []
    if vendor_config.DIRECTORY in waterfall:
        price = {"lookup": settings.directory_lookup_cost, "found": settings.directory_found_cost}
        out.append(
            {"source": vendor_config.DIRECTORY, "enabled": True, "usable": True, "price": price}
        )
    out.extend(view_dict(v) for v in views)
    for line in out:
        name = line["source"]
        line["waterfall_position"] = waterfall.index(name) + 1 if name in waterfall else None
    return out


def report(
    engine: Engine, settings: Settings, start: datetime, end: datetime | None
) -> dict[str, Any]:
    """Per source over [start, end): figures and configuration; the suggested order; a
    daily series (lookups and phones found per source) for a chart."""
    with engine.connect() as conn:
        views = vendor_config.views(conn, settings)
        names = [vendor_config.DIRECTORY, *(v.name for v in views)]
        measured = source_stats.stats(conn, start, end, names)
        daily = source_stats.daily(conn, start, end)
        first = source_stats.first_call(conn)
    by_view = {v.name: v for v in views}
    lines = []
    for st in measured:
        line = st.as_dict()
        view = by_view.get(st.source)
        if view is not None:
            line.update(
                enabled=view.enabled,
                usable=view.usable,
                price={
                    "lookup": view.price.lookup_cost,
                    "found": view.price.found_cost,
                    "failed": view.price.failed_cost,
                },
            )
        lines.append(line)
    return {
        "start": start.isoformat() + "Z",
        "end": None if end is None else end.isoformat() + "Z",
        "measured_since": None if first is None else first.isoformat() + "Z",
        "sources": lines,
        "suggested_order": suggestion(views, measured),
        "daily": daily,
    }


def suggestion(
    views: list[VendorView], measured: list[source_stats.SourceStats]
) -> list[dict[str, Any]]:
    ranked = source_stats.suggested_order([v.price for v in views if v.usable], measured)
    return [
        {
            "source": s.source,
            "expected_hit_rate": round(s.hit_rate, 4),
            "expected_cost_per_found": round(s.cost_per_found, 4),
            "measured_lookups": s.measured_lookups,
        }
        for s in ranked
    ]


def apply_suggested(engine: Engine, settings: Settings, by: str) -> list[str]:
    """Put the enabled vendors in the suggested order (measured over the last 90 days);
    the order it set. Refused when ``PHONE_WATERFALL`` fixes the order."""
    if "waterfall" in settings.model_fields_set:
        raise InputError("PHONE_WATERFALL sets the order on this install: change it there")
    start, end = period(datetime.now(UTC).date() - timedelta(days=89))
    with engine.begin() as conn:
        views = vendor_config.views(conn, settings)
        measured = source_stats.stats(conn, start, end)
        order = [s["source"] for s in suggestion(views, measured)]
        if order:
            vendor_config.set_order(conn, order, by=by)
    return order
