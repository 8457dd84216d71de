"""Worker scaling on PostgreSQL: runs/s and records/s with 1 and then 2 `phone-enrich
worker` processes over the same local-source workload (directory lookups), one shared S3.

Each measure submits the same batches (fresh databases), starts the workers, and takes
the time from the first run started to the last run finished (from the runs table), so
process start-up is not counted. Needs PostgreSQL: PHONE_TEST_POSTGRES_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/postgres if it answers; otherwise skipped.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.run import Row
from phone_core.demo import to_csv
from phone_core.s3server import LocalS3Server, embedded_credentials
from phone_core.settings import Settings

BIN = Path(sys.executable).parent / "phone-enrich"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
RUNS, PER_RUN = 24, 500
REPEATS = 2


class CpuSampler:
    """The machine's CPU use, sampled from /proc/stat every 0.1 s while the workers run:
    how busy the cores were between two moments (what bounds a second worker)."""

    def __init__(self) -> None:
        self.samples: list[tuple[datetime, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy, total = self._read()
            self.samples.append((datetime.now(UTC).replace(tzinfo=None), busy, total))
            self._stop.wait(0.1)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy_between(self, start: datetime, end: datetime) -> float:
        """Busy share of all cores between ``start`` and ``end`` (naive UTC), 0..1."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        (_, b0, t0), (_, b1, t1) = inside[0], inside[-1]
        return (b1 - b0) / max(1, t1 - t0)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_url() -> str | None:
    url = os.environ.get("PHONE_TEST_POSTGRES_URL") or DEFAULT_PG
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception:
        return None


def _measure(pg: str, workers: int, tmp: Path) -> tuple[float, float]:
    """(seconds from the first run started to the last finished, the cores' busy share
    meanwhile)."""
    admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
    names = [f"phone_b_{uuid.uuid4().hex[:10]}", f"phone_b_{uuid.uuid4().hex[:10]}_dbos"]
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(pg)
    state = base.set(database=names[0]).render_as_string(hide_password=False)
    dbos = base.set(drivername="postgresql", database=names[1]).render_as_string(
        hide_password=False
    )
    s3 = LocalS3Server(Settings(data_dir=tmp / f"s3-{workers}", s3_port=_free_port()))
    s3.start()
    creds = embedded_credentials(s3.settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    env |= {
        "PHONE_DATABASE_URL": state,
        "PHONE_DBOS_DATABASE_URL": dbos,
        "PHONE_S3_ENDPOINT_URL": str(creds.endpoint_url),
        "PHONE_S3_ACCESS_KEY": str(creds.access_key),
        "PHONE_S3_SECRET_KEY": str(creds.secret_key),
        "PHONE_LANTERN_ENABLED": "false",
        "PHONE_RUNS_BATCHES": "false",
        "PHONE_DATA_DIR": str(tmp / f"client-{workers}"),
    }
    procs: list[subprocess.Popen[bytes]] = []
    engine = sa.create_engine(state)
    try:

        def cli(*args: str) -> None:
            subprocess.run([str(BIN), *args], env=env, check=True, capture_output=True)

        directory = tmp / "dir.csv"
        if not directory.exists():
            directory.write_text(
                to_csv(
                    ["linkedin", "phone"],
                    [[f"p-{i}", f"(415) 555-{i % 10000:04d}"] for i in range(RUNS * PER_RUN)],
                )
            )
        cli("credits", "grant", "ann", str(RUNS * PER_RUN))
        cli("directory", "load", str(directory))
        for r in range(RUNS):
            leads = tmp / f"leads{r}.csv"
            rows = [[f"p-{i}"] for i in range(r * PER_RUN, (r + 1) * PER_RUN)]
            leads.write_text(to_csv(["linkedin"], rows))
            cli("submit", str(leads), "--user", "ann", "--max-credits", str(PER_RUN))
        with CpuSampler() as cpu:
            for w in range(workers):
                procs.append(
                    subprocess.Popen(
                        [str(BIN), "worker", "--executor-id", f"w{w}", "--exit-when-idle", "2"],
                        env={**env, "PHONE_DATA_DIR": str(tmp / f"w{workers}-{w}")},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            for p in procs:
                p.wait(timeout=900)
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT min(started_at), max(finished_at), count(*) FROM runs"
                    " WHERE state = 'completed'"
                )
            ).one()
        assert row[2] == RUNS, f"only {row[2]} of {RUNS} runs completed"
        return (row[1] - row[0]).total_seconds(), cpu.busy_between(row[0], row[1])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        engine.dispose()
        s3.stop()
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run() -> list[Row]:
    pg = _pg_url()
    if pg is None:
        return [Row("worker scaling", 0, "", "", "skipped: no PostgreSQL reachable")]
    with tempfile.TemporaryDirectory() as tmp:
        # Alternated and repeated: the machine's noise spreads over both.
        got: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(REPEATS):
            for workers in (1, 2):
                got[workers].append(_measure(pg, workers, Path(tmp)))
    one, busy_one = (statistics.mean(x) for x in zip(*got[1], strict=True))
    two, busy_two = (statistics.mean(x) for x in zip(*got[2], strict=True))
    records = RUNS * PER_RUN
    note = (
        f"{RUNS} runs x {PER_RUN} records, directory source, queue concurrency 4 per "
        f"worker; mean of {REPEATS} measures each, alternated"
    )
    cores = os.cpu_count() or 1
    bound = (
        f"{cores} cores, {busy_one:.0%} busy with 1 worker, {busy_two:.0%} with 2 (the "
        "workers, PostgreSQL and S3 share them): a second worker can only use what one "
        "leaves idle"
    )
    return [
        Row("1 worker: runs/s", RUNS / one, "runs/s", "", note),
        Row("1 worker: records/s", records / one, "records/s", "", note),
        Row("2 workers: runs/s", RUNS / two, "runs/s", "", note),
        Row("2 workers: records/s", records / two, "records/s", "", note),
        Row("1 worker: cores busy", busy_one * 100, "%", "", "all cores, from /proc/stat"),
        Row("2 workers: cores busy", busy_two * 100, "%", "", "all cores, from /proc/stat"),
        Row("2 vs 1 workers", one / two, "x", "≥ 1.7 where cores allow", bound),
        Row(
            "2 vs 1 workers: the most these cores allow",
            1 / busy_one,
            "x",
            "",
            "all cores busy with 2 workers, at the same CPU per run: 1 / (busy share with 1)",
        ),
    ]
