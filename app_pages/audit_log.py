"""Audit log (admin): who did what, when and from where; filters and a CSV export.

The log is append-only and holds no personal data of the people in the records: only
usernames, ids, list names and counts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd
import streamlit as st

from phone_core import audit, ui_admin
from ui import common, labels

ACTOR = "audit_actor"
ACTION = "audit_action"
PERIOD = "audit_period"
EXPORT = "audit_export"
EXPORTED = "audit_exported"  # (filters, csv bytes) prepared by the last export click
ANY = "(any)"
SHOWN = 500


def _filters() -> tuple[str | None, str | None, datetime | None, datetime | None]:
    cols = st.columns(3)
    actors = [ANY, *ui_admin.audit_actors()]
    actor = cols[0].selectbox("Who", actors, key=ACTOR)
    action = cols[1].selectbox("Action", [ANY, *audit.ACTIONS], key=ACTION)
    today = date.today()
    period = cols[2].date_input(
        "Period (UTC)", value=(today - timedelta(days=30), today), key=PERIOD
    )
    first = last = None
    if isinstance(period, tuple) and period:
        first, last = period[0], period[-1]
    since = datetime.combine(first, time.min) if first else None
    until = datetime.combine(last + timedelta(days=1), time.min) if last else None
    return (
        None if actor == ANY else str(actor),
        None if action == ANY else str(action),
        since,
        until,
    )


def _table(entries: list[audit.Entry]) -> None:
    if not entries:
        st.info("Nothing recorded for these filters.")
        return
    frame = pd.DataFrame(
        [
            {
                "When (UTC)": labels.when(e.at) + e.at.strftime(":%S"),
                "Who": e.actor,
                "Action": e.action,
                "Target": e.target,
                "Detail": ", ".join(f"{k}: {v}" for k, v in sorted(e.detail.items())),
                "From": e.ip,
                "Via": e.via,
            }
            for e in entries[:SHOWN]
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    if len(entries) > SHOWN:
        st.caption(f"The newest {SHOWN:,} of {len(entries):,} are shown; the export has all.")


def _body() -> None:
    actor, action, since, until = _filters()
    entries = ui_admin.audit_entries(
        actor=actor, action=action, since=since, until=until, limit=audit.MAX_ROWS
    )
    _table(entries)
    filters = {
        "actor": actor or "",
        "action": action or "",
        "since": since.date().isoformat() if since else "",
        "until": (until - timedelta(days=1)).date().isoformat() if until else "",
    }
    if st.button("Export these entries (CSV)", key=EXPORT):
        st.session_state[EXPORTED] = (filters, ui_admin.audit_csv(entries, filters))
    done = st.session_state.get(EXPORTED)
    if done and done[0] == filters:
        st.download_button("Download audit-log.csv", done[1], "audit-log.csv", "text/csv")


def main() -> None:
    common.require_admin()
    st.title("Audit log")
    st.caption(
        "Sign-ins and failures, user and role changes, password resets, API keys, credit "
        "grants and limits, reference-data and do-not-call list loads, settings that change "
        "spending. Append-only; the export is recorded too."
    )
    common.guarded("audit log", _body)


main()
