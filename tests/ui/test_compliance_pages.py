"""The admin pages of issue 13: do-not-call lists (mode shown, load, remove, re-check)
and the audit log (rows of what the admin did in the app, filters, CSV export)."""

from __future__ import annotations

import io
from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from phone_core import audit, service, suppression
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.ui.helpers import messages, upload
from tests.ui.test_admin_pages import button, open_page
from tests.ui.test_runs import load_directory, submit

DNC = "app_pages/suppression.py"
AUDIT = "app_pages/audit_log.py"


def _text(at: AppTest) -> str:
    return " ".join(str(m.value) for m in [*at.markdown, *at.caption, *at.info])


def test_load_a_list_see_it_remove_it_and_recheck(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, DNC, "admin", "admin")
    assert "Mode: flag" in _text(at) and "PHONE_DNC_MODE" in _text(at)
    assert "No do-not-call list is loaded" in _text(at)
    at = upload(at, "registry.csv", b"phone\n(212) 555-0100\n+44 20 7946 0958\n", key="dnc_upload")
    at.text_input(key="dnc_name").input("Federal DNC").run()
    at.button(key="dnc_load").click().run()
    assert not at.exception
    assert messages(at, "success")[0].startswith("Loaded Federal DNC: 2 phones and 0 people.")
    frame = at.dataframe[0].value
    assert list(frame["List"]) == ["Federal DNC"] and list(frame["Phones"]) == [2]
    at.button(key="dnc_recheck").click().run()
    assert any(m.startswith("Checked 0 runs") for m in messages(at, "success"))
    at.button(key="dnc_remove").click().run()
    assert not at.exception
    assert "No do-not-call list is loaded" in _text(at)
    with rt.db.connect() as conn:
        done = [(e.action, e.actor, e.via) for e in audit.query(conn, actor="admin")]
    assert (audit.SUPPRESSION_LOAD, "admin", "web") in done
    assert (audit.SUPPRESSION_REMOVE, "admin", "web") in done
    assert (audit.SUPPRESSION_RECHECK, "admin", "web") in done


def test_a_bad_list_file_says_why_and_loads_nothing(app: Callable[..., AppTest]) -> None:
    at = open_page(app, DNC, "admin", "admin")
    at = upload(at, "names.csv", b"name,title\nAnn,CEO\nBob,CTO\n", key="dnc_upload")
    at.button(key="dnc_load").click().run()
    assert not at.exception
    (error,) = messages(at, "error")
    assert error.startswith("Nothing was loaded.") and "phone" in error


def test_the_audit_log_page_filters_and_exports(rt: Runtime, app: Callable[..., AppTest]) -> None:
    with audit.acting("admin", ip="203.0.113.9", via="web"):
        audit.record(rt.db, action=audit.CREDIT_GRANT, target="alice", detail={"amount": 5})
        audit.record(rt.db, action=audit.USER_DISABLE, target="bob")
    at = open_page(app, AUDIT, "admin", "admin")
    frame = at.dataframe[0].value
    assert {"credit_grant", "user_disable"} <= set(frame["Action"])
    at.selectbox(key="audit_action").select("credit_grant").run()
    frame = at.dataframe[0].value
    assert list(frame["Action"]) == ["credit_grant"] and list(frame["From"]) == ["203.0.113.9"]
    button(at, "Export these entries (CSV)").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert any(b.label == "Download audit-log.csv" for b in at.get("download_button"))
    with rt.db.connect() as conn:
        (export,) = audit.query(conn, action=audit.AUDIT_EXPORT)
    assert export.actor == "admin" and export.detail["rows"] == 1


def test_the_pages_are_for_admins_only(page: Callable[..., AppTest]) -> None:
    for script in (DNC, AUDIT):
        at = page(script, "alice").run()
        assert "for administrators only" in " ".join(messages(at, "error"))
        assert not at.dataframe and not at.button


def test_the_runs_page_counts_and_shows_do_not_call_rows(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    load_directory(rt)  # Ann Lee's phone is +14155550000
    body = io.BytesIO(b"phone\n(415) 555-0000\n")
    suppression.load_file(rt.db, rt.settings, body, "l.csv", name="Do not call", loaded_by="t")
    grant(rt, "alice", 100)
    run_id = submit(rt, "alice", max_credits=20, label="ten.csv")
    flagged_rows = wait_finished(rt, "alice", run_id, timeout=120).counts.dnc_flagged
    assert flagged_rows == 2  # Ann Lee and a later row repeating her
    at = app("alice").run()
    at.query_params["batch"] = service.get_run(rt, "alice", run_id).run_id
    at.switch_page("app_pages/runs.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "Batch id" in d.value.columns)
    assert list(table["Do-not-call"]) == [2]
    warnings = " ".join(messages(at, "warning"))
    assert "2 of the phones are on a do-not-call list" in warnings
    rows = next(
        d.value
        for d in at.dataframe
        if "Do-not-call" in d.value.columns and "Phone" in d.value.columns
    )
    flagged = rows[rows["Do-not-call"] != ""]
    assert list(flagged["Phone"]) == ["+14155550000"] * 2
    assert list(flagged["Do-not-call"]) == ["Do not call"] * 2
