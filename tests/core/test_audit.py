"""The audit log, issue 13 item 4: a row for every admin and security-relevant action,
driven through the functions the web app, the CLI and the API call; no personal data or
secrets in any row; append-only; CSV export; ``GET /v1/audit`` for admin keys only."""

from __future__ import annotations

import ast
import csv
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phone_core import (
    audit,
    credits,
    directory_upload,
    keys,
    passwords,
    sessions,
    suppression,
    users,
)
from phone_core.api.app import create_app
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime, create_runtime
from phone_core.storage import InMemoryObjectStore
from tests.conftest import make_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple 1"
EMAIL = "alice.private@example.com"
IP = "198.51.100.7"
ROOT = Path(__file__).resolve().parents[2]
_HASHED: list[str] = []  # bcrypt once per session, not per case


def _hashed() -> str:
    if not _HASHED:
        _HASHED.append(passwords.hash_password(PASSWORD))
    return _HASHED[0]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    rt = memory_runtime(make_settings(tmp_path / "audit", waterfall=[], web_auth_max_failures=3))
    hashed = _hashed()
    with rt.db.begin() as conn:
        users.add(conn, "boss", "Boss", role=users.ADMIN_ROLE)
        users.add(conn, "alice", "Alice", EMAIL, password_hash=hashed)
        users.add(conn, "bob", "Bob", "bob@example.com", password_hash=hashed)
    yield rt
    rt.close()


def _key_of(rt: Runtime, user: str) -> str:
    with rt.db.begin() as conn:
        return keys.create(conn, user, "k")[0].key_id


def _fail(call: Callable[[], object]) -> None:
    with pytest.raises(sessions.SignInError):
        call()


def _locked(rt: Runtime) -> None:
    for _ in range(3):
        _fail(lambda: sessions.sign_in(rt.db, rt.settings, "bob", "wrong", IP))
    _fail(lambda: sessions.sign_in(rt.db, rt.settings, "bob", PASSWORD, IP))


def _disabled_sign_in(rt: Runtime) -> None:
    with rt.db.begin() as conn:
        users.disable(conn, "bob", by="boss")
    _fail(lambda: sessions.sign_in(rt.db, rt.settings, "bob", PASSWORD, IP))


def _directory(rt: Runtime) -> None:
    data = b"first_name,last_name,company_url,phone\nAnn,Lee,lee.com,(212) 555-0100\n"
    directory_upload.load_bytes(rt, data, "people.csv", loaded_by="boss")


def _suppress(rt: Runtime) -> None:
    body = io.BytesIO(b"phone,email\n(212) 555-0100,x@y.com\n")
    suppression.load_file(rt.db, rt.settings, body, "dnc.csv", name="Registry", loaded_by="boss")


def _unsuppress(rt: Runtime) -> None:
    _suppress(rt)
    with rt.db.begin() as conn:
        suppression.remove(conn, "Registry")


def _tx(fn: Callable[[Any], object]) -> Callable[[Runtime], object]:
    def run(rt: Runtime) -> object:
        with rt.db.begin() as conn:
            return fn(conn)

    return run


