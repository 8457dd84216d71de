"""phone_core.users (the credentials file), phone_core.preferences, and the page boundary."""

from __future__ import annotations

import ast
import stat
import threading
from pathlib import Path

import pytest
import yaml
from streamlit_authenticator.utilities.hasher import Hasher

from phone_core import preferences, users
from phone_core.errors import InputError, NotFound
from phone_core.runtime import Runtime
from phone_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_first_call_creates_the_admin_once(settings: Settings) -> None:
    password = users.ensure_admin(settings)
    assert password and len(password) >= 12
    assert users.ensure_admin(settings) is None
    path = users.auth_file(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert password not in text
    config = yaml.safe_load(text)
    entry = config["credentials"]["usernames"]["admin"]
    assert entry["roles"] == ["admin"] and Hasher.is_hash(entry["password"])
    assert Hasher.check_pw(password, entry["password"])
    assert len(config["cookie"]["key"]) == 64


def test_each_install_has_its_own_cookie_key(tmp_path: Path) -> None:
    keys = set()
    for name in ("one", "two"):
        settings = Settings(data_dir=tmp_path / name)
        users.ensure_admin(settings)
        keys.add(users.load_config(settings)["cookie"]["key"])
    assert len(keys) == 2


def test_add_list_reset_and_verify(settings: Settings) -> None:
    users.ensure_admin(settings)
    info = users.add_user(
        settings, " Alice ", "Alice A", "alice@example.com", "s3cret-pass!", "user"
    )
    assert info.username == "alice"
    assert [(u.username, u.role) for u in users.list_users(settings)] == [
        ("admin", "admin"),
        ("alice", "user"),
    ]
    assert users.verify(settings, "ALICE", "s3cret-pass!")
    new = users.reset_password(settings, "alice")
    assert users.verify(settings, "alice", new) and not users.verify(
        settings, "alice", "s3cret-pass!"
    )
    with pytest.raises(NotFound):
        users.reset_password(settings, "nobody")
    users.set_role(settings, "alice", "admin")
    assert {u.username: u.role for u in users.list_users(settings)}["alice"] == "admin"


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
    settings: Settings, username: str, name: str, email: str, password: str, role: str,
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(InputError, match=message):
        users.add_user(settings, username, name, email, password, role)


def test_concurrent_adds_all_land(settings: Settings) -> None:
    users.ensure_admin(settings)

    def add(i: int) -> None:
        users.add_user(settings, f"user{i}", f"User {i}", "", f"password-{i:04d}", "user")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(users.list_users(settings)) == 9


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
        "import sys; import phone_core.ui_api, phone_core.users, phone_core.preferences; "
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
