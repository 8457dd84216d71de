"""`phone-enrich suppress ...` and `phone-enrich audit`: the compliance commands.

``suppress load FILE [--name NAME]`` loads (or replaces) a do-not-call list, streamed;
``suppress list`` prints one JSON line per list; ``suppress remove NAME`` removes one;
``suppress recheck [--report FILE]`` marks past runs' files by the lists as they are now
(``phone_core.dnc``; it needs the object store, so it starts the runtime, not a worker).
``audit`` prints the audit log as CSV (filters: ``--actor``, ``--action``, ``--since``,
``--until``, dates in UTC). Every command here reads or writes the state DB only.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phone_core import audit
from phone_core.cli_common import get_runtime, out, state_db
from phone_core.errors import InputError
from phone_core.settings import get_settings

if TYPE_CHECKING:
    from phone_core.suppression import ListInfo


def _list_out(info: ListInfo) -> None:
    row = {
        "name": info.name,
        "phones": info.phones,
        "people": info.people,
        "rows_read": info.rows_read,
        "rows_refused": info.rows_refused,
        "loaded_by": info.loaded_by,
        "loaded_at": info.loaded_at.isoformat(timespec="seconds"),
    }
    out(row)


def cmd_recheck(args: argparse.Namespace) -> int:
    from phone_core import dnc  # only for this command

    rt = get_runtime(get_settings(), worker=False)
    report = dnc.recheck_past_runs(rt)
    if args.report:
        Path(args.report).write_bytes(report.to_csv())
    summary = {
        "lists": report.lists,
        "runs_checked": report.runs_checked,
        "runs_affected": len(report.runs),
        "rows_on_lists": report.rows_on_lists,
        "newly_marked": report.newly_marked,
        "files_rewritten": report.files_rewritten,
        "files_failed": report.files_failed,
    }
    out(summary)
    return 0 if report.files_failed == 0 else 1


def cmd_suppress(args: argparse.Namespace) -> int:
    from phone_core import suppression  # the file readers: only for this command

    with state_db() as engine:
        if args.action == "load":
            info = suppression.load_path(
                engine,
                get_settings(),
                Path(args.file),
                name=args.name,
                loaded_by=audit.current().actor,
            )
            _list_out(info)
        elif args.action == "list":
            with engine.connect() as conn:
                for info in suppression.lists(conn):
                    _list_out(info)
        else:  # remove
            with engine.begin() as conn:
                _list_out(suppression.remove(conn, args.name))
    return 0


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise InputError(f"expected a date as YYYY-MM-DD, not {text!r}") from None


def cmd_audit(args: argparse.Namespace) -> int:
    since = _day(args.since) if args.since else None
    until = _day(args.until) + timedelta(days=1) if args.until else None
    with state_db() as engine:
        with engine.connect() as conn:
            entries = audit.query(
                conn,
                actor=args.actor,
                action=args.action,
                since=since,
                until=until,
                limit=args.limit,
            )
        audit.record(engine, action=audit.AUDIT_EXPORT, detail={"rows": len(entries)})
    sys.stdout.buffer.write(audit.to_csv(entries))
    sys.stdout.flush()
    return 0


def register(sub: Any) -> None:
    """Add the commands to ``phone-enrich``'s subparsers."""
    s = sub.add_parser("suppress", help="do-not-call (suppression) lists").add_subparsers(
        dest="action", required=True
    )
    g = s.add_parser("load", help="load a list of phones and/or emails / LinkedIn profiles")
    g.add_argument("file")
    g.add_argument("--name", help="the list's name (default: the file's); replaces a list")
    s.add_parser("list", help="one JSON line per list")
    s.add_parser("remove", help="remove a list by name").add_argument("name")
    for parser in s.choices.values():
        parser.set_defaults(func=cmd_suppress)
    g = s.add_parser("recheck", help="mark past runs' enriched files by the lists as they are now")
    g.add_argument("--report", help="also write the per-run report (CSV, counts only) here")
    g.set_defaults(func=cmd_recheck)
    a = sub.add_parser("audit", help="the audit log as CSV, newest first")
    a.add_argument("--actor")
    a.add_argument("--action", choices=audit.ACTIONS)
    a.add_argument("--since", help="first day, YYYY-MM-DD (UTC)")
    a.add_argument("--until", help="last day, YYYY-MM-DD (UTC), inclusive")
    a.add_argument("--limit", type=int, default=audit.MAX_ROWS)
    a.set_defaults(func=cmd_audit)
