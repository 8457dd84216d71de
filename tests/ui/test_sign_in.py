"""The sign-in gate: nothing but the sign-in form before authentication; roles pick pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import users
from phone_core.runtime import Runtime
from tests.ui.conftest import ensure_user
from tests.ui.helpers import APP

PAGES = (
    "app_pages/new_batch.py",
    "app_pages/runs.py",
    "app_pages/api_keys.py",
    "app_pages/credits.py",
    "app_pages/users.py",
    "app_pages/reference_data.py",
    "app_pages/sources.py",
)
ADMIN_PAGES = (
    "app_pages/credits.py",
    "app_pages/users.py",
    "app_pages/reference_data.py",
    "app_pages/sources.py",
)


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "markdown", "caption", "info") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def test_standalone_start_creates_the_admin_and_prints_its_password(
    rt: Runtime, capfd: pytest.CaptureFixture[str]
) -> None:
    with rt.db.connect() as conn:
        assert users.list_users(conn) == []  # a fresh install: nobody in the registry
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    err = capfd.readouterr().err
    assert "username: admin" in err
    password = err.split("password: ", 1)[1].split()[0]
    assert users.verify(rt.db, "admin", password)
    AppTest.from_file(str(APP), default_timeout=60).run()
    assert "password:" not in capfd.readouterr().err  # printed once only


def test_nothing_but_the_sign_in_form_without_authentication(app: Callable[..., AppTest]) -> None:
    at = app().run()
    assert not at.exception
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert len(at.file_uploader) == 0
    assert len(at.sidebar.metric) == 0
    assert [t.value for t in at.title] == [":material/call: Phone enrichment"]


def test_wrong_password_is_refused(app: Callable[..., AppTest]) -> None:
    at = app().run()
    at.text_input[0].input("admin")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert len(at.file_uploader) == 0


def test_sign_in_then_the_app(rt: Runtime, app: Callable[..., AppTest]) -> None:
    password = users.reset_password(rt.db, "admin")
    at = app().run()
    at.text_input[0].input("admin")
    at.text_input[1].input(password)
    at.button[0].click().run()
    assert at.session_state["authentication_status"] is True
    assert at.session_state["roles"] == ["admin"]
    at.run()  # the browser's cookie component reruns the app once the cookie is stored
    assert not at.exception
    assert [t.value for t in at.title] == ["New batch"]
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert "Signed in as **Administrator** (administrator)" in sidebar
    assert [b.label for b in at.sidebar.button] == ["Sign out"]


def test_sign_out(app: Callable[..., AppTest]) -> None:
    at = app("alice").run()
    at.sidebar.button[0].click().run()
    assert at.session_state["authentication_status"] is None
    assert len(at.file_uploader) == 0
    at.run()
    assert [t.label for t in at.text_input] == ["Username", "Password"]


@pytest.mark.parametrize("script", PAGES)
def test_a_page_run_on_its_own_needs_a_signed_in_user(
    page: Callable[..., AppTest], script: str
) -> None:
    at = page(script).run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["Please sign in first."]
    assert len(at.title) == 0


@pytest.mark.parametrize("script", ADMIN_PAGES)
def test_admin_pages_refuse_a_user(page: Callable[..., AppTest], script: str) -> None:
    at = page(script, "alice", "user").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["This page is for administrators only."]
    assert len(at.title) == 0
    assert len(at.dataframe) == 0


def test_navigation_follows_the_role(app: Callable[..., AppTest]) -> None:
    at = app("alice", "user").run()
    with pytest.raises(ValueError):  # not registered for a user
        at.switch_page("app_pages/credits.py")
    at = app("admin", "admin").run()
    at.switch_page("app_pages/credits.py").run()
    assert [t.value for t in at.title] == ["Credits"]


def test_admin_url_refused_for_a_user_even_through_the_app(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    ensure_user(rt, "alice")
    at = app("admin", "admin").run()
    at.switch_page("app_pages/users.py")  # registered while the admin's pages were known
    at.session_state["roles"] = ["user"]
    at.session_state["username"] = "alice"
    at.run()
    assert [e.value for e in at.error] == ["This page is for administrators only."]
    assert "Users" not in [t.value for t in at.title]
