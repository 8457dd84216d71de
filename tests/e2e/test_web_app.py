"""The web app in a real browser: a new user's whole path, isolation, roles, every page.

Screenshots of each page go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from phone_core.models import RESULT_COLUMNS
from tests.e2e.conftest import PASSWORDS, SCREENSHOTS, App, read_csv, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1440, "height": 1000}
RUN_TIMEOUT_MS = 120_000
STEP_TIMEOUT_MS = 30_000


def shot(page: Any, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to it."""
    page.wait_for_timeout(400)  # let the last delta paint
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
        " return m ? m.scrollHeight : document.body.scrollHeight; }"
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(max(height, 900), 4000)})
    page.wait_for_timeout(500)
    with contextlib.suppress(Exception):  # tables and charts paint after a resize
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=5000
        )
    page.wait_for_timeout(700)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size(VIEWPORT)


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    return context.new_page()


def submit_sign_in(page: Any, username: str, password: str) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    password_box = page.get_by_role("textbox", name="Password")
    password_box.fill(password)
    password_box.press("Enter")  # commits both fields and submits the form


def sign_in(page: Any, app: App, username: str, password: str, path: str = "") -> None:
    page.goto(f"{app.url}/{path}")
    submit_sign_in(page, username, password)
    page.get_by_text("Signed in as").wait_for()


def heading(page: Any, text: str) -> Any:
    return page.get_by_role("heading", name=text, exact=True)


@pytest.fixture(scope="module")
def alice(browser: Any, web_app: App) -> Any:
    page = new_page(browser)
    yield page
    page.context.close()


def test_sign_in_is_required(browser: Any, web_app: App) -> None:
    page = new_page(browser)
    try:
        page.goto(f"{web_app.url}/runs")
        page.get_by_role("textbox", name="Password").wait_for()
        shot(page, "01_sign_in")
        assert page.get_by_role("heading", name="Runs", exact=True).count() == 0
        submit_sign_in(page, "alice", "not-the-password")
        page.get_by_text("Wrong username or password").wait_for()
        assert page.get_by_text("Signed in as").count() == 0
    finally:
        page.context.close()


def test_new_user_whole_path(alice: Any, web_app: App, tmp_path: Path) -> None:
    page = alice
    sign_in(page, web_app, "alice", PASSWORDS["alice"])
    heading(page, "New batch").wait_for()
    shot(page, "02_new_batch_empty")

    page.locator("input[type=file]").first.set_input_files(str(web_app.leads))
    page.get_by_text("What this batch will do").wait_for()
    page.get_by_text(f"{web_app.lead_rows:,} rows", exact=False).first.wait_for()
    submit = page.get_by_role("button", name=re.compile(r"^Submit"))
    submit.wait_for()
    shot(page, "03_new_batch_preflight")
    submit.click()
    page.get_by_text("Submitted as").wait_for()
    shot(page, "04_new_batch_submitted")

    page.get_by_role("link", name=re.compile("Follow progress")).click()
    heading(page, "Runs").wait_for()
    page.get_by_text("Downloads").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_text(re.compile(r"^Completed: [\d,]+ of [\d,]+ rows done")).wait_for()
    shot(page, "05_runs_finished")
    # Told when it ends: the tab title (set by the app's notices, on any page).
    page.wait_for_function("() => document.title === '✓ Done · Phone enrichment'")

    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile(r"results\.csv")).click()
    path = tmp_path / "results.csv"
    info.value.save_as(str(path))
    header, rows = read_csv(path.read_bytes())
    assert header == list(RESULT_COLUMNS)
    assert len(rows) == web_app.lead_rows
    assert any(row[RESULT_COLUMNS.index("phone_found")] == "true" for row in rows)

    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("Enriched CSV")).click()
    enriched = tmp_path / "enriched.csv"
    info.value.save_as(str(enriched))
    header, rows = read_csv(enriched.read_bytes())
    assert header[:3] == ["Record ID", "First Name", "Last Name"] or "phone_e164" in header
    assert "phone_e164" in header and len(rows) == web_app.lead_rows

    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("Excel-friendly CSV")).click()
    excel = tmp_path / "enriched-excel.csv"
    info.value.save_as(str(excel))
    data = excel.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data  # BOM, Windows line ends


