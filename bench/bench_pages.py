"""Pages at a big history: the Runs and Credits pages with 2,000 runs and 200,000 result
rows, and a returning browser with the sign-in cookie.

1. A state DB is seeded once, set-based (``db.bulk_insert``: no 200,000 submits): 21
   users, 2,000 runs, 200,000 ``run_records`` and a ledger charge per charged record.
   ``bench`` owns a 50,000-row upload in 50 parts, an upload stopped by its credit cap
   and re-run, a running 5,000-row batch (half of it settled) and ~900 small batches;
   the other users own the rest. Dates spread over a year; a few runs stopped early.
2. Server side: the whole script run of app.py (sign-in check, sidebar, notices and the
   page) in Streamlit's AppTest, per page and view, timed per rerun (median of a few
   reruns after a first run). With ``PHONE_BENCH_BASELINE`` (a git ref, default the
   commit this work started from when the repository has it), the same measurement runs
   on that tree too, side by side in this run, on a copy of the same seeded DB.
3. In headless Chromium (the real app, ``streamlit run``): time from opening the Runs
   and the Credits page of a signed-in browser to their tables being visible, and from
   opening the app in a returning browser (new page, the sign-in cookie kept) to the
   app's content (the sidebar's "Signed in as").
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import Row
from bench.topology import free_port
from tests.e2e.appserver import CHROMIUM, CHROMIUM_ARGS, RENDER_WATCH

ROOT = Path(__file__).resolve().parent.parent
BASELINE = os.environ.get("PHONE_BENCH_BASELINE", "6e8b63b")  # before the pages work
RUNS = 2_000
RECORDS = 200_000
USER = "bench"
PASSWORD = "bench-password-1"
RERUNS = 5

_SEED = r"""
import json, random, sys, time, uuid
from datetime import timedelta
from pathlib import Path
from phone_core import credits, db, users
from phone_core.inline import memory_runtime
from phone_core.settings import Settings

RUNS, RECORDS, USER, PASSWORD = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rng = random.Random(11)
t0 = time.perf_counter()
rt = memory_runtime(Settings(data_dir=Path(sys.argv[1]), waterfall=[]))
admin = users.ensure_admin(rt.db)
others = [f"u{i:02d}" for i in range(1, 21)]
hashed = users.hash_password(PASSWORD)
with rt.db.begin() as conn:
    users.add(conn, USER, "Bench", "", "user", password_hash=hashed)
    for name in others:
        users.add(conn, name, name.upper(), "", "user", password_hash=hashed)
    for name in [USER, *others]:
        credits.grant(conn, name, 10_000_000, note="bench")
now = db.utcnow()
RUN_COLS = ("run_id", "owner", "state", "max_credits", "spent", "total", "worst_case",
            "result_path", "credits_path", "cancel_requested", "notice", "label",
            "parent_run_id", "group_id", "group_seq", "created_at", "started_at",
            "finished_at", "batch_id")
REC_COLS = ("run_id", "idx", "person_id", "first_name", "last_name", "company_name",
            "company_url", "linkedin", "email", "identity", "dup_of", "known", "status",
            "source", "phone", "credits", "detail", "batch_row")
LED_COLS = ("user", "kind", "amount", "run_id", "record_idx", "source", "note", "created_at")
STATUSES = ["found"] * 50 + ["not_found"] * 30 + ["cached"] * 6 + ["duplicate"] * 6 + \
    ["skipped"] * 5 + ["error"] * 3
run_rows, rec_rows, led_rows = [], [], []

def new_id():
    return uuid.UUID(int=rng.getrandbits(128)).hex

def add_run(owner, label, size, state, created, *, batch_id, group_id=None, seq=0,
            first_row=0, unprocessed_from=None, pending_from=None, parent=None):
    run_id = new_id()
    spent = 0
    for i in range(size):
        row = first_row + i
        if pending_from is not None and i >= pending_from:
            status = None
        elif unprocessed_from is not None and i >= unprocessed_from:
            status = "not_processed"
        else:
            status = rng.choice(STATUSES)
        phone = f"+1415{rng.randrange(10**7):07d}" if status in ("found", "cached") else ""
        if status == "duplicate" and rng.random() < 0.5:
            phone = f"+1415{rng.randrange(10**7):07d}"
        cost = 1 if status == "found" else 0
        spent += cost
        rec_rows.append((run_id, i, f"P{row}", f"First{row % 997}", f"Last{row % 1009}",
                         f"Company {row % 500}", f"c{row % 500}.example", "", "",
                         f"id{row}", None, True, status, "directory" if status else "",
                         phone, cost, "", row))
        if cost:
            led_rows.append((owner, "charge", 1, run_id, i, "directory", "", created))
    finished = None if state in ("queued", "running") else created + timedelta(minutes=3)
    run_rows.append((run_id, owner, state, max(spent, size) + 100, spent, size, size,
                     f"runs/{run_id}/results.csv", f"runs/{run_id}/credits.csv", False, "",
                     label, parent, group_id, seq, created, created, finished, batch_id))
    return run_id

