"""A three-vendor waterfall: 1000 records through the real engine against three fakes.

Vendor A answers in 100 ms at most 50 requests/s, B in 300 ms at 20/s, C in 1000 ms at
5/s (each a Prospeo-style single-record vendor with its own fake on 127.0.0.1, its rate
limit enforced by the shared limiter on the state DB). A knows 60% of the list, B half
of the rest, C every other record left: 1000 records reach A, 400 reach B, 200 reach C.
The ideal lets the vendors overlap on different records, each bound by its own rate and
concurrency: max over vendors of max(n / rate, n * latency / concurrency) = 40 s (C).
A waterfall that finishes one vendor before starting the next would take the sum,
20 + 20 + 40 = 80 s. The engine runs in a child process (memory runtime: SQLite state
DB, in-memory store, inline queue).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import Row
from tests.fakes.upstream import max_in_window
from tests.fakes.vendor_prospeo import FakeProspeo

N = 1000
VENDORS = (  # name, latency s, rate /s, concurrency, found price
    ("vendor_a", 0.1, 50.0, 10, 3),
    ("vendor_b", 0.3, 20.0, 10, 5),
    ("vendor_c", 1.0, 5.0, 8, 10),
)


def _knows(i: int) -> str:
    """Which vendor is the first to know record i (A: 60%, B: 20%, C: 10%, none: 10%)."""
    r = i % 10
    return "vendor_a" if r < 6 else "vendor_b" if r < 8 else "vendor_c" if r == 8 else ""


def _people(name: str) -> dict[str, list[tuple[str, str]]]:
    """What a vendor knows: its own share, plus (overlap) some of the later vendors'."""
    order = [v[0] for v in VENDORS]
    out = {}
    for i in range(N):
        first = _knows(i)
        if first and order.index(first) <= order.index(name) and (first == name or i % 3 == 0):
            out[f"leebench{i}"] = [(f"+1212{200 + i % 800:03d}{i:04d}", "mobile")]
    return out


def _child(cfg_json: str) -> None:
    from phone_core.credits import Price
    from phone_core.inline import memory_runtime
    from phone_core.sources.prospeo import ProspeoSource
    from phone_core.sources.vendor_base import VendorConfig
    from tests.conftest import make_settings
    from tests.fakes.batches import finish, fund, people, submit

    cfg = json.loads(cfg_json)
    rt = memory_runtime(make_settings(Path(cfg["data_dir"]), waterfall=[]))
    try:
        rt.sources = [
            ProspeoSource(
                VendorConfig(
                    name=name,
                    base_url=cfg["urls"][name],
                    api_key="k",
                    price=Price(name, 0, price, 0),
                    rate_per_sec=rate,
                    concurrency=conc,
                    timeout_sec=10.0,
                ),
                rt.db,
            )
            for name, _lat, rate, conc, price in VENDORS
        ]
        fund(rt, 20 * N)
        submitted = time.time()
        t0 = time.perf_counter()
        run_id = submit(rt, people(N, "bench"), max_credits=20 * N)
        rt.queue.drain()  # type: ignore[attr-defined]
        done = finish(rt, run_id, timeout=600)
        seconds = time.perf_counter() - t0
    finally:
        rt.close()
    by_source: dict[str, int] = {}
    for r in done.credits_rows:
        if r["status"] == "found":
            by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    out = {
        "seconds": seconds,
        "submitted": submitted,
        "found": by_source,
        "spent": done.run.credits_spent,
    }
    print(json.dumps(out), flush=True)


def run() -> list[Row]:
    fakes = {name: FakeProspeo(people=_people(name), latency=lat) for name, lat, *_ in VENDORS}
    for fake in fakes.values():
        fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = {
                "data_dir": str(Path(tmp) / "data"),
                "urls": {n: f.url for n, f in fakes.items()},
            }
            out = subprocess.run(
                [sys.executable, "-m", "bench.bench_waterfall", "--child", json.dumps(cfg)],
                cwd=Path(__file__).resolve().parents[1],
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
            ).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    finally:
        for fake in fakes.values():
            fake.stop()
    ideal = 0.0
    notes = []
    for name, lat, rate, conc, _price in VENDORS:
        calls = fakes[name].requests
        n = len(calls)
        ideal = max(ideal, n / rate, n * lat / conc)
        peak = max_in_window([c.ts for c in calls])
        found = result["found"].get(name, 0)
        notes.append(f"{name}: {n} calls, {found} found, peak {peak}/s (limit {rate:g})")
    expected_found = {n: sum(1 for i in range(N) if _knows(i) == n) for n, *_ in VENDORS}
    expected_spend = sum(expected_found[n] * p for n, *_rest, p in VENDORS)
    seconds = float(result["seconds"])
    sequential = sum(
        max(len(fakes[n].requests) / rate, len(fakes[n].requests) * lat / conc)
        for n, lat, rate, conc, _ in VENDORS
    )
    starts = [c.ts for f in fakes.values() for c in f.requests]
    c_calls = [c.ts for c in fakes[VENDORS[-1][0]].requests]
    phase = max(c_calls) + VENDORS[-1][1] - min(starts)
    c_first = min(c_calls) - min(starts)
    submitted = float(result["submitted"])
    correct = result["found"] == expected_found and result["spent"] == expected_spend
    return [
        Row(
            "waterfall_3_vendors_1000",
            seconds,
            "s",
            f"<= {1.15 * ideal:.1f} s (ideal x1.15)",
            "; ".join(notes) + f"; spend {result['spent']} (expected {expected_spend})",
        ),
        Row(
            "waterfall_3_vendors_upstream_phase",
            phase,
            "s",
            f"<= {1.15 * ideal:.1f} s",
            f"first vendor call to the last answer; the first call {min(starts) - submitted:.2f} s"
            f" after submit; vendor_c's first call {c_first:.2f} s after it",
        ),
        Row(
            "waterfall_3_vendors_ideal",
            ideal,
            "s",
            "",
            "max over vendors of max(n/rate, n*latency/concurrency)",
        ),
        Row(
            "waterfall_3_vendors_vs_ideal",
            seconds / ideal,
            "x",
            "<= 1.15",
            "engine seconds / ideal",
        ),
        Row(
            "waterfall_3_vendors_sequential_bound",
            sequential,
            "s",
            "",
            "one vendor after the other (sum of the bounds)",
        ),
        Row(
            "waterfall_3_vendors_correct",
            1.0 if correct else 0.0,
            "bool",
            "1",
            "found by the first vendor that knows each, spend = sum of found prices",
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(sys.argv[2])
    else:
        for row in run():
            print(row)
