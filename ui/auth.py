"""Sign-in, the session check of every rerun, sign-out and "change my password".

A browser session is (username, signed-in time) in ``st.session_state`` and, so that a
reload keeps it, in a signed cookie that a tiny component writes in the browser (the
cookie-manager frontend of extra-streamlit-components). Both are only claims: on every
rerun ``current_user`` asks the registry whether the session still holds
(``phone_core.sessions.check``), and takes the role and name from it. A session ended
anywhere (sign-out, password change or reset, disable, role change, removal) shows the
sign-in form at its next interaction, whatever cookie the browser still has.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import extra_streamlit_components
import streamlit as st
import streamlit.components.v1 as components

from phone_core import ui_api
from phone_core.errors import PhoneError
from phone_core.sessions import COOKIE_NAME, SignInError
from phone_core.users import MIN_PASSWORD_LENGTH, UserInfo
from ui import common

# Widget keys.
LOGIN_FORM = "login_form"
LOGIN_USERNAME = "login_username"
LOGIN_PASSWORD = "login_password"
LOGIN_SUBMIT = "login_submit"
LOGOUT_BUTTON = "logout_button"
PASSWORD_FORM = "account_password_form"
PASSWORD_CURRENT = "account_password_current"
PASSWORD_NEW = "account_password_new"
PASSWORD_REPEAT = "account_password_repeat"
PASSWORD_SAVE = "account_password_save"
# Session state.
PENDING_COOKIE = "auth_pending_cookie"  # (value, seconds): write it in the browser
DROP_COOKIE = "auth_drop_cookie"  # delete the browser's cookie on the next run
IGNORED_COOKIE = "auth_ignored_cookie"  # a cookie of this browser session known to be over
NOTICE = "auth_notice"  # why the sign-in form is back
ACCOUNT_NOTICE = "auth_account_notice"  # a success shown once in the sidebar

SIGNED_OUT = "You are signed out."
ENDED = "Your session has ended. Please sign in again."
PASSWORD_CHANGED = "Your password is changed. Your other sessions are signed out."

_FRONTEND = Path(extra_streamlit_components.__file__).parent / "CookieManager" / "frontend"
_cookie_component = components.declare_component("session_cookie", path=str(_FRONTEND / "build"))


# --- the per-rerun check ----------------------------------------------------------------


def _remember(user: UserInfo, signed_in_at: float) -> None:
    st.session_state[common.AUTH_STATUS] = True
    st.session_state[common.USERNAME] = user.username
    st.session_state[common.NAME] = user.name
    st.session_state[common.ROLES] = [user.role]  # from the registry, on every rerun
    st.session_state[common.SIGNED_IN_AT] = signed_in_at


def end_session(notice: str) -> None:
    """Forget this browser session's sign-in (and its cookie) and say why."""
    for key in common.SESSION_KEYS:
        st.session_state[key] = None
    token = st.context.cookies.get(COOKIE_NAME)
    if token:
        st.session_state[IGNORED_COOKIE] = token  # this connection keeps sending it
    st.session_state[DROP_COOKIE] = True
    st.session_state[NOTICE] = notice


def current_user() -> UserInfo | None:
    """The signed-in user, checked against the registry now; None: show the sign-in form."""
    username = common.signed_in_user()
    if username is not None:
        at = st.session_state.get(common.SIGNED_IN_AT)
        if not isinstance(at, int | float):
            end_session(ENDED)
            return None
        user = ui_api.session_user(username, float(at))
        if user is None:
            end_session(ENDED)
            return None
        _remember(user, float(at))
        return user
    token = st.context.cookies.get(COOKIE_NAME)
    if token and token != st.session_state.get(IGNORED_COOKIE):
        session = ui_api.session_from_cookie(token)
        if session is not None:
            _remember(session.user, session.signed_in_at)
            return session.user
        st.session_state[IGNORED_COOKIE] = token  # over: not asked again by this session
        st.session_state[DROP_COOKIE] = True
        st.session_state[NOTICE] = ENDED
    return None


# --- the cookie in the browser ----------------------------------------------------------


def _https() -> bool:
    url = st.context.url or ""
    proto = st.context.headers.get("X-Forwarded-Proto", "")
    return url.startswith("https:") or proto == "https"


