"""The real web app in a subprocess (`streamlit run app.py`) and a headless Chromium.

The install (users, credits, reference directory) is prepared through phone_core before
the app starts; this process never starts the runtime, so the app is the batch worker.
"""

from __future__ import annotations

import csv
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phone_core import credits, db, demo, users
from phone_core.settings import Settings
from phone_core.sources import directory
from tests.e2e.appserver import CHROMIUM, CHROMIUM_ARGS, start_app, stop_app, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PASSWORDS = {
    "alice": "alice-password-1",
    "bob": "bob-password-22",
    "dave": "dave-password-3",  # tests/e2e/test_accounts_browser.py: the lockout
    "erin": "erin-password-4",  # ... and a restored cookie after sign-out
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    engine = db.make_engine(settings.state_db_url)
    db.migrate(engine)
    for name, pw in PASSWORDS.items():
        hashed = users.hash_password(pw)
        with engine.begin() as conn:
            users.add(conn, name, name.title(), f"{name}@example.com", password_hash=hashed)
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


@dataclass
class App:
    url: str
    settings: Settings
    admin_password: str
    leads: Path
    lead_rows: int
    log: Path


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


def wait_idle(page: Any) -> None:
    """Until the app's current run (a submit, or the sign-in cookie's rerun) has finished."""
    page.wait_for_timeout(150)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'"
    )
