"""kill -9 in the middle of an erasure, restart the worker, and the erasure completes:
every store and every stored file (read straight from the S3 server's disk) is free of
the person, and the receipt counts each thing once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from phone_core import db
from phone_core.demo import to_csv
from tests.conftest import free_port

pytestmark = pytest.mark.integration  # subprocesses on the full stack

BIN = Path(sys.executable).parent / "phone-enrich"
EMAIL = "annika@lindqvist.example"
TRACES = (b"Annika", b"Lindqvist", b"annika@", b"2125550101")


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    env.update({"PHONE_DATA_DIR": str(data_dir), "PHONE_S3_PORT": str(port), **extra})
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)


def _stop_s3(data_dir: Path) -> None:
    subprocess.run(["pkill", "-f", f"serve s3 {data_dir.resolve()}/s3"], check=False)


def _erasure(engine: sa.Engine) -> tuple[str, dict[str, object]]:
    er = db.erasures
    with engine.connect() as conn:
        row = conn.execute(sa.select(er.c.state, er.c.receipt)).first()
    return ("", {}) if row is None else (str(row[0]), dict(row[1] or {}))


def test_sigkill_mid_erasure_then_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    directory = tmp_path / "dir.csv"
    directory.write_text(
        to_csv(
            ["first_name", "last_name", "email", "phone"],
            [
                ["Annika", "Lindqvist", EMAIL, "(212) 555-0101"],
                ["Bob", "Ok", "b@ok.example", "(212) 555-0102"],
            ],
        )
    )
    try:
        assert _cli(env, "credits", "grant", "ann", "1000").returncode == 0
        assert _cli(env, "directory", "load", str(directory)).returncode == 0
        run_ids = []
        for i in range(3):
            leads = tmp_path / f"leads{i}.csv"
            leads.write_text(
                to_csv(
                    ["id", "first_name", "last_name", "email"],
                    [
                        [f"a{i}", "Annika", "Lindqvist", EMAIL],
                        [f"b{i}", "Bob", "Ok", "b@ok.example"],
                    ],
                )
            )
            out = _cli(env, "submit", str(leads), "--user", "ann", "--max-credits", "10", "--wait")
            assert out.returncode == 0, out.stderr
            run_ids.append(json.loads(out.stdout.splitlines()[0])["run_id"])

        proc = subprocess.Popen(
            [str(BIN), "erase", "--email", EMAIL, "--by", "dpo"],
            env={**env, "PHONE_ERASURE_PAUSE_SEC": "1"},  # 6 file steps: ~6 s to catch it in
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        engine = db.make_engine(f"sqlite:///{data_dir.resolve() / 'state.sqlite'}")
        deadline = time.monotonic() + 60
        state, receipt = "", {}
        while time.monotonic() < deadline and not receipt.get("run_files"):
            time.sleep(0.05)
            state, receipt = _erasure(engine)
        assert receipt.get("run_files") and state == "running", (state, receipt)
        assert receipt["records"] == 3  # the stores are done; the files are under way
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        state, receipt = _erasure(engine)
        assert state == "running" and len(receipt["run_files"]) < 3  # type: ignore[arg-type]

        restart = _cli(env, "worker", "--exit-when-idle", "1")
        assert restart.returncode == 0, restart.stderr
        state, receipt = _erasure(engine)
        assert state == "done", receipt
        assert receipt["runs"] == sorted(run_ids)
        assert receipt["run_records_redacted"] == 3 and receipt["directory_rows_deleted"] == 1
        assert receipt["persons_deleted"] == 3 and receipt["requested_by"] == "dpo"
        assert "annika" not in json.dumps(receipt).lower()
        keys = receipt["objects_rewritten"]
        assert isinstance(keys, list) and len(keys) >= 3 * 2  # each run's results + credits

        rr = db.run_records
        with engine.connect() as conn:
            left = conn.execute(
                sa.select(sa.func.count()).select_from(rr).where(rr.c.email == EMAIL)
            ).scalar()
            erased = conn.execute(
                sa.select(sa.func.count()).select_from(rr).where(rr.c.detail == "erased")
            ).scalar()
            for table in (db.persons, db.directory):
                assert (
                    conn.execute(
                        sa.select(sa.func.count()).select_from(table).where(table.c.email == EMAIL)
                    ).scalar()
                    == 0
                )
            assert (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(db.cache)
                    .where(db.cache.c.phone == "+12125550101")
                ).scalar()
                == 0
            )
        assert left == 0 and erased == 3
        # every file the S3 server keeps, read from its disk
        stored = [
            p
            for p in (data_dir / "s3").rglob("*")
            if p.is_file() and {"runs", "batches"} & set(p.parts)
        ]
        assert len(stored) >= 3 * 2
        for path in stored:
            body = path.read_bytes()
            assert not any(t in body for t in TRACES), path
        out = _cli(env, "download", run_ids[0], "--out", str(tmp_path / "out"))
        assert out.returncode == 0, out.stderr
        results = (tmp_path / "out" / "results.csv").read_text()
        assert "a0," in results and "2125550102" in results and "Lindqvist" not in results
        # the other privacy commands
        out = _cli(env, "erase-receipt", str(receipt["erasure_id"]))
        assert out.returncode == 0 and json.loads(out.stdout) == receipt
        out = _cli(env, "webhook-secret", "ann")
        assert out.returncode == 0 and json.loads(out.stdout)["signing_secret"].startswith("whsec_")
        env_policy = {**env, "PHONE_RETAIN_OUTPUTS_DAYS": "30"}
        out = _cli(env_policy, "retention", "purge", "--by", "dpo")
        assert out.returncode == 0 and json.loads(out.stdout)["objects_deleted"] == 0  # fresh
        shown = json.loads(_cli(env_policy, "retention", "show").stdout)
        assert shown["policy"]["outputs_days"] == 30 and shown["policy"]["records_days"] is None
        assert shown["last_purge"]["trigger"] == "cli"
        bad = _cli(env, "erase", "--email", EMAIL, "--phone", "+12125550101")
        assert bad.returncode == 1 and "exactly one" in bad.stderr
    finally:
        _stop_s3(data_dir)
