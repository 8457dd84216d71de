"""A worker killed (SIGKILL) in the middle of upstream calls, then restarted.

The fake upstream lives in the test process; the worker is the CLI in a child process:
``phone-enrich submit ... --wait``, killed with SIGKILL mid-run, then ``phone-enrich
status RUN --wait`` on the same data dir and executor id (DBOS recovers the run on launch).
After the restart the run completes with every record settled exactly once, each charged
once, and only the lookups that were in flight at the kill are sent again, with the same
record_id (so the vendor's own cache answers them).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import db
from phone_core.s3server import LocalS3Server
from phone_core.settings import Settings
from phone_core.storage import S3ObjectStore
from tests.conftest import free_port
from tests.fakes.batches import people, record_id, settings_for
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration  # subprocesses on the full stack

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 4
N = 40


def _cli(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    """``phone-enrich ARGS`` in its own process group (the kill reaches only it)."""
    with log.open("a") as err:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            [sys.executable, "-m", "phone_core.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )


def _env(cfg: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    for key, value in cfg.items():
        env[f"PHONE_{key.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


def test_kill_mid_run_then_recover_charges_each_record_once(tmp_path: Path) -> None:
    rows = people(N)
    with FakeUpstream(latency=0.3) as fake:
        cfg: dict[str, Any] = settings_for(
            fake.url, lantern_concurrency=CONCURRENCY, lantern_read_timeout_sec=5.0
        )
        cfg.update(
            data_dir=str(tmp_path / "data"),
            s3_port=free_port(),
            executor_id="crash-worker",
        )
        settings = Settings(**cfg)
        settings.ensure_data_dir()
        s3 = LocalS3Server(settings)  # outlives both workers, like a real S3 would
        s3.start()
        log = tmp_path / "worker.log"
        env = _env(cfg)
        leads = tmp_path / "leads.csv"
        with leads.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        try:
            grant = _cli(env, log, "credits", "grant", "ana", "10000")
            grant.communicate(timeout=60)
            assert grant.returncode == 0, log.read_text()
            first = _cli(
                env, log, "submit", str(leads), "--user", "ana", "--max-credits", "5000", "--wait"
            )
            deadline = time.monotonic() + 60
            while len(fake.requests) < 12:
                assert first.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the worker never reached the upstream"
                time.sleep(0.01)
            os.killpg(first.pid, signal.SIGKILL)
            printed, _ = first.communicate(timeout=10)
            run_id = json.loads(printed.splitlines()[0])["run_id"]
            assert len(fake.requests) < N  # really killed mid-run

            # same data dir and executor id: DBOS recovers the pending run on launch
            second = _cli(env, log, "status", run_id, "--wait", "--timeout", "90")
            out, _ = second.communicate(timeout=120)
            assert second.returncode == 0, log.read_text()
            assert json.loads(out.strip().splitlines()[-1])["state"] == "completed"
            calls = fake.requests
            store = S3ObjectStore(settings)
            credits_csv = store.get(store.key_for(run_id, "credits.csv"))
        finally:
            s3.stop()

    engine = db.make_engine(settings.state_db_url)
    with engine.connect() as conn:
        run = conn.execute(sa.select(db.runs).where(db.runs.c.run_id == run_id)).one()._mapping
        statuses = conn.execute(
            sa.select(db.run_records.c.status, sa.func.count())
            .where(db.run_records.c.run_id == run_id)
            .group_by(db.run_records.c.status)
        ).all()
        charges = conn.execute(
            sa.select(db.ledger.c.record_idx, db.ledger.c.amount).where(
                db.ledger.c.run_id == run_id, db.ledger.c.kind == "charge"
            )
        ).all()
    engine.dispose()

    assert run["state"] == "completed"
    assert dict(statuses) == {"found": N}  # every record settled, none pending
    assert len(charges) == N and len({idx for idx, _ in charges}) == N
    assert sum(amount for _, amount in charges) == run["spent"] == N
    report = list(csv.DictReader(io.StringIO(credits_csv.decode())))
    assert sorted(r["id"] for r in report) == sorted(r["id"] for r in rows)
    assert sum(int(r["credits_charged"]) for r in report) == N

    per_record = Counter(c.record_id for c in calls)
    assert set(per_record) == {record_id(r) for r in rows}  # the same stable ids, no others
    repeated = [rid for rid, n in per_record.items() if n > 1]
    assert all(n <= 2 for n in per_record.values())
    # the request that had just arrived when the worker died is sent again after recovery,
    # and at most the lookups in flight at the kill are
    assert 1 <= len(repeated) <= CONCURRENCY
    assert len(calls) <= N + CONCURRENCY
