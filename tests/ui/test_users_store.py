"""phone_core.users (the user registry), phone_core.preferences, and the page boundary."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from phone_core import db, preferences, sessions, users
from phone_core.errors import InputError, NotFound
from phone_core.runtime import Runtime
from phone_core.settings import Settings

pytestmark = pytest.mark.slow  # bcrypt per user: not in make test-fast

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    settings.ensure_data_dir()
    engine = db.make_engine(settings.state_db_url)
    db.migrate(engine)
    yield engine
    engine.dispose()


def add_user(
    engine: Engine, username: str, name: str, email: str, password: str, role: str = "user"
) -> users.UserInfo:
    hashed = users.hash_password(password)
    with engine.begin() as conn:
        return users.add(conn, username, name, email, role, password_hash=hashed)


def test_first_call_creates_the_admin_once(settings: Settings) -> None:
    password = users.ensure_admin(settings)
    assert password and len(password) >= 12
    assert users.ensure_admin(settings) is None
    engine = db.make_engine(settings.state_db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(db.users)).one()._mapping
        assert row["username"] == "admin" and row["role"] == "admin"
        assert password not in str(dict(row))  # only the bcrypt hash is stored
        assert bcrypt.checkpw(password.encode(), row["password_hash"].encode())
        assert users.verify(engine, "admin", password)
    finally:
        engine.dispose()


def test_each_install_has_its_own_cookie_key(tmp_path: Path) -> None:
    keys = set()
    for name in ("one", "two"):
        settings = Settings(data_dir=tmp_path / name)
        settings.ensure_data_dir()
        engine = db.make_engine(settings.state_db_url)
        db.migrate(engine)
        keys.add(sessions.cookie_key(engine))
        assert sessions.cookie_key(engine) in keys  # stable within an install
        engine.dispose()
    assert len(keys) == 2 and all(len(k) == 32 for k in keys)


def test_add_list_reset_and_verify(engine: Engine) -> None:
    users.ensure_admin(engine)
    info = add_user(engine, " Alice ", "Alice A", "alice@example.com", "s3cret-pass!", "user")
    assert info.username == "alice"
    with engine.connect() as conn:
        assert [(u.username, u.role) for u in users.list_users(conn)] == [
            ("admin", "admin"),
            ("alice", "user"),
        ]
    assert users.verify(engine, "ALICE", "s3cret-pass!")
    new = users.reset_password(engine, "alice")
    assert users.verify(engine, "alice", new) and not users.verify(engine, "alice", "s3cret-pass!")
    with pytest.raises(NotFound):
        users.reset_password(engine, "nobody")
    with engine.begin() as conn:
        users.set_role(conn, "alice", "admin")
    with engine.connect() as conn:
        assert {u.username: u.role for u in users.list_users(conn)}["alice"] == "admin"


@pytest.mark.parametrize(
    ("username", "name", "email", "password", "role", "message"),
    [
        ("a", "A", "", "long-enough-1", "user", "username"),
        ("bad name", "A", "", "long-enough-1", "user", "username"),
        ("ok", "", "", "long-enough-1", "user", "name"),
        ("ok", "Ok", "not-an-email", "long-enough-1", "user", "email"),
        ("ok", "Ok", "", "short", "user", "at least"),
        ("ok", "Ok", "", "long-enough-1", "root", "role"),
    ],
)
def test_bad_users_are_refused(
    engine: Engine, username: str, name: str, email: str, password: str, role: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(InputError, match=message):
        add_user(engine, username, name, email, password, role)


def test_concurrent_adds_all_land(engine: Engine) -> None:
    users.ensure_admin(engine)

    def add(i: int) -> None:
        add_user(engine, f"user{i}", f"User {i}", "", f"password-{i:04d}", "user")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert len(users.list_users(conn)) == 9


def test_saved_mappings_per_user_scope_and_header_set(rt: Runtime) -> None:
    headers = ["First Name", "Last Name", "Company"]
    chosen = {"first_name": "First Name", "last_name": "Last Name", "company_name": None}
    with rt.db.begin() as conn:
        preferences.save_mapping(conn, "alice", headers, chosen)
        preferences.save_mapping(conn, "alice", headers, {**chosen, "company_name": "Company"})
    with rt.db.connect() as conn:
        # Same columns spelled and ordered differently: same header set.
        again = preferences.load_mapping(conn, "alice", ["company", "first_name", "last_name"])
        assert again == {"first_name": "first_name", "last_name": "last_name",
                         "company_name": "company"}  # fmt: skip
        assert preferences.load_mapping(conn, "bob", headers) is None
        assert preferences.load_mapping(conn, "alice", headers, preferences.DIRECTORY) is None
        assert preferences.load_mapping(conn, "alice", [*headers, "Email"]) is None


FORBIDDEN_IN_PAGES = {"sqlalchemy", "httpx", "boto3", "botocore"}


UI_FILES = sorted(
    str(p.relative_to(ROOT))
    for p in [ROOT / "app.py", *(ROOT / "app_pages").glob("*.py"), *(ROOT / "ui").glob("*.py")]
)


@pytest.mark.parametrize("script", UI_FILES)
def test_pages_never_import_database_or_network_libraries(script: str) -> None:
    tree = ast.parse((ROOT / script).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_IN_PAGES


def test_app_modules_of_phone_core_never_import_streamlit() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import phone_core.ui_api, phone_core.ui_batches, phone_core.ui_admin, "
        "phone_core.users, phone_core.preferences, "
        "phone_core.sessions; "
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
