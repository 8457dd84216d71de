"""Sign-in (streamlit-authenticator), the session check of every rerun, sign-out and
"change my password".

streamlit-authenticator 0.4.2 draws the sign-in form (``Authenticate.login``), keeps the
result in ``st.session_state["authentication_status"|"username"|"name"|"roles"]`` and
writes its cookie: a JWT of (username, exp_date) signed with the install's random key
from the state DB. Its credentials are built on every rerun from the registry (active
users, their bcrypt hashes, ``auto_hash=False``).

Everything it says is only a claim. The one seam: the library's password check
(``check_credentials``) is our ``ui_api.sign_in``, so a locked-out username or address is
refused before any password is looked at, unknown usernames cost the same bcrypt check,
and every failure is counted in the state DB. On every rerun ``current_user`` asks the
registry whether the session (username, sign-in time: the login moment, or the cookie's
issue time = exp_date - expiry) still holds (``phone_core.sessions.check``) and takes the
role and name from it. A session ended anywhere (sign-out, password change or reset,
disable, role change, removal) shows the sign-in form at its next interaction, whatever
cookie the browser still has.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import streamlit as st
import streamlit_authenticator as stauth
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit_authenticator.utilities import LoginError

from phone_core import ui_api
from phone_core.errors import PhoneError
from phone_core.sessions import COOKIE_NAME, SignInError
from phone_core.users import MIN_PASSWORD_LENGTH, UserInfo
from ui import common

# Widget keys.
LOGIN_FORM = "login_form"
LOGOUT_BUTTON = "logout_button"
PASSWORD_FORM = "account_password_form"
PASSWORD_CURRENT = "account_password_current"
PASSWORD_NEW = "account_password_new"
PASSWORD_REPEAT = "account_password_repeat"
PASSWORD_SAVE = "account_password_save"
# Session state.
LIBRARY_LOGOUT = "logout"  # streamlit-authenticator: True = do not read the cookie again
DROP_COOKIE = "auth_drop_cookie"  # delete the browser's cookie on the next run
PENDING_COOKIE = "auth_pending_cookie"  # write a new cookie on the next run
DELETE_KEY = "auth_delete_cookie"  # the cookie component that deletes it (its answer)
NOTICE = "auth_notice"  # why the sign-in form is back
ACCOUNT_NOTICE = "auth_account_notice"  # a success shown once in the sidebar

SIGNED_OUT = "You are signed out."
ENDED = "Your session has ended. Please sign in again."
PASSWORD_CHANGED = "Your password is changed. Your other sessions are signed out."
FIELDS = {
    "Form name": "Sign in",
    "Username": "Username",
    "Password": "Password",
    "Login": "Sign in",
}


# --- the library, once per run ----------------------------------------------------------


def _expiry_sec() -> float:
    return ui_api.session_hours() * 3600


def _authenticator(credentials: dict[str, dict[str, Any]]) -> stauth.Authenticate:
    """streamlit-authenticator for this run (it draws its cookie component: once a run)."""
    authenticator = stauth.Authenticate(
        {"usernames": credentials},
        cookie_name=COOKIE_NAME,
        cookie_key=ui_api.session_cookie_key(),
        cookie_expiry_days=_expiry_sec() / 86400,
        auto_hash=False,
        login_sleep_time=0,  # it reads the cookie from the request (st.context.cookies)
    )
    model = authenticator.authentication_controller.authentication_model

    def check_credentials(username: str, password: str) -> bool:
        # Lockout first (no password looked at), same bcrypt cost for unknown names,
        # failures counted in the state DB, disabled accounts told: phone_core.sessions.
        session = ui_api.sign_in(username, password, st.context.ip_address)
        st.session_state[common.SIGNED_IN_AT] = session.signed_in_at  # the login moment
        return session.user.username in model.credentials["usernames"]

    model.check_credentials = check_credentials
    return authenticator


def _remember(user: UserInfo, signed_in_at: float) -> None:
    st.session_state[common.AUTH_STATUS] = True
    st.session_state[common.USERNAME] = user.username
    st.session_state[common.NAME] = user.name
    st.session_state[common.ROLES] = [user.role]  # from the registry, on every rerun
    st.session_state[common.SIGNED_IN_AT] = signed_in_at


def _forget(authenticator: stauth.Authenticate | None, notice: str) -> None:
    """Forget this browser session's sign-in, delete the browser's cookie, say why."""
    for key in common.SESSION_KEYS:
        st.session_state[key] = None
    st.session_state[LIBRARY_LOGOUT] = True  # the library reads no cookie from now on
    st.session_state[NOTICE] = notice
    st.session_state[DROP_COOKIE] = True
    if authenticator is not None:
        _drop_cookie(authenticator)


def _drop_cookie(authenticator: stauth.Authenticate) -> None:
    """Delete the browser's cookie, and keep asking on every run until the browser says
    it did.

    The cookie component deletes it in the browser when its element arrives there; a run
    cut short by the next one (a loaded machine, a quick click) may never send it. So the
    request stays in the session until the component answers True (its value, kept by
    Streamlit across reruns), and each run meanwhile draws it again (deleting twice is
    harmless).
    """
    if getattr(authenticator, "_phone_cookie_drawn", False):
        return  # once a run (a second element with the same key is an error)
    authenticator._phone_cookie_drawn = True
    manager = authenticator.cookie_controller.cookie_model.cookie_manager
    done = manager.cookie_manager(method="delete", cookie=COOKIE_NAME, key=DELETE_KEY, default=None)
    if done is True:
        st.session_state.pop(DROP_COOKIE, None)


def end_session(notice: str) -> None:
    """Forget this browser session's sign-in and say why (its cookie is not read again)."""
    _forget(None, notice)


