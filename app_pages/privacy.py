"""Privacy (admin): the retention policy and its purges, and erasing a person on request."""

from __future__ import annotations

import streamlit as st

from phone_core import ui_admin
from phone_core.errors import InputError
from ui import common, labels, privacy_view

# Widget keys.
PURGE = "privacy_purge"
PURGE_DONE = "privacy_purge_done"
ERASE_FORM = "privacy_erase_form"
KIND = "privacy_kind"
VALUE = "privacy_value"
CONFIRM = "privacy_confirm"
ERASE = "privacy_erase"
RECEIPT = "privacy_receipt"  # the last erasure's receipt, shown on this run only


def _purge_now(admin: str) -> None:
    st.session_state[PURGE_DONE] = ui_admin.purge_now(admin)


def _retention(admin: str) -> None:
    st.subheader("Retention")
    overview = ui_admin.retention_overview()
    policy = overview["policy"]
    st.dataframe(privacy_view.policy_frame(policy), hide_index=True, width="stretch", key="policy")
    st.caption(
        "Set with PHONE_RETAIN_OUTPUTS_DAYS, PHONE_RETAIN_RECORDS_DAYS, "
        "PHONE_RETAIN_PERSONS_DAYS and PHONE_RETAIN_SOURCE_CALLS_DAYS (the cache: "
        "PHONE_CACHE_TTL_DAYS). Expired data is removed every day "
        f"(schedule `{overview['schedule']}`, UTC) by the worker. Redacted records keep their "
        "id, status and charges, so credit balances and usage still add up."
    )
    purges = overview["purges"]
    if purges:
        last = purges[0]
        st.markdown(f"**Last purge:** as of {labels.when(last.as_of)} UTC")
        st.dataframe(
            privacy_view.purges_frame(purges), hide_index=True, width="stretch", key="purges"
        )
    else:
        st.caption("No purge has run yet.")
    # The purge runs in the button's callback, before this page is drawn again: the
    # policy's table and the last purges above already include it.
    st.button("Purge expired data now", key=PURGE, on_click=_purge_now, args=(admin,))
    counts = st.session_state.pop(PURGE_DONE, None)
    if counts is not None:
        st.success(
            "Purge done: "
            + ", ".join(f"{privacy_view.COUNT_LABELS[k].lower()}: {v:,}" for k, v in counts.items())
            + "."
        )


def _erase(admin: str) -> None:
    st.subheader("Erase a person")
    st.caption(
        "For a data subject's request to be forgotten: the person is removed from the "
        "directory, the cache and every user's person store; their rows in past runs keep "
        "their id, status and charge but lose every personal field (detail 'erased'), and "
        "the stored files of those runs are rewritten. This cannot be undone. The receipt "
        "lists what was touched, without the personal data."
    )
    with st.form(ERASE_FORM, clear_on_submit=True):
        kind = st.selectbox(
            "Identify the person by",
            list(privacy_view.KIND_LABELS),
            format_func=privacy_view.KIND_LABELS.__getitem__,
            key=KIND,
        )
        value = st.text_input("Email, LinkedIn profile URL or phone number", key=VALUE)
        sure = st.checkbox("I understand this cannot be undone", key=CONFIRM)
        if st.form_submit_button("Erase", key=ERASE):
            if not sure:
                st.error("Tick the box to confirm first.")
            else:
                try:
                    st.session_state[RECEIPT] = ui_admin.erase_person(admin, kind, value)
                except InputError as exc:
                    st.error(f"Not erased: {common.plain(str(exc))}.")
    shown = st.session_state.pop(RECEIPT, None)
    if shown:
        state, receipt = shown
        if state == "done":
            st.success("Erased. " + privacy_view.receipt_text(receipt))
        else:
            st.info("The erasure is under way on the worker; its receipt appears below.")
        st.json(receipt, expanded=False)
    rows = ui_admin.recent_erasures()
    if rows:
        st.markdown("#### Erasures")
        st.dataframe(
            privacy_view.erasures_frame(rows), hide_index=True, width="stretch", key="erasures"
        )


def main() -> None:
    admin = common.require_admin()
    st.title("Privacy")
    _retention(admin)
    _erase(admin)


common.guarded("privacy", main)
