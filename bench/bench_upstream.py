"""Lantern throughput: 1000 records through the real engine against the fake upstream.

The fake answers after 200 ms; the source is limited to 50 requests/s with 20 requests in
flight, so the ideal is max(N / rate, N * latency / concurrency) = 20 s (rate-bound).
The engine runs in a child process (a real vendor does not share its interpreter); the
fake's request log gives the upstream phase and the peak rate. The same records through a
naive loop (one httpx request after the other) are timed on
the first 100 records and extrapolated to 1000. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.run import Row
from phone_core import bootstrap
from phone_core.settings import Settings
from tests.conftest import free_port
from tests.fakes.batches import finish, fund, people, record_id, settings_for, submit
from tests.fakes.upstream import PATH, FakeUpstream, max_in_window

N = 1000
RATE = 50.0
LATENCY = 0.2
CONCURRENCY = 20
NAIVE_N = 100


def _engine_child(cfg_json: str) -> None:
    """In a child process: one runtime, one 1000-record run; prints timings as JSON."""
    settings = Settings(**json.loads(cfg_json))
    rt = bootstrap.get_runtime(settings)
    try:
        fund(rt, 10 * N)
        # a long-running worker is warm: one small run first (DBOS queue, first workflow,
        # first HTTP connection), not timed
        finish(rt, submit(rt, people(5, "warmup")), timeout=120)
        rows = people(N, "bench")
        submitted = time.time()
        t0 = time.perf_counter()
        run_id = submit(rt, rows, max_credits=2 * N)
        done = finish(rt, run_id, timeout=600)
        seconds = time.perf_counter() - t0
    finally:
        bootstrap.shutdown()
    found = sum(1 for r in done.credits_rows if r["status"] == "found")
    print(json.dumps({"seconds": seconds, "found": found, "submitted": submitted}), flush=True)


def _engine_run(fake: FakeUpstream, data_dir: Path, **extra: object) -> dict[str, float]:
    """Run the engine in its own process (the vendor does not share our GIL either)."""
    overrides = settings_for(
        fake.url,
        lantern_rate_per_sec=RATE,
        lantern_concurrency=CONCURRENCY,
        lantern_read_timeout_sec=5.0,
        lantern_backoff_base_sec=0.5,
        lantern_backoff_max_sec=5.0,
        lantern_breaker_failures=8,
        lantern_breaker_pause_sec=5.0,
        lantern_max_attempts=4,
    )
    overrides.update(data_dir=str(data_dir), s3_port=free_port(), **extra)
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_upstream", "--engine-child", json.dumps(overrides)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    calls = [c for c in fake.requests if not c.body.get("last_name", "").startswith("Leewarmup")]
    result["peak"] = max_in_window([c.ts for c in calls], 1.0)
    result["calls"] = len(calls)
    result["upstream_sec"] = max(c.done for c in calls) - min(c.ts for c in calls)
    result["first_call_after"] = min(c.ts for c in calls) - result["submitted"]
    return result


def _naive_run(fake: FakeUpstream) -> float:
    """Seconds for NAIVE_N records sent one after the other."""
    rows = people(NAIVE_N, "naive")
    headers = {"Authorization": "Bearer k"}
    with httpx.Client(base_url=fake.url, timeout=10.0) as client:
        t0 = time.perf_counter()
        for row in rows:
            body = {"record_id": record_id(row), "first_name": row["first_name"]}
            client.post(PATH, json=body, headers=headers).raise_for_status()
        return time.perf_counter() - t0


def run() -> list[Row]:
    ideal = max(N / RATE, N * LATENCY / CONCURRENCY)
    with FakeUpstream(latency=LATENCY, hit_rate=60) as fake, tempfile.TemporaryDirectory() as tmp:
        res = _engine_run(fake, Path(tmp) / "data")
        fake.reset()
        waves = _engine_run(fake, Path(tmp) / "data1", wave_size=200)
        fake.reset()
        naive_100 = _naive_run(fake)
    seconds = res["seconds"]
    naive = naive_100 * N / NAIVE_N
    setup = f"{N} records, {LATENCY * 1000:.0f} ms latency, {RATE:.0f} req/s"
    setup += f", {CONCURRENCY} in flight"
    return [
        Row(
            "lantern_engine_1000",
            seconds,
            "s",
            f"<= {ideal * 1.1:.1f} s (ideal +10%)",
            f"{setup}; warm worker, submit to finished, incl. {res['first_call_after']:.2f} s"
            f" before the first call and the S3 outputs; {res['found']:.0f} found,"
            f" {res['calls']:.0f} upstream calls, peak {res['peak']:.0f} req in any 1 s",
        ),
        Row(
            "lantern_upstream_phase_1000",
            res["upstream_sec"],
            "s",
            f"<= {ideal * 1.1:.1f} s",
            "first request arrival to last response at the fake (default wave_size 1000: one wave)",
        ),
        Row(
            "lantern_engine_1000_waves_of_200",
            waves["seconds"],
            "s",
            "",
            "the same with wave_size=200 (5 waves: each boundary drains the in-flight"
            f" requests and sets up the next wave); peak {waves['peak']:.0f} req in any 1 s",
        ),
        Row("lantern_ideal_1000", ideal, "s", "", "max(N/rate, N*latency/concurrency)"),
        Row("lantern_vs_ideal", seconds / ideal, "x", "<= 1.10", "engine seconds / ideal"),
        Row(
            "lantern_upstream_phase_vs_ideal",
            res["upstream_sec"] / ideal,
            "x",
            "<= 1.10",
            "upstream phase / ideal",
        ),
        Row(
            "lantern_naive_sequential_1000",
            naive,
            "s",
            "",
            f"one httpx request at a time; timed on {NAIVE_N} records ({naive_100:.1f} s)"
            f" and extrapolated x{N // NAIVE_N}",
        ),
        Row("lantern_speedup_vs_naive", naive / seconds, "x", "", "naive seconds / engine"),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--engine-child":
        _engine_child(sys.argv[2])
    else:
        for row in run():
            print(f"{row.name}: {row.value:.3f} {row.unit} {row.target} {row.note}")