# --- the per-rerun check ----------------------------------------------------------------


_RUNS: dict[str, stauth.Authenticate] = {}  # session id -> this run's Authenticate


def _keep(authenticator: stauth.Authenticate) -> None:
    ctx = get_script_run_ctx()
    if ctx is not None:
        _RUNS[ctx.session_id] = authenticator


def _authenticator_of_this_run() -> stauth.Authenticate | None:
    ctx = get_script_run_ctx()
    return None if ctx is None else _RUNS.get(ctx.session_id)


def _forget_run() -> None:
    """No authenticator in this run: sign-out then asks the next run to delete the cookie."""
    ctx = get_script_run_ctx()
    if ctx is not None:
        _RUNS.pop(ctx.session_id, None)


def _from_cookie() -> UserInfo | None:
    """A returning browser: the sign-in cookie of the request, read as the library reads
    it (``CookieModel.get_cookie``: an HS256 JWT of username and exp_date signed with the
    install's key) and checked against the registry now, without drawing the library's
    cookie component. That component answers once it is in the browser, which reruns the
    whole app: a second render of the first page. None: not signed in this way (no cookie,
    signed out in this session, or a session that ended: the library's path refuses it
    and says so)."""
    if st.session_state.get(LIBRARY_LOGOUT) or st.session_state.get(DROP_COOKIE):
        return None
    token = st.context.cookies.get(COOKIE_NAME)
    if not token:
        return None
    try:
        claims = jwt.decode(token, ui_api.session_cookie_key(), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    username, expires = claims.get("username"), claims.get("exp_date")
    if not isinstance(username, str) or not isinstance(expires, int | float):
        return None
    if expires <= time.time():
        return None
    signed_in_at = float(expires) - _expiry_sec()  # the cookie's issue time
    user = ui_api.session_user(username, signed_in_at)
    if user is None:
        return None
    _remember(user, signed_in_at)
    return user


def current_user() -> UserInfo | None:
    """The signed-in user, checked against the registry now; None: the sign-in form
    (drawn here).

    A signed-in run draws no cookie component (its first answer would rerun the app)
    unless it has a cookie to write (a password change); sign-out then has the next run
    delete the cookie (``_drop_cookie``)."""
    username = common.signed_in_user()
    if username is not None:
        at = st.session_state.get(common.SIGNED_IN_AT)
        user = ui_api.session_user(username, float(at)) if isinstance(at, int | float) else None
        if user is not None and isinstance(at, int | float):
            _remember(user, float(at))
            if st.session_state.pop(PENDING_COOKIE, False):
                authenticator = _authenticator({user.username: {}})
                _keep(authenticator)
                authenticator.cookie_controller.set_cookie()
            else:
                _forget_run()
            ui_api.act_as(user.username, st.context.ip_address)  # the audit log's "who"
            return user
        authenticator = _authenticator(ui_api.login_credentials())
        _keep(authenticator)
        _forget(authenticator, ENDED)
        return _sign_in_form(authenticator)
    returning = _from_cookie()
    if returning is not None:
        _forget_run()
        ui_api.act_as(returning.username, st.context.ip_address)  # the audit log's "who"
        return returning
    ui_api.act_as(None)
    authenticator = _authenticator(ui_api.login_credentials())
    _keep(authenticator)
    if st.session_state.get(DROP_COOKIE):
        _drop_cookie(authenticator)
    return _sign_in_form(authenticator)


# --- the forms --------------------------------------------------------------------------


def _sign_in_form(authenticator: stauth.Authenticate) -> UserInfo | None:
    """The only thing shown before sign-in: a narrow, centred form (the library's)."""
    box = st.columns([1, 2, 1])[1]
    with box:
        st.title(":material/call: Phone enrichment")
        notice = st.empty()
        user, cookie_refused = _login(authenticator)
        if cookie_refused:
            _login(authenticator)  # the library reads no cookie now: it draws the form
        if user is None and st.session_state.get(NOTICE):  # until the next attempt
            notice.info(st.session_state[NOTICE])
        return user


def _login(authenticator: stauth.Authenticate) -> tuple[UserInfo | None, bool]:
    """(the user signed in now, whether a cookie was refused and no form drawn)."""
    st.session_state[common.SIGNED_IN_AT] = None
    if True:
        try:
            authenticator.login(location="main", fields=FIELDS, key=LOGIN_FORM)
        except SignInError as exc:  # locked out, wrong password, disabled: ours
            st.session_state[common.AUTH_STATUS] = False
            st.error(str(exc))
            return None, False
        except LoginError:  # a cookie of a user no longer in the registry
            _forget(authenticator, ENDED)
            return None, True
        if st.session_state.get(common.AUTH_STATUS) is not True:
            return None, False
        username = str(st.session_state.get(common.USERNAME) or "")
        at = st.session_state.get(common.SIGNED_IN_AT)
        if isinstance(at, int | float):  # the form: the login moment
            user = ui_api.session_user(username, float(at))
            fresh = True
        else:  # the cookie: its issue time
            token = authenticator.cookie_controller.cookie_model.token or {}
            at = float(token.get("exp_date", 0)) - _expiry_sec()
            user = ui_api.session_user(username, at)
            fresh = False
        if user is None:
            _forget(authenticator, ENDED)
            return None, not fresh
        st.session_state.pop(NOTICE, None)
        st.session_state.pop(DROP_COOKIE, None)  # the new cookie stays
        _remember(user, float(at))
        if fresh:
            # The app comes with the rerun the cookie component asks for once the browser
            # stored the cookie: a reload or a link opened right after then keeps it.
            st.success("Signed in. Opening the app…")
            st.stop()
        return user, False


def _sign_out_callback(info: dict[str, Any]) -> None:
    username = info.get("username")
    if username:
        ui_api.sign_out(str(username))  # ends every session of the user, copied cookies too


def _sign_out() -> None:
    authenticator = _authenticator_of_this_run()  # the run that drew the button
    if authenticator is not None:
        authenticator.authentication_controller.logout(_sign_out_callback)
    elif (user := common.signed_in_user()) is not None:
        ui_api.sign_out(user)
    for key in common.SESSION_KEYS:
        st.session_state[key] = None
    st.session_state[LIBRARY_LOGOUT] = True
    st.session_state[NOTICE] = SIGNED_OUT
    st.session_state[DROP_COOKIE] = True  # the next run's authenticator deletes it


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
    st.session_state[PENDING_COOKIE] = True  # the library writes it on the next run
    st.session_state[ACCOUNT_NOTICE] = PASSWORD_CHANGED
    st.rerun()


def account_notice() -> None:
    notice = st.session_state.pop(ACCOUNT_NOTICE, None)
    if notice:
        st.success(notice)
