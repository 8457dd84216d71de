"""Reference data page at scale: a large file streamed with a progress bar, replace or add,
the last load's who/when/how, and a file broken mid-way changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import ingest, ui_admin, ui_batches
from phone_core.runtime import Runtime
from tests.ui.helpers import messages, metrics, upload
from tests.ui.test_admin_pages import open_page

PAGE = "app_pages/reference_data.py"


def _csv(n: int, start: int = 0, area: str = "212") -> bytes:
    rows = (f"person-{i},({area}) 555-{i % 10000:04d}" for i in range(start, start + n))
    return ("\n".join(["LinkedIn,Phone", *rows]) + "\n").encode()


def _captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.caption)


def test_a_large_file_streams_with_progress_and_shows_the_last_load(
    rt: Runtime, app: Callable[..., AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[tuple[int, float]] = []
    real = ui_batches.load_directory

    def spy(*args: Any, **kwargs: Any) -> tuple[int, int]:
        given = kwargs["progress"]
        assert args[3] is not None  # the uploaded file itself, streamed

        def progress(rows: int, share: float) -> None:
            told.append((rows, share))
            given(rows, share)  # the page's progress bar

        return real(*args, **{**kwargs, "progress": progress})

    monkeypatch.setattr(ui_batches, "load_directory", spy)
    at = open_page(app, PAGE, "admin", "admin")
    n = ingest.DIRECTORY_SAMPLE_ROWS * 12
    at = upload(at, "big.csv", _csv(n), key="ref_upload")
    assert any("The first 1,000 rows are shown" in str(c.value) for c in at.caption)
    assert any("more than 1,000 rows" in str(m.value) for m in at.markdown)
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    assert not at.exception
    assert messages(at, "success") == [f"Loaded {n:,} contacts from {n:,} rows of big.csv."]
    assert told[-1] == (n, 1.0) and len(told) >= 2
    assert metrics(at)["Contacts in the directory"] == f"{n:,}"
    shown = _captions(at)
    assert "Last file: big.csv, loaded by admin on" in shown
    assert "it replaced the directory" in shown


def test_add_to_the_directory_updates_the_same_people(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = open_page(app, PAGE, "admin", "admin")
    at = upload(at, "first.csv", _csv(3), key="ref_upload")
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    at = open_page(app, PAGE, "admin", "admin")
    at = upload(at, "second.csv", _csv(2, start=2, area="312"), key="ref_upload")
    at.radio(key="ref_mode").set_value("Add to the directory").run()
    assert not at.button(key="ref_load").disabled  # no replace to confirm
    at.button(key="ref_load").click().run()
    assert not at.exception
    assert messages(at, "success") == ["Added 2 contacts from 2 rows of second.csv."]
    assert metrics(at)["Contacts in the directory"] == "4"
    assert "it was added to the directory and updated 1 contact." in _captions(at)


def test_a_file_broken_midway_leaves_the_directory_unchanged(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = open_page(app, PAGE, "admin", "admin")
    at = upload(at, "first.csv", _csv(3), key="ref_upload")
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    at = open_page(app, PAGE, "admin", "admin")
    broken = _csv(ingest.DIRECTORY_SAMPLE_ROWS + 20_000) + b'p-x,"(212) 555\n' + b"x" * 200_000
    at = upload(at, "broken.csv", broken, key="ref_upload")
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    assert not at.exception
    [error] = messages(at, "error")
    assert error.startswith("Nothing was loaded and the directory is unchanged.")
    assert ui_admin.directory_stats()["contacts"] == 3
