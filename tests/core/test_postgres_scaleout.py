"""Scale-out: state and DBOS on PostgreSQL, a shared S3 server, two worker processes.

Needs PHONE_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
.ci/run sets it. Each test creates and drops its own databases.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from phone_core.demo import to_csv
from phone_core.s3server import LocalS3Server, embedded_credentials
from phone_core.settings import Settings
from tests.conftest import free_port
from tests.core.test_durability import BIN, _env

PG_URL = os.environ.get("PHONE_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(
    not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set (CI sets it; no PostgreSQL here)"
)


@pytest.fixture
def pg_urls() -> Iterator[tuple[str, str]]:
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    names = [f"phone_t_{uuid.uuid4().hex[:10]}", f"phone_t_{uuid.uuid4().hex[:10]}_dbos"]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(PG_URL)
    state = base.set(database=names[0]).render_as_string(hide_password=False)
    dbos = base.set(drivername="postgresql", database=names[1]).render_as_string(
        hide_password=False
    )
    yield state, dbos
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_two_workers_share_runs_on_postgres(tmp_path: Path, pg_urls: tuple[str, str]) -> None:
    state_url, dbos_url = pg_urls
    s3 = LocalS3Server(Settings(data_dir=tmp_path / "s3host", s3_port=free_port()))
    s3.start()
    creds = embedded_credentials(s3.settings)
    shared = {
        "PHONE_DATABASE_URL": state_url,
        "PHONE_DBOS_DATABASE_URL": dbos_url,
        "PHONE_S3_ENDPOINT_URL": str(creds.endpoint_url),
        "PHONE_S3_ACCESS_KEY": str(creds.access_key),
        "PHONE_S3_SECRET_KEY": str(creds.secret_key),
        "PHONE_LANTERN_ENABLED": "false",
        # One lead a wave: a run takes seconds, not the ~0.3 s of 15 waves of 10, so while
        # one worker holds a run (one at a time each) the other one must take the next;
        # with fast runs the worker that launched first sometimes did all four.
        "PHONE_WAVE_SIZE": "1",
        "PHONE_QUEUE_CONCURRENCY": "1",
    }
    workers: list[subprocess.Popen[str]] = []
    try:

        def env(name: str) -> dict[str, str]:
            return _env(tmp_path / name, 0, **shared)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(BIN), *args], env=env("client"), capture_output=True, text=True, timeout=120
            )

        directory = tmp_path / "dir.csv"
        directory.write_text(
            to_csv(["linkedin", "phone"], [[f"p-{i}", f"(415) 555-{i:04d}"] for i in range(400)])
        )
        assert cli("credits", "grant", "ann", "2000").returncode == 0
        assert cli("directory", "load", str(directory)).returncode == 0
        run_ids = []
        for part in range(4):
            leads = tmp_path / f"leads{part}.csv"
            leads.write_text(
                to_csv(["linkedin"], [[f"p-{i}"] for i in range(part * 100, part * 100 + 150)])
            )
            out = cli("submit", str(leads), "--user", "ann", "--max-credits", "150")
            assert out.returncode == 0, out.stderr
            run_ids.append(json.loads(out.stdout)["run_id"])
        for name in ("w1", "w2"):
            workers.append(
                subprocess.Popen(
                    [str(BIN), "worker", "--executor-id", name, "--exit-when-idle", "2"],
                    env=env(name),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        logs = []
        for w in workers:
            _, err = w.communicate(timeout=180)
            logs.append(err)
            assert w.returncode == 0, err
        total_found = 0
        for run_id in run_ids:
            status = json.loads(cli("status", run_id).stdout)
            assert status["state"] == "completed", (status, logs)
            assert status["counts"]["pending"] == 0
            total_found += status["counts"]["found"]
        # 4 runs x 150 people, ids 0..449 with overlaps: the cache serves repeats for free
        assert (
            total_found
            + sum(json.loads(cli("status", r).stdout)["counts"]["cached"] for r in run_ids)
            == 4 * 150 - 50
        )  # p-400..p-449 are not in the directory
        engine = sa.create_engine(dbos_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            executors = {
                r[0]
                for r in conn.execute(
                    sa.text("SELECT executor_id FROM dbos.workflow_status WHERE name = 'phone_run'")
                )
            }
        engine.dispose()
        assert executors == {"w1", "w2"}, (executors, logs)
        out = cli("download", run_ids[0], "--out", str(tmp_path / "out"))
        assert out.returncode == 0, out.stderr
        assert len((tmp_path / "out" / "results.csv").read_text().splitlines()) == 151
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        s3.stop()


def test_run_records_bulk_insert_round_trips_on_postgres(pg_urls: tuple[str, str]) -> None:
    """runs.insert_records writes through the DBAPI directly (db.bulk_insert): booleans,
    NULLs and the JSON source row come back as they went in on PostgreSQL too."""
    from phone_core import db, run_views, runs
    from phone_core.models import Person

    engine = db.make_engine(pg_urls[0])
    try:
        db.migrate(engine)
        people = [Person(id="a", first_name="Zoë", last_name="O'Neil"), Person(id="b")]
        source_rows = [{"Name": 'Zoë "Z" O\'Neil', "Notes": "a\nb ; €"}, {"Name": ""}]
        with engine.begin() as conn:
            new = runs.NewRun(
                run_id="r1", owner="ann", max_credits=1, total=2, worst_case=1,
                result_path="s3://b/r1/results.csv", credits_path="s3://b/r1/credits.csv",
            )  # fmt: skip
            runs.create(conn, new)
            runs.insert_records(
                conn, "r1", people, ["x", ""], [None, 0], [True, False], source_rows
            )
        with engine.connect() as conn:
            got = run_views.outcomes(conn, "r1")
            known = [
                r[0] for r in conn.execute(sa.text("SELECT known FROM run_records ORDER BY idx"))
            ]
        assert [o.source_row for o in got] == source_rows
        assert [o.person for o in got] == people and known == [True, False]
    finally:
        engine.dispose()


def test_person_upsert_on_postgres(pg_urls: tuple[str, str]) -> None:
    from tests.unit.test_bulk_insert import check_person_upsert

    engine = db_engine(pg_urls[0])
    try:
        check_person_upsert(engine)
    finally:
        engine.dispose()


def db_engine(url: str) -> sa.engine.Engine:
    from phone_core import db

    return db.make_engine(url)
