"""Credits (admin): balances, holds, grants, monthly limits, and usage by user, day and run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from phone_core import ui_admin
from phone_core.models import CreditSummary
from ui import common, labels, usage_view

# Widget keys.
GRANT_FORM = "credits_grant_form"
GRANT_USER = "credits_grant_user"
GRANT_AMOUNT = "credits_grant_amount"
GRANT_NOTE = "credits_grant_note"
GRANT = "credits_grant"
LIMIT_FORM = "credits_limit_form"
LIMIT_USER = "credits_limit_user"
LIMIT_NONE = "credits_limit_none"
LIMIT_VALUE = "credits_limit_value"
LIMIT_SAVE = "credits_limit_save"

GRANT_COLUMNS = {"user": "User", "amount": "Credits", "note": "Note", "created_at": "When (UTC)"}


def _balances(summaries: list[CreditSummary]) -> None:
    st.subheader("Balances")
    frame = pd.DataFrame(
        [
            {
                "User": s.user,
                "Balance": s.balance,
                "Held by running batches": s.held,
                "Available": s.available,
                "Monthly limit": "none" if s.monthly_limit is None else f"{s.monthly_limit:,}",
                "Spent this month": s.spent_this_month,
                "Granted in total": s.granted_total,
            }
            for s in summaries
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="credits_balances")
    st.caption(
        "Available = balance minus what running batches hold, and within the monthly limit "
        "when one is set."
    )
    st.info(ui_admin.cache_policy(), icon=":material/cached:")


def _grant_form(admin: str, usernames: list[str]) -> None:
    with st.form(GRANT_FORM, clear_on_submit=True):
        st.markdown("#### Grant credits")
        user = st.selectbox("User", usernames, key=GRANT_USER)
        amount = st.number_input(
            "Credits",
            min_value=-1_000_000,
            max_value=1_000_000,
            value=100,
            step=10,
            key=GRANT_AMOUNT,
            help="A negative amount removes credits (a correction).",
        )
        note = st.text_input("Note (optional)", key=GRANT_NOTE, max_chars=200)
        if st.form_submit_button("Grant", type="primary", key=GRANT) and user:
            summary = ui_admin.grant_credits(str(user), int(amount), note, by=admin)
            common.flash(
                f"Granted {labels.count(int(amount), 'credit')} to {common.plain(user)}: "
                f"{summary.available:,} available."
            )
            st.rerun()


def _limit_form(usernames: list[str], summaries: dict[str, CreditSummary]) -> None:
    with st.form(LIMIT_FORM):
        st.markdown("#### Monthly limit")
        user = st.selectbox("User", usernames, key=LIMIT_USER)
        no_limit = st.checkbox("No monthly limit", value=False, key=LIMIT_NONE)
        limit = st.number_input(
            "Most credits this user may spend per calendar month",
            min_value=0,
            value=1000,
            step=100,
            key=LIMIT_VALUE,
        )
        if st.form_submit_button("Save limit", key=LIMIT_SAVE) and user:
            summary = ui_admin.set_monthly_limit(str(user), None if no_limit else int(limit))
            shown = "no limit" if summary.monthly_limit is None else f"{summary.monthly_limit:,}"
            common.flash(f"Monthly limit of {user}: {shown}.")
            st.rerun()
    current = [
        f"{u}: {s.monthly_limit:,}" for u, s in summaries.items() if s.monthly_limit is not None
    ]
    st.caption("Current limits: " + (", ".join(current) if current else "none."))


def main() -> None:
    admin = common.require_admin()
    st.title("Credits")
    common.show_flash()
    summaries = ui_admin.credit_summaries([u.username for u in ui_admin.list_users()])
    usernames = [s.user for s in summaries]  # people who can sign in, and any API-only account
    by_user = {s.user: s for s in summaries}
    _balances(summaries)
    left, right = st.columns(2)
    with left:
        _grant_form(admin, usernames)
    with right:
        _limit_form(usernames, by_user)
    with st.expander("Recent grants"):
        grants = ui_admin.grants(limit=50)
        if grants:
            st.dataframe(
                pd.DataFrame(grants).rename(columns=GRANT_COLUMNS),
                hide_index=True,
                width="stretch",
                key="grants",
            )
        else:
            st.caption("No grants yet.")
    rows = usage_view.usage(usernames)
    usage_view.credit_report(admin, rows)


common.guarded("credits", main)
