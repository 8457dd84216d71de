"""Shared by every page: session keys, page paths, sign-in guards, the error boundary.

``ui.auth`` keeps the signed-in user in session state under the keys below, checked
against the user registry on every rerun by app.py (and on every fragment rerun by
``guarded``); every page still calls ``require_user`` or ``require_admin`` first.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from phone_core import ui_api
from phone_core.errors import InsufficientCredits, PhoneError
from ui import labels

# The signed-in session (written by ui.auth from the registry).
AUTH_STATUS = "authentication_status"
USERNAME = "username"
NAME = "name"
ROLES = "roles"
SIGNED_IN_AT = "signed_in_at"  # epoch seconds on the state DB's clock
SESSION_KEYS = (AUTH_STATUS, USERNAME, NAME, ROLES, SIGNED_IN_AT)
ADMIN_ROLE = "admin"

# Written by the app.
FOCUS_RUN = "focus_run_id"  # the run the Runs page opens (set after a submit)
FLASH = "flash_message"  # a success message that survives one st.rerun()

# The page files, as app.py registers them with st.navigation (not `pages/`: that name
# would turn on Streamlit's legacy multipage mode).
PAGE_NEW_BATCH = "app_pages/new_batch.py"
PAGE_RUNS = "app_pages/runs.py"
PAGE_API_KEYS = "app_pages/api_keys.py"
PAGE_ACCOUNT = "app_pages/account.py"
PAGE_CREDITS = "app_pages/credits.py"
PAGE_USERS = "app_pages/users.py"
PAGE_REFERENCE = "app_pages/reference_data.py"
PAGE_PRIVACY = "app_pages/privacy.py"
PAGE_SUPPRESSION = "app_pages/suppression.py"
PAGE_AUDIT = "app_pages/audit_log.py"
PAGE_SOURCES = "app_pages/sources.py"

GENERIC_ERROR = (
    "Something went wrong on this page. Please try again; if it keeps happening, tell your "
    "administrator (the details are in the server log)."
)

log = logging.getLogger("phone_app")


def signed_in_user() -> str | None:
    if st.session_state.get(AUTH_STATUS) is not True:
        return None
    user = st.session_state.get(USERNAME)
    return str(user) if user else None


def is_admin() -> bool:
    roles = st.session_state.get(ROLES) or []
    return signed_in_user() is not None and ADMIN_ROLE in roles


def require_user() -> str:
    """The signed-in username, or stop the page with a message."""
    user = signed_in_user()
    if user is None:
        st.warning("Please sign in first.")
        st.stop()
    assert user is not None
    return user


def require_admin() -> str:
    """The signed-in admin's username; anyone else is refused (also by direct URL)."""
    user = require_user()
    if not is_admin():
        st.error("This page is for administrators only.")
        st.stop()
    return user


# Markdown that text can trigger inside one line: emphasis, code, links and images
# ("![" needs the "["), HTML-ish brackets, tables, strike-through, LaTeX; Streamlit's
# ":icon:" / ":red[...]" directives (a colon before a letter); and block markers at the
# start (heading, quote, list).
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\](){}<>|~$&]|:(?=[A-Za-z/]))")
_BLOCK_START = re.compile(r"^(?:([#>+\-])|(\d+)([.)]))")


def plain(text: str) -> str:
    """``text`` as literal text inside Streamlit markdown (captions, alerts, labels):
    links, images, emphasis, colours, icons and LaTeX in user-typed text are escaped."""
    escaped = _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    return _BLOCK_START.sub(
        lambda m: "\\" + m.group(1) if m.group(1) else f"{m.group(2)}\\{m.group(3)}", escaped
    )


def explain(error: PhoneError) -> str:
    """The message a user sees for an engine error."""
    if isinstance(error, InsufficientCredits):
        return (
            f"Not enough credits: this needs {labels.count(error.required, 'credit')} but "
            f"only {error.remaining:,} {'is' if error.remaining == 1 else 'are'} available. "
            "Lower the maximum credits, or ask an administrator for more credits."
        )
    message = str(error) or type(error).__name__
    return plain(message[:1].upper() + message[1:])  # messages can quote cells and names


def log_unexpected(where: str, exc: BaseException) -> None:
    """Log type and stack only: exception messages can hold cell values (personal data)."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unexpected %s in %s\n%s", type(exc).__name__, where, stack)


def _fragment_rerun() -> bool:
    ctx = get_script_run_ctx()
    return ctx is not None and bool(getattr(ctx, "fragment_ids_this_run", None))


def fragment_rerun() -> bool:
    """Whether this run reruns a fragment only (what the full run read is then stale)."""
    return _fragment_rerun()


def _session_ended() -> bool:
    """A fragment rerun does not run app.py: check the session here (a signed-out, disabled
    or demoted user's live panel stops at its next refresh)."""
    user = signed_in_user()
    at = st.session_state.get(SIGNED_IN_AT)
    if user is None or not isinstance(at, int | float):
        return False  # not signed in: require_user says so
    return ui_api.session_user(user, float(at)) is None


def guarded(where: str, body: Callable[[], None]) -> None:
    """Run a page (or fragment) body: engine errors shown as is, anything else generic."""
    try:
        if _fragment_rerun() and _session_ended():
            st.rerun(scope="app")  # app.py ends the session and shows the sign-in form
        body()
    except PhoneError as exc:
        st.error(explain(exc))
    except Exception as exc:
        log_unexpected(where, exc)
        st.error(GENERIC_ERROR)


def flash(message: str) -> None:
    """Show ``message`` as a success at the top of the page after the next rerun."""
    st.session_state[FLASH] = message


def show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message)
