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
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from bench.run import Row
from bench.topology import install, pg_url
from phone_core.demo import to_csv

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


def _measure(pg: str, workers: int, tmp: Path) -> tuple[float, float]:
    """(seconds from the first run started to the last finished, the cores' busy share
    meanwhile), on a fresh install (``topology.Install``)."""
    where = tmp / f"install-{workers}-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    with install(pg, where, "b") as inst:
        directory = tmp / "dir.csv"
        if not directory.exists():
            directory.write_text(
                to_csv(
                    ["linkedin", "phone"],
                    [[f"p-{i}", f"(415) 555-{i % 10000:04d}"] for i in range(RUNS * PER_RUN)],
                )
            )
        inst.cli("credits", "grant", "ann", str(RUNS * PER_RUN))
        inst.cli("directory", "load", str(directory))
        for r in range(RUNS):
            leads = tmp / f"leads{r}.csv"
            rows = [[f"p-{i}"] for i in range(r * PER_RUN, (r + 1) * PER_RUN)]
            leads.write_text(to_csv(["linkedin"], rows))
            inst.cli("submit", str(leads), "--user", "ann", "--max-credits", str(PER_RUN))
        with CpuSampler() as cpu:
            roles = [
                inst.start(
                    f"worker w{w}",
                    "worker",
                    "--executor-id",
                    f"w{w}",
                    "--exit-when-idle",
                    "2",
                    PHONE_DATA_DIR=str(inst.tmp / f"w{w}"),
                )
                for w in range(workers)
            ]
            for role in roles:
                role.proc.wait(timeout=900)
        engine = sa.create_engine(inst.state_url)
        try:
            with engine.connect() as conn:
                row = conn.execute(
                    sa.text(
                        "SELECT min(started_at), max(finished_at), count(*) FROM runs"
                        " WHERE state = 'completed'"
                    )
                ).one()
        finally:
            engine.dispose()
    assert row[2] == RUNS, f"only {row[2]} of {RUNS} runs completed"
    return (row[1] - row[0]).total_seconds(), cpu.busy_between(row[0], row[1])


def run() -> list[Row]:
    pg = pg_url()
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
