"""Users (admin): who can sign in, add a user, reset a password (new one shown once)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_api
from phone_core.users import MIN_PASSWORD_LENGTH, ROLES, generate_password
from ui import common

# Widget keys.
ADD_FORM = "users_add_form"
NEW_USERNAME = "users_new_username"
NEW_NAME = "users_new_name"
NEW_EMAIL = "users_new_email"
NEW_ROLE = "users_new_role"
NEW_PASSWORD = "users_new_password"
ADD = "users_add"
RESET_PICK = "users_reset_pick"
RESET = "users_reset"
# Page state.
SHOW_ONCE = "users_show_once"  # (username, password) shown once, then dropped


def _add_user() -> None:
    with st.form(ADD_FORM, clear_on_submit=True):
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
            info = ui_api.add_user(username, name, email, chosen, str(role))
            st.session_state[SHOW_ONCE] = (info.username, "" if password else chosen)
            st.rerun()


def _reset(usernames: list[str]) -> None:
    st.markdown("#### Reset a password")
    left, right = st.columns([2, 1])
    username = left.selectbox("User", usernames, key=RESET_PICK)
    right.write("")
    if right.button("Reset password", key=RESET) and username:
        password = ui_api.reset_password(str(username))
        st.session_state[SHOW_ONCE] = (str(username), password)
        st.rerun()


def _show_once() -> None:
    shown = st.session_state.pop(SHOW_ONCE, None)
    if not shown:
        return
    username, password = shown
    if not password:
        st.success(f"User {username} added with the password you chose.")
        return
    st.success(
        f"The password of {username} is below. Copy it now and give it to them: it is "
        "shown only once."
    )
    st.code(password, language=None)


def main() -> None:
    common.require_admin()
    st.title("Users")
    st.caption("People who can sign in to this app. Admins also see the admin pages.")
    _show_once()
    users = ui_api.list_users()
    st.dataframe(
        pd.DataFrame([u.model_dump() for u in users]).rename(
            columns={"username": "Username", "name": "Name", "email": "Email", "role": "Role"}
        ),
        hide_index=True,
        width="stretch",
        key="users_table",
    )
    _add_user()
    _reset([u.username for u in users])


common.guarded("users", main)
