"""Issue 9, items 2 and 4: sessions are revocable; password guessing is limited.

Version 1 kept a 7-day sign-in cookie that still signed in after "Sign out" and after a
password reset. Now a session is checked against the registry on every rerun: sign-out,
a password change or reset, disabling, a role change and removal end it at its next
interaction, whatever cookie the browser keeps (the browser half is in
tests/e2e/test_accounts_browser.py). Wrong passwords lock the username (and the client
address) out for a growing delay, counted in the state DB.

AppTest cannot carry cookies: these tests drive the session state and the functions the
cookie path calls (``ui_api.session_from_cookie``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import keys, sessions, ui_admin, ui_api, users
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import make_settings
from tests.ui.conftest import app, ensure_user
from tests.ui.helpers import messages

pytestmark = pytest.mark.slow  # bcrypt per sign-in attempt: not in make test-fast

__all__ = ["app"]  # the fixture, imported for pytest

PASSWORD = "right-password-1"
LOCKED = "Too many failed sign-ins for this account; try again in 2 minutes."


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Runtime]:
    rt = memory_runtime(make_settings(tmp_path / "data", waterfall=[]))
    yield rt
    rt.close()


def add(rt: Runtime, username: str, role: str = "user", password: str = PASSWORD) -> None:
    hashed = users.hash_password(password)
    with rt.db.begin() as conn:
        users.add(conn, username, username.title(), "", role, password_hash=hashed)


def sign_in(rt: Runtime, username: str, password: str = PASSWORD) -> sessions.Session:
    return sessions.sign_in(rt.db, rt.settings, username, password)


def still_valid(rt: Runtime, session: sessions.Session) -> bool:
    user = session.user.username
    return sessions.check(rt.db, rt.settings, user, session.signed_in_at) is not None


# --- what ends a session ----------------------------------------------------------------

ENDINGS: dict[str, Callable[[Runtime, str], object]] = {
    "sign-out": lambda rt, u: sessions.sign_out(rt.db, u),
    "password reset": lambda rt, u: users.reset_password(rt.db, u),
    "password change": lambda rt, u: sessions.change_password(
        rt.db, rt.settings, u, PASSWORD, "another-password-2"
    ),
    "disable": lambda rt, u: _in_tx(rt, lambda c: users.disable(c, u)),
    "role change": lambda rt, u: _in_tx(rt, lambda c: users.set_role(c, u, "admin")),
    "removal": lambda rt, u: _in_tx(rt, lambda c: users.remove(c, u)),
}


def _in_tx(rt: Runtime, fn: Callable[..., object]) -> object:
    with rt.db.begin() as conn:
        return fn(conn)


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_each_ending_ends_every_session_and_every_cookie(mem: Runtime, ending: str) -> None:
    add(mem, "bob")
    first, second = sign_in(mem, "bob"), sign_in(mem, "bob")  # two browsers
    token, _ = sessions.issue_token(mem.db, mem.settings, "bob", first.signed_in_at)
    assert still_valid(mem, first) and still_valid(mem, second)
    ENDINGS[ending](mem, "bob")
    assert not still_valid(mem, first) and not still_valid(mem, second)
    claims = sessions.read_token(mem.db, token)  # the cookie is still well signed ...
    assert claims is not None
    assert sessions.check(mem.db, mem.settings, "bob", claims.issued_at) is None  # ... but over


def test_a_new_sign_in_after_an_ending_is_valid(mem: Runtime) -> None:
    add(mem, "bob")
    sessions.sign_out(mem.db, "bob")
    assert still_valid(mem, sign_in(mem, "bob"))


def test_a_password_change_keeps_the_changing_session(mem: Runtime) -> None:
    add(mem, "bob")
    other = sign_in(mem, "bob")
    at = sessions.change_password(mem.db, mem.settings, "bob", PASSWORD, "another-password-2")
    assert sessions.check(mem.db, mem.settings, "bob", at) is not None
    assert not still_valid(mem, other)
    assert users.verify(mem.db, "bob", "another-password-2")
    with pytest.raises(sessions.SignInError, match="current password is wrong"):
        sessions.change_password(mem.db, mem.settings, "bob", "wrong-password-9", "x" * 12)


def test_a_session_lasts_session_hours(mem: Runtime) -> None:
    add(mem, "bob")
    session = sign_in(mem, "bob")
    short = mem.settings.model_copy(update={"session_hours": 1.0})
    assert sessions.check(mem.db, short, "bob", session.signed_in_at) is not None
    assert sessions.check(mem.db, short, "bob", session.signed_in_at - 3601) is None
    assert sessions.check(mem.db, short, "bob", session.signed_in_at + 600) is None  # future
    assert Settings().session_hours == 12  # the default: a working day, not a week
    token, seconds = sessions.issue_token(mem.db, short, "bob", session.signed_in_at)
    assert seconds == 3600
    claims = sessions.read_token(mem.db, token)
    assert claims is not None and claims.expires_at == session.signed_in_at + 3600


def test_only_this_installs_untampered_cookies_are_read(mem: Runtime, tmp_path: Path) -> None:
    add(mem, "bob")
    session = sign_in(mem, "bob")
    token, _ = sessions.issue_token(mem.db, mem.settings, "bob", session.signed_in_at)
    assert sessions.read_token(mem.db, token) is not None
    version, body, sig = token.split(".")
    forged = sessions._b64(b'{"u":"admin","iat":9e9,"exp":9e9}')
    for bad in [
        f"{version}.{forged}.{sig}",
        f"{version}.{body}.{sig[:-2]}AA",
        f"v0.{body}.{sig}",
        "",
        "x" * 5000,
        "a.b",
    ]:
        assert sessions.read_token(mem.db, bad) is None
    other = memory_runtime(make_settings(tmp_path / "other", waterfall=[]))
    try:
        assert sessions.read_token(other.db, token) is None  # another install's key
    finally:
        other.close()


# --- wrong passwords --------------------------------------------------------------------


def test_wrong_passwords_lock_the_account_for_a_growing_delay(mem: Runtime) -> None:
    add(mem, "bob")
    assert mem.settings.web_auth_max_failures == 5
    for _ in range(5):
        with pytest.raises(sessions.SignInError, match="Wrong username or password"):
            sign_in(mem, "bob", "guess-password")
    with pytest.raises(sessions.LockedOut) as locked:
        sign_in(mem, "bob")  # even the right password: it is not looked at
    assert str(locked.value) == LOCKED and locked.value.account
    waits = [locked.value.wait]
    for _ in range(3):
        with pytest.raises(sessions.LockedOut) as again:
            sign_in(mem, "BOB", "guess-password")
        waits.append(again.value.wait)
    assert waits == sorted(waits) and waits[0] < waits[-1]  # each try lengthens it
    add(mem, "carl")
    assert still_valid(mem, sign_in(mem, "carl"))  # other accounts are not affected


def test_unknown_usernames_look_and_lock_like_real_ones(mem: Runtime) -> None:
    for _ in range(5):
        with pytest.raises(sessions.SignInError, match="Wrong username or password"):
            sign_in(mem, "nobody", "guess-password")
    with pytest.raises(sessions.LockedOut, match="for this account"):
        sign_in(mem, "nobody", "guess-password")


def test_one_client_guessing_many_usernames_is_locked_out(mem: Runtime) -> None:
    add(mem, "bob")
    for i in range(5):
        with pytest.raises(sessions.SignInError):
            sessions.sign_in(mem.db, mem.settings, f"user{i}", "guess", client="203.0.113.9")
    with pytest.raises(sessions.LockedOut, match="from your network address"):
        sessions.sign_in(mem.db, mem.settings, "bob", PASSWORD, client="203.0.113.9")
    other = sessions.sign_in(mem.db, mem.settings, "bob", PASSWORD, client="198.51.100.7")
    assert still_valid(mem, other)


@pytest.mark.slow  # waits out a real lockout
def test_the_lockout_ends(mem: Runtime) -> None:
    add(mem, "bob")
    # A window well above a password check's time (bcrypt: ~0.6 s on a loaded 2-core
    # machine), so the failures are still within it when the third try comes.
    quick = mem.settings.model_copy(update={"web_auth_max_failures": 2, "web_auth_window_sec": 6})
    for _ in range(2):
        with pytest.raises(sessions.SignInError):
            sessions.sign_in(mem.db, quick, "bob", "guess")
    with pytest.raises(sessions.LockedOut, match=r"\d+ seconds?"):
        sessions.sign_in(mem.db, quick, "bob", PASSWORD)
    import time

    time.sleep(9.5)  # 3 steps of 3 s were charged; the debt drains below 3 s after ~6 s
    assert sessions.sign_in(mem.db, quick, "bob", PASSWORD).user.username == "bob"


def test_a_disabled_user_with_the_right_password_is_told(mem: Runtime) -> None:
    add(mem, "bob")
    with mem.db.begin() as conn:
        users.disable(conn, "bob")
    with pytest.raises(sessions.SignInError, match="This account is disabled"):
        sign_in(mem, "bob")
    with pytest.raises(sessions.SignInError, match="Wrong username or password"):
        sign_in(mem, "bob", "guess-password")  # a guesser learns nothing


# --- the web app (AppTest) --------------------------------------------------------------


def shows_sign_in(at: AppTest) -> bool:
    return [t.label for t in at.text_input] == ["Username", "Password"]


def test_every_rerun_asks_the_registry(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = app("bob").run()
    assert [t.value for t in at.title] == ["New batch"]
    ui_api.sign_out("bob")  # e.g. "Sign out" in another browser
    at.run()
    assert shows_sign_in(at) and len(at.file_uploader) == 0
    assert messages(at, "info") == ["Your session has ended. Please sign in again."]
    assert at.session_state["authentication_status"] is None


@pytest.mark.parametrize("ending", ["disable", "role change", "password reset", "removal"])
def test_an_admin_action_ends_the_session_at_its_next_interaction(
    rt: Runtime, app: Callable[..., AppTest], ending: str
) -> None:
    ensure_user(rt, "ann", "admin")
    at = app("bob").run()
    ENDINGS[ending](rt, "bob")
    at.switch_page("app_pages/runs.py").run()  # the next click
    assert shows_sign_in(at) and "Runs" not in [t.value for t in at.title]


def test_a_demoted_admin_loses_the_admin_pages_at_once(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = app("ann", "admin").run()
    at.switch_page("app_pages/users.py").run()
    assert [t.value for t in at.title] == ["Users"]
    with rt.db.begin() as conn:
        users.set_role(conn, "ann", "user")
    at.run()
    assert shows_sign_in(at) and "Users" not in [t.value for t in at.title]


def test_the_role_comes_from_the_registry_not_the_session(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = app("bob").run()
    at.session_state["roles"] = ["admin"]  # whatever the session claims
    at.run()
    assert at.session_state["roles"] == ["user"]
    with pytest.raises(ValueError):  # the admin pages are not registered for bob
        at.switch_page("app_pages/users.py")


def test_sign_out_ends_the_other_sessions_too(rt: Runtime, app: Callable[..., AppTest]) -> None:
    laptop, phone = app("bob").run(), app("bob").run()
    laptop.sidebar.button(key="logout_button").click().run()
    assert shows_sign_in(laptop)
    assert messages(laptop, "info") == ["You are signed out."]
    phone.run()
    assert shows_sign_in(phone)


def test_a_cookie_is_worthless_after_sign_out(rt: Runtime, app: Callable[..., AppTest]) -> None:
    """What the browser sends back after a reload (the cookie path of ui.auth)."""
    add(rt, "bob")
    session = ui_api.sign_in("bob", PASSWORD)
    token, _ = ui_api.session_cookie("bob", session.signed_in_at)
    assert ui_api.session_from_cookie(token) is not None
    ui_api.sign_out("bob")
    assert ui_api.session_from_cookie(token) is None


def test_the_sign_in_form_says_plainly_when_an_account_is_locked(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    add(rt, "bob")
    at = app().run()
    for _ in range(5):
        at.text_input[0].input("bob")
        at.text_input[1].input("guess-password")
        at.button[0].click().run()
        assert messages(at, "error") == ["Wrong username or password."]
    at.text_input[0].input("bob")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert messages(at, "error") == [LOCKED]
    assert shows_sign_in(at) and len(at.file_uploader) == 0


def test_sign_in_through_the_form_writes_a_cookie(rt: Runtime, app: Callable[..., AppTest]) -> None:
    add(rt, "bob")
    at = app().run()
    at.text_input[0].input("Bob ")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["username"] == "bob"
    assert messages(at, "success") == ["Signed in. Opening the app…"]
    assert "auth_pending_cookie" not in at.session_state  # handed to the browser
    at.run()  # the browser's cookie component reruns the app once the cookie is stored
    assert [t.value for t in at.title] == ["New batch"]
    assert at.session_state["signed_in_at"] > 0


def test_change_my_password(rt: Runtime, app: Callable[..., AppTest]) -> None:
    add(rt, "bob")
    at = app("bob").run()
    other = app("bob").run()
    at.switch_page("app_pages/account.py").run()
    assert [t.value for t in at.title] == ["Account"]
    at.text_input(key="account_password_current").input("wrong-password-1")
    at.text_input(key="account_password_new").input("brand-new-pass-1")
    at.text_input(key="account_password_repeat").input("brand-new-pass-1")
    at.button(key="account_password_save").click().run()
    assert messages(at, "error") == ["The current password is wrong."]
    assert users.verify(rt.db, "bob", PASSWORD)
    at.text_input(key="account_password_current").input(PASSWORD)
    at.text_input(key="account_password_new").input("brand-new-pass-1")
    at.text_input(key="account_password_repeat").input("brand-new-pass-1")
    at.button(key="account_password_save").click().run()
    assert not at.exception
    assert messages(at, "success") == [
        "Your password is changed. Your other sessions are signed out."
    ]
    assert users.verify(rt.db, "bob", "brand-new-pass-1")
    at.run()
    assert [t.value for t in at.title] == ["Account"]  # this session goes on
    other.run()
    assert shows_sign_in(other)  # the other one is over


def test_users_page_disable_ends_the_users_session(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    bob = app("bob").run()
    at = app("admin", "admin").run()
    at.switch_page("app_pages/users.py").run()
    assert at.selectbox(key="users_pick").value is None  # nobody preselected
    at.selectbox(key="users_pick").set_value("bob").run()
    at.button(key="users_disable").click().run()
    assert not at.exception
    assert any("bob is disabled" in m for m in messages(at, "success"))
    table = at.dataframe[0].value.set_index("Username")
    assert table.loc["bob", "Status"] == "Disabled"
    bob.run()
    assert shows_sign_in(bob)
    at.selectbox(key="users_pick").set_value("bob").run()
    at.button(key="users_enable").click().run()
    assert ui_admin.list_users()[1].status == "active"


def test_users_page_removes_only_after_a_confirmation(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    ensure_user(rt, "bob")
    at = app("admin", "admin").run()
    at.switch_page("app_pages/users.py").run()
    at.selectbox(key="users_pick").set_value("bob").run()
    at.button(key="users_remove").click().run()
    assert [u.username for u in ui_admin.list_users()] == ["admin", "bob"]  # not yet
    at.button(key="users_confirm_no").click().run()
    assert [u.username for u in ui_admin.list_users()] == ["admin", "bob"]
    at.selectbox(key="users_pick").set_value("bob").run()
    at.button(key="users_remove").click().run()
    at.button(key="users_confirm_yes").click().run()
    assert not at.exception
    assert [u.username for u in ui_admin.list_users()] == ["admin"]
    assert [u.status for u in ui_admin.list_users(include_removed=True)] == ["active", "removed"]


def test_users_page_offers_nothing_against_yourself(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = app("admin", "admin").run()
    at.switch_page("app_pages/users.py").run()
    at.selectbox(key="users_pick").set_value("admin").run()
    assert not at.exception
    assert any("This is you" in m for m in messages(at, "info"))
    assert {b.key for b in at.button}.isdisjoint({"users_reset", "users_disable", "users_remove"})


def test_admins_see_and_revoke_everyones_keys(rt: Runtime, app: Callable[..., AppTest]) -> None:
    ensure_user(rt, "bob")
    bob_key = ui_api.create_key("bob", "CRM sync")[1]
    at = app("admin", "admin").run()
    at.switch_page("app_pages/api_keys.py").run()
    everyone = at.dataframe[-1].value  # the admin has no key: only everyone's table
    assert list(everyone["User"]) == ["bob"] and list(everyone["Label"]) == ["CRM sync"]
    at.button(key="keys_all_revoke").click().run()
    assert not at.exception
    with rt.db.begin() as conn, pytest.raises(keys.RevokedKey):
        keys.verify(conn, bob_key)
    user_view = app("bob").run()
    user_view.switch_page("app_pages/api_keys.py").run()
    assert all(b.key != "keys_all_revoke" for b in user_view.button)  # admins only


def _fragment_script() -> None:
    """A page's live fragment (Runs polls with one) as guarded() runs it; a fragment rerun
    is simulated (AppTest reruns the whole script on a fragment's click)."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui import common

    fragment = st.session_state.pop("pretend_fragment_rerun", False)

    class FragmentRun:
        fragment_ids_this_run = ("live-table",)

    common.get_script_run_ctx = (  # type: ignore[assignment]
        (lambda: FragmentRun()) if fragment else get_script_run_ctx
    )
    st.session_state["runs"] = [*st.session_state.get("runs", []), f"start fragment={fragment}"]

    def body() -> None:
        st.session_state["runs"] = [*st.session_state["runs"], "body"]

    common.guarded("live table", body)


def test_a_fragment_rerun_checks_the_session_too(rt: Runtime, app: Callable[..., AppTest]) -> None:
    """A fragment rerun does not run app.py: guarded() asks the registry itself and, when
    the session is over, reruns the whole app (which shows the sign-in form)."""
    from tests.ui.conftest import sign_in as signed_in

    at = signed_in(AppTest.from_function(_fragment_script), "bob")
    at.session_state["pretend_fragment_rerun"] = True
    at.run()
    assert at.session_state["runs"] == ["start fragment=True", "body"]  # valid: the body runs
    ui_api.sign_out("bob")
    at.session_state["runs"] = []
    at.session_state["pretend_fragment_rerun"] = True
    at.run()
    assert at.session_state["runs"] == ["start fragment=True", "start fragment=False", "body"]
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from ui import common

    assert common.get_script_run_ctx is get_script_run_ctx  # the last run put it back
