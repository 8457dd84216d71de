"""The account commands: ``credits`` (grant, monthly limit, show), ``users`` (the web
app's registry: add, disable, enable, remove, reset-password, set-role, list) and
``keys`` (API keys: create, list, revoke). Each opens the state DB alone (no S3 server,
no DBOS), so it answers in well under a second; a new password or key is printed once,
to stdout.
"""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy.engine import Engine

from phone_core import credits, keys, passwords, users
from phone_core.cli_common import out, state_db
from phone_core.keys import ApiKey
from phone_core.users import UserInfo


def cmd_credits(args: argparse.Namespace) -> int:
    with state_db() as engine, engine.begin() as conn:
        if args.action == "grant":
            credits.grant(conn, args.user, args.amount, note="cli")
        elif args.action == "limit":
            credits.set_monthly_limit(conn, args.user, None if args.amount < 0 else args.amount)
        summary = credits.summarize(conn, args.user)
    out(summary.model_dump())
    return 0


def _user_out(user: UserInfo, **extra: object) -> None:
    out(
        {
            "username": user.username,
            "name": user.name,
            "email": user.email,
            "role": user.role,
            "status": user.status,
            "created_at": user.created_at,
            **extra,
        }
    )


def cmd_users(args: argparse.Namespace) -> int:
    """Administer web-app users headless. A new password is printed once, to stdout."""
    with state_db() as engine:
        return _users(args, engine)


def _users(args: argparse.Namespace, engine: Engine) -> int:
    if args.action == "list":
        with engine.connect() as conn:
            for user in users.list_users(conn, include_removed=args.all):
                _user_out(user)
        return 0
    if args.action == "add":
        password = passwords.generate_password()
        hashed = passwords.hash_password(password)
        role = users.ADMIN_ROLE if args.admin else "user"
        with engine.begin() as conn:
            user = users.add(
                conn, args.username, args.name or args.username, args.email, role,
                password_hash=hashed,
            )  # fmt: skip
        _user_out(user, password=password)
        return 0
    if args.action == "reset-password":
        password = users.reset_password(engine, args.username)
        with engine.connect() as conn:
            _user_out(users.require(conn, args.username), password=password)
        return 0
    with engine.begin() as conn:
        if args.action == "disable":
            user = users.disable(conn, args.username)
        elif args.action == "enable":
            user = users.enable(conn, args.username)
        elif args.action == "set-role":
            user = users.set_role(conn, args.username, args.role)
        else:  # remove
            user = users.remove(conn, args.username)
    _user_out(user)
    return 0


def _key_out(record: ApiKey, **extra: object) -> None:
    out({**record.model_dump(), "active": record.active, **extra})


def cmd_keys(args: argparse.Namespace) -> int:
    """API keys of any user. A new key is printed once, to stdout."""
    with state_db() as engine:
        return _keys(args, engine)


def _keys(args: argparse.Namespace, engine: Engine) -> int:
    if args.action == "create":
        with engine.begin() as conn:
            record, secret = keys.create(conn, users.normalize(args.username), args.label)
        _key_out(record, key=secret)
    elif args.action == "list":
        with engine.connect() as conn:
            user = users.normalize(args.username) if args.username else None
            for record in keys.list_keys(conn, user):
                _key_out(record)
    else:  # revoke
        with engine.begin() as conn:
            _key_out(keys.revoke_any(conn, args.key_id))
    return 0


def register(sub: Any) -> None:
    """``credits``, ``users`` and ``keys`` under ``phone-enrich``."""
    c = sub.add_parser("credits", help="credit accounts").add_subparsers(
        dest="action", required=True
    )
    g = c.add_parser("grant")
    g.add_argument("user")
    g.add_argument("amount", type=int)
    g = c.add_parser("limit", help="monthly limit (negative: none)")
    g.add_argument("user")
    g.add_argument("amount", type=int)
    g = c.add_parser("show")
    g.add_argument("user")
    for parser in c.choices.values():
        parser.set_defaults(func=cmd_credits)

    u = sub.add_parser("users", help="web-app users").add_subparsers(dest="action", required=True)
    g = u.add_parser("add", help="add a user; prints the generated password once")
    g.add_argument("username")
    g.add_argument("--admin", action="store_true", help="an administrator (default: a user)")
    g.add_argument("--name", default="", help="full name (default: the username)")
    g.add_argument("--email", default="")
    for action, text in (
        ("disable", "stop a user signing in and using API keys (sessions end now)"),
        ("enable", "let a disabled user in again"),
        ("remove", "remove for good: keys revoked, runs and ledger kept, name not reused"),
        ("reset-password", "a new random password, printed once (sessions end now)"),
    ):
        u.add_parser(action, help=text).add_argument("username")
    g = u.add_parser("set-role", help="admin or user (sessions end now)")
    g.add_argument("username")
    g.add_argument("role", choices=users.ROLES)
    g = u.add_parser("list", help="one JSON line per user")
    g.add_argument("--all", action="store_true", help="removed users too")
    for parser in u.choices.values():
        parser.set_defaults(func=cmd_users)

    k = sub.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    g = k.add_parser("create", help="a new key for a user; printed once")
    g.add_argument("username")
    g.add_argument("--label", default="")
    g = k.add_parser("list", help="one JSON line per key (never the secret)")
    g.add_argument("username", nargs="?")
    k.add_parser("revoke", help="revoke any key by its id").add_argument("key_id")
    for parser in k.choices.values():
        parser.set_defaults(func=cmd_keys)
