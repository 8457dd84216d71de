"""The Sources page in a real browser (issue 12): an admin sets a vendor's base URL and
key, the key is never shown again, "Test connection" reaches the vendor (a fake on
127.0.0.1), and the page says which values the environment fixes (this app runs with
PHONE_WATERFALL set). Screenshot: artifacts/screenshots/13_sources.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import App, wait_idle
from tests.e2e.test_web_app import heading, new_page, shot, sign_in
from tests.fakes.upstream import FakeUpstream

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KEY = "browser-secret-key-1"


def test_sources_page_configure_and_test_a_vendor(browser: Any, web_app: App) -> None:
    page = new_page(browser)
    try:
        with FakeUpstream(api_key=KEY) as fake:
            sign_in(page, web_app, "admin", web_app.admin_password)
            page.goto(f"{web_app.url}/sources")
            heading(page, "Sources").wait_for()
            page.get_by_text("PHONE_WATERFALL is set in the environment").wait_for()
            wait_idle(page)
            page.get_by_role("textbox", name="Base URL").fill(fake.url)
            page.get_by_role("textbox", name="New API key").fill(KEY)
            page.get_by_role("button", name="Save").click()
            page.get_by_text("Saved Lantern-compatible upstream").wait_for()
            page.get_by_text("A key is set (stored encrypted").wait_for()
            assert page.get_by_role("textbox", name="New API key").input_value() == ""
            assert KEY not in page.content()
            page.get_by_role("button", name="Test connection").click()
            page.get_by_text("Connected: the vendor answered the test lookup").wait_for()
            assert len(fake.requests) == 1
            page.get_by_text("What each source finds and costs").wait_for()
            shot(page, "13_sources")
    finally:
        page.context.close()
