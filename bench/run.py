"""`make bench`: run every bench/bench_*.py module and write BENCHMARKS.md.

Each module exposes ``run() -> list[Row]`` (name, value, unit, target, note). Benchmarks
only talk to 127.0.0.1 and are bounded in size and time.

``python -m bench.run api big_upload`` runs the suites whose names contain those words and
replaces only their rows in BENCHMARKS.md. ``BENCH_BASELINE=<checkout of an earlier
commit>`` makes the process benches (bench_api, bench_big_upload) measure that checkout's
processes too, just before the current ones, for a before/after side by side
(``git worktree add /tmp/base <commit>``; the same virtualenv serves both).
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Row:
    name: str
    value: float
    unit: str
    target: str = ""
    note: str = ""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    try:  # other work on the machine moves wall-clock figures: say how busy it was
        load = f", load average {os.getloadavg()[0]:.1f} when written"
    except OSError:
        load = ""
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}{load}"


def main() -> int:
    only = sys.argv[1:]
    here = Path(__file__).parent
    modules = sorted(p.stem for p in here.glob("bench_*.py"))
    if only:
        modules = [m for m in modules if any(o in m for o in only)]
    rows: list[tuple[str, Row]] = []
    for name in modules:
        print(f"== {name}", flush=True)
        mod = importlib.import_module(f"bench.{name}")
        for row in mod.run():
            print(f"  {row.name}: {row.value:.3f} {row.unit} {row.target} {row.note}", flush=True)
            rows.append((name, row))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    now = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    out = Path("BENCHMARKS.md")
    table = [
        f"| {m} | {r.name} | {r.value:.3f} | {r.unit} | {r.target} | {r.note} |" for m, r in rows
    ]
    written = f"Written by `make bench` on {now}, commit {commit}."
    if only and out.exists():
        # A partial run (`python -m bench.run api big_upload`): its suites' rows replace
        # theirs, the others stay as they were, and the header says what was re-run when.
        old = out.read_text().splitlines()
        kept = [
            line
            for line in old
            if line.startswith("| bench_") and line.split(" | ", 1)[0][2:] not in modules
        ]
        notes = [  # an earlier re-run of these suites is replaced by this one
            line
            for line in old
            if line.startswith("Written by")
            or (line.startswith("Re-run:") and not any(m in line for m in modules))
        ]
        written = "\n".join([*notes, f"Re-run: {', '.join(modules)} on {now}, commit {commit}."])
        table = sorted([*kept, *table], key=lambda line: line.split(" | ", 1)[0])
    lines = [
        "# Benchmarks",
        "",
        written,
        f"Machine: {machine()}.",
        "",
        "| suite | measure | value | unit | target | note |",
        "|---|---|---|---|---|---|",
        *table,
    ]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
