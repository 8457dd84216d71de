"""The CLI's quick commands: `credits show` and `status RUN_ID` wall time, as a person at a
terminal feels it (a fresh process each time: interpreter start, imports, state DB).

A run is submitted first (that part starts the embedded S3 server, as it must); the
quick commands then open only the state DB. Median of several calls.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import Row

ROOT = Path(__file__).resolve().parents[1]
CALLS = 7


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phone_core.cli", *args],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT, check=True,
    )  # fmt: skip


def _median_seconds(env: dict[str, str], *args: str) -> float:
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        _cli(env, *args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = {**os.environ, "PHONE_DATA_DIR": str(data_dir), "PHONE_LANTERN_ENABLED": "false"}
        try:
            _cli(env, "credits", "grant", "ann", "300")
            out = _cli(
                env, "submit", str(ROOT / "examples" / "leads.csv"), "--user", "ann",
                "--max-credits", "10",
            )  # fmt: skip
            run_id = json.loads(out.stdout.splitlines()[0])["run_id"]
        finally:
            subprocess.run(["pkill", "-f", f"serve s3 {data_dir.resolve()}/s3"], check=False)
        show = _median_seconds(env, "credits", "show", "ann")
        status = _median_seconds(env, "status", run_id)
    return [
        Row("credits show (fresh process)", show, "s", "≤ 1 s", f"median of {CALLS}"),
        Row("status RUN_ID (fresh process)", status, "s", "≤ 1 s", f"median of {CALLS}"),
    ]
