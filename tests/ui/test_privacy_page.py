"""The Privacy page (admin): the retention policy and purges, and erasing a person."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from phone_core import service, ui_batches
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.ui.conftest import ensure_user
from tests.ui.helpers import messages

PAGE = "app_pages/privacy.py"
EMAIL = "annika@lindqvist.example"


def _open(app: Callable[..., AppTest], user: str = "admin", role: str = "admin") -> AppTest:
    at = app(user, role).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


def test_policy_purge_and_erasure(rt: Runtime, app: Callable[..., AppTest]) -> None:
    ensure_user(rt, "ann")
    grant(rt, "ann", 100)
    req = BatchCreate(
        records=[
            PersonRecord(id="p1", first_name="Annika", last_name="Lindqvist", email=EMAIL),
            PersonRecord(id="p2", first_name="Bob", last_name="Ok", email="bob@ok.example"),
        ],
        entity_type="person",
        max_credits=10,
    )
    run_id = service.submit_batch(rt, "ann", req).run_id
    wait_finished(rt, "ann", run_id)

    at = _open(app)
    assert [t.value for t in at.title] == ["Privacy"]
    policy = at.dataframe[0].value
    assert set(policy["Kept for"]) == {"kept (no limit)", "90 days", "400 days"}
    assert "No purge has run yet." in [c.value for c in at.caption]
    _button(at, "Purge expired data now").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert messages(at, "success")[0].startswith("Purge done: runs whose files were deleted: 0")
    # The same run shows the purge it just did (not "No purge has run yet." above it).
    assert "No purge has run yet." not in [c.value for c in at.caption]
    assert len(at.dataframe[1].value) == 1 and "Files deleted" in at.dataframe[1].value
    at.run()
    assert not messages(at, "success")  # said once
    assert len(at.dataframe[1].value) == 1

    at.text_input(key="privacy_value").set_value(EMAIL)
    at.button(key="privacy_erase").click().run()
    assert messages(at, "error") == ["Tick the box to confirm first."]
    at.text_input(key="privacy_value").set_value("not an email")
    at.checkbox(key="privacy_confirm").check()
    at.button(key="privacy_erase").click().run()
    assert messages(at, "error")[0].startswith("Not erased: this is not an email address")

    at.text_input(key="privacy_value").set_value(EMAIL.upper())
    at.checkbox(key="privacy_confirm").check()
    at.button(key="privacy_erase").click().run()
    assert not at.exception
    (done,) = messages(at, "success")
    assert done.startswith("Erased. 1 run record redacted in 1 run;")
    erasures = at.dataframe[-1].value
    assert list(erasures["State"]) == ["done"] and list(erasures["By"]) == ["admin"]
    assert "annika" not in erasures.to_csv().lower()
    first, second = ui_batches.run_outcomes("ann", run_id)
    assert first.person.email == "" and first.detail == "erased" and first.person.id == "p1"
    assert second.person.email == "bob@ok.example"


def test_users_cannot_open_it(rt: Runtime, page: Callable[..., AppTest]) -> None:
    at = page(PAGE, "ann", "user").run()
    assert messages(at, "error") == ["This page is for administrators only."]
    assert not at.button
