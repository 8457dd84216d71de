"""AppTest helpers: the app runs in this process against the `rt` fixture's temp install.

AppTest cannot carry the sign-in cookie, so a signed-in user is simulated by putting what
``ui.auth`` writes (authentication_status, username, name, roles, signed_in_at) into the
session state before the run; the user is put in the registry first (app.py checks every
session against it on every rerun).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import bootstrap, sessions, users
from phone_core.runtime import Runtime
from tests.ui.helpers import APP, ROOT

TIMEOUT = 60.0

if str(ROOT) not in sys.path:  # `from ui import common` when a page runs on its own
    sys.path.insert(0, str(ROOT))


def ensure_user(rt: Runtime, username: str, role: str = "user", name: str = "") -> float:
    """``username`` in the registry with ``role`` (no password); returns the database's
    clock, a sign-in time that is valid for the user now."""
    with rt.db.begin() as conn:
        user = users.get(conn, username)
        if user is None:
            users.add(conn, username, name or username.title(), "", role)
        elif user.role != role:
            users.set_role(conn, username, role)
        return sessions.db_clock(conn)


def sign_in(at: AppTest, username: str, role: str = "user", name: str = "") -> AppTest:
    rt = bootstrap.current()
    assert rt is not None, "sign_in needs the test's runtime"
    signed_in_at = ensure_user(rt, username, role, name)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = name or username.title()
    at.session_state["roles"] = [role]
    at.session_state["signed_in_at"] = signed_in_at
    return at


@pytest.fixture
def app(rt: Runtime) -> Callable[..., AppTest]:
    """A fresh AppTest of app.py, optionally signed in as ``user`` with ``role``."""
    users.ensure_admin(rt.db)

    def make(user: str | None = None, role: str = "user") -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        if user is not None:
            sign_in(at, user, role)
        return at

    return make


@pytest.fixture
def page(rt: Runtime) -> Callable[..., AppTest]:
    """A page script run on its own (no app.py), optionally signed in."""

    def make(script: str, user: str | None = None, role: str = "user") -> AppTest:
        at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
        if user is not None:
            sign_in(at, user, role)
        return at

    return make
