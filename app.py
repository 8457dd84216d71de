"""Phone enrichment web app: sign in first, then the pages the user's role allows.

Run with ``phone-enrich serve`` (which also starts the API), or on its own with
``streamlit run app.py``; on a fresh data dir the admin account is created and its
password printed once to the terminal. Every rerun checks the session against the user
registry (``ui.auth.current_user``): role, name and whether the session still holds.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import streamlit as st

from phone_core import ui_api
from phone_core.users import UserInfo
from ui import auth, common, notices

log = logging.getLogger("phone_app")

# A flag kept on the sys module: once per process, whatever Streamlit reloads.
ADMIN_CHECKED = "_phone_admin_checked"  # holds the state DB checked
# url paths of the admin pages
ADMIN_URLS = (
    "credits",
    "users",
    "reference_data",
    "sources",
    "privacy",
    "suppression",
    "audit_log",
)

st.set_page_config(page_title=notices.APP_TITLE, page_icon=":material/call:", layout="wide")


def _first_start() -> None:
    """Standalone start on a fresh data dir: create the admin and print its password once."""
    checked = ui_api.state_db_url()
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


def _sidebar(user: UserInfo) -> None:
    with st.sidebar:
        role = "administrator" if user.is_admin else "user"
        st.markdown(f"Signed in as **{common.plain(user.name or user.username)}** ({role})")
        try:
            summary = ui_api.credit_summary(user.username)
            st.metric(
                "Available credits",
                f"{summary.available:,}",
                help=f"Balance {summary.balance:,}, of which {summary.held:,} reserved by "
                "running batches.",
            )
        except Exception as exc:  # the sidebar must never break the page
            common.log_unexpected("sidebar credits", exc)
        auth.sign_out_button()


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
            st.Page(common.PAGE_ACCOUNT, title="Account", icon=":material/account_circle:"),
        ]
    }
    if admin:
        pages["Admin"] = [
            st.Page(common.PAGE_CREDITS, title="Credits", icon=":material/payments:"),
            st.Page(common.PAGE_USERS, title="Users", icon=":material/group:"),
            st.Page(common.PAGE_REFERENCE, title="Reference data", icon=":material/contacts:"),
            st.Page(common.PAGE_SOURCES, title="Sources", icon=":material/hub:"),
            st.Page(common.PAGE_PRIVACY, title="Privacy", icon=":material/shield_person:"),
            st.Page(common.PAGE_SUPPRESSION, title="Do-not-call lists", icon=":material/block:"),
            st.Page(common.PAGE_AUDIT, title="Audit log", icon=":material/policy:"),
        ]
    return pages


def main() -> None:
    _first_start()
    # Resolve the requested page before anything can interrupt this run (the cookie
    # component reruns the app once it has written): a reload or a deep link then keeps
    # its page. Registering is not running: no page runs before sign-in, and the pages
    # a role may use are registered again below.
    requested = st.navigation(_pages(admin=True), position="hidden")
    user = auth.current_user()  # the registry, asked on every rerun; else the sign-in form
    if user is None:
        return
    _sidebar(user)
    notices.watch(user.username)  # toasts when a batch ends; progress in the tab title
    if requested.url_path in ADMIN_URLS and not user.is_admin:
        st.navigation(_pages(admin=False))
        st.error("This page is for administrators only.")
        return
    st.navigation(_pages(admin=user.is_admin)).run()


try:
    main()
except Exception as exc:  # never a stack trace in the browser
    common.log_unexpected("app", exc)
    st.error(common.GENERIC_ERROR)
