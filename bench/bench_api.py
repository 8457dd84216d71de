"""HTTP API: POST latency for a 1000-record body, and sustained submissions per second,
in the scaled-out topology issue 11 asks for: ``phone-enrich api --workers N`` in one
process group and ``phone-enrich worker`` in another, on one PostgreSQL and one S3
(``bench.topology``). The load comes from this process over loopback; the runs submitted
are really processed by the worker meanwhile (an empty directory: every record is looked
up, none found), so the API shares the 2 cores with the worker, PostgreSQL and S3.

Besides wall-clock latency it reports the API processes' CPU time per request (from
/proc), which is what bounds throughput on a busy machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench import topology
from bench.run import Row
from bench.topology import Install, install, pg_url
from phone_core import credits, db, keys, service, users
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate
from phone_core.settings import Settings

LATENCY_POSTS = 100  # p99 is the 99th of 100, not the largest of 40
WARMUP_POSTS = 5
CLIENTS = 20
SUSTAIN_SEC = 10.0
SUSTAIN_RECORDS = 10
USER = "bench"
API_WORKERS = int(os.environ.get("BENCH_API_WORKERS", "2"))


def _records(n: int, tag: str) -> list[dict[str, str]]:
    return [
        {
            "id": f"{tag}-{i}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "company_name": f"Company {i % 97}",
            "company_url": f"https://www.co{i % 97}.example.com/about",
            "linkedin": f"https://linkedin.com/in/person-{tag}-{i}/",
        }
        for i in range(n)
    ]


def _body(n: int, tag: str) -> dict[str, Any]:
    return {"records": _records(n, tag), "entity_type": "person", "max_credits": n}


def _prepare(inst: Install) -> str:
    """Migrate the state DB, grant credits and make a key before the API starts."""
    engine = db.make_engine(inst.state_url)
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, USER, credits.MAX_AMOUNT)  # the most one grant may be
        users.add(conn, USER, "Bench")
        key = keys.create(conn, USER, "bench")[1]
    engine.dispose()
    return key


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latency(base: str, key: str) -> list[float]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [json.dumps(_body(1000, f"lat{i}")) for i in range(WARMUP_POSTS + LATENCY_POSTS)]
    out: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for i, content in enumerate(bodies):
            start = time.perf_counter()
            r = client.post("/v1/agents/phone", content=content)
            elapsed = time.perf_counter() - start
            if r.status_code != 202:
                raise RuntimeError(f"POST returned {r.status_code}: {r.text[:200]}")
            if i >= WARMUP_POSTS:
                out.append(elapsed * 1000)
            time.sleep(0.05)  # a caller's think time: not back to back
    return out


async def _sustain(base: str, key: str) -> tuple[int, int, float]:
    headers = {"Authorization": f"Bearer {key}"}
    bodies = [_body(SUSTAIN_RECORDS, f"s{i}") for i in range(CLIENTS)]
    ok = failed = 0
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as c:
        stop_at = time.monotonic() + SUSTAIN_SEC

        async def worker(body: dict[str, Any]) -> None:
            nonlocal ok, failed
            while time.monotonic() < stop_at:
                r = await c.post("/v1/agents/phone", json=body)
                if r.status_code == 202:
                    ok += 1
                else:
                    failed += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(b) for b in bodies))
        elapsed = time.monotonic() - start
    return ok, failed, elapsed


def measure(workers: int = API_WORKERS) -> dict[str, float]:
    pg = pg_url()
    if pg is None:
        raise RuntimeError("no PostgreSQL")
    with (
        tempfile.TemporaryDirectory(prefix="bench-api-") as tmp,
        install(pg, Path(tmp), "api") as inst,
    ):
        key = _prepare(inst)
        worker = inst.start_worker("w0")
        api, base = inst.start_api(workers)
        cpu0 = api.cpu_seconds()
        latencies = _latency(base, key)
        cpu1 = api.cpu_seconds()
        ok, failed, elapsed = asyncio.run(_sustain(base, key))
        cpu2 = api.cpu_seconds()
        worker.sample()
        return {
            "p50": statistics.median(latencies),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies),
            "cpu_per_1000": (cpu1 - cpu0) / LATENCY_POSTS * 1000,
            "ok": ok,
            "failed": failed,
            "elapsed": elapsed,
            "cpu_per_small": (cpu2 - cpu1) / max(1, ok + failed) * 1000,
            "api_rss": api.peak_rss_mb(),
        }


def in_process(database_url: str | None = None, submits: int = 25) -> tuple[float, float]:
    """``service.submit_batch`` of 1000 records in this process (the API's work after the
    HTTP layer): median wall and CPU ms, after 5 warm-up submits. SQLite under a temporary
    data dir unless ``database_url``; the run queue is the inline one (nothing processed)."""
    with tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=database_url,
            waterfall=["directory"],
            lantern_base_url=None,
        )
        rt = memory_runtime(settings)
        try:
            with rt.db.begin() as conn:
                credits.grant(conn, USER, credits.MAX_AMOUNT)
            reqs = [BatchCreate.model_validate(_body(1000, f"ip{i}")) for i in range(submits)]
            wall: list[float] = []
            cpu: list[float] = []
            for req in reqs:
                w, c = time.perf_counter(), time.process_time()
                service.submit_batch(rt, USER, req)
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
        finally:
            rt.close()
    return statistics.median(wall[5:]) * 1000, statistics.median(cpu[5:]) * 1000


def _in_process_rows() -> list[Row]:
    out = []
    wall, cpu = in_process()
    note = "median of 20 after 5 warm-up; normalise, validate, write records, people, run"
    out.append(Row("service.submit_batch 1000 records, SQLite", wall, "ms", "<= 60", note))
    out.append(Row("  same, CPU", cpu, "ms", "", note))
    pg = pg_url()
    if pg is not None:
        admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        name = f"phone_sub_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.engine.make_url(pg).set(database=name).render_as_string(hide_password=False)
            wall, cpu = in_process(url)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        out.append(Row("service.submit_batch 1000 records, PostgreSQL", wall, "ms", "", note))
        out.append(Row("  same, CPU", cpu, "ms", "", note))
    return out


def run() -> list[Row]:
    rows = _in_process_rows()
    if pg_url() is None:
        return [*rows, Row("API", 0, "", "", "skipped: no PostgreSQL reachable")]
    return rows + topology.with_baseline(measure, _api_rows)


def _api_rows(m: dict[str, float], tag: str) -> list[Row]:
    topo = (
        f"`phone-enrich api --workers {API_WORKERS}` + 1 `phone-enrich worker` (separate "
        "process groups), PostgreSQL, embedded S3"
    )
    note = (
        f"{LATENCY_POSTS} POSTs of 1000 records, one client, after {WARMUP_POSTS} warm-up; {topo}"
    )
    load = (
        f"{CLIENTS} clients, {m['elapsed']:.1f} s, {SUSTAIN_RECORDS} records each, "
        f"{m['ok']:.0f} accepted, {m['failed']:.0f} other; {topo}"
    )
    ok_rate = m["ok"] / m["elapsed"]
    rows = [
        Row("POST 1000 records p50", m["p50"], "ms", "", note),
        Row("POST 1000 records p99", m["p99"], "ms", "<= 200", note),
        Row(
            "POST 1000 records: API CPU per request",
            m["cpu_per_1000"],
            "ms",
            "",
            "all API processes, from /proc",
        ),
        Row("sustained submissions", ok_rate, "runs/s", ">= 50", load),
        Row("sustained records accepted", ok_rate * SUSTAIN_RECORDS, "records/s", "", load),
        Row(
            "sustained: API CPU per request",
            m["cpu_per_small"],
            "ms",
            "",
            "all API processes, from /proc",
        ),
    ]
    return [Row(r.name + tag, r.value, r.unit, "" if tag else r.target, r.note) for r in rows]


if __name__ == "__main__":
    for row in run():
        print(f"{row.name}: {row.value:.1f} {row.unit} (target {row.target}) {row.note}")
