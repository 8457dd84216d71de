"""User text is text: names, labels and file names never render as markdown (issue 9,
item 13)."""

from __future__ import annotations

import re
from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from phone_core import service
from tests.conftest import grant, wait_finished
from tests.ui.helpers import csv_bytes, upload

EVIL = "![x](http://evil.example/p.png) [Session expired](http://evil.example) :red[**hi**]"
LIVE_MARKDOWN = re.compile(r"(?<!\\)\]\(|(?<!\\)!\[|(?<!\\):red(?<!\\)\[")


def _rendered(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "warning", "error", "info", "success", "title"):
        out += [str(e.value) for e in at.get(kind)]
    return out


def test_a_batch_name_renders_as_text(rt: object, app: Callable[..., AppTest]) -> None:
    from phone_core.runtime import Runtime

    assert isinstance(rt, Runtime)
    grant(rt, "alice", 10)
    row = {"first_name": "Ann", "last_name": "Lee", "company_url": "acme.com"}
    (acc,) = service.submit_upload(rt, "alice", [row], 5, label=EVIL)
    wait_finished(rt, "alice", acc.run_id)
    at = app("alice").run()
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    shown = [t for t in _rendered(at) if "Session expired" in t]
    assert shown, "the batch name is shown"
    assert not [t for t in shown if LIVE_MARKDOWN.search(t)], shown


def test_a_file_name_and_its_columns_render_as_text(app: Callable[..., AppTest]) -> None:
    at = app("alice").run()
    name = "[click](http://evil.example).csv"
    at = upload(at, name, csv_bytes(["[a](http://x.example)", "b"], [["1", "2"]]))
    assert not at.exception
    texts = [t for t in _rendered(at) if "click" in t]
    assert texts, "the file name is shown"
    assert not [t for t in texts if LIVE_MARKDOWN.search(t)], texts
