"""kill -9 in the middle of a batch, restart, and every record is settled and charged once."""

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


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    env.update({"PHONE_DATA_DIR": str(data_dir), "PHONE_S3_PORT": str(port), **extra})
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120)


def _stop_s3(data_dir: Path) -> None:
    subprocess.run(["pkill", "-f", f"serve s3 {data_dir.resolve()}/s3"], check=False)


def test_sigkill_mid_run_then_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_WAVE_SIZE="1", PHONE_LANTERN_ENABLED="false")
    n = 300
    directory = tmp_path / "dir.csv"
    directory.write_text(
        to_csv(["linkedin", "phone"], [[f"p-{i}", f"(212) 555-{i:04d}"] for i in range(0, n, 2)])
    )
    leads = tmp_path / "leads.csv"
    leads.write_text(to_csv(["id", "linkedin"], [[f"id{i}", f"p-{i}"] for i in range(n)]))
    try:
        assert _cli(env, "credits", "grant", "ann", "1000").returncode == 0
        assert _cli(env, "directory", "load", str(directory)).returncode == 0
        proc = subprocess.Popen(
            [str(BIN), "submit", str(leads), "--user", "ann", "--max-credits", "500", "--wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        engine = db.make_engine(f"sqlite:///{data_dir.resolve() / 'state.sqlite'}")
        rr = db.run_records
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and done < 40:
            time.sleep(0.05)
            with engine.connect() as conn:
                done = int(
                    conn.execute(
                        sa.select(sa.func.count()).select_from(rr).where(rr.c.status.is_not(None))
                    ).scalar()
                    or 0
                )
        assert 40 <= done < n, f"could not catch the run mid-way ({done} settled)"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)  # reaps it and closes its pipes
        with engine.connect() as conn:
            run_id, state = conn.execute(sa.select(db.runs.c.run_id, db.runs.c.state)).one()
        assert state == "running"

        restart = _cli(env, "worker", "--exit-when-idle", "1")
        assert restart.returncode == 0, restart.stderr
        status = json.loads(_cli(env, "status", run_id).stdout)
        assert status["state"] == "completed"
        assert status["counts"]["found"] == n // 2 and status["counts"]["not_found"] == n // 2
        with engine.connect() as conn:
            charges = list(
                conn.execute(
                    sa.select(db.ledger.c.record_idx, db.ledger.c.amount).where(
                        db.ledger.c.kind == "charge", db.ledger.c.run_id == run_id
                    )
                )
            )
            spent = conn.execute(sa.select(db.runs.c.spent)).scalar()
        idxs = [i for i, _ in charges]
        assert len(idxs) == len(set(idxs)) == n // 2  # each found record charged exactly once
        assert sum(a for _, a in charges) == spent == status["credits_spent"] == n // 2
        out = _cli(env, "download", run_id, "--out", str(tmp_path / "out"))
        assert out.returncode == 0, out.stderr
        lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
        assert len(lines) == n + 1
    finally:
        _stop_s3(data_dir)
