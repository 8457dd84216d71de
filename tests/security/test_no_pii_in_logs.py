"""No personal data in logs or in the DBOS system DB (issue 9, item 14)."""

from __future__ import annotations

import base64
import contextlib
import logging
import sqlite3

import pytest

from phone_core import engine, service
from phone_core.models import BatchCreate, PersonRecord, RunState
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished

SECRET_EMAIL = "john.secret@example.com"
SECRET_PHONE = "+15550100777"


def _readable(value: object) -> str:
    """A cell as text, plus its base64-decoded bytes (DBOS stores pickles as base64)."""
    text = repr(value)
    if isinstance(value, str) and len(value) >= 8:
        with contextlib.suppress(ValueError):
            text += " " + base64.b64decode(value, validate=True).decode("latin-1")
    return text


def _dump_sqlite(path: str) -> str:
    con = sqlite3.connect(path)
    try:
        out = []
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                out.append(" ".join(_readable(v) for v in row))
        return "\n".join(out)
    finally:
        con.close()


def test_a_failing_wave_leaves_no_cell_value_in_logs_or_dbos(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(self: engine.Wave) -> bool:
        raise RuntimeError(f"driver said: bad value {SECRET_EMAIL} {SECRET_PHONE}")

    monkeypatch.setattr(engine.Wave, "run", explode)
    grant(rt, "ann", 10)
    body = BatchCreate(
        records=[PersonRecord(email=SECRET_EMAIL, first_name="John")],
        entity_type="person",
        max_credits=5,
    )
    with caplog.at_level(logging.DEBUG):
        acc = service.submit_batch(rt, "ann", body)
        run = wait_finished(rt, "ann", acc.run_id)
    assert run.state is RunState.FAILED
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "RuntimeError" in logged  # the failure is logged, by type and stack
    assert SECRET_EMAIL not in logged and SECRET_PHONE not in logged
    system_db = _dump_sqlite(rt.settings.system_db_url.split("///", 1)[1])
    assert acc.run_id in system_db  # the workflow is there, by run id
    assert SECRET_EMAIL not in system_db and SECRET_PHONE not in system_db
    assert "driver said" not in system_db
