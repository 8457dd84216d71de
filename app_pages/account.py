"""Account: who you are, your own password (changed with the current one), sign-out, and
where to be told when a batch ends."""

from __future__ import annotations

import streamlit as st

from ui import auth, common, notify_settings


def main() -> None:
    user = common.require_user()
    st.title("Account")
    auth.account_notice()
    name = str(st.session_state.get(common.NAME) or user)
    role = "administrator" if common.is_admin() else "user"
    st.markdown(f"**{common.plain(name)}** · username {common.plain(user)} · {role}")
    st.caption(
        "Changing your password signs out every other session of your account. "
        "Sign out (in the sidebar) ends every session of your account, on every browser."
    )
    auth.change_password_form(user)
    st.divider()
    notify_settings.section(user)


common.guarded("account", main)
