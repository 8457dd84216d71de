"""An async vendor job survives ``kill -9`` of the process waiting for it.

The adapter runs in a child process (``tests.fakes.fullenrich_worker``) against the fake
FullEnrich in this process, on a SQLite state DB file. The fake holds the job
``IN_PROGRESS``; once the child has submitted it and polled, it is killed with SIGKILL.
A new adapter (fresh process state, same state DB, same run) then finishes the work:
it polls the SAME job, exactly one job was ever submitted and the vendor billed it once.
The second test does the same with a whole run through the engine in the child (a
memory runtime whose only source is FullEnrich) and processes the run again on the same
state DB after the kill, as a restarted worker would. Not through DBOS recovery: the
registry that puts FullEnrich in a DBOS worker's waterfall is built on another branch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phone_core import db, engine
from phone_core.sources import vendor_jobs
from tests.core.test_vendor_fullenrich import _in_run, _source
from tests.fakes import fullenrich_engine_worker
from tests.fakes.batches import finish
from tests.fakes.vendor_base import key_of
from tests.fakes.vendor_fullenrich import FakeFullEnrich

pytestmark = pytest.mark.integration  # a child process, killed

ROOT = Path(__file__).resolve().parents[2]
N = 6


def _wait_until(check: object, proc: subprocess.Popen[str], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, "the worker ended before it was killed"
        assert time.monotonic() < deadline, "the worker never got there"
        time.sleep(0.05)


@pytest.mark.parametrize("kill_after_polls", [1, 3])
def test_kill_9_mid_wait_resumes_the_same_job(tmp_path: Path, kill_after_polls: int) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = db.make_engine(url)
    db.migrate(engine)
    people = {key_of(i): [(f"+1212555{i:04d}", "")] for i in range(0, N, 2)}
    with FakeFullEnrich(people=people) as fake:
        fake.hold = True
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.fullenrich_worker", url, fake.url, "run-9", str(N)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            _wait_until(lambda: fake.jobs_submitted == 1, proc)
            (job_id,) = list(fake.jobs)
            _wait_until(lambda: fake.polls_of(job_id) >= kill_after_polls, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        (row,) = vendor_jobs.jobs_of(engine, "fullenrich", "run-9")
        assert (row.state, row.vendor_job_id) == ("submitted", job_id)  # checkpointed

        fake.hold = False
        polls_before = fake.polls_of(job_id)
        got = _in_run(_source(fake, engine), N, run_id="run-9")
        assert got == [
            ("found", "", f"+1212555{i:04d}") if i % 2 == 0 else ("not_found", "no_match", None)
            for i in range(N)
        ]
        assert fake.jobs_submitted == 1  # the same job, polled again
        assert fake.polls_of(job_id) > polls_before
        assert fake.credits_charged == 10 * len(people)  # billed once
    engine.dispose()


def test_kill_9_of_a_run_mid_wait_then_the_run_resumes_the_same_job(tmp_path: Path) -> None:
    """The same through the engine: a run whose only source is FullEnrich, its process
    killed while the job runs; the run is then processed again on the same state DB (as
    a restarted worker does), finds the job by its run id, and each record is charged
    once."""
    n = 20
    data_dir = tmp_path / "data"
    people_known = {f"leep{i}": [(f"+1212555{i:04d}", "")] for i in range(0, n, 2)}
    with FakeFullEnrich(people=people_known) as fake:
        fake.hold = True
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fakes.fullenrich_engine_worker",
                str(data_dir),
                fake.url,
                str(n),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            run_id = proc.stdout.readline().strip()
            _wait_until(lambda: fake.jobs_submitted == 1, proc)
            (job_id,) = list(fake.jobs)
            _wait_until(lambda: fake.polls_of(job_id) >= 2, proc)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        assert run_id and proc.returncode == -signal.SIGKILL

        fake.hold = False
        rt = fullenrich_engine_worker.runtime(data_dir, fake.url)
        try:

            async def resume() -> None:
                try:
                    await engine.process_run(rt, run_id)
                finally:
                    await rt.sources[0].http.aclose()  # type: ignore[attr-defined]

            asyncio.run(resume())
            done = finish(rt, run_id)  # also checks credits.csv against the ledger
        finally:
            rt.close()
        found = {r["id"] for r in done.credits_rows if r["status"] == "found"}
        assert found == {f"p{i}" for i in range(0, n, 2)}
        assert {r["source"] for r in done.credits_rows if r["status"] == "found"} == {"fullenrich"}
        assert done.run.credits_spent == 10 * len(found)  # each found record charged once
        assert fake.jobs_submitted == 1  # resumed, never submitted again
        assert fake.credits_charged == 10 * len(found)