big = new_id()
for p in range(50):
    add_run(USER, f"big-upload.csv (part {p + 1}/50)", 1000, "completed",
            now - timedelta(days=2), batch_id=big, group_id=big, seq=p, first_row=p * 1000)
stopped = new_id()
add_run(USER, "capped.csv (part 1/2)", 1000, "completed", now - timedelta(days=5),
        batch_id=stopped, group_id=stopped, seq=0)
first = add_run(USER, "capped.csv (part 2/2)", 1000, "credit_limit_reached",
                now - timedelta(days=5), batch_id=stopped, group_id=stopped, seq=1,
                first_row=1000, unprocessed_from=700)
again = new_id()
add_run(USER, "capped.csv", 300, "completed", now - timedelta(days=4), batch_id=stopped,
        group_id=again, first_row=1700, parent=first)
live = new_id()
add_run(USER, "live.csv", 5000, "running", now - timedelta(minutes=1), batch_id=live,
        group_id=live, pending_from=2500)
left_runs = RUNS - len(run_rows)
left_rows = RECORDS - len(rec_rows)
sizes = [left_rows // left_runs] * left_runs
for i in range(left_rows - sum(sizes)):
    sizes[i] += 1
for i in range(0, left_runs - 1, 2):  # vary the sizes, same total
    d = rng.randrange(min(sizes[i], sizes[i + 1]))
    sizes[i] += d
    sizes[i + 1] -= d
for i, size in enumerate(sizes):
    owner = USER if i % 2 == 0 else others[i % 20]
    state = rng.choices(["completed", "credit_limit_reached", "cancelled", "failed"],
                        [90, 6, 3, 1])[0]
    created = now - timedelta(days=365 * (left_runs - i) / left_runs, minutes=10)
    rid = new_id()
    add_run(owner, f"leads-{i:04d}.csv", size, state, created, batch_id=rid,
            unprocessed_from=None if state == "completed" else int(size * 0.8))
assert len(run_rows) == RUNS and len(rec_rows) == RECORDS, (len(run_rows), len(rec_rows))
with rt.db.begin() as conn:
    db.bulk_insert(conn, db.runs, RUN_COLS, run_rows)
    for k in range(0, len(rec_rows), 20_000):
        db.bulk_insert(conn, db.run_records, REC_COLS, rec_rows[k : k + 20_000])
    for k in range(0, len(led_rows), 20_000):
        db.bulk_insert(conn, db.ledger, LED_COLS, led_rows[k : k + 20_000])
rt.close()
print(json.dumps({"seconds": time.perf_counter() - t0, "big": big, "runs": len(run_rows),
                  "records": len(rec_rows), "charges": len(led_rows), "admin": admin}))
"""

_MEASURE = r"""
import json, statistics, sys, time
from pathlib import Path
from phone_core import bootstrap, sessions
from phone_core.inline import memory_runtime
from phone_core.settings import Settings
from streamlit.testing.v1 import AppTest

data_dir, user, big, reruns = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, ".")
rt = memory_runtime(Settings(data_dir=data_dir, waterfall=[]))
setattr(sys, bootstrap._GUARD_ATTR, rt)  # the app's get_runtime() finds this one
with rt.db.connect() as conn:
    at_clock = sessions.db_clock(conn)

def view(who, role, page, batch=None):
    at = AppTest.from_file("app.py", default_timeout=300)
    for key, value in (("authentication_status", True), ("username", who),
                       ("name", who), ("roles", [role]), ("signed_in_at", at_clock)):
        at.session_state[key] = value
    if batch:
        at.query_params["batch"] = batch
    at.switch_page(page)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    errors = [e.value for e in at.error] + [str(e.value) for e in at.exception]
    times = []
    for _ in range(reruns):
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
    return {"first": first, "rerun": statistics.median(times), "max": max(times),
            "errors": errors[:3]}