def write_cookie() -> None:
    """Write or delete the session cookie in the browser when a change is pending (a
    hidden component; it reruns the app once when done)."""
    pending = st.session_state.pop(PENDING_COOKIE, None)
    if pending:
        value, seconds = pending
        options: dict[str, Any] = {
            "path": "/",
            "expires": (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(),
            "maxAge": int(seconds),
            "sameSite": "strict",
        }
        if _https():
            options["secure"] = True
        _cookie_component(
            method="set",
            cookie=COOKIE_NAME,
            value=value,
            options=options,
            key=f"auth_cookie_set_{str(value)[-12:]}",
            default=False,
        )
    elif st.session_state.pop(DROP_COOKIE, False):
        _cookie_component(
            method="delete", cookie=COOKIE_NAME, key="auth_cookie_drop", default=False
        )


# --- the forms --------------------------------------------------------------------------


def _submit(username: str, password: str) -> None:
    st.session_state.pop(NOTICE, None)
    try:
        session = ui_api.sign_in(username, password, st.context.ip_address)
    except SignInError as exc:
        st.error(str(exc))
        return
    _remember(session.user, session.signed_in_at)
    st.session_state[PENDING_COOKIE] = ui_api.session_cookie(
        session.user.username, session.signed_in_at
    )
    st.session_state.pop(DROP_COOKIE, None)
    # The app comes with the rerun the cookie component asks for once the browser stored
    # the cookie: a reload or a link opened right after signing in then keeps the session.
    st.success("Signed in. Opening the app…")
    write_cookie()
    st.stop()


def sign_in_form() -> None:
    """The only thing shown before sign-in: a narrow, centred form."""
    box = st.columns([1, 2, 1])[1]
    with box:
        st.title(":material/call: Phone enrichment")
        notice = st.session_state.get(NOTICE)  # until the next sign-in attempt
        if notice:
            st.info(notice)
        with st.form(LOGIN_FORM):
            st.subheader("Sign in")
            username = st.text_input(
                "Username", key=LOGIN_USERNAME, max_chars=50, autocomplete="username"
            )
            password = st.text_input(
                "Password",
                type="password",
                key=LOGIN_PASSWORD,
                max_chars=200,
                autocomplete="current-password",
            )
            submitted = st.form_submit_button("Sign in", key=LOGIN_SUBMIT)
        if submitted:
            _submit(username, password)
    write_cookie()


def _sign_out() -> None:
    user = common.signed_in_user()
    if user is not None:
        ui_api.sign_out(user)  # ends every session of the user, copied cookies included
    end_session(SIGNED_OUT)


def sign_out_button() -> None:
    st.button("Sign out", key=LOGOUT_BUTTON, on_click=_sign_out, icon=":material/logout:")


def change_password_form(username: str) -> None:
    """Any signed-in user's own password change, with the current password."""
    with st.form(PASSWORD_FORM, clear_on_submit=True):
        st.markdown("#### Change my password")
        current = st.text_input("Current password", type="password", key=PASSWORD_CURRENT)
        new = st.text_input(
            "New password",
            type="password",
            key=PASSWORD_NEW,
            help=f"At least {MIN_PASSWORD_LENGTH} characters.",
        )
        repeat = st.text_input("New password again", type="password", key=PASSWORD_REPEAT)
        saved = st.form_submit_button("Change password", key=PASSWORD_SAVE, type="primary")
    if not saved:
        return
    if new != repeat:
        st.error("The two new passwords are not the same.")
        return
    try:
        signed_in_at = ui_api.change_password(username, current, new)
    except PhoneError as exc:
        st.error(common.explain(exc))
        return
    # This session goes on, with a new sign-in time and cookie; every other one ended.
    st.session_state[common.SIGNED_IN_AT] = signed_in_at
    st.session_state[PENDING_COOKIE] = ui_api.session_cookie(username, signed_in_at)
    st.session_state[ACCOUNT_NOTICE] = PASSWORD_CHANGED
    st.rerun()


def account_notice() -> None:
    notice = st.session_state.pop(ACCOUNT_NOTICE, None)
    if notice:
        st.success(notice)
