"""HTTP API: POST latency for a 1000-record body, and sustained submissions per second.

The API runs as ``python -m phone_core.api`` in its own process (uvicorn, embedded rclone
S3, SQLite, the DBOS worker inside, as ``make run`` starts it) on a temporary data dir;
the load comes from this process over loopback. Runs submitted here are really processed
by the worker meanwhile (an empty directory: every record is looked up, none found).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.run import Row
from phone_core import credits, db, keys, users

LATENCY_POSTS = 30
WARMUP_POSTS = 3
CLIENTS = 20
SUSTAIN_SEC = 10.0
SUSTAIN_RECORDS = 10
USER = "bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def _prepare(data_dir: Path) -> str:
    """Migrate the state DB, grant credits and make a key before the API starts."""
    data_dir.mkdir(parents=True)
    engine = db.make_engine(f"sqlite:///{(data_dir / 'state.sqlite').resolve()}")
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, USER, credits.MAX_AMOUNT)  # the most one grant may be
        users.add(conn, USER, "Bench")
        key = keys.create(conn, USER, "bench")[1]
    engine.dispose()
    return key


@contextmanager
def _api(data_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    env.update(
        PHONE_DATA_DIR=str(data_dir),
        PHONE_S3_PORT=str(_free_port()),
        PHONE_API_PORT=str(port),
        PHONE_API_RATE_PER_MINUTE=str(10**9),
        PHONE_EXECUTOR_ID="bench-api",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "phone_core.api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latency(base: str, key: str) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    out: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for i in range(WARMUP_POSTS + LATENCY_POSTS):
            body = _body(1000, f"lat{i}")
            start = time.perf_counter()
            r = client.post("/v1/agents/phone", json=body)
            elapsed = time.perf_counter() - start
            if r.status_code != 202:
                raise RuntimeError(f"POST returned {r.status_code}")
            if i >= WARMUP_POSTS:
                out.append(elapsed * 1000)
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


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        data_dir = Path(tmp) / "data"
        key = _prepare(data_dir)
        with _api(data_dir) as base:
            latencies = _latency(base, key)
            ok, failed, elapsed = asyncio.run(_sustain(base, key))
    note = f"{LATENCY_POSTS} POSTs of 1000 records, sequential, after {WARMUP_POSTS} warm-up"
    load = (
        f"{CLIENTS} clients, {elapsed:.1f} s, {SUSTAIN_RECORDS} records each, "
        f"{ok} accepted, {failed} other"
    )
    return [
        Row("POST 1000 records p50", statistics.median(latencies), "ms", "< 500", note),
        Row("POST 1000 records p99", _percentile(latencies, 0.99), "ms", "< 1500", note),
        Row("sustained submissions", ok / elapsed, "runs/s", ">= 20", load),
        Row("sustained records accepted", ok * SUSTAIN_RECORDS / elapsed, "records/s", "", load),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.name}: {row.value:.1f} {row.unit} (target {row.target}) {row.note}")
