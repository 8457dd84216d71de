"""The reference directory at a million rows: load time and peak memory, then a run.

A deterministic CSV of made-up contacts (``example.com``-style domains, 555 numbers in
the fictional range are avoided: valid US numbers built from the row number) is written
to a temp dir; ``phone-enrich directory load`` runs in a subprocess whose peak RSS is read
from ``getrusage(RUSAGE_CHILDREN)``; then 1000 leads from that directory go through the
engine (in-process queue) and their engine time is measured.
"""

from __future__ import annotations

import contextlib
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.run import Row

ROWS = int(os.environ.get("BENCH_DIRECTORY_ROWS", "1000000"))
LEADS = 1000
WORKERS = os.environ.get("BENCH_DIRECTORY_WORKERS", "0")  # 0: the CLI's default
HEADERS = ["First Name", "Last Name", "Company", "Website", "LinkedIn", "Email", "Phone"]
_AREAS = ("212", "312", "415", "512", "617", "646", "702", "917")


def contact(i: int) -> list[str]:
    """Row ``i``: every fourth has no LinkedIn, every seventh no email (the name keys)."""
    company = f"Company {i % 50_000}"
    domain = f"company{i % 50_000}.example"
    first, last = f"First{i % 9973}", f"Last{i}"
    area = _AREAS[i % len(_AREAS)]
    line = 2000 + (i // len(_AREAS)) % 8000
    exchange = 200 + (i // 64_000) % 700
    phone = f"({area}) {exchange}-{line:04d}" if i % 2 else f"+1 {area} {exchange} {line:04d}"
    linkedin = "" if i % 4 == 0 else f"https://www.linkedin.com/in/person-{i}"
    email = "" if i % 7 == 0 else f"p{i}@{domain}"
    return [first, last, company, domain, linkedin, email, phone]


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        for i in range(rows):
            writer.writerow(contact(i))


def _load(env: dict[str, str], path: Path) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS (MB, of the largest process: the worker processes that
    check phones are each smaller), CPU seconds of every process, and the CLI's output."""
    exe = Path(sys.executable).with_name("phone-enrich")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    done = subprocess.run(
        [str(exe), "directory", "load", str(path), "--workers", WORKERS],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"directory load failed: {done.stderr[-2000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu
    note = "" if peak_kb > before else " (peak not above an earlier child's)"
    return seconds, peak_kb / 1024, cpu, done.stdout.strip() + note


def _run_leads(env_url: str, data_dir: Path) -> float:
    from phone_core import credits, inline, service
    from phone_core.models import BatchCreate
    from phone_core.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=env_url, lantern_enabled=False)
    rt = inline.memory_runtime(settings)
    with rt.db.begin() as conn:
        credits.grant(conn, "bench", 10**6)
    step = ROWS // LEADS
    records = []
    for n in range(LEADS):
        first, last, _company, domain, linkedin, email, _ = contact(n * step + 1)
        if n % 3 == 0:
            records.append({"linkedin": linkedin})
        elif n % 3 == 1 and email:
            records.append({"email": email})
        else:
            records.append({"first_name": first, "last_name": last, "company_url": domain})
    accepted = service.submit_batch(
        rt, "bench", BatchCreate(records=records, entity_type="person", max_credits=LEADS)
    )
    assert isinstance(rt.queue, inline.InlineRunQueue)
    start = time.perf_counter()
    rt.queue.drain()
    took = time.perf_counter() - start
    run = service.get_run(rt, "bench", accepted.run_id)
    if run.counts.found < LEADS * 0.9:
        raise RuntimeError(f"expected the leads to be found: {run.counts}")
    return took


def _suite(label: str, path: Path, data_dir: Path, url: str) -> list[Row]:
    env = {**os.environ, "PHONE_DATA_DIR": str(data_dir), "PHONE_DATABASE_URL": url}
    seconds, peak_mb, cpu, out = _load(env, path)
    leads = _run_leads(url, data_dir)
    return [
        Row(f"directory load, {ROWS:,} rows ({label})", seconds, "s", "<= 60", out),
        Row(
            f"directory load CPU time, all processes ({label})",
            cpu,
            "s",
            "",
            f"{os.cpu_count()} CPUs",
        ),
        Row(f"directory load peak RSS ({label})", peak_mb, "MB", "<= 400"),
        Row(f"{LEADS} leads against it, engine time ({label})", leads, "s", "<= 1"),
    ]


def run() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "directory.csv"
        write_csv(path, ROWS)
        size = path.stat().st_size / 1024 / 1024
        sqlite_dir = Path(tmp) / "sqlite"
        url = f"sqlite:///{sqlite_dir / 'state.sqlite'}"
        rows += _suite(f"SQLite, {size:.0f} MB CSV", path, sqlite_dir, url)
        pg = os.environ.get("PHONE_TEST_POSTGRES_URL")
        if pg:
            with _pg_database(pg) as url:
                rows += _suite(f"PostgreSQL, {size:.0f} MB CSV", path, Path(tmp) / "pg", url)
    return rows


@contextlib.contextmanager
def _pg_database(server_url: str) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    import sqlalchemy as sa

    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"phone_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
