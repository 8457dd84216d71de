"""The Credits page's usage report: spending by user, day and run, and per-run reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from phone_core import ui_api, ui_batches
from phone_core.models import CREDITS_FILE, UsageRow
from ui import labels

# Widget keys.
USAGE_FROM = "credits_usage_from"
USAGE_TO = "credits_usage_to"
USAGE_USER = "credits_usage_user"
CSV_RUN = "credits_csv_run"
CSV_DOWNLOAD = "credits_csv_download"

EVERYONE = "Everyone"


def usage(usernames: list[str]) -> list[UsageRow]:
    """Credits spent in a chosen period, by user, day and run; the rows shown."""
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
    frame = pd.DataFrame([r.model_dump() for r in rows]).rename(
        columns={"user": "User", "day": "Day", "credits": "Credits"}
    )
    frame["run_id"] = frame["run_id"].fillna("")
    st.metric("Credits spent in the period", f"{int(frame['Credits'].sum()):,}")
    by_user, by_day, by_run = st.tabs(["By user", "By day", "By run"])
    with by_user:
        per_user = frame.groupby("User", as_index=False)["Credits"].sum()
        st.bar_chart(
            per_user, x="User", y="Credits", horizontal=True, height=80 + 40 * len(per_user)
        )
    with by_day:
        per_day = frame.groupby(["Day", "User"], as_index=False)["Credits"].sum()
        st.bar_chart(per_day, x="Day", y="Credits", color="User", height=280)
    with by_run:
        named = ui_api.run_names([r for r in frame["run_id"] if r])
        per_run = frame.groupby(["run_id", "User"], as_index=False).agg(Credits=("Credits", "sum"))
        per_run.insert(
            0, "Batch", [named.get(r, ("", None))[0] or "Untitled" for r in per_run["run_id"]]
        )
        per_run.insert(
            1,
            "Created (UTC)",
            [labels.when(named.get(r, ("", None))[1]) for r in per_run["run_id"]],
        )
        st.dataframe(
            per_run.sort_values("Created (UTC)", ascending=False).rename(
                columns={"run_id": "Run id"}
            ),
            hide_index=True,
            width="stretch",
            key="credits_by_run",
        )
    return rows


def credit_report(admin: str, rows: list[UsageRow]) -> None:
    """Download one run's credits.csv (any run with spending in the period)."""
    named = ui_api.run_names([r.run_id for r in rows if r.run_id])
    if not named:
        return
    run_ids = sorted(named, key=lambda rid: named[rid][1], reverse=True)  # newest first
    st.markdown("#### Per-run credit report")
    owners = {r.run_id: r.user for r in rows}

    def title(rid: str) -> str:
        label, created = named[rid]
        return f"{label or 'Untitled'} · {labels.when(created)} · {owners.get(rid, '')}"

    left, right = st.columns([2, 1])
    run_id = left.selectbox("Run", run_ids, format_func=title, key=CSV_RUN)
    right.write("")
    right.download_button(
        f"Download {CREDITS_FILE.name}",
        data=lambda: ui_batches.download(admin, str(run_id), CREDITS_FILE.name, admin=True),
        file_name=f"credits-{str(run_id)[:8]}.csv",
        mime=CREDITS_FILE.mime,
        key=CSV_DOWNLOAD,
        on_click="ignore",
        icon=":material/download:",
    )
