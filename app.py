"""Phone enrichment web app: sign in first, then the pages the user's role allows.

Run with ``phone-enrich serve`` (which also starts the API), or on its own with
``streamlit run app.py``; on a fresh data dir the admin account is created and its
password printed once to the terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth

from phone_core import ui_api
from ui import common

log = logging.getLogger("phone_app")

LOGIN_FORM = "login_form"
LOGOUT_BUTTON = "logout_button"
# A flag kept on the sys module: once per process, whatever Streamlit reloads.
ADMIN_CHECKED = "_phone_admin_checked"  # holds the credentials file checked
ADMIN_URLS = ("credits", "users", "reference_data")  # url paths of the admin pages

st.set_page_config(page_title="Phone enrichment", page_icon=":material/call:", layout="wide")


def _first_start() -> None:
    """Standalone start on a fresh data dir: create the admin and print its password once."""
    checked = str(ui_api.auth_file())
    if getattr(sys, ADMIN_CHECKED, None) == checked:
        return
    password = ui_api.ensure_admin()
    setattr(sys, ADMIN_CHECKED, checked)
    if password:
        print(
            "\n  An admin account was created for the web app. Sign in with\n"
            "    username: admin\n"
            f"    password: {password}\n"
            "  This password is shown only now; an admin can reset passwords in the app.\n",
            file=sys.stderr,
            flush=True,
        )


def _authenticator() -> stauth.Authenticate:
    config: dict[str, Any] = ui_api.auth_config()
    cookie = config["cookie"]
    return stauth.Authenticate(
        config["credentials"],
        cookie["name"],
        cookie["key"],
        float(cookie["expiry_days"]),
        auto_hash=False,
    )


def _on_login(_event: dict[str, Any]) -> None:
    st.session_state[common.JUST_SIGNED_IN] = True


def _sign_in(authenticator: stauth.Authenticate) -> bool:
    """Render the sign-in form unless a valid session or cookie exists; True when signed in."""
    if st.session_state.get(common.AUTH_STATUS) is True:
        return True
    box = st.columns([1, 2, 1])[1]  # a narrow, centred form
    with box:
        header = st.empty()
        header.title(":material/call: Phone enrichment")
        authenticator.login(
            location="main",
            key=LOGIN_FORM,
            fields={
                "Form name": "Sign in",
                "Username": "Username",
                "Password": "Password",
                "Login": "Sign in",
            },
            callback=_on_login,
        )
        status = st.session_state.get(common.AUTH_STATUS)
        if status is True and st.session_state.pop(common.JUST_SIGNED_IN, False):
            # The browser is storing the sign-in cookie; that reruns the app when done.
            st.success("Signed in. Opening the app…")
            st.stop()
        if status is False:
            st.error("Wrong username or password.")
        if status is True:
            header.empty()  # signed in by the cookie: straight to the page
    return status is True


def _sidebar(authenticator: stauth.Authenticate, user: str) -> None:
    with st.sidebar:
        name = st.session_state.get(common.NAME) or user
        role = "administrator" if common.is_admin() else "user"
        st.markdown(f"Signed in as **{name}** ({role})")
        try:
            summary = ui_api.credit_summary(user)
            st.metric(
                "Available credits",
                f"{summary.available:,}",
                help=f"Balance {summary.balance:,}, of which {summary.held:,} reserved by "
                "running batches.",
            )
        except Exception as exc:  # the sidebar must never break the page
            common.log_unexpected("sidebar credits", exc)
        authenticator.logout("Sign out", location="sidebar", key=LOGOUT_BUTTON)
    if st.session_state.get(common.AUTH_STATUS) is not True:
        st.info("You are signed out.")
        st.stop()


def _pages(admin: bool) -> dict[str, list[Any]]:
    pages: dict[str, list[Any]] = {
        "Enrichment": [
            st.Page(
                common.PAGE_NEW_BATCH,
                title="New batch",
                icon=":material/upload_file:",
                default=True,
            ),
            st.Page(common.PAGE_RUNS, title="Runs", icon=":material/list_alt:"),
            st.Page(common.PAGE_API_KEYS, title="API keys", icon=":material/key:"),
        ]
    }
    if admin:
        pages["Admin"] = [
            st.Page(common.PAGE_CREDITS, title="Credits", icon=":material/payments:"),
            st.Page(common.PAGE_USERS, title="Users", icon=":material/group:"),
            st.Page(common.PAGE_REFERENCE, title="Reference data", icon=":material/contacts:"),
        ]
    return pages


def main() -> None:
    _first_start()
    # Resolve the requested page before anything can interrupt this run (the cookie
    # component reruns the app as soon as it loads): a reload or a deep link then keeps
    # its page. Registering is not running: no page runs before sign-in, and the pages
    # a role may use are registered again below.
    requested = st.navigation(_pages(admin=True), position="hidden")
    authenticator = _authenticator()
    if not _sign_in(authenticator):
        return
    user = common.require_user()
    _sidebar(authenticator, user)
    if requested.url_path in ADMIN_URLS and not common.is_admin():
        st.navigation(_pages(admin=False))
        st.error("This page is for administrators only.")
        return
    st.navigation(_pages(admin=common.is_admin())).run()


try:
    main()
except Exception as exc:  # never a stack trace in the browser
    common.log_unexpected("app", exc)
    st.error(common.GENERIC_ERROR)
