"""Web app: upload-to-preflight for a 100,000-row file, and the Runs page with 1,000 results.

1. What the New batch page does between receiving a file and showing the pre-flight
   (ingest.read, ingest.initial_mapping, ingest.preflight), and what a rerun of the page
   costs once both are cached, timed in a fresh subprocess whose peak RSS (getrusage) is
   the memory figure.
2. The real app (`streamlit run app.py`, embedded S3, DBOS worker inside) on a temporary
   data dir with one finished 1,000-row run: time from opening the Runs page in headless
   Chromium to its results table being visible (median of a few page loads, signed in).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.run import Row
from bench.topology import free_port
from tests.e2e.appserver import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
PREFLIGHT_ROWS = 100_000
RESULT_ROWS = 1_000
PAGE_LOADS = 5
USER = "bench"
PASSWORD = "bench-password-1"

FIRST = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "Anna")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Chen")


def lead_csv(rows: int, seed: int = 7) -> bytes:
    """A lead list like a CRM export: ~5% duplicates, ~5% rows missing fields."""
    rng = random.Random(seed)
    lines = ["Record ID,First Name,Last Name,Company,Website,LinkedIn URL,Email,Title"]
    for i in range(rows):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        n = i if rng.random() > 0.05 else rng.randrange(max(1, i))  # a repeated person
        company, domain = f"Company {n % 5000}", f"company{n % 5000}.example"
        linkedin = f"https://www.linkedin.com/in/{first}-{last}-{n}".lower() if n % 3 == 0 else ""
        email = f"{first}.{last}{n}@{domain}".lower() if n % 3 == 1 else ""
        if rng.random() < 0.05:
            company = domain = linkedin = email = ""
        lines.append(f"L{i:06d},{first},{last},{company},{domain},{linkedin},{email},Sales Manager")
    return ("\n".join(lines) + "\n").encode()


_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from phone_core import ingest
from phone_core.runtime import create_runtime
from phone_core.settings import Settings

data = Path(sys.argv[1]).read_bytes()
rt = create_runtime(Settings(data_dir=Path(sys.argv[2])), start_s3=False)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
parsed = ingest.read("leads.csv", data, rt.settings)
t1 = time.perf_counter()
mapping, _ = ingest.initial_mapping(rt, "bench", parsed)
t2 = time.perf_counter()
pf = ingest.preflight(rt, "bench", parsed, mapping, "upload-1")
t3 = time.perf_counter()
ingest.read("leads.csv", data, rt.settings, digest=parsed.digest)
ingest.preflight(rt, "bench", parsed, mapping, "upload-1")
t4 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({
    "read": t1 - t0, "suggest": t2 - t1, "preflight": t3 - t2, "rerun": t4 - t3,
    "total": t3 - t0, "peak_mb": peak / 1024, "base_mb": base / 1024,
    "rows": pf.rows, "enrichable": pf.enrichable, "bytes": len(data),
}))
"""


def bench_preflight() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        path.write_bytes(lead_csv(PREFLIGHT_ROWS))
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(Path(tmp) / "data")],
            capture_output=True, text=True, check=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["rows"] == PREFLIGHT_ROWS
    size = f"{m['bytes'] / 1e6:.1f} MB CSV"
    steps = (
        f"read {m['read']:.2f}s, suggest {m['suggest']:.2f}s, map + preflight "
        f"{m['preflight']:.2f}s; a rerun (both from phone_core's cache) {m['rerun']:.3f}s"
    )
    return [
        Row("upload_to_preflight_100k", m["total"], "s", "< 3 s", f"{size}; {steps}"),
        Row(
            "upload_to_preflight_100k_peak_rss", m["peak_mb"], "MB", "< 500 MB",
            f"whole process (interpreter + imports {m['base_mb']:.0f} MB)",
        ),
    ]  # fmt: skip


# --- the Runs page in a browser ---------------------------------------------------------


def _prepare(data_dir: Path, s3_port: int) -> str:
    """A user, credits, a directory and one queued 1,000-row run (the app will run it)."""
    from phone_core import credits, service, users
    from phone_core.inline import InlineRunQueue
    from phone_core.runtime import create_runtime
    from phone_core.settings import Settings
    from phone_core.sources import directory

    settings = Settings(data_dir=data_dir, s3_port=s3_port, waterfall=["directory"])
    users.ensure_admin(settings)
    rt = create_runtime(settings, start_s3=False)  # no worker here: the app is the worker
    # Queued here, never drained: the app's worker picks the run up when it starts.
    rt.queue = InlineRunQueue(rt)
    hashed = users.hash_password(PASSWORD)
    with rt.db.begin() as conn:
        users.add(conn, USER, "Bench", "", "user", password_hash=hashed)
        credits.grant(conn, USER, 10_000)
    people = [
        {"first_name": f"First{i}", "last_name": f"Last{i}", "company_url": f"c{i}.example"}
        for i in range(RESULT_ROWS)
    ]
    directory.load_rows(
        rt.db,
        [{**p, "phone": f"+1415555{i % 10000:04d}"} for i, p in enumerate(people[::2])],
        file_name="bench.csv",
        loaded_by="bench",
    )
    accepted = service.submit_upload(rt, USER, people, RESULT_ROWS, label="bench-1000.csv")
    rt.db.dispose()
    return accepted[0].run_id


def _wait_finished(data_dir: Path, s3_port: int, run_id: str, timeout: float = 120) -> None:
    from phone_core import service
    from phone_core.runtime import create_runtime
    from phone_core.settings import Settings

    rt = create_runtime(Settings(data_dir=data_dir, s3_port=s3_port), start_s3=False)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.get_run(rt, USER, run_id).state.finished:
                return
            time.sleep(0.2)
        raise RuntimeError("the bench run did not finish")
    finally:
        rt.db.dispose()


def _page_loads(url: str, until_ready: Callable[[], None]) -> list[float]:
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_role("textbox", name="Username").fill(USER)
            box = page.get_by_role("textbox", name="Password")
            box.fill(PASSWORD)
            box.press("Enter")
            page.get_by_text("Signed in as").wait_for()
            until_ready()  # the app became the worker on this first page view
            for _ in range(PAGE_LOADS + 1):  # the first load warms the server up
                start = time.perf_counter()
                page.goto(f"{url}/runs")
                results = page.locator(
                    "[data-testid='stDataFrame']"
                ).last  # the rows, below the batches
                results.locator("canvas").first.wait_for(state="visible")
                page.get_by_text(f"{RESULT_ROWS:,} of {RESULT_ROWS:,} rows.").first.wait_for()
                times.append(time.perf_counter() - start)
        finally:
            browser.close()
    return times[1:]


def bench_runs_page() -> list[Row]:
    if not CHROMIUM.exists():
        return [Row("runs_page_1000_results_visible", float("nan"), "s", "", "no chromium")]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        port, s3_port = free_port(), free_port()
        run_id = _prepare(data_dir, s3_port)
        log = Path(tmp) / "app.log"
        proc = start_app(data_dir, port, s3_port, log)
        try:
            wait_healthy(f"http://127.0.0.1:{port}", proc, log)
            times = _page_loads(
                f"http://127.0.0.1:{port}", lambda: _wait_finished(data_dir, s3_port, run_id)
            )
        finally:
            stop_app(proc, s3_port)
    note = f"median of {len(times)} loads, signed in; max {max(times):.2f}s"
    return [Row("runs_page_1000_results_visible", statistics.median(times), "s", "", note)]


def run() -> list[Row]:
    return bench_preflight() + bench_runs_page()


if __name__ == "__main__":
    for row in run():
        print(row, flush=True)
