"""Credits (admin): balances, holds, grants, monthly limits, and usage by user, day and run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from pages import _common as ui
from phone_core import ui_api
from phone_core.models import CreditSummary, UsageRow

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
USAGE_FROM = "credits_usage_from"
USAGE_TO = "credits_usage_to"
USAGE_USER = "credits_usage_user"
CSV_RUN = "credits_csv_run"
CSV_DOWNLOAD = "credits_csv_download"

EVERYONE = "Everyone"


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
            summary = ui_api.grant_credits(str(user), int(amount), note, by=admin)
            ui.flash(f"Granted {int(amount):,} credits to {user}: {summary.available:,} available.")
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
            summary = ui_api.set_monthly_limit(str(user), None if no_limit else int(limit))
            shown = "no limit" if summary.monthly_limit is None else f"{summary.monthly_limit:,}"
            ui.flash(f"Monthly limit of {user}: {shown}.")
            st.rerun()
    current = [
        f"{u}: {s.monthly_limit:,}" for u, s in summaries.items() if s.monthly_limit is not None
    ]
    st.caption("Current limits: " + (", ".join(current) if current else "none."))


def _usage(usernames: list[str]) -> list[UsageRow]:
    st.subheader("Usage")
    today = datetime.now(UTC).date()
    cols = st.columns(3)
    start = cols[0].date_input("From", value=today - timedelta(days=30), key=USAGE_FROM)
    end = cols[1].date_input("To", value=today, key=USAGE_TO)
    who = cols[2].selectbox("User", [EVERYONE, *usernames], key=USAGE_USER)
    if not isinstance(start, date) or not isinstance(end, date):
        st.info("Pick a start and an end date.")
        return []
    rows = ui_api.usage(
        None if who == EVERYONE else str(who),
        datetime.combine(start, time.min),
        datetime.combine(end + timedelta(days=1), time.min),
    )
    if not rows:
        st.info("No credits were spent in this period.")
        return []
    frame = pd.DataFrame([r.model_dump() for r in rows])
    frame["run_id"] = frame["run_id"].fillna("")
    st.metric("Credits spent in the period", f"{int(frame['credits'].sum()):,}")
    by_user, by_day, by_run = st.tabs(["By user", "By day", "By run"])
    with by_user:
        per_user = frame.groupby("user", as_index=False)["credits"].sum()
        st.bar_chart(
            per_user, x="user", y="credits", horizontal=True, height=80 + 40 * len(per_user)
        )
    with by_day:
        per_day = frame.groupby(["day", "user"], as_index=False)["credits"].sum()
        st.bar_chart(per_day, x="day", y="credits", color="user", height=280)
    with by_run:
        per_run = (
            frame.groupby(["run_id", "user"], as_index=False)["credits"]
            .sum()
            .sort_values("credits", ascending=False)
        )
        st.dataframe(
            per_run.rename(columns={"run_id": "Run", "user": "User", "credits": "Credits"}),
            hide_index=True,
            width="stretch",
            key="credits_by_run",
        )
    return rows


def _credit_csv(admin: str, rows: list[UsageRow]) -> None:
    run_ids = sorted({r.run_id for r in rows if r.run_id})
    if not run_ids:
        return
    st.markdown("#### Per-run credit report")
    owners = {r.run_id: r.user for r in rows}
    left, right = st.columns([2, 1])
    run_id = left.selectbox(
        "Run",
        run_ids,
        format_func=lambda rid: f"{rid} ({owners.get(rid, '')})",
        key=CSV_RUN,
    )
    right.write("")
    right.download_button(
        "Download credits.csv",
        data=lambda: ui_api.download(admin, str(run_id), "credits.csv", admin=True),
        file_name=f"credits-{str(run_id)[:8]}.csv",
        mime="text/csv",
        key=CSV_DOWNLOAD,
        on_click="ignore",
        icon=":material/download:",
    )


def main() -> None:
    admin = ui.require_admin()
    st.title("Credits")
    ui.show_flash()
    summaries = ui_api.credit_summaries([u.username for u in ui_api.list_users()])
    usernames = [s.user for s in summaries]  # people who can sign in, and any API-only account
    by_user = {s.user: s for s in summaries}
    _balances(summaries)
    left, right = st.columns(2)
    with left:
        _grant_form(admin, usernames)
    with right:
        _limit_form(usernames, by_user)
    with st.expander("Recent grants"):
        grants = ui_api.grants(limit=50)
        if grants:
            st.dataframe(pd.DataFrame(grants), hide_index=True, width="stretch", key="grants")
        else:
            st.caption("No grants yet.")
    rows = _usage(usernames)
    _credit_csv(admin, rows)


ui.guarded("credits", main)
