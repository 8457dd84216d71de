"""The real web app in a subprocess (`streamlit run app.py`) and a headless Chromium.

The install (users, credits, reference directory) is prepared through phone_core before
the app starts; this process never starts the runtime, so the app is the batch worker.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phone_core import credits, db, demo, users
from phone_core.settings import Settings
from phone_core.sources import directory

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class App:
    url: str
    settings: Settings
    admin_password: str
    leads: Path
    lead_rows: int
    log: Path


def leads_file(tmp: Path) -> Path:
    """examples/leads.csv when present, else a generated list of a few hundred leads."""
    example = ROOT / "examples" / "leads.csv"
    if example.is_file():
        return example
    people = demo.population(2000)
    path = tmp / "leads.csv"
    path.write_text(demo.to_csv(demo.LEAD_HEADERS, demo.lead_rows(people, 300)))
    return path


def count_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for row in csv.reader(fh) if any(cell.strip() for cell in row)) - 1


def prepare_install(settings: Settings) -> str:
    """Users, credits and the reference directory, written straight into the state DB."""
    password = users.ensure_admin(settings)
    assert password is not None
    for name, pw in PASSWORDS.items():
        users.add_user(settings, name, name.title(), f"{name}@example.com", pw, "user")
    engine = db.make_engine(settings.state_db_url)
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, "alice", 1000)
        credits.grant(conn, "bob", 50)
        credits.grant(conn, "admin", 100)
    directory.load_rows(
        engine,
        demo.directory_rows(demo.population(2000)),
        file_name="demo-directory.csv",
        loaded_by="e2e",
    )
    engine.dispose()
    return password


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not start: {log.read_text()[-3000:]}")


def start_app(data_dir: Path, port: int, s3_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PHONE_DATA_DIR": str(data_dir),
        "PHONE_S3_PORT": str(s3_port),
        "PHONE_WATERFALL": '["directory"]',
    }
    env.pop("PHONE_LANTERN_BASE_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--server.headless", "true",
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def stop_app(proc: subprocess.Popen[bytes], s3_port: int) -> None:
    """SIGTERM lets the app stop its own S3 server (atexit); then make sure both are gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    deadline = time.monotonic() + 10
    while _port_open(s3_port) and time.monotonic() < deadline:
        time.sleep(0.2)


# Module scope: Playwright's sync API keeps an event loop running in this thread while it
# is open, which must not leak into later test modules.
@pytest.fixture(scope="module")
def web_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium")
    tmp = tmp_path_factory.mktemp("e2e")
    data_dir = tmp / "data"
    port, s3_port = free_port(), free_port()
    settings = Settings(data_dir=data_dir, s3_port=s3_port, waterfall=["directory"])
    admin_password = prepare_install(settings)
    leads = leads_file(tmp)
    log = tmp / "app.log"
    proc = start_app(data_dir, port, s3_port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield App(url, settings, admin_password, leads, count_rows(leads), log)
    finally:
        stop_app(proc, s3_port)


@pytest.fixture(scope="module")
def browser(web_app: App) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def read_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return rows[0], rows[1:]
