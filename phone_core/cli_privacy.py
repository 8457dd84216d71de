"""The privacy and webhook commands (issue 13): ``erase`` (right to be forgotten),
``retention`` and ``webhook-secret``.

``phone-enrich erase --email E | --linkedin L | --phone P`` starts a durable erasure (this
process becomes the worker when none is running, like ``submit --wait``), waits for it and
prints its receipt: counts, run ids and object keys, never the identifier.
``phone-enrich retention show`` prints the policy and the last purges; ``retention purge``
applies the policy now (the worker also does it daily).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

from phone_core.cli_common import get_runtime, out
from phone_core.errors import PhoneError
from phone_core.settings import get_settings

if TYPE_CHECKING:
    pass

CLI_ACTOR = "cli"
KINDS = ("email", "linkedin", "phone")  # erasure.KINDS (imported late: short commands)


def erasures_running(conn: Connection) -> bool:
    """Whether an erasure is not done yet (``worker --exit-when-idle`` waits for it)."""
    from phone_core import erasure

    return erasure.unfinished(conn) > 0


def cmd_erase(args: argparse.Namespace) -> int:
    from phone_core import erasure

    kind, value = next((k, getattr(args, k)) for k in KINDS if getattr(args, k))
    rt = get_runtime(None, worker=not args.no_wait)
    erasure_id = erasure.start(rt, kind, value, args.by or CLI_ACTOR)
    if args.no_wait:
        out({"erasure_id": erasure_id, "state": "queued"}, sort_keys=True)
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        with rt.db.connect() as conn:
            state, receipt = erasure.status(conn, erasure_id)
        if state == erasure.DONE:
            out(receipt, sort_keys=True)
            return 0
        if time.monotonic() > deadline:
            print(
                f"erasure {erasure_id} is still running; it completes on the worker "
                "(its receipt: phone-enrich erase-receipt ID)",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.2)


def cmd_erase_receipt(args: argparse.Namespace) -> int:
    from phone_core import erasure

    rt = get_runtime(None, worker=False)
    with rt.db.connect() as conn:
        state, receipt = erasure.status(conn, args.erasure_id)
    out({"state": state, **receipt} if state != erasure.DONE else receipt, sort_keys=True)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from phone_core import retention

    settings = get_settings()
    if args.action == "purge":
        rt = get_runtime(None, worker=False)
        out(retention.purge(rt, trigger="cli", actor=args.by or CLI_ACTOR), sort_keys=True)
        return 0
    rt = get_runtime(None, worker=False)
    with rt.db.connect() as conn:
        last = retention.last_purges(conn, 1)
    out(
        {
            "policy": retention.Policy.of(settings).as_dict(),
            "schedule": settings.retention_cron,
            "last_purge": None
            if not last
            else {
                "as_of": last[0].as_of,
                "trigger": last[0].trigger,
                "finished_at": last[0].finished_at,
                "counts": last[0].counts,
            },
        },
        sort_keys=True,
    )
    return 0


def cmd_webhook_secret(args: argparse.Namespace) -> int:
    """A new signing secret for the user's webhooks, printed once (the old one stops)."""
    from phone_core import preferences, users

    rt = get_runtime(None, worker=False)
    with rt.db.begin() as conn:
        secret = preferences.new_notify_secret(conn, users.normalize(args.username))
    out({"user": args.username, "signing_secret": secret}, sort_keys=True)
    return 0


def _one_identifier(args: argparse.Namespace) -> None:
    given = [k for k in KINDS if getattr(args, k)]
    if len(given) != 1:
        raise PhoneError("give exactly one of --email, --linkedin or --phone")


def _erase(args: argparse.Namespace) -> int:
    _one_identifier(args)
    return cmd_erase(args)


def register(sub: Any) -> None:
    """Add ``erase``, ``erase-receipt`` and ``retention`` to the CLI's subcommands."""
    s = sub.add_parser("erase", help="erase a person everywhere (right to be forgotten)")
    s.add_argument("--email")
    s.add_argument("--linkedin")
    s.add_argument("--phone")
    s.add_argument("--by", help="who asked (kept in the receipt and the audit log)")
    s.add_argument("--no-wait", action="store_true", help="print the erasure id and return")
    s.add_argument("--timeout", type=float, default=600.0)
    s.set_defaults(func=_erase)
    s = sub.add_parser("erase-receipt", help="the receipt of an erasure")
    s.add_argument("erasure_id")
    s.set_defaults(func=cmd_erase_receipt)
    s = sub.add_parser(
        "webhook-secret", help="a new signing secret for a user's webhooks (printed once)"
    )
    s.add_argument("username")
    s.set_defaults(func=cmd_webhook_secret)
    r = sub.add_parser("retention", help="the data retention policy").add_subparsers(
        dest="action", required=True
    )
    r.add_parser("show", help="the policy and the last purge")
    g = r.add_parser("purge", help="apply the policy now")
    g.add_argument("--by")
    for parser in r.choices.values():
        parser.set_defaults(func=cmd_retention)