out = {
    "runs_user": view(user, "user", "app_pages/runs.py"),
    "runs_user_big": view(user, "user", "app_pages/runs.py", big),
    "runs_admin": view("admin", "admin", "app_pages/runs.py"),
    "credits_admin": view("admin", "admin", "app_pages/credits.py"),
}
print(json.dumps(out))
"""


def _tree(ref: str, into: Path) -> Path | None:
    """The repository at ``ref`` as plain files (None when the ref is not here)."""
    ok = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=ROOT, capture_output=True, check=False,
    )  # fmt: skip
    if ok.returncode != 0:
        return None
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _child(tree: Path, script: str, *args: str, timeout: float = 1800) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("PHONE_DATA_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=tree, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"bench child failed:\n{out.stderr[-3000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


VIEWS = {
    "runs_user": "Runs page, a user with ~1,000 runs (newest batch: running, 5,000 rows)",
    "runs_user_big": "Runs page, the 50,000-row batch opened",
    "runs_admin": "Runs page, admin, everyone's 2,000 runs",
    "credits_admin": "Credits page, admin",
}


def bench_server(tmp: Path) -> tuple[list[Row], dict[str, object]]:
    seeded = tmp / "seed"
    base_tree = _tree(BASELINE, tmp / "baseline") if BASELINE else None
    seed_tree = base_tree or ROOT  # the older schema: the newer code migrates a copy up
    seed = _child(seed_tree, _SEED, str(seeded), str(RUNS), str(RECORDS), USER, PASSWORD)
    trees = {"after": ROOT} | ({"before": base_tree} if base_tree else {})
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, tree in trees.items():
        copy = tmp / f"data-{name}"
        shutil.copytree(seeded, copy)
        results[name] = _child(tree, _MEASURE, str(copy), USER, str(seed["big"]), str(RERUNS))  # type: ignore[assignment]
    rows: list[Row] = []
    note_seed = (
        f"{seed['runs']:,} runs, {seed['records']:,} result rows, {seed['charges']:,} "
        f"ledger charges; seeded in {float(str(seed['seconds'])):.1f} s"
    )
    for key, what in VIEWS.items():
        after = results["after"][key]
        before = results.get("before", {}).get(key)
        note = f"median of {RERUNS} reruns after a first run ({after['first']:.2f} s)"
        if key == "runs_user_big":
            note += " (a first view builds the merged files: the seed has none, a worker "
            note += "writes them when a batch ends)"
        if after.get("errors"):
            note += f"; errors shown: {after['errors']}"
        if before:
            note += (
                f"; before ({BASELINE}) in this run: {before['rerun']:.3f} s per rerun, "
                f"first {before['first']:.2f} s"
            )
        rows.append(Row(f"{what}: server time per rerun", after["rerun"], "s", "<= 2", note))
    rows[0].note += f"; {note_seed}"
    return rows, seed


# --- in a browser -----------------------------------------------------------------------

LOADS = 4  # per view and app, after one warm-up load
IDLE = (
    "() => document.querySelector('[data-testid=\"stApp\"]')"
    "?.getAttribute('data-test-script-state') === 'notRunning'"
)


class _App:
    """``streamlit run app.py`` of one tree on its own copy of the seeded data dir."""

    def __init__(self, tree: Path, data_dir: Path, log: Path) -> None:
        self.port, self.s3_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "PHONE_DATA_DIR": str(data_dir),
            "PHONE_S3_PORT": str(self.s3_port),
            "PHONE_WATERFALL": '["directory"]',
        }
        env.pop("PHONE_LANTERN_BASE_URL", None)
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "streamlit", "run", str(tree / "app.py"),
                    "--server.port", str(self.port), "--server.address", "127.0.0.1",
                    "--server.headless", "true", "--server.fileWatcherType", "none",
                    "--browser.gatherUsageStats", "false",
                ],
                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def wait(self) -> None:
        from tests.e2e.appserver import wait_healthy

        wait_healthy(self.url, self.proc, self.log, timeout=180)

    def stop(self) -> None:
        from tests.e2e.appserver import stop_app

        stop_app(self.proc, self.s3_port)


def _signed_in(browser: object, app: _App, user: str, password: str) -> object:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})  # type: ignore[attr-defined]
    context.set_default_timeout(300_000)
    page = context.new_page()
    page.goto(app.url)
    page.get_by_role("textbox", name="Username").fill(user)
    box = page.get_by_role("textbox", name="Password")
    box.fill(password)
    box.press("Enter")
    page.get_by_text("Signed in as").wait_for()
    page.wait_for_function(IDLE)
    return page


def _runs_view(page: object, url: str, caption: str) -> float:
    start = time.perf_counter()
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_text(caption).first.wait_for()  # type: ignore[attr-defined]
    tables = page.locator("[data-testid='stDataFrame']")  # type: ignore[attr-defined]
    tables.first.locator("canvas").first.wait_for(state="visible")
    tables.last.locator("canvas").first.wait_for(state="visible")
    return time.perf_counter() - start


def _credits_view(page: object, url: str) -> float:
    start = time.perf_counter()
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_text("Credits spent in the period").first.wait_for()  # type: ignore[attr-defined]
    table = page.locator("[data-testid='stDataFrame']").first  # type: ignore[attr-defined]
    table.locator("canvas").first.wait_for(state="visible")
    return time.perf_counter() - start


def _returning(page: object, url: str) -> tuple[float, int, bool]:
    """A new tab of the signed-in browser: time to the app's content, script runs."""
    fresh = page.context.new_page()  # type: ignore[attr-defined]
    try:
        fresh.add_init_script(RENDER_WATCH)
        start = time.perf_counter()
        fresh.goto(url)
        fresh.get_by_text("Signed in as").wait_for()
        fresh.get_by_role("heading", name="New batch", exact=True).wait_for()
        took = time.perf_counter() - start
        fresh.wait_for_function(IDLE)
        fresh.wait_for_timeout(2000)  # a rerun asked for by a cookie component comes now
        fresh.wait_for_function(IDLE)
        watch = fresh.evaluate("window.__phone")
        return took, int(watch["runs"]), bool(watch["form"])
    finally:
        fresh.close()


