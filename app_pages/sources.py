"""Sources (admin): the waterfall's vendors, their keys, prices, limits and order, and what
each one finds and costs.

Order of lookups: the cache first (free), the reference directory, then the enabled
vendors in the order shown. Values set in the environment (PHONE_WATERFALL, PHONE_LANTERN_*,
PHONE_VENDOR_<NAME>_*) win over this page, which says so beside each one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from phone_core import ui_admin
from ui import common, sources_view

PICK = "src_pick"
PERIOD = "src_period"
RESULT = "src_test_result"  # (name, worked, message) of the last "Test connection"


def _order_buttons(names: list[str], name: str, admin: str) -> None:
    if name not in names:
        return
    i = names.index(name)
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Move up", key="src_up", disabled=i == 0):
        names[i - 1], names[i] = names[i], names[i - 1]
        ui_admin.set_source_order(names, by=admin)
        st.rerun()
    if right.button("Move down", key="src_down", disabled=i == len(names) - 1):
        names[i + 1], names[i] = names[i], names[i + 1]
        ui_admin.set_source_order(names, by=admin)
        st.rerun()


def _test(name: str) -> None:
    if st.button("Test connection", key="src_test"):
        with st.spinner("Calling the vendor once..."):
            worked, message = ui_admin.test_source(name)
        st.session_state[RESULT] = (name, worked, message)
    result = st.session_state.get(RESULT)
    if result and result[0] == name:
        (st.success if result[1] else st.error)(common.plain(result[2]))


def main() -> None:
    admin = common.require_admin()
    st.title("Sources")
    st.caption(
        "Where phones come from, in order: the phone cache (free), the reference directory, "
        "then the enabled vendors below, each with your own API key and prices."
    )
    common.show_flash()
    env_order = ui_admin.waterfall_order_from_env()
    if env_order:
        st.info(
            "PHONE_WATERFALL is set in the environment: it decides which sources run and "
            "in which order; the switches and order here do not apply until it is removed."
        )
    views = ui_admin.source_views()
    st.caption(ui_admin.directory_line())
    sources_view.adapters_table(views)
    labels = {v.name: v.label for v in views}
    name = st.selectbox("Vendor", list(labels), format_func=lambda n: labels[n], key=PICK)
    view = next(v for v in views if v.name == name)
    if not env_order:
        _order_buttons([v.name for v in views if v.usable], view.name, admin)
    sources_view.edit_form(view, admin)
    _test(view.name)

    st.subheader("What each source finds and costs")
    today = datetime.now(UTC).date()
    chosen = st.date_input(
        "Period (UTC)", (today - timedelta(days=29), today), max_value=today, key=PERIOD
    )
    if not isinstance(chosen, tuple) or len(chosen) != 2:
        st.info("Choose the last day of the period too.")
        return
    report = ui_admin.sources_report(chosen[0], chosen[1])
    sources_view.figures(report)

    st.subheader("Suggested order")
    st.caption(
        "Cheapest expected credits per phone found first: price ÷ hit rate, the hit rate "
        "measured over the last 90 days and smoothed towards 30% (as if each vendor had "
        "also been sent 20 lookups and found 6), so a new vendor is not ranked on a handful "
        "of lookups."
    )
    order = sources_view.suggested(ui_admin.sources_report(today - timedelta(days=89), today))
    if st.button("Apply suggested order", key="src_apply", disabled=env_order or not order):
        applied = ui_admin.apply_suggested_order(by=admin)
        common.flash(f"Order applied: {', '.join(applied)}.")
        st.rerun()


common.guarded("sources", main)
