"""Rendering helpers of the Sources page: the adapters table, one adapter's form, the
figures with their chart, and the suggested order. Data comes through ``ui_api`` only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from phone_core import ui_admin, ui_api
from phone_core.ui_admin import VendorView
from ui import common

CLEAR_KEY = "src_clear_key"  # page state: empty this vendor's key field on the next run
ENV_NOTE = "Set in the environment (it wins over this page): change it there."
FIELD_ENV = {  # form field -> the VendorView.from_env name
    "enabled": "enabled",
    "lookup_cost": "lookup_cost",
    "found_cost": "found_cost",
    "failed_cost": "failed_cost",
    "rate_per_sec": "rate_per_sec",
    "concurrency": "concurrency",
    "base_url": "base_url",
    "api_key": "api_key",
}


def status_of(v: VendorView) -> str:
    if not v.enabled:
        return "Off (set in the environment)" if "enabled" in v.from_env else "Off"
    return f"On, not used: {v.problem}" if v.problem else "On"


def adapters_table(views: list[VendorView]) -> None:
    frame = pd.DataFrame(
        [
            {
                "Order": str(i + 1) if v.usable else "-",
                "Source": v.label,
                "Name": v.name,
                "Status": status_of(v),
                "Kind": {"single": "one record a call", "bulk": "bulk", "async": "async job"}.get(
                    v.shape, v.shape
                ),
                "Credits: lookup / found / failed": (
                    f"{v.price.lookup_cost} / {v.price.found_cost} / {v.price.failed_cost}"
                ),
                "Rate /s": v.rate_per_sec,
                "Concurrency": v.concurrency,
                "API key": "set" if v.key_set else "not set",
                "From the environment": ", ".join(sorted(v.from_env)) or "-",
            }
            for i, v in enumerate(views)
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="src_table")


def edit_form(v: VendorView, admin: str) -> None:
    """Save one adapter's values; a key typed here is stored encrypted, never shown again."""
    env = v.from_env
    if st.session_state.pop(CLEAR_KEY, None) == v.name:  # saved: the typed key is gone
        st.session_state[f"src_key_{v.name}"] = ""
        st.session_state[f"src_clear_{v.name}"] = False

    def locked(name: str) -> dict[str, Any]:
        return {"disabled": True, "help": ENV_NOTE} if FIELD_ENV[name] in env else {}

    with st.form(f"src_form_{v.name}"):
        st.markdown(f"#### {common.plain(v.label)}")
        st.caption(common.plain(f"API documentation: {v.docs_url}"))
        enabled = st.checkbox(
            "Enabled", value=v.enabled, key=f"src_enabled_{v.name}", **locked("enabled")
        )
        c1, c2, c3 = st.columns(3)
        lookup = c1.number_input(
            "Credits per lookup",
            0,
            None,
            v.price.lookup_cost,
            key=f"src_lookup_{v.name}",
            **locked("lookup_cost"),
        )
        found = c2.number_input(
            "Credits per phone found",
            0,
            None,
            v.price.found_cost,
            key=f"src_found_{v.name}",
            **locked("found_cost"),
        )
        failed = c3.number_input(
            "Credits per failed lookup",
            0,
            None,
            v.price.failed_cost,
            key=f"src_failed_{v.name}",
            **locked("failed_cost"),
        )
        c1, c2 = st.columns(2)
        rate = c1.number_input(
            "Rate limit (requests per second)",
            0.01,
            10_000.0,
            float(v.rate_per_sec),
            key=f"src_rate_{v.name}",
            **locked("rate_per_sec"),
        )
        conc = c2.number_input(
            "Concurrency", 1, 1000, v.concurrency, key=f"src_conc_{v.name}", **locked("concurrency")
        )
        base_url = st.text_input(
            "Base URL (empty: the vendor's documented address)",
            v.base_url,
            key=f"src_url_{v.name}",
            max_chars=500,
            **locked("base_url"),
        )
        key_state = "A key is set (stored encrypted; it is never shown again)."
        st.caption(key_state if v.key_set else "No API key is set.")
        api_key = st.text_input(
            "New API key (leave empty to keep the current one)",
            type="password",
            key=f"src_key_{v.name}",
            **locked("api_key"),
        )
        clear = st.checkbox(
            "Remove the stored key", key=f"src_clear_{v.name}", disabled="api_key" in env
        )
        if st.form_submit_button("Save", type="primary", key="src_save"):
            typed: dict[str, Any] = {
                "enabled": bool(enabled),
                "lookup_cost": int(lookup),
                "found_cost": int(found),
                "failed_cost": int(failed),
                "rate_per_sec": float(rate),
                "concurrency": int(conc),
                "base_url": str(base_url),
            }
            ui_admin.save_source(
                v.name,
                by=admin,
                **{k: None if k in env else value for k, value in typed.items()},
                api_key=str(api_key or ""),
                clear_key=bool(clear),
            )
            st.session_state[CLEAR_KEY] = v.name
            secs = ui_api.settings().sources_refresh_sec
            common.flash(f"Saved {v.label}. New batches use it; running ones within {secs:g} s.")
            st.rerun()


def figures(report: dict[str, Any]) -> None:
    """Per source: lookups, found, hit rate, credits, cost per phone, latency, errors."""
    rows = [
        {
            "Source": s["source"],
            "Lookups": s["lookups"],
            "Phones found": s["found"],
            "Hit rate": "-" if s["hit_rate"] is None else f"{s['hit_rate']:.1%}",
            "Credits charged": s["credits"],
            "Credits per phone": s["cost_per_found"],
            "Latency p50 (ms)": s["latency_p50_ms"],
            "Latency p95 (ms)": s["latency_p95_ms"],
            "Errors": ", ".join(f"{k}: {n}" for k, n in s["errors_by_kind"].items()) or "-",
        }
        for s in report["sources"]
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="src_stats")
    daily = pd.DataFrame(report["daily"])
    if daily.empty:
        st.info("No lookups in this period yet: the figures fill in as batches run.")
        return
    chart = daily.pivot_table(index="day", columns="source", values="found", aggfunc="sum")
    st.caption("Phones found per day, by source")
    st.bar_chart(chart.fillna(0))


def suggested(report: dict[str, Any]) -> list[str]:
    rows = [
        {
            "Place": i + 1,
            "Source": s["source"],
            "Expected hit rate": f"{s['expected_hit_rate']:.1%}",
            "Expected credits per phone": s["expected_cost_per_found"],
            "Lookups measured": s["measured_lookups"],
        }
        for i, s in enumerate(report["suggested_order"])
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="src_suggest")
    return [s["source"] for s in report["suggested_order"]]
