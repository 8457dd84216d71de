"""Every role as several processes on one PostgreSQL + one S3 (issue 11): `phone-enrich api
--workers 2`, two `phone-enrich worker`s and two `phone-enrich web`s, all with
PHONE_RUNS_BATCHES=false (only the workers run batches). A batch goes in through each entry
point (API, CLI, each web app) and every one is finished by the workers; the per-key API
rate limit holds across the two API processes.

Needs PHONE_TEST_POSTGRES_URL (CI sets it) and chromium for the web-app part.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from phone_core.demo import to_csv
from phone_core.s3server import LocalS3Server, embedded_credentials
from phone_core.settings import Settings
from tests.conftest import free_port
from tests.core.test_durability import BIN, _env
from tests.core.test_postgres_scaleout import PG_URL, pg_urls  # noqa: F401 (fixture)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.browser,
    pytest.mark.skipif(not PG_URL, reason="PHONE_TEST_POSTGRES_URL is not set"),
]

RATE = 12  # API requests per minute per key, across every API process


def _wait_http(url: str, procs: list[subprocess.Popen[str]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            assert p.poll() is None, f"{p.args} exited {p.returncode}"
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.fixture
def shared_s3(tmp_path: Path) -> Iterator[dict[str, str]]:
    s3 = LocalS3Server(Settings(data_dir=tmp_path / "s3host", s3_port=free_port()))
    s3.start()
    creds = embedded_credentials(s3.settings)
    yield {
        "PHONE_S3_ENDPOINT_URL": str(creds.endpoint_url),
        "PHONE_S3_ACCESS_KEY": str(creds.access_key),
        "PHONE_S3_SECRET_KEY": str(creds.secret_key),
    }
    s3.stop()


def _submit_in_browser(url: str, password: str, leads: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page: Any = browser.new_page()
            page.goto(url)
            page.get_by_role("textbox", name="Username").fill("ann")
            box = page.get_by_role("textbox", name="Password")
            box.fill(password)
            box.press("Enter")
            page.get_by_text("Signed in as").wait_for(timeout=60_000)
            # New batch is the landing page.
            page.locator("input[type=file]").first.set_input_files(str(leads))
            submit = page.get_by_role("button", name=re.compile(r"^Submit"))
            submit.wait_for(timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(leads.with_suffix(".png")), full_page=True)
            submit.click()
            page.get_by_text("Submitted as").wait_for(timeout=60_000)
        finally:
            browser.close()


def test_two_of_every_role_on_postgres(
    tmp_path: Path,
    pg_urls: tuple[str, str],  # noqa: F811
    shared_s3: dict[str, str],
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs chromium")
    state_url, dbos_url = pg_urls
    api_port = free_port()
    shared = {
        "PHONE_DATABASE_URL": state_url,
        "PHONE_DBOS_DATABASE_URL": dbos_url,
        **shared_s3,
        "PHONE_RUNS_BATCHES": "false",
        "PHONE_LANTERN_ENABLED": "false",
        "PHONE_WAVE_SIZE": "20",
        "PHONE_API_PORT": str(api_port),
        "PHONE_API_RATE_PER_MINUTE": str(RATE),
    }

    def env(name: str) -> dict[str, str]:
        return _env(tmp_path / name, 0, **shared)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(BIN), *args], env=env("client"), capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out

    procs: list[subprocess.Popen[str]] = []

    def start(name: str, *args: str) -> subprocess.Popen[str]:
        with (tmp_path / f"{name}.log").open("w") as log:  # a pipe nobody reads could fill
            proc = subprocess.Popen(
                [str(BIN), *args], env=env(name), stdout=log, stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        directory = tmp_path / "dir.csv"
        directory.write_text(
            to_csv(["linkedin", "phone"], [[f"p-{i}", f"(415) 555-{i:04d}"] for i in range(400)])
        )
        cli("credits", "grant", "ann", "5000")
        cli("directory", "load", str(directory))
        password = json.loads(cli("users", "add", "ann").stdout)["password"]
        key = json.loads(cli("keys", "create", "ann").stdout)["key"]

        def leads(name: str, start_at: int) -> Path:
            path = tmp_path / f"{name}.csv"
            path.write_text(
                to_csv(
                    ["LinkedIn", "First Name"],
                    [[f"p-{i}", "Ann"] for i in range(start_at, start_at + 40)],
                )
            )
            return path

        api = start("api", "api", "--workers", "2")
        webs = [
            start(f"web{i}", "web", "--port", str(port))
            for i, port in enumerate((free_port(), free_port()))
        ]
        web_urls = [f"http://127.0.0.1:{p.args[-1]}" for p in webs]  # type: ignore[index]
        for name in ("w1", "w2"):
            start(name, "worker", "--executor-id", name)
        _wait_http(f"http://127.0.0.1:{api_port}/docs", procs)
        for url in web_urls:
            _wait_http(f"{url}/_stcore/health", procs)
        deadline = time.monotonic() + 30
        while len(_children(api.pid)) < 2:
            assert time.monotonic() < deadline, "uvicorn did not start 2 API processes"
            time.sleep(0.2)

        # Through the API, the CLI and each web app.
        headers = {"Authorization": f"Bearer {key}"}
        body = {"records": [{"id": f"a{i}", "linkedin": f"p-{i}"} for i in range(40)],
                "entity_type": "person", "max_credits": 40}  # fmt: skip
        accepted = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/agents/phone", json=body, headers=headers, timeout=30
        )
        assert accepted.status_code == 202, accepted.text
        cli("submit", str(leads("cli", 100)), "--user", "ann", "--max-credits", "40")
        for i, url in enumerate(web_urls):
            _submit_in_browser(url, password, leads(f"web{i}", 200 + 50 * i))

        # Every batch is finished by the two workers (nothing here runs batches but them).
        engine = sa.create_engine(state_url)
        try:
            deadline = time.monotonic() + 240
            while True:
                with engine.connect() as conn:
                    states = [r[0] for r in conn.execute(sa.text("SELECT state FROM runs"))]
                if len(states) == 4 and all(s == "completed" for s in states):
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.5)
        finally:
            engine.dispose()
        dbos = sa.create_engine(dbos_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with dbos.connect() as conn:
                executors = {
                    r[0]
                    for r in conn.execute(
                        sa.text(
                            "SELECT executor_id FROM dbos.workflow_status WHERE name = 'phone_run'"
                        )
                    )
                }
        finally:
            dbos.dispose()
        assert executors <= {"w1", "w2"} and executors, executors

        # The rate limit: a burst on fresh connections, spread over both API processes,
        # gets the one limit through (the POST above took one), never twice it.
        allowed = 0
        began = time.monotonic()
        for _ in range(2 * RATE):
            r = httpx.get(f"http://127.0.0.1:{api_port}/v1/credits/remaining", headers=headers)
            assert r.status_code in (200, 429), r.text
            allowed += r.status_code == 200
        refilled = (time.monotonic() - began) / (60 / RATE)  # one slot back every 60/RATE s
        assert RATE <= allowed <= RATE + 1 + refilled < 2 * RATE, (allowed, refilled)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
