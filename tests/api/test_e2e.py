"""End to end over real HTTP: submit, poll, download through the presigned URLs.

One test serves the app from a thread on the fixture's install; the other runs
``python -m phone_core.api`` (the ``serve`` entry point) as its own process.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from phone_core import credits, db, keys, users
from phone_core.api.app import create_app
from phone_core.runtime import Runtime
from phone_core.sources.directory import load_rows
from tests.api.conftest import POST, RESULT_HEADER, ServerThread, auth, new_key
from tests.conftest import free_port, grant

pytestmark = pytest.mark.integration  # subprocesses on the full stack

RECORDS = [
    {"id": "r1", "first_name": "John", "last_name": "Smith", "company_name": "Acme Corp",
     "company_url": "https://www.acme.com/about", "linkedin": "https://linkedin.com/in/jsmith/"},
    {"id": "r2", "first_name": "Jane", "last_name": "Doe", "company_url": "techcorp.com"},
    {"id": "r3", "first_name": "Nobody"},
]  # fmt: skip


def _poll(client: httpx.Client, key: str, run_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/v1/agents/runs/{run_id}", headers=auth(key))
        assert r.status_code == 200
        data: dict[str, object] = r.json()
        if data["state"] not in ("queued", "running"):
            return data
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish over HTTP")


def test_submit_poll_download(api_rt: Runtime) -> None:
    load_rows(
        api_rt.db,
        [{"linkedin": "jsmith", "phone": "(212) 555-0123"}],
        file_name="dir.csv",
        loaded_by="test",
    )
    grant(api_rt, "alice", 10)
    key = new_key(api_rt, "alice")
    with ServerThread(create_app(api_rt)) as server, httpx.Client(base_url=server.base_url) as c:
        accepted = c.post(
            POST,
            json={"records": RECORDS, "entity_type": "person", "max_credits": 5},
            headers=auth(key),
        )
        assert accepted.status_code == 202
        run = _poll(c, key, accepted.json()["run_id"])
        remaining = c.get("/v1/credits/remaining", headers=auth(key)).json()

    assert run["state"] == "completed"
    assert run["credits_spent"] == 1 and run["credits_held"] == 0
    assert isinstance(run["result_url"], str) and isinstance(run["credits_csv_url"], str)
    results = httpx.get(run["result_url"])
    assert results.status_code == 200
    lines = results.text.splitlines()
    assert lines[0] == RESULT_HEADER
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(results.text))}
    assert list(rows) == ["r1", "r2", "r3"]
    assert rows["r1"]["phone_number"] == "+12125550123"
    assert rows["r1"]["phone_found"] == "true"
    assert (rows["r1"]["company_url"], rows["r1"]["linkedin"]) == ("acme.com", "jsmith")
    assert (rows["r2"]["phone_number"], rows["r2"]["phone_found"]) == ("", "false")
    report = list(csv.DictReader(io.StringIO(httpx.get(run["credits_csv_url"]).text)))
    assert [r["status"] for r in report] == ["found", "not_found", "skipped"]
    assert sum(int(r["credits_charged"]) for r in report) == 1
    assert (remaining["remaining_credits"], remaining["held_credits"]) == (9, 0)


def test_serve_in_its_own_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
    env.update(
        PHONE_DATA_DIR=str(data_dir),
        PHONE_S3_PORT=str(free_port()),
        PHONE_API_PORT=str(port),
        PHONE_EXECUTOR_ID="api-test",
    )
    data_dir.mkdir(parents=True)
    engine = db.make_engine(f"sqlite:///{(data_dir / 'state.sqlite').resolve()}")
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, "carol", 5)
        users.add(conn, "carol", "Carol")
        key = keys.create(conn, "carol")[1]
    engine.dispose()
    proc = subprocess.Popen(
        [sys.executable, "-m", "phone_core.api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/openapi.json").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "API did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base) as c:
            body = {"records": RECORDS[1:], "entity_type": "person", "max_credits": 5}
            accepted = c.post(POST, json=body, headers=auth(key))
            assert accepted.status_code == 202
            run = _poll(c, key, accepted.json()["run_id"])
            assert run["state"] == "completed"
            assert httpx.get(str(run["result_url"])).text.splitlines()[0] == RESULT_HEADER
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert key not in err.decode()
