"""AppTest helpers: the app runs in this process against the `rt` fixture's temp install.

AppTest cannot carry the sign-in cookie, so a signed-in user is simulated by putting what
streamlit-authenticator writes (authentication_status, username, name, roles) into the
session state before the run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import users
from phone_core.runtime import Runtime
from tests.ui.helpers import APP, ROOT

TIMEOUT = 60.0

if str(ROOT) not in sys.path:  # `from ui import common` when a page runs on its own
    sys.path.insert(0, str(ROOT))


def sign_in(at: AppTest, username: str, role: str = "user", name: str = "") -> AppTest:
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = name or username.title()
    at.session_state["roles"] = [role]
    at.session_state["logout"] = None
    return at


@pytest.fixture
def app(rt: Runtime) -> Callable[..., AppTest]:
    """A fresh AppTest of app.py, optionally signed in as ``user`` with ``role``."""
    users.ensure_admin(rt.settings)

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
