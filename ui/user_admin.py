"""The Users page's "manage a user" part: role, disable/enable, reset, remove, each
risky action behind a confirm step, and a new password shown once."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_admin
from phone_core.users import ROLES, UserInfo
from ui import common

# Widget keys.
PICK = "users_pick"
ROLE_PICK = "users_role_pick"
ROLE_SAVE = "users_role_save"
DISABLE = "users_disable"
ENABLE = "users_enable"
RESET = "users_reset"
REMOVE = "users_remove"
CONFIRM_YES = "users_confirm_yes"
CONFIRM_NO = "users_confirm_no"
# Page state.
SHOW_ONCE = "users_show_once"  # (username, password) shown once, then dropped
CONFIRM = "users_confirm"  # (action, username) waiting for "Yes"

CONFIRMS = {
    "reset": (
        "Reset the password of {user}? Their current password stops working, they are "
        "signed out everywhere, and you get a new password to give them.",
        "Yes, reset the password",
    ),
    "remove": (
        "Remove {user}? They can no longer sign in, their API keys are revoked, and the "
        "username is never given out again. Their runs and credit history stay for the "
        "audit. This cannot be undone.",
        "Yes, remove the user",
    ),
}


def _confirm(admin: str) -> bool:
    """The pending "are you sure?" of a reset or removal; True while one is shown."""
    pending = st.session_state.get(CONFIRM)
    if not pending:
        return False
    action, username = pending
    question, yes = CONFIRMS[action]
    st.warning(question.format(user=common.plain(username)), icon=":material/warning:")
    left, right, _ = st.columns([1, 1, 3])
    if left.button(yes, key=CONFIRM_YES, type="primary"):
        st.session_state.pop(CONFIRM, None)
        if action == "reset":
            st.session_state[SHOW_ONCE] = (username, ui_admin.reset_password(username, by=admin))
        else:
            ui_admin.remove_user(username, by=admin)
            common.flash(f"Removed {username}.")
        st.rerun()
    if right.button("Cancel", key=CONFIRM_NO):
        st.session_state.pop(CONFIRM, None)
        st.rerun()
    return True


def _actions(admin: str, user: UserInfo) -> None:
    name = user.username
    role_col, state_col, reset_col, remove_col = st.columns(4)
    with role_col:
        role = st.selectbox("Role", ROLES, index=ROLES.index(user.role), key=ROLE_PICK)
        if st.button("Save role", key=ROLE_SAVE, disabled=role == user.role):
            ui_admin.set_role(name, str(role), by=admin)
            common.flash(f"{name} is now {'an' if role == 'admin' else 'a'} {role}.")
            st.rerun()
    with state_col:
        st.caption(f"Status: {user.status}")
        if user.disabled:
            if st.button("Enable", key=ENABLE):
                ui_admin.enable_user(name)
                common.flash(f"{name} can sign in again.")
                st.rerun()
        elif st.button("Disable", key=DISABLE, help="Signs them out; their API keys stop."):
            ui_admin.disable_user(name, by=admin)
            common.flash(f"{name} is disabled: signed out, and their API keys are refused.")
            st.rerun()
    with reset_col:
        st.caption("A new random password")
        if st.button("Reset password…", key=RESET):
            st.session_state[CONFIRM] = ("reset", name)
            st.rerun()
    with remove_col:
        st.caption("For good; runs stay")
        if st.button("Remove…", key=REMOVE):
            st.session_state[CONFIRM] = ("remove", name)
            st.rerun()


def manage(admin: str, users: list[UserInfo]) -> None:
    st.markdown("#### Manage a user")
    if _confirm(admin):
        return
    by_name = {u.username: u for u in users if not u.removed}
    picked = st.selectbox(
        "User",
        list(by_name),
        index=None,
        placeholder="Choose a user",
        format_func=lambda n: f"{by_name[n].name} ({n})" if by_name[n].name else n,
        key=PICK,
    )
    if picked is None:
        return
    if picked == admin:
        st.info(
            "This is you. Change your password on the Account page; another admin can "
            "change your role, disable or remove you."
        )
        return
    _actions(admin, by_name[picked])
    st.caption("Their API keys are listed, and can be revoked, on the API keys page.")


def show_once() -> None:
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
