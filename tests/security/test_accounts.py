"""Issue 9, items 1 and 3: one user registry in the state DB; disable and remove.

- the registry is a migration (0002) that matches ``phone_core.db``; a version-1
  ``auth.yaml`` is imported once, then renamed so it is never read again;
- two runtimes on one PostgreSQL (two web-app processes) see the same users at once;
- a disabled, removed or unknown user's API key is refused at once (401, not counted as a
  guess); a removed user's runs and ledger stay, and the username is not given out again;
- the last active admin cannot be disabled, removed or demoted, nor an admin themself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import sqlalchemy as sa
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from phone_core import credits, db, keys, service, sessions, users
from phone_core.api.app import create_app
from phone_core.errors import InputError, NotFound
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime
from tests.api.backends import NO_PG, PG_URL, _pg_database
from tests.api.conftest import TestClient, auth
from tests.conftest import drain, make_settings

pytestmark = pytest.mark.slow  # bcrypt per user and sign-in: not in make test-fast

PATH = "/v1/credits/remaining"


def add(rt: Runtime, username: str, role: str = "user", password: str = "") -> None:
    hashed = users.hash_password(password) if password else ""
    with rt.db.begin() as conn:
        users.add(conn, username, username.title(), "", role, password_hash=hashed)


def new_key(rt: Runtime, username: str) -> str:
    with rt.db.begin() as conn:
        return keys.create(conn, username)[1]


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Runtime]:
    rt = memory_runtime(make_settings(tmp_path / "data", waterfall=[]))
    yield rt
    rt.close()


# --- the schema -------------------------------------------------------------------------


def test_the_migrations_build_exactly_the_tables_of_phone_core_db(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    db.migrate(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert {"users", "install_secrets"} <= set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert diffs == []


def test_a_version_1_database_is_upgraded(tmp_path: Path) -> None:
    """A state DB made by version 1 (revision 0001 only) gains the registry in place."""
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.insert(db.accounts).values(user="ann", created_at=db.utcnow()))
    with engine.connect() as conn:
        assert "users" not in sa.inspect(conn).get_table_names()
    db.migrate(engine)
    with engine.begin() as conn:
        users.add(conn, "ann", "Ann")
        assert [u.username for u in users.list_users(conn)] == ["ann"]
        assert conn.execute(sa.select(db.accounts.c.user)).scalars().all() == ["ann"]
    engine.dispose()


# --- the version-1 credentials file -----------------------------------------------------


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def write_v1_auth_yaml(data_dir: Path) -> None:
    """What version 1 (streamlit-authenticator) wrote."""
    config = {
        "cookie": {"name": "phone_enrich_auth", "key": "a" * 64, "expiry_days": 7.0},
        "credentials": {
            "usernames": {
                "admin": {
                    "name": "Administrator",
                    "email": "admin@localhost",
                    "password": _hash("admin-password-1"),
                    "roles": ["admin"],
                    "failed_login_attempts": 0,
                    "logged_in": False,
                },
                "Bob": {
                    "name": "Bob Ray",
                    "email": "bob@example.com",
                    "password": _hash("bob-password-1"),
                    "roles": ["user"],
                },
            }
        },
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "auth.yaml").write_text(yaml.safe_dump(config))


def test_an_existing_auth_yaml_is_imported_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    write_v1_auth_yaml(data_dir)
    settings = make_settings(data_dir, waterfall=[])
    rt = memory_runtime(settings)
    try:
        assert not (data_dir / "auth.yaml").exists()
        assert (data_dir / "auth.yaml.imported").is_file()
        with rt.db.connect() as conn:
            found = {u.username: u for u in users.list_users(conn)}
        assert {n: (u.role, u.email, u.name) for n, u in found.items()} == {
            "admin": ("admin", "admin@localhost", "Administrator"),
            "bob": ("user", "bob@example.com", "Bob Ray"),
        }
        assert users.verify(rt.db, "bob", "bob-password-1")  # the same passwords work
        assert users.verify(rt.db, "admin", "admin-password-1")
        assert users.ensure_admin(rt.db) is None  # the imported admin is the admin
        with rt.db.begin() as conn:
            users.disable(conn, "bob")
    finally:
        rt.close()
    write_v1_auth_yaml(data_dir)  # e.g. restored from an old backup: imported again,
    rt = memory_runtime(settings)  # but what the registry has is never overwritten
    try:
        with rt.db.connect() as conn:
            bob = users.get(conn, "bob")
        assert bob is not None and bob.disabled
    finally:
        rt.close()


def test_a_key_of_a_user_missing_from_the_imported_file_is_refused(tmp_path: Path) -> None:
    """Version 1: a key of a user deleted from auth.yaml still worked (202)."""
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir, waterfall=[])
    engine = db.make_engine(settings.state_db_url)  # makes the data dir
    # A version-1 install: the key table knows "carol", the credentials file does not.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            sa.insert(db.api_keys).values(
                key_id="0123456789ab",
                user="carol",
                label="",
                secret_hash=keys._hash("s3cret"),
                created_at=db.utcnow(),
            )
        )
        # version 1's grant: a ledger row (today's credits.grant also writes the audit log,
        # a table version 1 does not have)
        conn.execute(
            sa.insert(db.ledger).values(
                user="carol", kind="grant", amount=10, source="", note="", created_at=db.utcnow()
            )
        )
    engine.dispose()
    write_v1_auth_yaml(data_dir)
    rt = memory_runtime(settings)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            r = client.get(PATH, headers=auth("pe_0123456789ab_s3cret"))
        assert r.status_code == 401, r.text
        assert "disabled or removed" in r.json()["details"]
    finally:
        rt.close()


# --- two web-app processes on one PostgreSQL --------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(NO_PG)
    databases = _pg_database()
    yield next(databases)
    next(databases, None)


@pytest.mark.postgres
def test_two_runtimes_on_one_postgresql_see_the_same_users(tmp_path: Path, pg_url: str) -> None:
    one = memory_runtime(make_settings(tmp_path / "one", waterfall=[], database_url=pg_url))
    two = memory_runtime(make_settings(tmp_path / "two", waterfall=[], database_url=pg_url))
    try:
        assert users.ensure_admin(one.db) is not None
        assert users.ensure_admin(two.db) is None  # one admin for the install
        add(one, "dana", password="dana-password-1")
        key = new_key(one, "dana")
        # The other process signs dana in, with the same cookie key.
        session = sessions.sign_in(two.db, two.settings, "dana", "dana-password-1")
        token, _ = sessions.issue_token(two.db, two.settings, "dana", session.signed_in_at)
        claims = sessions.read_token(one.db, token)
        assert claims is not None and claims.username == "dana"
        assert sessions.check(one.db, one.settings, "dana", claims.issued_at) is not None
        with two.db.connect() as conn:
            assert keys.verify(conn, key) == "dana"
        # Disabled in the first process: ended in the second at once, key refused there.
        with one.db.begin() as conn:
            users.disable(conn, "dana")
        assert sessions.check(two.db, two.settings, "dana", session.signed_in_at) is None
        with two.db.begin() as conn, pytest.raises(keys.UserNotActive):
            keys.verify(conn, key)
        with pytest.raises(sessions.SignInError, match="disabled"):
            sessions.sign_in(two.db, two.settings, "dana", "dana-password-1")
    finally:
        one.close()
        two.close()


# --- disable, remove, and their API keys ------------------------------------------------


def test_a_disabled_users_key_is_refused_at_once_and_not_counted(mem: Runtime) -> None:
    settings = mem.settings.model_copy(update={"api_auth_max_failures": 2})
    add(mem, "erin")
    key = new_key(mem, "erin")
    with TestClient(create_app(mem, settings=settings), raise_server_exceptions=False) as c:
        assert c.get(PATH, headers=auth(key)).status_code == 200
        with mem.db.begin() as conn:
            users.disable(conn, "erin")
        for _ in range(5):  # more than the lockout allows: never a 429
            r = c.get(PATH, headers=auth(key))
            assert r.status_code == 401, r.text
        assert r.json()["details"] == "the user of this API key is disabled or removed"
        with mem.db.begin() as conn:
            users.enable(conn, "erin")
        assert c.get(PATH, headers=auth(key)).status_code == 200


def test_a_removed_users_key_is_revoked_and_their_runs_and_ledger_stay(mem: Runtime) -> None:
    add(mem, "finn", password="finn-password-1")
    key = new_key(mem, "finn")
    with mem.db.begin() as conn:
        credits.grant(conn, "finn", 10)
    row = {"first_name": "Ann", "last_name": "Lee", "company_url": "acme.com"}
    (accepted,) = service.submit_upload(mem, "finn", [row], 5, label="October")
    drain(mem)
    with mem.db.begin() as conn:
        removed = users.remove(conn, "finn")
    assert removed.removed and removed.email == "" and removed.name == "Finn"
    with TestClient(create_app(mem), raise_server_exceptions=False) as client:
        assert client.get(PATH, headers=auth(key)).status_code == 401
    with mem.db.connect() as conn:
        (record,) = keys.list_keys(conn, "finn")
        assert record.revoked_at is not None  # shown as revoked to admins
        assert users.get(conn, "finn") is None  # gone from the lists ...
        assert [u.username for u in users.list_users(conn, include_removed=True)] == ["finn"]
        grants = conn.execute(sa.select(db.ledger.c.user).where(db.ledger.c.kind == "grant"))
        assert grants.scalars().all() == ["finn"]  # ... the ledger stays
    run = service.get_run(mem, "", accepted.run_id, admin=True)
    assert run.owner == "finn" and run.state.finished  # and so do the runs
    assert not users.verify(mem.db, "finn", "finn-password-1")
    with pytest.raises(sessions.SignInError, match="Wrong username or password"):
        sessions.sign_in(mem.db, mem.settings, "finn", "finn-password-1")
    with mem.db.begin() as conn, pytest.raises(InputError, match="not given out again"):
        users.add(conn, "finn", "Another Finn")
    with mem.db.begin() as conn, pytest.raises(NotFound):
        users.enable(conn, "finn")
    with mem.db.begin() as conn, pytest.raises(InputError, match="no active user"):
        keys.create(conn, "finn")


def test_keys_only_for_active_users_of_the_registry(mem: Runtime) -> None:
    with mem.db.begin() as conn, pytest.raises(InputError, match="no active user"):
        keys.create(conn, "ghost")
    add(mem, "gus")
    with mem.db.begin() as conn:
        users.disable(conn, "gus")
    with mem.db.begin() as conn, pytest.raises(InputError, match="no active user"):
        keys.create(conn, "gus")


def test_an_admin_revokes_anyones_key(mem: Runtime) -> None:
    add(mem, "hana")
    key = new_key(mem, "hana")
    key_id = key.split("_")[1]
    with mem.db.begin() as conn:
        revoked = keys.revoke_any(conn, key_id)
    assert revoked.user == "hana" and not revoked.active
    with mem.db.begin() as conn, pytest.raises(keys.RevokedKey):
        keys.verify(conn, key)
    with mem.db.begin() as conn, pytest.raises(NotFound):
        keys.revoke_any(conn, "ffffffffffff")


Change = Callable[[Any, str], Any]


@pytest.mark.parametrize(
    "change",
    [
        lambda conn, name: users.disable(conn, name),
        lambda conn, name: users.remove(conn, name),
        lambda conn, name: users.set_role(conn, name, "user"),
    ],
    ids=["disable", "remove", "demote"],
)
def test_the_last_active_admin_stays(mem: Runtime, change: Change) -> None:
    users.ensure_admin(mem.db)
    with mem.db.begin() as conn, pytest.raises(InputError, match="last active admin"):
        change(conn, "admin")
    add(mem, "ivy", role="admin")
    with mem.db.begin() as conn:  # with a second admin, the first may go
        change(conn, "admin")
    with mem.db.begin() as conn, pytest.raises(InputError, match="last active admin"):
        change(conn, "ivy")


@pytest.mark.parametrize("action", ["disable", "remove", "set_role"])
def test_an_admin_cannot_lock_themself_out(mem: Runtime, action: str) -> None:
    add(mem, "jo", role="admin")
    add(mem, "kim", role="admin")
    fn = getattr(users, action)
    args = ("jo", "user") if action == "set_role" else ("jo",)
    with mem.db.begin() as conn, pytest.raises(InputError, match="your own account"):
        fn(conn, *args, by="jo")
    with pytest.raises(InputError, match="your own account"):
        users.reset_password(mem.db, "jo", by="jo")


def test_user_fields_are_bounded(mem: Runtime) -> None:
    for username, name, email in [
        ("x" * 51, "X", ""),
        ("ok-name", "N" * 201, ""),
        ("ok-name", "N", "a@" + "b" * 200),
        ("ok\x00", "N", ""),
    ]:
        with mem.db.begin() as conn, pytest.raises(InputError):
            users.add(conn, username, name, email)
    with pytest.raises(InputError, match="at most 72 bytes"):
        users.hash_password("é" * 40)


def test_usernames_are_case_insensitive_and_unique(mem: Runtime) -> None:
    add(mem, "lee")
    with mem.db.begin() as conn, pytest.raises(InputError, match="already exists"):
        users.add(conn, " LEE ", "Lee Again")
    with mem.db.connect() as conn:
        assert users.get(conn, "Lee") is not None
