"""Suppression (do-not-call) lists, issue 13 item 1, on the fast tier: the real engine
and credit rules with the in-memory doubles (``inline.memory_runtime``).

Four people are in the directory (found cost 1 each); the list holds p1's phone written
another way and p2's email. Charges and every output are checked exactly in both modes.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from phone_core import batches, credits, dnc, run_views, service, suppression
from phone_core.errors import InputError
from phone_core.inline import memory_runtime
from phone_core.models import CREDIT_COLUMNS, RESULT_COLUMNS, BatchCreate, RunState
from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.conftest import drain, free_port, make_settings

PEOPLE = [
    {"first_name": f"First{i}", "last_name": f"Last{i}", "company_url": f"co{i}.com"}
    for i in range(4)
]
PHONES = [f"+1212555010{i}" for i in range(4)]
EMAILS = [f"person{i}@co{i}.com" for i in range(4)]


def _runtime(tmp_path: Path, name: str, **over: Any) -> Runtime:
    rt = memory_runtime(make_settings(tmp_path / name, waterfall=["directory"], **over))
    directory = [{**p, "phone": f"(212) 555-010{i}"} for i, p in enumerate(PEOPLE)]
    load_rows(rt.db, directory, file_name="dir.csv", loaded_by="test")
    with rt.db.begin() as conn:
        credits.grant(conn, "ann", 100)
        credits.grant(conn, "bob", 100)
    return rt


@pytest.fixture
def flag_rt(tmp_path: Path) -> Iterator[Runtime]:
    rt = _runtime(tmp_path, "flag")
    yield rt
    rt.close()


@pytest.fixture
def withhold_rt(tmp_path: Path) -> Iterator[Runtime]:
    rt = _runtime(tmp_path, "withhold", dnc_mode="withhold")
    yield rt
    rt.close()


def _load(rt: Runtime, name: str, rows: list[list[str]], filename: str = "dnc.csv") -> Any:
    text = "\n".join(",".join(r) for r in rows) + "\n"
    return suppression.load_file(
        rt.db, rt.settings, io.BytesIO(text.encode()), filename, name=name, loaded_by="admin"
    )


def _records() -> list[dict[str, str]]:
    recs = [{"id": f"r{i}", **p, "email": EMAILS[i]} for i, p in enumerate(PEOPLE)]
    recs.append({"id": "r4", "first_name": "Nobody", "last_name": "X", "company_name": "Y"})
    recs.append({"id": "r5", "email": EMAILS[1].upper()})  # a duplicate of r1 (same email)
    return recs


def _run(rt: Runtime, user: str = "ann", records: list[dict[str, str]] | None = None) -> str:
    acc = service.submit_batch(
        rt, user, BatchCreate(records=records or _records(), entity_type="person", max_credits=50)
    )
    drain(rt)
    return acc.run_id


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _files(rt: Runtime, user: str, run_id: str) -> dict[str, list[dict[str, str]]]:
    names = ("results.csv", "credits.csv", "enriched.csv")
    return {n: _csv(service.download(rt, user, run_id, n)) for n in names}


def _balance(rt: Runtime, user: str) -> int:
    with rt.db.connect() as conn:
        return credits.summarize(conn, user).balance


def test_flag_mode_returns_marks_and_charges_as_usual(flag_rt: Runtime) -> None:
    rt = flag_rt
    _load(rt, "Federal DNC", [["Phone"], ["212.555.0101"]])
    _load(rt, "Opt-outs", [["Email"], [EMAILS[2].upper()]])
    run_id = _run(rt)
    run = service.get_run(rt, "ann", run_id)
    assert run.state == RunState.COMPLETED
    assert run.credits_spent == 4  # p0-p3 found; r4 not found; r5 a duplicate of r1
    assert _balance(rt, "ann") == 96
    assert run.counts.dnc_flagged == 3 and run.counts.suppressed == 0
    files = _files(rt, "ann", run_id)
    results = {r["id"]: r for r in files["results.csv"]}
    assert list(files["results.csv"][0]) == list(RESULT_COLUMNS)
    assert [results[f"r{i}"]["phone_number"] for i in range(4)] == PHONES
    assert results["r5"]["phone_number"] == PHONES[1]
    enriched = {r["id"]: r for r in files["enriched.csv"]}
    assert {k: (v["dnc"], v["dnc_list"]) for k, v in enriched.items()} == {
        "r0": ("false", ""),
        "r1": ("true", "Federal DNC"),
        "r2": ("true", "Opt-outs"),
        "r3": ("false", ""),
        "r4": ("false", ""),
        "r5": ("true", "Federal DNC"),
    }
    statuses = {r["id"]: (r["status"], r["credits_charged"]) for r in files["credits.csv"]}
    assert statuses["r1"] == ("found", "1") and statuses["r5"] == ("duplicate", "0")


def test_withhold_mode_returns_no_phone_and_charges_nothing(withhold_rt: Runtime) -> None:
    rt = withhold_rt
    _load(rt, "Federal DNC", [["Phone"], ["+1 (212) 555-0101"]])
    _load(rt, "Opt-outs", [["LinkedIn", "Email"], ["", EMAILS[2]]])
    run_id = _run(rt)
    run = service.get_run(rt, "ann", run_id)
    assert run.credits_spent == 2  # p0 and p3 only
    assert _balance(rt, "ann") == 98
    assert run.counts.suppressed == 3 and run.counts.dnc_flagged == 0  # r1, r2, r5
    files = _files(rt, "ann", run_id)
    assert list(files["results.csv"][0]) == list(RESULT_COLUMNS)
    assert list(files["credits.csv"][0]) == list(CREDIT_COLUMNS)
    results = {r["id"]: (r["phone_number"], r["phone_found"]) for r in files["results.csv"]}
    assert results == {
        "r0": (PHONES[0], "true"),
        "r1": ("", "false"),
        "r2": ("", "false"),
        "r3": (PHONES[3], "true"),
        "r4": ("", "false"),
        "r5": ("", "false"),
    }
    rows = {r["id"]: r for r in files["credits.csv"]}
    assert (rows["r1"]["status"], rows["r1"]["credits_charged"]) == ("suppressed", "0")
    assert rows["r1"]["detail"] == "Federal DNC"
    assert (rows["r2"]["status"], rows["r2"]["detail"]) == ("suppressed", "Opt-outs")
    assert (rows["r5"]["status"], rows["r5"]["credits_charged"]) == ("suppressed", "0")
    assert sum(int(r["credits_charged"]) for r in rows.values()) == run.credits_spent
    enriched = {r["id"]: r for r in files["enriched.csv"]}
    assert enriched["r1"]["phone_e164"] == "" and enriched["r1"]["dnc"] == "true"
    assert PHONES[1] not in service.download(rt, "ann", run_id, "enriched.csv").decode()


@pytest.mark.parametrize("mode", ["flag", "withhold"])
def test_a_cached_phone_is_checked_too(tmp_path: Path, mode: str) -> None:
    rt = _runtime(tmp_path, mode, dnc_mode=mode)
    try:
        first = _run(rt, "ann", [{"id": "a", **PEOPLE[0]}])
        assert service.get_run(rt, "ann", first).credits_spent == 1
        _load(rt, "Internal", [["phone"], ["2125550100"]])
        second = _run(rt, "bob", [{"id": "b", **PEOPLE[0]}])  # the cache answers
        run = service.get_run(rt, "bob", second)
        row = _files(rt, "bob", second)
        credit = row["credits.csv"][0]
        assert run.credits_spent == 0
        if mode == "flag":
            assert (credit["status"], credit["source"]) == ("cached", "cache")
            assert row["results.csv"][0]["phone_number"] == PHONES[0]
            assert (row["enriched.csv"][0]["dnc"], row["enriched.csv"][0]["dnc_list"]) == (
                "true",
                "Internal",
            )
        else:
            assert (credit["status"], credit["detail"]) == ("suppressed", "Internal")
            assert row["results.csv"][0]["phone_found"] == "false"
    finally:
        rt.close()


def test_a_list_loaded_later_applies_to_later_runs_and_a_recheck_marks_past_ones(
    flag_rt: Runtime,
) -> None:
    rt = flag_rt
    before = _run(rt)
    old_results = service.download(rt, "ann", before, "results.csv")
    assert {r["dnc"] for r in _files(rt, "ann", before)["enriched.csv"]} == {"false"}
    _load(rt, "Late list", [["phone"], [PHONES[3]]])
    after = _run(rt)
    assert _balance(rt, "ann") == 96  # 4 found, then 4 cache hits (free), r3 flagged
    assert {r["id"] for r in _files(rt, "ann", after)["enriched.csv"] if r["dnc"] == "true"} == {
        "r3"
    }
    assert {r["dnc"] for r in _files(rt, "ann", before)["enriched.csv"]} == {"false"}

    report = dnc.recheck_past_runs(rt)
    found = {f.run_id: f for f in report.runs}
    assert found[before].newly_marked == 1 and found[before].rows_on_lists == 1
    assert found[after].newly_marked == 0 and found[after].rows_on_lists == 1
    assert report.files_failed == 0
    marked = {r["id"] for r in _files(rt, "ann", before)["enriched.csv"] if r["dnc"] == "true"}
    assert marked == {"r3"}
    # the contract files and the charges of the past run stay as delivered
    assert service.download(rt, "ann", before, "results.csv") == old_results
    assert _balance(rt, "ann") == 96
    assert b"+1212" not in report.to_csv()  # counts only, never the numbers
    # the batch's merged spreadsheet files (what the Runs page offers) carry it as well
    merged = _csv(batches.download_batch(rt, "ann", before, "enriched.csv", 1))
    assert {r["id"] for r in merged if r["dnc"] == "true"} == {"r3"}
    merged_xlsx = batches.download_batch(rt, "ann", before, "enriched.xlsx", 1)
    header = next(
        openpyxl.load_workbook(io.BytesIO(merged_xlsx)).active.iter_rows(values_only=True)
    )
    assert header[-2:] == ("dnc", "dnc_list")
    with rt.db.connect() as conn:
        assert run_views.counts(conn, [before])[before].dnc_flagged == 1

    with rt.db.begin() as conn:
        suppression.remove(conn, "Late list")
    report = dnc.recheck_past_runs(rt)
    assert {f.run_id: f.unmarked for f in report.runs} == {before: 1, after: 1}
    assert {r["dnc"] for r in _files(rt, "ann", before)["enriched.csv"]} == {"false"}


def test_loading_normalises_every_form_and_replaces_a_list_by_name(flag_rt: Runtime) -> None:
    rt = flag_rt
    info = _load(
        rt,
        "Mixed",
        [
            ["Phone", "Email", "LinkedIn URL"],
            ["(212) 555-0100", "", ""],
            ["+1 212 555 0100", "A@B.com", ""],  # the same phone again
            ["not a phone", "", "https://www.linkedin.com/in/Jane-Doe-1/"],
            ["", "", ""],
            ["12", "nope", "x"],
        ],
    )
    assert (info.phones, info.people, info.rows_read, info.rows_refused) == (1, 2, 4, 1)
    with rt.db.connect() as conn:
        found = suppression.match(
            conn, [("ph", "+12125550100"), ("em", "a@b.com"), ("li", "jane-doe-1")]
        )
    assert set(found) == {("ph", "+12125550100"), ("em", "a@b.com"), ("li", "jane-doe-1")}
    # a bare column of numbers, no header: the first row is a number too
    info = _load(rt, "Mixed", [["2125550101"], ["212-555-0102"]], "numbers.csv")
    assert (info.phones, info.people) == (2, 0)
    with rt.db.connect() as conn:
        assert [i.name for i in suppression.lists(conn)] == ["Mixed"]
        assert suppression.match(conn, [("ph", "+12125550100")]) == {}
        assert suppression.listed(conn, phone="(212) 555-0102") == ["Mixed"]
        assert suppression.listed(conn, email="A@B.com", linkedin="jane-doe-1") == []
    with pytest.raises(InputError):
        _load(rt, "Bad", [["name"], ["nobody"], ["still nobody"]])
    with pytest.raises(InputError):
        _load(rt, "x@y.com", [["phone"], ["2125550101"]])


@pytest.mark.slow
def test_a_big_list_loads_streamed_in_bounded_memory(
    flag_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12,000 numbers loaded 1,000 at a time peak at the memory of a chunk (~1.5 MB
    measured); holding the file's rows or entries would take several times that."""
    monkeypatch.setattr(suppression, "LOAD_CHUNK", 1000)
    n = 12_000
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("phone\n")
        for i in range(n):
            fh.write(f"(415) {200 + i // 10000:03d}-{i % 10000:04d}\n")
    tracemalloc.start()
    try:
        info = suppression.load_path(flag_rt.db, flag_rt.settings, path, loaded_by="admin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.name == "big" and info.rows_read == n and info.phones == n
    assert peak < 4 * 1024 * 1024  # a chunk of rows, not the file (or its n entries)


@pytest.mark.integration  # subprocesses
def test_cli_load_list_remove(tmp_path: Path) -> None:
    env = {
        "PHONE_DATA_DIR": str(tmp_path / "cli"),
        "PHONE_S3_PORT": str(free_port()),  # `suppress recheck` starts the S3 server
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    path = tmp_path / "dnc list.csv"
    path.write_text("phone\n(212) 555-0100\n+44 20 7946 0958\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "phone_core.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = cli("suppress", "load", str(path), "--name", "Registry")
    assert done.returncode == 0, done.stderr
    assert '"name": "Registry"' in done.stdout and '"phones": 2' in done.stdout
    listed = cli("suppress", "list")
    assert listed.returncode == 0 and '"Registry"' in listed.stdout
    assert cli("suppress", "remove", "Registry").returncode == 0
    assert cli("suppress", "list").stdout == ""
    missing = cli("suppress", "remove", "Registry")
    assert missing.returncode == 1 and "no suppression list" in missing.stderr
    recheck = cli("suppress", "recheck", "--report", str(tmp_path / "report.csv"))
    assert recheck.returncode == 0, recheck.stderr
    assert '"runs_checked": 0' in recheck.stdout
    assert (tmp_path / "report.csv").read_text().startswith("\ufeffrun_id,")
    audit_csv = cli("audit", "--action", "suppression_load")
    assert audit_csv.returncode == 0 and "Registry" in audit_csv.stdout
    assert "cli:" in audit_csv.stdout
