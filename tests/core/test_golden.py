"""Golden guard: the demo lead list through the demo directory gives the same files, byte
for byte, whatever the code's shape. Regenerate only for an intended change of outputs:
``PHONE_GOLDEN_WRITE=1 pytest tests/core/test_golden.py``."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from phone_core import directory_upload, ingest, service
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
USER = "golden"
FILES = ("results.csv", "credits.csv", "enriched.csv")

pytestmark = pytest.mark.slow


def _xlsx_rows(data: bytes) -> str:
    ws = load_workbook(io.BytesIO(data), read_only=True).active
    assert ws is not None
    return "\n".join(
        "\t".join("" if v is None else str(v) for v in row)
        for row in ws.iter_rows(values_only=True)
    )


def test_demo_leads_outputs_are_unchanged(make_runtime: Callable[..., Runtime]) -> None:
    rt = make_runtime(waterfall=["directory"])
    directory_upload.load_path(rt, ROOT / "examples" / "directory.csv", loaded_by="admin")
    grant(rt, USER, 1000)
    upload = ingest.load_upload((ROOT / "examples" / "leads.csv").read_bytes(), "leads.csv")
    (accepted,) = service.submit_upload(
        rt, USER, upload.rows, 1000, source_rows=upload.source_rows, label="leads.csv"
    )
    run = wait_finished(rt, USER, accepted.run_id)
    assert run.state.value == "completed"
    got = {name: service.download(rt, USER, run.run_id, name) for name in FILES}
    got["enriched.xlsx.tsv"] = _xlsx_rows(
        service.download(rt, USER, run.run_id, "enriched.xlsx")
    ).encode()
    if os.environ.get("PHONE_GOLDEN_WRITE"):
        GOLDEN.mkdir(exist_ok=True)
        for name, data in got.items():
            (GOLDEN / name).write_bytes(data)
    for name, data in got.items():
        assert data == (GOLDEN / name).read_bytes(), f"{name} differs from tests/golden/{name}"
