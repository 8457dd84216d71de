"""API keys: create (shown once), list and revoke the keys programs use for the HTTP API.

Admins also see every user's keys and can revoke any of them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_admin, ui_api
from phone_core.keys import ApiKey
from ui import common, labels

# Widget keys.
CREATE_FORM = "keys_create_form"
KEY_LABEL = "keys_label"
CREATE = "keys_create"
REVOKE_PICK = "keys_revoke_pick"
REVOKE = "keys_revoke"
ALL_USER = "keys_all_user"
ALL_REVOKE_PICK = "keys_all_revoke_pick"
ALL_REVOKE = "keys_all_revoke"
EVERYONE = "Everyone"
# Page state.
NEW_KEY = "keys_new_secret"  # (key id, full key) shown once, then dropped


def _status(key: ApiKey, user_status: str = "active") -> str:
    if not key.active:
        return f"revoked {labels.when(key.revoked_at)}"
    return "active" if user_status == "active" else f"refused: user {user_status}"


def _keys_frame(keys: list[ApiKey], owners: dict[str, str] | None = None) -> pd.DataFrame:
    """The keys; with ``owners`` (username -> user status) a User column too."""
    return pd.DataFrame(
        [
            {
                **({"User": k.user} if owners is not None else {}),
                "Label": k.label or "(no label)",
                "Key id": k.key_id,
                "Created (UTC)": labels.when(k.created_at),
                "Last used (UTC)": labels.when(k.last_used_at) or "never",
                "Status": _status(k, (owners or {}).get(k.user, "active")),
            }
            for k in keys
        ]
    )


def _create(user: str) -> None:
    with st.form(CREATE_FORM, clear_on_submit=True):
        st.markdown("#### Create a key")
        label = st.text_input(
            "Label", key=KEY_LABEL, max_chars=200, placeholder="e.g. CRM sync job"
        )
        if st.form_submit_button("Create key", type="primary", key=CREATE):
            record, secret = ui_api.create_key(user, label)
            st.session_state[NEW_KEY] = (record.key_id, secret)
    shown = st.session_state.pop(NEW_KEY, None)
    if shown:
        st.success(
            "Your new key is below. Copy it now (use the copy icon on the right of the box): "
            "it is stored only as a hash and will not be shown again."
        )
        st.code(shown[1], language=None)
        st.caption("Send it as `Authorization: Bearer <key>` to the HTTP API.")


def _revoke(user: str, keys: list[ApiKey]) -> None:
    active = {k.key_id: k for k in keys if k.active}
    if not active:
        return
    st.markdown("#### Revoke a key")
    left, right = st.columns([2, 1])
    key_id = left.selectbox(
        "Key",
        list(active),
        format_func=lambda kid: f"{active[kid].label or '(no label)'} ({kid})",
        key=REVOKE_PICK,
    )
    right.write("")
    if right.button("Revoke", key=REVOKE):
        ui_api.revoke_key(user, key_id)
        st.toast("The key is revoked: programs using it now get 401.")
        st.rerun()


def _everyone() -> None:
    """Admins: every user's keys, and revoke any of them."""
    st.divider()
    st.markdown("#### Everyone's keys (admin)")
    owners = {u.username: u.status for u in ui_admin.list_users(include_removed=True)}
    keys = ui_admin.list_all_keys()
    if not keys:
        st.info("Nobody has an API key yet.")
        return
    users = sorted({k.user for k in keys})
    shown_user = st.selectbox("Show the keys of", [EVERYONE, *users], key=ALL_USER)
    if shown_user != EVERYONE:
        keys = [k for k in keys if k.user == shown_user]
    st.dataframe(_keys_frame(keys, owners), hide_index=True, width="stretch", key="keys_all_table")
    active = {k.key_id: k for k in keys if k.active}
    if not active:
        return
    left, right = st.columns([2, 1])
    key_id = left.selectbox(
        "Revoke a key of any user",
        list(active),
        format_func=lambda kid: f"{active[kid].user}: {active[kid].label or '(no label)'} ({kid})",
        key=ALL_REVOKE_PICK,
    )
    right.write("")
    if right.button("Revoke", key=ALL_REVOKE):
        revoked = ui_admin.revoke_any_key(str(key_id))
        st.toast(f"The key {revoked.key_id} of {revoked.user} is revoked.")
        st.rerun()


def main() -> None:
    user = common.require_user()
    st.title("API keys")
    st.caption(
        "Programs call the HTTP API with one of your keys and act as you: same credits, same runs."
    )
    _create(user)
    keys = ui_api.list_keys(user)
    st.markdown("#### Your keys")
    if keys:
        st.dataframe(_keys_frame(keys), hide_index=True, width="stretch", key="keys_table")
    else:
        st.info("You have no API keys yet.")
    _revoke(user, keys)
    if common.is_admin():
        _everyone()


common.guarded("api keys", main)
