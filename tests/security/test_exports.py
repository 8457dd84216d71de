"""Hostile cells and shapes never break a run's files (issue 9, items 10 and 11)."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from phone_core import outputs, service
from phone_core.credits import Price
from phone_core.errors import ExportError
from phone_core.models import Person, RecordOutcome, RecordStatus
from phone_core.runtime import Runtime
from phone_core.storage import InMemoryObjectStore
from tests.conftest import drain, grant
from tests.fakes.sources import ScriptedSource

pytestmark = pytest.mark.slow  # 16,000-column exports: not in make test-fast


def _outcome(source_row: dict[str, str]) -> RecordOutcome:
    return RecordOutcome(
        idx=0,
        person=Person(id="r1", first_name="Ann", last_name="Lee", company_url="a.com"),
        status=RecordStatus.FOUND,
        source="directory",
        phone="+12125550100",
        credits_charged=1,
        source_row=source_row,
    )


def _sheet(data: bytes) -> list[list[object]]:
    ws = load_workbook(io.BytesIO(data)).active
    assert ws is not None
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_control_characters_do_not_stop_the_excel_export() -> None:
    items = [_outcome({"Name": "Ann\x01 Lee", "Note": "tab\there\x1b", "Co": "a\x00b"})]
    rows = _sheet(outputs.enriched_xlsx(items))
    assert rows[1][:3] == ["Ann Lee", "tab\there", "ab"]
    text = outputs.enriched_csv(items).decode()
    assert "Ann\x01 Lee" in text  # the CSV keeps what it can carry


def test_the_header_row_is_formula_safe_too() -> None:
    evil = '=HYPERLINK("http://evil.example","Session expired")'
    items = [_outcome({evil: "=1+2", "@SUM(A1)": "+4474001", "Name": "-x"})]
    header = next(csv.reader(io.StringIO(outputs.enriched_csv(items).decode())))
    assert header[0] == "'" + evil and header[1] == "'@SUM(A1)"
    rows = _sheet(outputs.enriched_xlsx(items))
    assert rows[0][0] == "'" + evil and rows[1][0] == "'=1+2"
    assert rows[1][1] == "+4474001" and rows[1][2] == "'-x"  # digits stay as they are


def test_too_many_columns_for_excel_is_a_clear_error() -> None:
    wide = {f"c{i}": "" for i in range(16_380)}
    with pytest.raises(ExportError, match="16,384"):
        outputs.enriched_xlsx([_outcome(wide)])
    assert outputs.enriched_csv([_outcome(wide)]).startswith(b"c0,c1,")


def test_one_export_that_cannot_be_built_never_blocks_the_other(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(memory_rt, "ann", 10)
    wide = {f"c{i}": "" for i in range(16_380)}
    rows = [{"first_name": "Ann", "last_name": "Lee", "company_url": "a.com"}]
    (acc,) = service.submit_upload(memory_rt, "ann", rows, 5, source_rows=[wide])
    drain(memory_rt)
    store = memory_rt.store
    assert isinstance(store, InMemoryObjectStore)
    written = {key.rsplit("/", 1)[1] for key in store.objects}
    assert written == {"results.csv", "credits.csv", "enriched.csv", "enriched-excel.csv"}
    assert service.download(memory_rt, "ann", acc.run_id, "enriched.csv").startswith(b"c0,")
    with pytest.raises(ExportError, match="download the enriched CSV instead"):
        service.download(memory_rt, "ann", acc.run_id, "enriched.xlsx")