def bench_browser(tmp: Path, seed: dict[str, object], trees: dict[str, Path]) -> list[Row]:
    """Both apps started at once and loaded in turn (the same machine load for both)."""
    from playwright.sync_api import sync_playwright

    apps = {}
    for name, tree in trees.items():
        data = tmp / f"browser-{name}"
        shutil.copytree(tmp / "seed", data)
        apps[name] = _App(tree, data, tmp / f"app-{name}.log")
    views: dict[str, dict[str, list[float]]] = {n: {} for n in apps}
    renders: dict[str, list[int]] = {n: [] for n in apps}
    forms: dict[str, int] = {n: 0 for n in apps}
    big = str(seed["big"])
    try:
        for app in apps.values():
            app.wait()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                users = {n: _signed_in(browser, a, USER, PASSWORD) for n, a in apps.items()}
                admins = {
                    n: _signed_in(browser, a, "admin", str(seed["admin"])) for n, a in apps.items()
                }
                for i in range(LOADS + 1):  # the first round warms each app up
                    for n, app in apps.items():
                        got = {
                            "runs": _runs_view(users[n], f"{app.url}/runs", "2,500 of 5,000 rows."),
                            "runs_big": _runs_view(
                                users[n], f"{app.url}/runs?batch={big}", "50,000 of 50,000 rows."
                            ),
                            "credits": _credits_view(admins[n], f"{app.url}/credits"),
                        }
                        took, runs, form = _returning(users[n], app.url)
                        got["returning"] = took
                        if i:
                            for k, v in got.items():
                                views[n].setdefault(k, []).append(v)
                            renders[n].append(runs)
                            forms[n] += form
            finally:
                browser.close()
    finally:
        for app in apps.values():
            app.stop()
    what = {
        "runs": "Runs page in Chromium, ~1,000 runs, newest batch running: open to tables shown",
        "runs_big": "Runs page in Chromium, the 50,000-row batch opened: open to its rows shown",
        "credits": "Credits page in Chromium (admin): open to usage and balances shown",
        "returning": "Returning browser with the sign-in cookie: open to the app's content",
    }
    rows: list[Row] = []
    for key, label in what.items():
        after = views["after"][key]
        note = f"median of {len(after)} loads, max {max(after):.2f} s"
        if "before" in views:
            before = views["before"][key]
            note += f"; before ({BASELINE}) in this run: median {statistics.median(before):.2f} s"
        target = "<= 1.5" if key == "returning" else "<= 2"
        rows.append(Row(label, statistics.median(after), "s", target, note))
    note = f"median; each load: {renders['after']}; sign-in form shown {forms['after']} times"
    if "before" in renders:
        note += f"; before ({BASELINE}), each load: {renders['before']}"
    rows.append(
        Row("Returning browser: script runs per page load", statistics.median(renders["after"]),
            "runs", "1", note)
    )  # fmt: skip
    return rows


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        rows, seed = bench_server(Path(tmp))
        if CHROMIUM.exists():
            trees = {"after": ROOT}
            baseline = Path(tmp) / "baseline"
            if baseline.is_dir():
                trees["before"] = baseline
            rows += bench_browser(Path(tmp), seed, trees)
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    for row in run():
        print(row, flush=True)
    print(f"{time.perf_counter() - started:.1f} s", flush=True)
