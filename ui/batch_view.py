"""The New batch page's pre-flight summary, budget form and submitted view."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import streamlit as st

from phone_core import ui_batches
from phone_core.models import MAX_BATCH, Preflight
from ui import common, labels


def plan_token(file_token: str, mapping: Mapping[str, str | None]) -> str:
    """Names one mapping of one upload (the budget default is set once per plan)."""
    raw = json.dumps([file_token, sorted(mapping.items())], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


STEPS = ("Upload", "Columns", "Review & submit")


def stepper(current: int) -> None:
    """The page's steps, the current one (0-based; past the last: all done) highlighted."""
    for i, (col, name) in enumerate(zip(st.columns(len(STEPS)), STEPS, strict=True)):
        if i < current:
            col.markdown(f":green[:material/check_circle: {i + 1}. {name}]")
        elif i == current:
            col.markdown(f"**:blue-background[{i + 1}. {name}]**")
        else:
            col.markdown(f":gray[{i + 1}. {name}]")


def show_preflight(pf: Preflight) -> None:
    st.subheader("3. Review & submit")
    st.markdown("**What this batch will do**")
    top = st.columns(4)
    top[0].metric("Rows in the file", f"{pf.rows:,}")
    top[1].metric("Can be enriched", f"{pf.enrichable:,}")
    top[2].metric("Skipped (missing fields)", f"{sum(pf.skipped.values()):,}")
    top[3].metric("Duplicates in the file", f"{pf.duplicates:,}", help="Charged once.")
    bottom = st.columns(5)
    bottom[0].metric("Already known (free)", f"{pf.cache_hits:,}", help=ui_batches.cache_source())
    bottom[1].metric("To look up", f"{pf.to_look_up:,}")
    bottom[2].metric(
        "Expected cost",
        labels.count(pf.expected_credits, "credit"),
        help="From each source's hit rate measured on past batches (about "
        f"{pf.expected_found:,} phones expected); the worst case is the most it can cost.",
    )
    bottom[3].metric("Worst-case cost", labels.count(pf.worst_case_credits, "credit"))
    bottom[4].metric("Your available credits", f"{pf.available_credits:,}")
    per = pf.per_record_worst_case
    credits_word = labels.count(per, "credit")
    if ui_batches.pays_only_for_found():
        how = (
            f"You pay only when a phone is found, at most {credits_word} per row, so the "
            "worst case assumes every looked-up row finds a phone."
        )
    else:
        how = (
            f"Some sources charge per lookup: each looked-up row costs at most {credits_word}, "
            "found or not."
        )
    st.caption(f"Skipped rows, duplicates and already-known phones cost nothing. {how}")
    for reason, count in pf.skipped.items():
        rows = labels.count(count, "row")
        st.caption(f"{rows} will be skipped: {labels.detail_label(reason)}.")
    if pf.runs_needed > 1:
        st.info(
            f"This file has {pf.rows:,} rows, more than {MAX_BATCH:,} per batch: it will be "
            f"sent as {pf.runs_needed} runs of at most {MAX_BATCH:,} rows each, one after "
            "the other, all sharing the one credit budget you set below."
        )


def submit_label(pf: Preflight, max_credits: int) -> str:
    """The submit button counts what will be looked up (and paid for), not file rows."""
    if ui_batches.is_free(pf):
        return f"Submit {labels.count(pf.rows, 'row')} (free: nothing to pay for)"
    return (
        f"Submit: look up {labels.count(pf.to_look_up, 'person', 'people')} "
        f"(spend at most {labels.count(max_credits, 'credit')})"
    )


def budget_form(pf: Preflight, plan: str, keys: Mapping[str, str]) -> tuple[int, bool]:
    """The max-credits and label inputs with their advice; (max credits, submit blocked).

    ``keys`` names the widgets: ``max_credits``, ``label``, and ``set_for`` (the plan the
    max-credits default was set for).
    """
    st.markdown("**Budget**")
    blocker = ui_batches.budget_blocker(pf)
    if blocker:
        st.error(blocker)
    # Set once per plan; again when the input was gone from the page (its value with it).
    if st.session_state.get(keys["set_for"]) != plan or keys["max_credits"] not in st.session_state:
        st.session_state[keys["max_credits"]] = ui_batches.default_max_credits(pf)
        st.session_state[keys["set_for"]] = plan
    left, right = st.columns([1, 2])
    with left:
        max_credits = int(
            st.number_input(
                "Maximum credits to spend",
                min_value=0,
                step=1,
                key=keys["max_credits"],
                help="The batch never spends more than this. It is reserved from your "
                "balance while the batch runs; what is not spent is released at the end.",
            )
        )
    with right:
        st.text_input("Batch name (shown on the Runs page)", key=keys["label"], max_chars=200)
    if ui_batches.is_free(pf) and pf.enrichable > 0:
        st.success(
            "Every row is skipped, a duplicate or already known: this batch costs nothing "
            "and needs no credits."
        )
    warning, note = ("", "") if blocker else ui_batches.budget_advice(pf, max_credits)
    if warning:
        st.warning(warning)
    elif note:
        st.info(note)
    blocked = bool(blocker or warning)
    if not blocked and max_credits > 0:
        available = pf.available_credits
        st.markdown(
            f"Submitting reserves **{labels.count(max_credits, 'credit')}** of your "
            f"{labels.count(available, 'credit')} while the batch runs. It never spends more than "
            f"{max_credits:,}; the rest is released when it ends."
        )
    return max_credits, blocked


def show_submitted(run_ids: list[str]) -> None:
    st.subheader("3. Submitted")
    count = len(run_ids)
    parts = f" in {count} parts, run one after the other" if count > 1 else ""
    st.success(
        f"Submitted as one batch{parts}. It runs in the background: "
        "you can leave this page and come back later."
    )
    st.caption("Run ids (for the API and the CLI):")
    st.code("\n".join(run_ids), language=None)
    st.page_link(
        common.PAGE_RUNS, label="Follow progress on the Runs page", icon=":material/arrow_forward:"
    )
    st.caption("To send another file, upload it above.")


def source_picker(key: str) -> tuple[list[str] | None, bool]:
    """The sources this batch uses (default: the whole waterfall, in its order); returns
    (None for the whole waterfall or the names chosen, whether nothing is chosen)."""
    choices = ui_batches.batch_source_choices()
    if not choices:
        return None, False
    chosen = st.multiselect(
        "Sources for this batch",
        choices,
        default=choices,
        key=key,
        help="The phone cache is always looked at first (free). Then these sources, in the "
        "order an administrator set; leave one out to not pay for it in this batch.",
    )
    if not chosen:
        st.error("Choose at least one source for this batch.")
        return None, True
    ordered = [c for c in choices if c in chosen]
    return (None if ordered == choices else ordered), False