def test_reload_keeps_the_session(alice: Any, web_app: App) -> None:
    page = alice
    page.reload()
    page.get_by_text("Signed in as").wait_for()
    heading(page, "Runs").wait_for()
    assert page.get_by_role("textbox", name="Password").count() == 0


def test_sign_out_forgets_the_session(alice: Any, web_app: App) -> None:
    page = alice
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="Password").wait_for()
    page.reload()
    page.get_by_role("textbox", name="Password").wait_for()
    assert page.get_by_text("Signed in as").count() == 0


def test_second_user_cannot_see_first_users_run(browser: Any, web_app: App) -> None:
    page = new_page(browser)
    try:
        sign_in(page, web_app, "bob", PASSWORDS["bob"], "runs")
        heading(page, "Runs").wait_for()
        page.get_by_text("No batches yet").wait_for()
        assert page.get_by_text(web_app.leads.name).count() == 0
        shot(page, "06_runs_other_user_empty")
        # An admin page by direct URL: not in bob's navigation, never rendered.
        page.goto(f"{web_app.url}/credits")
        page.get_by_text("Signed in as").wait_for()
        # Refused either way: by the app's message, or, when the sign-in cookie's rerun
        # comes first, by Streamlit itself (the page is not in bob's navigation).
        refused = re.compile(r"This page is for administrators only|Page not found")
        page.get_by_text(refused).first.wait_for()
        assert page.get_by_role("heading", name="Credits", exact=True).count() == 0
        assert page.get_by_text("Balances").count() == 0
        shot(page, "07_admin_page_refused")
    finally:
        page.context.close()


def test_admin_pages(browser: Any, web_app: App) -> None:
    page = new_page(browser)
    try:
        sign_in(page, web_app, "admin", web_app.admin_password)
        page.goto(f"{web_app.url}/runs")
        heading(page, "Runs").wait_for()
        page.get_by_text(web_app.leads.name).first.wait_for()  # admins see everyone's runs
        shot(page, "08_runs_admin")
        page.goto(f"{web_app.url}/credits")
        heading(page, "Credits").wait_for()
        page.get_by_text("Balances").wait_for()
        shot(page, "09_credits")
        page.goto(f"{web_app.url}/users")
        heading(page, "Users").wait_for()
        shot(page, "10_users")
        page.goto(f"{web_app.url}/reference_data")
        heading(page, "Reference data").wait_for()
        page.get_by_text("demo-directory.csv").first.wait_for()
        shot(page, "11_reference_data")
        page.goto(f"{web_app.url}/api_keys")
        heading(page, "API keys").wait_for()
        wait_idle(page)  # the sign-in cookie's rerun can still be redrawing the form
        page.get_by_role("textbox", name="Label").fill("CRM sync")
        page.get_by_role("button", name="Create key").click()
        page.get_by_text("Copy it now").wait_for()
        page.get_by_text(re.compile(r"^pe_[0-9a-f]{12}_")).wait_for()
        shot(page, "12_api_keys")
    finally:
        page.context.close()


def test_new_batch_reads_a_titled_workbook(browser: Any, web_app: App, tmp_path: Path) -> None:
    """Issue 10: a cover sheet, title rows above the header, more columns than are used."""
    import openpyxl

    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.title = "About"
    cover.append(["Exported from the CRM"])
    leads = book.create_sheet("Leads")
    extra = [f"Custom field {i}" for i in range(1, 15)]
    for row in (["Open leads"], ["Owner: Dana"], []):
        leads.append(row)
    leads.append(["Name", "Account", "E-mail", "LinkedIn", *extra])
    for i in range(8):
        leads.append(
            [f"Person {i} Lee", f"Company {i}", f"p{i}@c{i}.example",
             f"https://www.linkedin.com/in/person-{i}", *(["x"] * len(extra))]
        )  # fmt: skip
    path = tmp_path / "titled.xlsx"
    book.save(path)
    page = new_page(browser)
    try:
        sign_in(page, web_app, "alice", PASSWORDS["alice"])
        heading(page, "New batch").wait_for()
        page.locator("input[type=file]").first.set_input_files(str(path))
        page.get_by_text("Column names found on row 4").wait_for()
        page.get_by_text("The other 14 columns of the file").wait_for()
        page.get_by_role("button", name=re.compile(r"^Submit")).wait_for()
        shot(page, "03b_new_batch_workbook")
    finally:
        page.context.close()