# (action, expected target, expected actor, the action through its real entry point)
CASES: list[tuple[str, str, str, Callable[[Runtime], object]]] = [
    (
        audit.SIGN_IN,
        "",
        "alice",
        lambda rt: sessions.sign_in(rt.db, rt.settings, "alice", PASSWORD, IP),
    ),
    (
        audit.SIGN_IN_FAILED,
        "",
        "alice",
        lambda rt: _fail(lambda: sessions.sign_in(rt.db, rt.settings, "alice", "nope", IP)),
    ),
    (
        audit.SIGN_IN_FAILED,
        "",
        audit.UNKNOWN_USER,  # what was typed (here an email) is never kept
        lambda rt: _fail(lambda: sessions.sign_in(rt.db, rt.settings, EMAIL, PASSWORD, IP)),
    ),
    (audit.SIGN_IN_LOCKED, "", "bob", _locked),
    (audit.SIGN_IN_DISABLED, "", "bob", _disabled_sign_in),
    (audit.SIGN_OUT, "", "alice", lambda rt: sessions.sign_out(rt.db, "alice")),
    (
        audit.PASSWORD_CHANGE,
        "alice",
        "alice",
        lambda rt: sessions.change_password(rt.db, rt.settings, "alice", PASSWORD, PASSWORD + "x"),
    ),
    (
        audit.PASSWORD_RESET,
        "alice",
        "boss",
        lambda rt: users.reset_password(rt.db, "alice", by="boss"),
    ),
    (audit.USER_ADD, "carol", "boss", _tx(lambda c: users.add(c, "carol", "C", "c@x.com"))),
    (audit.USER_DISABLE, "alice", "boss", _tx(lambda c: users.disable(c, "alice", by="boss"))),
    (audit.USER_ENABLE, "alice", "boss", _tx(lambda c: users.enable(c, "alice"))),
    (
        audit.USER_ROLE,
        "alice",
        "boss",
        _tx(lambda c: users.set_role(c, "alice", users.ADMIN_ROLE, by="boss")),
    ),
    (audit.USER_REMOVE, "alice", "boss", _tx(lambda c: users.remove(c, "alice", by="boss"))),
    (audit.KEY_CREATE, "*", "boss", _tx(lambda c: keys.create(c, "alice", "mine"))),
    (
        audit.KEY_REVOKE,
        "*",
        "boss",
        lambda rt: _tx(lambda c: keys.revoke(c, "alice", _key_of(rt, "alice")))(rt),
    ),
    (
        audit.KEY_REVOKE,
        "*",
        "boss",
        lambda rt: _tx(lambda c: keys.revoke_any(c, _key_of(rt, "bob")))(rt),
    ),
    (audit.CREDIT_GRANT, "alice", "boss", _tx(lambda c: credits.grant(c, "alice", 50))),
    (
        audit.CREDIT_LIMIT,
        "alice",
        "boss",
        _tx(lambda c: credits.set_monthly_limit(c, "alice", 10)),
    ),
    (audit.DIRECTORY_LOAD, "load 1", "boss", _directory),
    (audit.SUPPRESSION_LOAD, "Registry", "boss", _suppress),
    (audit.SUPPRESSION_REMOVE, "Registry", "boss", _unsuppress),
]


@pytest.mark.parametrize(
    ("action", "target", "actor", "act"), CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)]
)
def test_every_action_leaves_a_row(
    rt: Runtime, action: str, target: str, actor: str, act: Callable[[Runtime], object]
) -> None:
    with audit.acting("boss", ip=IP, via="web"):  # what the web app sets for its admin
        act(rt)
    with rt.db.connect() as conn:
        rows = audit.query(conn, action=action)
    assert rows, f"no {action} row"
    row = rows[0]
    assert row.actor == actor
    assert row.ip == IP and row.via == "web"
    assert row.target == target or (target == "*" and row.target)
    assert row.at is not None
    _no_personal_data(rt)


def _no_personal_data(rt: Runtime) -> None:
    with rt.db.connect() as conn:
        text = audit.to_csv(audit.query(conn, limit=10_000)).decode()
    for secret in (EMAIL, "bob@example.com", "c@x.com", "x@y.com", PASSWORD, "+12125550100"):
        assert secret not in text
    assert "@" not in text and "5550100" not in text


def test_the_cli_records_its_os_user(rt: Runtime) -> None:
    with audit.acting(audit.cli_actor(), via="cli"), rt.db.begin() as conn:
        credits.grant(conn, "alice", 5, note="cli")
    with rt.db.connect() as conn:
        (row,) = audit.query(conn, action=audit.CREDIT_GRANT)
    assert row.actor.startswith("cli") and row.via == "cli"
    assert row.detail == {"amount": 5}


