"""The Excel-friendly CSV end to end (issue 10, defect 10): an upload's delimiter is kept
on its runs and the export is written with it, whether built when the run ends or on the
first download; an XLSX upload or an API batch gets commas."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from phone_core import batches, db, ingest, runs, service
from phone_core.credits import Price
from phone_core.errors import NotFound
from phone_core.models import BatchCreate, Detail, PersonRecord, RunState
from phone_core.runtime import Runtime
from phone_core.storage import InMemoryObjectStore, output_key
from tests.conftest import drain, grant
from tests.fakes.sources import ScriptedSource

USER = "ann"
HEADER = ["Vorname", "Nachname", "Firma", "Website", "Kundennummer", "Umsatz"]
ROWS = [
    ["Jürgen", "Weiß", "Müller GmbH", "mueller.de", "00123", "1234,5"],
    ["Zoë", "Groß", "Straße AG", "strasse.de", "00456", "99"],
]
EXCEL = "enriched-excel.csv"


def _table(delimiter: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows([HEADER, *ROWS])
    return out.getvalue().encode("cp1252")  # as Excel in Germany saves a CSV


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _submit(rt: Runtime, name: str, data: bytes) -> str:
    rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(rt, USER, 10)
    parsed = ingest.read(name, data, rt.settings)
    mapping, _ = ingest.initial_mapping(rt, USER, parsed)
    (acc,) = ingest.submit_upload(rt, USER, parsed, mapping, 5, name)
    assert drain(rt) == [acc.run_id]
    assert service.get_run(rt, USER, acc.run_id).state is RunState.COMPLETED
    return acc.run_id


def _rows(data: bytes, delimiter: str) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _stored_delimiter(rt: Runtime, run_id: str) -> str | None:
    with rt.db.connect() as conn:
        return runs.get(conn, run_id).source_delimiter


def test_a_semicolon_csv_upload_gets_a_semicolon_excel_csv(memory_rt: Runtime) -> None:
    run_id = _submit(memory_rt, "leads.csv", _table(";"))
    assert _stored_delimiter(memory_rt, run_id) == ";"
    data = service.download(memory_rt, USER, run_id, EXCEL)
    assert data.startswith(b"\xef\xbb\xbfVorname;Nachname;Firma;")
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    header, first, second = _rows(data, ";")
    assert header[:6] == HEADER and header[6] == "phone_e164"
    assert first[:4] == ["Jürgen", "Weiß", "Müller GmbH", "mueller.de"]
    assert first[4:6] == ['="00123"', "1234,5"]  # the leading zeros survive Excel
    phone = service.run_outcomes(memory_rt, USER, run_id)[0].phone
    assert phone.startswith("+") and first[6] == f'="{phone}"'  # not 1.21E+10
    assert second[0] == "Zoë"
    # the plain export is as it always was: UTF-8 without a BOM, commas, LF
    plain = service.download(memory_rt, USER, run_id, "enriched.csv")
    assert plain.startswith(b"Vorname,Nachname,") and f",{phone},".encode() in plain


def test_a_tsv_upload_gets_tabs_and_an_xlsx_upload_commas(memory_rt: Runtime) -> None:
    tsv = _submit(memory_rt, "leads.tsv", _table("\t"))
    assert _rows(service.download(memory_rt, USER, tsv, EXCEL), "\t")[0][:6] == HEADER
    book = _submit(memory_rt, "leads.xlsx", _xlsx())
    assert _stored_delimiter(memory_rt, book) is None
    assert service.download(memory_rt, USER, book, EXCEL).startswith(b"\xef\xbb\xbfVorname,")


def test_an_api_batch_gets_commas(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(memory_rt, USER, 10)
    req = BatchCreate(
        records=[PersonRecord(id="p1", first_name="Ann", last_name="Lee", company_url="a.com")],
        entity_type="person",
        max_credits=5,
    )
    acc = service.submit_batch(memory_rt, USER, req)
    drain(memory_rt)
    rows = _rows(service.download(memory_rt, USER, acc.run_id, EXCEL), ",")
    assert rows[0][0] == "id" and rows[1][0] == "p1"


def test_an_export_built_on_first_download_keeps_the_delimiter(memory_rt: Runtime) -> None:
    run_id = _submit(memory_rt, "leads.csv", _table(";"))
    store = memory_rt.store
    assert isinstance(store, InMemoryObjectStore)
    run = service.get_run(memory_rt, USER, run_id)
    key = output_key(store, run.result_path, EXCEL)
    assert key in store.objects
    del store.objects[key]  # as if the run's end had not written it
    assert service.download(memory_rt, USER, run_id, EXCEL).startswith(b"\xef\xbb\xbfVorname;")


def test_a_rerun_keeps_the_uploads_delimiter(memory_rt: Runtime) -> None:
    dead = ScriptedSource("dead", Price("dead", 0, 1), fatal=Detail.UPSTREAM_TIMEOUT.value)
    memory_rt.sources = [dead]
    grant(memory_rt, USER, 10)
    parsed = ingest.read("leads.csv", _table(";"), memory_rt.settings)
    mapping, _ = ingest.initial_mapping(memory_rt, USER, parsed)
    (acc,) = ingest.submit_upload(memory_rt, USER, parsed, mapping, 5, "leads.csv")
    drain(memory_rt)
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    child = service.rerun(memory_rt, USER, acc.run_id, 5)
    drain(memory_rt)
    assert _stored_delimiter(memory_rt, child.run_id) == ";"
    data = service.download(memory_rt, USER, child.run_id, EXCEL)
    assert data.startswith(b"\xef\xbb\xbfVorname;")


def test_the_excel_csv_waits_for_the_run_like_the_others(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(memory_rt, USER, 10)
    parsed = ingest.read("leads.csv", _table(";"), memory_rt.settings)
    mapping, _ = ingest.initial_mapping(memory_rt, USER, parsed)
    (acc,) = ingest.submit_upload(memory_rt, USER, parsed, mapping, 5, "leads.csv")
    with pytest.raises(NotFound, match="when the run ends"):
        service.download(memory_rt, USER, acc.run_id, EXCEL)
    drain(memory_rt)
    assert service.download(memory_rt, USER, acc.run_id, EXCEL).startswith(b"\xef\xbb\xbf")


def test_a_database_from_before_gains_the_column(tmp_path: Path) -> None:
    """A state DB at revision 0002 is upgraded in place; its runs read as no delimiter
    (commas); the revision can be undone."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))

    def columns() -> set[str]:
        with engine.connect() as conn:
            return {c["name"] for c in sa.inspect(conn).get_columns("runs")}

    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    assert "source_delimiter" not in columns() and "label" in columns()
    with engine.begin() as conn:  # a run of version 2, in the columns it had
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, owner, state, max_credits, spent, total, worst_case,"
                " result_path, credits_path, cancel_requested, notice, label, group_seq,"
                " created_at) VALUES ('old', 'ann', 'completed', 1, 0, 0, 1, 's3://b/r.csv',"
                " 's3://b/c.csv', 0, '', '', 0, '2026-01-01 00:00:00')"
            )
        )
    db.migrate(engine)
    assert "source_delimiter" in columns()
    with engine.connect() as conn:
        assert runs.get(conn, "old").source_delimiter is None
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert "source_delimiter" not in columns()
    engine.dispose()


def test_only_a_known_delimiter_is_stored(memory_rt: Runtime) -> None:
    grant(memory_rt, USER, 10)
    row = {"first_name": "Ann", "last_name": "Lee", "company_url": "a.com"}
    (odd,) = service.submit_upload(memory_rt, USER, [row], 1, source_delimiter="::")
    (tsv,) = service.submit_upload(memory_rt, USER, [row], 1, source_delimiter="\t")
    assert _stored_delimiter(memory_rt, odd.run_id) is None
    assert _stored_delimiter(memory_rt, tsv.run_id) == "\t"


def test_the_batch_merged_excel_csv_keeps_the_uploads_delimiter(memory_rt: Runtime) -> None:
    """The merged file of the batch (what the Runs page offers) is built like the run's."""
    run_id = _submit(memory_rt, "leads.csv", _table(";"))
    batch_id = batches.batch_of_run(memory_rt, USER, run_id)
    data = batches.download_batch(memory_rt, USER, batch_id, EXCEL, 1)
    assert data == service.download(memory_rt, USER, run_id, EXCEL)
    assert data.startswith(b"\xef\xbb\xbfVorname;Nachname;Firma;")
