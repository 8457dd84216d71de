"""Issue 10's whole batch path in a real browser: a two-sheet workbook with title rows →
the column-first mapping → a capped submit → rows while it runs → the merged download →
a re-run of what was not processed → version 2 of the merged files (version 1 unchanged).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from phone_core.models import RESULT_COLUMNS
from tests.e2e.conftest import PASSWORDS, App, read_csv
from tests.e2e.test_web_app import RUN_TIMEOUT_MS, heading, new_page, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = 120
CAP = 30


def _workbook(leads_csv: Path, out: Path) -> Path:
    with leads_csv.open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "Read me"
    cover.append(["Lead export, Q4"])
    sheet = book.create_sheet("Leads")
    for line in (["Open leads, owner: Dana"], ["Exported 2026-11-30"], []):
        sheet.append(line)
    sheet.append(header)
    for row in rows[:ROWS]:
        sheet.append(row)
    book.save(out)
    return out


def _download(page: Any, label: str, path: Path) -> tuple[list[str], list[list[str]]]:
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile(label)).click()
    info.value.save_as(str(path))
    return read_csv(path.read_bytes())


def _phones(rows: list[list[str]]) -> int:
    return sum(r[RESULT_COLUMNS.index("phone_found")] == "true" for r in rows)


def test_workbook_to_merged_v2(browser: Any, web_app: App, tmp_path: Path) -> None:
    book = _workbook(web_app.leads, tmp_path / "q4-leads.xlsx")
    page = new_page(browser)
    try:
        sign_in(page, web_app, "alice", PASSWORDS["alice"])
        heading(page, "New batch").wait_for()
        page.locator("input[type=file]").first.set_input_files(str(book))
        page.get_by_text("Column names found on row 4").wait_for()
        page.get_by_text("Use as").first.wait_for()  # one row per column of the file
        budget = page.get_by_role("spinbutton", name="Maximum credits to spend")
        budget.fill(str(CAP))
        budget.press("Enter")
        submit = page.get_by_role("button", name=re.compile(rf"spend at most {CAP} credits"))
        submit.wait_for()
        shot(page, "20_batch_path_mapping")
        submit.click()
        page.get_by_text("Submitted as").wait_for()
        page.get_by_role("link", name=re.compile("Follow progress")).click()
        heading(page, "Runs").wait_for()
        page.get_by_text("The credit cap was reached").wait_for(timeout=RUN_TIMEOUT_MS)
        page.get_by_text("Downloads").wait_for(timeout=RUN_TIMEOUT_MS)
        shot(page, "21_batch_path_capped")
        header, v1 = _download(page, r"results\.csv", tmp_path / "v1.csv")
        assert header == list(RESULT_COLUMNS) and len(v1) == ROWS
        assert _phones(v1) > 0
        cheader, charges = _download(page, r"credits\.csv", tmp_path / "credits-v1.csv")
        spent = sum(int(r[cheader.index("credits_charged")]) for r in charges)
        statuses = [r[cheader.index("status")] for r in charges]
        assert 0 < spent <= CAP and "not_processed" in statuses  # the cap held, exactly

        rerun = page.get_by_role("button", name=re.compile(r"^Re-run [\d,]+ rows?"))
        rerun.wait_for()
        rerun.click()
        # The version picker appears once there are two versions; the newest is chosen.
        page.get_by_text("Version", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
        picked = page.evaluate(
            "() => [...document.querySelectorAll('[data-testid=\"stSelectbox\"]')]"
            ".map(e => e.innerText + ' ' + [...e.querySelectorAll('input')]"
            ".map(i => i.value).join(' ')).join('|')"
        )
        assert "Version 2: after re-run 1" in picked, picked
        shot(page, "22_batch_path_v2")
        header, v2 = _download(page, r"results\.csv", tmp_path / "v2.csv")
        assert header == list(RESULT_COLUMNS) and len(v2) == ROWS
        assert [r[0] for r in v2] == [r[0] for r in v1]  # the upload's rows, in its order
        assert _phones(v2) > _phones(v1)
    finally:
        page.context.close()
