"""``phone-enrich sources``: the waterfall's sources for headless installs.

- ``list``: every adapter, enabled or not, its place in the waterfall and its prices, one
  JSON line each (never a key: only whether one is set, and which values come from the
  environment);
- ``stats [--start YYYY-MM-DD] [--end YYYY-MM-DD]``: one JSON line per source over the
  period (default the last 30 days), then one line with the suggested order;
- ``apply-suggested``: put the enabled vendors in the suggested order;
- ``order NAME [NAME ...]``: put them in this order.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from phone_core import source_report, vendor_config
from phone_core.cli_common import out, state_db
from phone_core.settings import get_settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def cmd_sources(args: argparse.Namespace) -> int:
    settings = get_settings()
    with state_db(settings) as engine:
        if args.action == "list":
            for line in source_report.listing(engine, settings):
                out(line)
        elif args.action == "stats":
            start, end = source_report.period(args.start, args.end)
            report: dict[str, Any] = source_report.report(engine, settings, start, end)
            for line in report["sources"]:
                out(line)
            out({"suggested_order": report["suggested_order"]})
        elif args.action == "apply-suggested":
            out({"order": source_report.apply_suggested(engine, settings, by="cli")})
        elif args.action == "order":
            with engine.begin() as conn:
                vendor_config.set_order(conn, args.names, by="cli")
            out({"order": args.names})
    return 0


def register(sub: Any) -> None:
    """Add ``sources`` to the CLI's subcommands (``sub``: argparse's subparsers)."""
    s = sub.add_parser("sources", help="the waterfall's sources").add_subparsers(
        dest="action", required=True
    )
    s.add_parser("list", help="every adapter, one JSON line each (never a key)")
    g = s.add_parser("stats", help="per-source figures over a period, then the suggested order")
    g.add_argument("--start", type=_date, default=None, help="first day (UTC), YYYY-MM-DD")
    g.add_argument("--end", type=_date, default=None, help="last day (UTC), inclusive")
    s.add_parser("apply-suggested", help="order the enabled vendors by cost per phone found")
    g = s.add_parser("order", help="set the vendors' order")
    g.add_argument("names", nargs="+")
    for parser in s.choices.values():
        parser.set_defaults(func=cmd_sources)