def test_personal_data_is_redacted_and_the_action_still_recorded(rt: Runtime) -> None:
    """The guard never makes the audited action fail (a list named "0123456789", an API
    key id that happens to be all digits): the value is left out, the action recorded."""
    for bad in ({"who": EMAIL}, {"phone": "+1 212 555 0100"}):
        audit.record(rt.db, action="x", detail=bad)
    audit.record(rt.db, action="x", target="+12125550100")
    with rt.db.begin() as conn:
        keys.create(conn, "alice", "k")  # whatever its id, the key is made and recorded
    with rt.db.connect() as conn:
        rows = audit.query(conn, action="x")
    assert len(rows) == 3
    text = repr(rows)
    assert EMAIL not in text and "555" not in text
    assert all("redacted" in repr(r.detail) + r.target for r in rows)


def test_only_audit_writes_the_table_and_only_inserts() -> None:
    tree = ast.parse((ROOT / "phone_core" / "audit.py").read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert "insert" in calls and not {"update", "delete"} & calls


def test_csv_export_filters_and_defuses_formulas(rt: Runtime) -> None:
    with audit.acting("boss", ip=IP, via="web"):
        with rt.db.begin() as conn:
            credits.grant(conn, "alice", 7)
            credits.set_monthly_limit(conn, "bob", 9)
        body = io.BytesIO(b"phone\n(212) 555-0100\n")
        suppression.load_file(  # a list name a spreadsheet would run
            rt.db, rt.settings, body, "f.csv", name="=cmd()", loaded_by="boss"
        )
    with rt.db.connect() as conn:
        grants = audit.query(conn, action=audit.CREDIT_GRANT, actor="boss")
        every = audit.query(conn, actor="boss")
    rows = list(csv.reader(io.StringIO(audit.to_csv(every).decode("utf-8-sig"))))
    assert rows[0] == list(audit.COLUMNS)
    assert len(grants) == 1 and len(rows) == 1 + len(every) >= 3
    assert any(r[3] == audit.SUPPRESSION_LOAD and r[4] == "'=cmd()" for r in rows[1:])
    assert any(r[3] == audit.CREDIT_GRANT and r[5] == "amount=7" and r[6] == IP for r in rows)


def test_spending_settings_are_recorded_when_they_change(tmp_path: Path) -> None:
    def start(**over: Any) -> Runtime:
        settings = make_settings(tmp_path / "s", waterfall=["directory"], **over)
        return create_runtime(settings, store=InMemoryObjectStore())

    for over in ({}, {}, {"directory_found_cost": 2}, {"directory_found_cost": 2}):
        start(**over).close()
    rt = start(dnc_mode="withhold", directory_found_cost=2)
    try:
        with rt.db.connect() as conn:
            rows = audit.query(conn, action=audit.SETTINGS_CHANGE)
        assert len(rows) == 3  # first start, the price, the mode (no repeat for no change)
        assert rows[0].detail["dnc_mode"] == "withhold"
        assert rows[1].detail["directory_found_cost"] == 2
    finally:
        rt.close()


def test_the_api_serves_the_log_to_admin_keys_only(rt: Runtime) -> None:
    with rt.db.begin() as conn:
        admin_key = keys.create(conn, "boss", "siem")[1]
        user_key = keys.create(conn, "alice", "mine")[1]
        credits.grant(conn, "alice", 3, by="boss")
    client = TestClient(create_app(rt))
    denied = client.get("/v1/audit", headers={"Authorization": f"Bearer {user_key}"})
    assert denied.status_code == 403 and "admin" in denied.json()["details"]
    assert client.get("/v1/audit").status_code == 401
    got = client.get(
        "/v1/audit",
        params={"action": audit.CREDIT_GRANT},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert got.status_code == 200, got.text
    (entry,) = got.json()["entries"]
    assert (entry["actor"], entry["target"], entry["detail"]) == ("boss", "alice", {"amount": 3})
    page = client.get(
        "/v1/audit", params={"limit": 1}, headers={"Authorization": f"Bearer {admin_key}"}
    ).json()
    assert len(page["entries"]) == 1 and page["next_before_id"] == page["entries"][0]["id"]
    older = client.get(
        "/v1/audit",
        params={"limit": 1, "before_id": page["next_before_id"]},
        headers={"Authorization": f"Bearer {admin_key}"},
    ).json()
    assert older["entries"][0]["id"] < page["entries"][0]["id"]
