"""Users (admin): who can sign in; add, change role, disable/enable, reset a password, remove.

Every change that should end a user's sessions does so at their next click (the registry
is read on every rerun). Resetting or removing needs a second, explicit confirmation;
your own account is managed on the Account page (password) and by another admin.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_admin
from phone_core.users import MIN_PASSWORD_LENGTH, ROLES, UserInfo, generate_password
from ui import common, labels, user_admin

# Widget keys.
ADD_FORM = "users_add_form"
NEW_USERNAME = "users_new_username"
NEW_NAME = "users_new_name"
NEW_EMAIL = "users_new_email"
NEW_ROLE = "users_new_role"
NEW_PASSWORD = "users_new_password"
ADD = "users_add"
SHOW_REMOVED = "users_show_removed"
# Page state.
CLEAR_ADD = "users_clear_add"  # set after a user was added: empty the form on the next run
ADD_FIELDS = (NEW_USERNAME, NEW_NAME, NEW_EMAIL, NEW_PASSWORD)


def _table(users: list[UserInfo]) -> None:
    frame = pd.DataFrame(
        [
            {
                "Username": u.username,
                "Name": u.name,
                "Email": u.email,
                "Role": u.role.title(),
                "Status": u.status.capitalize(),
                "Created (UTC)": labels.when(u.created_at),
            }
            for u in users
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="users_table")


def _add_user() -> None:
    # Not clear_on_submit: a refused entry (taken username, short password) stays in the
    # form to be corrected; only a user actually added empties it.
    if st.session_state.pop(CLEAR_ADD, False):
        for key in ADD_FIELDS:
            st.session_state[key] = ""
    with st.form(ADD_FORM):
        st.markdown("#### Add a user")
        left, right = st.columns(2)
        username = left.text_input("Username", key=NEW_USERNAME, max_chars=50)
        name = right.text_input("Full name", key=NEW_NAME, max_chars=200)
        email = left.text_input("Email (optional)", key=NEW_EMAIL, max_chars=200)
        role = right.selectbox("Role", ROLES[::-1], key=NEW_ROLE)
        password = st.text_input(
            "Password (leave empty to generate one)",
            type="password",
            key=NEW_PASSWORD,
            help=f"At least {MIN_PASSWORD_LENGTH} characters.",
        )
        if st.form_submit_button("Add user", type="primary", key=ADD):
            chosen = password or generate_password()
            info = ui_admin.add_user(username, name, email, chosen, str(role))
            st.session_state[user_admin.SHOW_ONCE] = (info.username, "" if password else chosen)
            st.session_state[CLEAR_ADD] = True
            st.rerun()


def main() -> None:
    admin = common.require_admin()
    st.title("Users")
    st.caption(
        "People who can sign in to this app. Admins also see the admin pages. A disabled "
        "user cannot sign in and their API keys are refused until enabled again."
    )
    user_admin.show_once()
    common.show_flash()
    show_removed = st.toggle("Show removed users", key=SHOW_REMOVED)
    users = ui_admin.list_users(include_removed=show_removed)
    _table(users)
    user_admin.manage(admin, users)
    _add_user()


common.guarded("users", main)
