"""The `phone-enrich` console script, standalone on the embedded defaults."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import free_port
from tests.core.test_durability import _cli, _env, _stop_s3

pytestmark = pytest.mark.integration  # subprocesses on the full stack

ROOT = Path(__file__).resolve().parents[2]


def test_submit_example_file_and_wait(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    try:
        assert _cli(env, "credits", "grant", "ann", "300").returncode == 0
        loaded = _cli(env, "directory", "load", str(ROOT / "examples" / "directory.csv"))
        assert json.loads(loaded.stdout) == {"rows_read": 2000, "rows_loaded": 2000}
        assert "directory: 2,000 rows read, 2,000 loaded in" in loaded.stderr  # progress
        out = _cli(
            env,
            "submit",
            str(ROOT / "examples" / "leads.csv"),
            "--user",
            "ann",
            "--max-credits",
            "300",
            "--wait",
        )
        assert out.returncode == 0, out.stderr
        accepted, final = (json.loads(line) for line in out.stdout.splitlines())
        assert set(accepted) == {"run_id", "result_path", "credits_csv_path"}
        assert '"first_name": "First Name"' in out.stderr  # the mapping used is shown
        assert final["state"] == "completed"
        counts = final["counts"]
        assert counts["total"] == 300 and counts["pending"] == 0
        assert counts["found"] > 100 and counts["not_found"] > 10
        assert counts["skipped"] > 5 and counts["duplicate"] > 5
        shown = json.loads(_cli(env, "credits", "show", "ann").stdout)
        assert shown["balance"] == 300 - final["credits_spent"] and shown["held"] == 0
    finally:
        _stop_s3(data_dir)


def test_bad_input_and_insufficient_credits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    leads = tmp_path / "l.csv"
    leads.write_text("Email\na@b.com\n")
    try:
        r = _cli(env, "submit", str(empty), "--user", "ann", "--max-credits", "5")
        assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
        r = _cli(env, "submit", str(tmp_path / "nope.csv"), "--user", "ann", "--max-credits", "5")
        assert r.returncode == 1 and "no such file" in r.stderr
        r = _cli(
            env, "submit", str(leads), "--user", "ann", "--max-credits", "5", "--map", "email=Nope"
        )
        assert r.returncode == 1 and "no column 'Nope'" in r.stderr
        r = _cli(env, "submit", str(leads), "--user", "ann", "--max-credits", "5")
        assert r.returncode == 2 and "5 required, 0 available" in r.stderr
        assert r.stdout == ""
    finally:
        _stop_s3(data_dir)


def test_submit_keeps_the_files_delimiter_for_the_excel_export(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    leads = tmp_path / "leads.csv"
    leads.write_text("Vorname;Nachname;Website\nAnn;Lee;acme.com\nBob;Ray;globex.de\n")
    try:
        assert _cli(env, "credits", "grant", "ann", "5").returncode == 0
        r = _cli(env, "submit", str(leads), "--user", "ann", "--max-credits", "5")
        assert r.returncode == 0, r.stderr
        run_id = json.loads(r.stdout)["run_id"]
        with sqlite3.connect(data_dir / "state.sqlite") as conn:
            row = conn.execute(
                "SELECT source_delimiter FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        assert row == (";",)
    finally:
        _stop_s3(data_dir)


def test_submit_and_directory_load_use_the_upload_limit_settings(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(
        data_dir,
        free_port(),
        PHONE_LANTERN_ENABLED="false",
        PHONE_UPLOAD_MAX_ROWS="1",
        PHONE_DIRECTORY_MAX_ROWS="1",
    )
    leads = tmp_path / "l.csv"
    leads.write_text("Email\na@b.com\nc@d.com\n")
    contacts = tmp_path / "d.csv"
    contacts.write_text("Email,Phone\na@b.com,+14155550100\nc@d.com,+14155550101\n")
    try:
        r = _cli(env, "submit", str(leads), "--user", "ann", "--max-credits", "5")
        assert r.returncode == 1 and "the limit is 1" in r.stderr, r.stderr
        r = _cli(env, "directory", "load", str(contacts))
        assert r.returncode == 1 and "the limit is 1" in r.stderr, r.stderr
    finally:
        _stop_s3(data_dir)


def test_submit_dry_run_prints_the_mapping_and_preflight_and_spends_nothing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    book = openpyxl.Workbook()
    book.active.title = "Cover"
    book.active.append(["Leads for the Q4 campaign"])
    leads = book.create_sheet("Leads")
    for row in (
        ["Leads export"],
        [],
        ["Full Name", "Company", "Work Email"],
        ["Ann Lee", "Acme Corp", "ann@acme.com"],
        ["Dr. Bob Ray", "Globex GmbH", ""],
        ["Cleo", "", ""],
    ):
        leads.append(row)
    workbook = tmp_path / "leads.xlsx"
    book.save(workbook)
    try:
        assert _cli(env, "credits", "grant", "ann", "50").returncode == 0
        out = _cli(
            env,
            *("submit", str(ROOT / "examples" / "leads.csv"), "--user", "ann"),
            *("--max-credits", "10", "--dry-run"),
        )
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert set(report) == {
            *("file", "sheet", "sheets", "header_row", "mapping", "columns", "warnings"),
            *("preflight", "max_credits", "blocker", "note"),
        }
        assert report["mapping"]["first_name"] == "First Name"
        assert report["columns"][0] == {
            "column": "Record ID",
            "samples": ["lead-0001", "lead-0002", "lead-0003"],
            "field": "id",
            "confidence": "high",
        }
        pf = report["preflight"]
        assert pf["rows"] == 300 and 0 < pf["to_look_up"] <= pf["enrichable"] <= 300
        assert 0 < pf["expected_credits"] <= pf["worst_case_credits"]
        assert pf["available_credits"] == 50 and report["blocker"] == ""
        assert "below the worst case" in report["note"]

        out = _cli(
            env,
            *("submit", str(workbook), "--user", "ann", "--max-credits", "99", "--dry-run"),
            *("--sheet", "Leads"),
        )
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert (report["sheet"], report["sheets"], report["header_row"]) == (
            "Leads",
            ["Cover", "Leads"],
            3,
        )
        assert {k: v for k, v in report["mapping"].items() if v} == {
            "full_name": "Full Name",
            "company_name": "Company",
            "email": "Work Email",
        }
        assert report["preflight"]["to_look_up"] == 2  # Cleo alone cannot be looked up
        assert report["blocker"].startswith("You have 50 credits available")

        # Bad input fails as it would without --dry-run.
        bad = _cli(
            env,
            *("submit", str(workbook), "--user", "ann", "--max-credits", "5", "--dry-run"),
            *("--sheet", "Deals"),
        )
        assert bad.returncode == 1 and 'no sheet called "Deals"' in bad.stderr
        bad = _cli(env, "submit", str(workbook), "--user", "ann", "--max-credits", "0", "--dry-run")
        assert bad.returncode == 1 and "at least 1" in bad.stderr

        shown = json.loads(_cli(env, "credits", "show", "ann").stdout)
        assert (shown["balance"], shown["held"]) == (50, 0)
        with sqlite3.connect(data_dir / "state.sqlite") as db:
            assert db.execute("select count(*) from runs").fetchone() == (0,)
            assert db.execute("select count(*) from persons").fetchone() == (0,)
    finally:
        _stop_s3(data_dir)


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_headless_user_and_key_administration(tmp_path: Path) -> None:
    """Issue 9, item 5: users and API keys administered from the console script alone.
    New passwords and keys are printed once to stdout and nowhere else."""
    from phone_core import db, keys, users
    from phone_core.settings import Settings

    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port())
    r = _cli(env, "users", "add", "Bob", "--name", "Bob Ray", "--email", "bob@example.com")
    assert r.returncode == 0, r.stderr
    (added,) = _lines(r.stdout)
    password = str(added.pop("password"))
    assert added | {"created_at": None} == {
        "username": "bob", "name": "Bob Ray", "email": "bob@example.com", "role": "user",
        "status": "active", "created_at": None,
    }  # fmt: skip
    assert password not in r.stderr
    r = _cli(env, "users", "add", "carol", "--admin")
    carol_password = str(_lines(r.stdout)[0]["password"])
    assert _lines(r.stdout)[0]["role"] == "admin" and _lines(r.stdout)[0]["name"] == "carol"
    r = _cli(env, "users", "add", "bob")
    assert r.returncode == 1 and "already exists" in r.stderr

    r = _cli(env, "keys", "create", "bob", "--label", "CRM sync")
    assert r.returncode == 0, r.stderr
    (created,) = _lines(r.stdout)
    key = str(created["key"])
    assert key.startswith(f"pe_{created['key_id']}_") and created["label"] == "CRM sync"
    listed = _lines(_cli(env, "keys", "list", "bob").stdout)
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert key not in _cli(env, "keys", "list").stdout  # the secret is never shown again

    engine = db.make_engine(Settings(data_dir=data_dir).state_db_url)
    try:
        assert users.verify(engine, "bob", password)
        assert users.verify(engine, "carol", carol_password)
        assert _cli(env, "users", "disable", "bob").returncode == 0
        assert not users.verify(engine, "bob", password)
        with engine.begin() as conn, pytest.raises(keys.UserNotActive):
            keys.verify(conn, key)
        assert _lines(_cli(env, "users", "enable", "bob").stdout)[0]["status"] == "active"
        with engine.begin() as conn:
            assert keys.verify(conn, key) == "bob"

        r = _cli(env, "users", "reset-password", "bob")
        new_password = str(_lines(r.stdout)[0]["password"])
        assert new_password != password and users.verify(engine, "bob", new_password)
        assert not users.verify(engine, "bob", password)

        r = _cli(env, "keys", "revoke", str(created["key_id"]))
        assert r.returncode == 0 and _lines(r.stdout)[0]["active"] is False
        with engine.begin() as conn, pytest.raises(keys.RevokedKey):
            keys.verify(conn, key)

        assert _cli(env, "users", "set-role", "bob", "admin").returncode == 0
        r = _cli(env, "users", "remove", "bob")
        assert r.returncode == 0 and _lines(r.stdout)[0]["status"] == "removed"
        assert [u["username"] for u in _lines(_cli(env, "users", "list").stdout)] == ["carol"]
        everyone = _lines(_cli(env, "users", "list", "--all").stdout)
        assert [(u["username"], u["status"]) for u in everyone] == [
            ("bob", "removed"),
            ("carol", "active"),
        ]
        r = _cli(env, "users", "add", "bob")
        assert r.returncode == 1 and "not given out again" in r.stderr
        r = _cli(env, "users", "remove", "carol")
        assert r.returncode == 1 and "last active admin" in r.stderr
        r = _cli(env, "users", "disable", "nobody")
        assert r.returncode == 1 and "no user nobody" in r.stderr
        r = _cli(env, "keys", "create", "nobody")
        assert r.returncode == 1 and "no active user nobody" in r.stderr
        r = _cli(env, "users", "set-role", "carol", "root")
        assert r.returncode == 64  # a command line that does not parse
    finally:
        engine.dispose()
    written = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    for secret in (password, new_password, carol_password, key):
        assert secret.encode() not in written  # only hashes are kept


def test_status_and_credits_open_only_the_state_db(tmp_path: Path) -> None:
    """`status` (without --wait) and `credits` need the state DB alone: no S3 server, no
    DBOS, not even their imports (what made them take seconds)."""
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    probe = (
        "import sys, json\n"
        "from phone_core import cli\n"
        "code = cli.main(sys.argv[1:])\n"
        "heavy = sorted(m for m in ('dbos', 'boto3', 'openpyxl', 'phone_core.engine',"
        " 'phone_core.s3server', 'phone_core.bootstrap') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )

    def run(*args: str) -> tuple[dict[str, object], str]:
        out = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True,
            timeout=120, cwd=ROOT,
        )  # fmt: skip
        return json.loads(out.stderr.strip().splitlines()[-1]), out.stdout

    report, out = run("credits", "grant", "ann", "40")
    assert report == {"code": 0, "heavy": []} and json.loads(out)["balance"] == 40
    report, out = run("credits", "show", "ann")
    assert report == {"code": 0, "heavy": []} and json.loads(out)["available"] == 40
    assert not (data_dir / "s3.log").exists()  # no S3 server was started
    try:
        submitted = _cli(
            env, "submit", str(ROOT / "examples" / "leads.csv"), "--user", "ann",
            "--max-credits", "10",
        )  # fmt: skip
        run_id = json.loads(submitted.stdout.splitlines()[0])["run_id"]
    finally:
        _stop_s3(data_dir)
    report, out = run("status", run_id)
    assert report == {"code": 0, "heavy": []}
    assert json.loads(out)["run_id"] == run_id and json.loads(out)["counts"]["total"] == 300
    report, _ = run("status", "no-such-run")
    assert report == {"code": 1, "heavy": []}
