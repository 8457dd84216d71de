"""API fixtures: keys, and one client per transport (in-process ASGI and real HTTP)."""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from phone_core import bootstrap, keys, users
from phone_core.api.app import create_app
from phone_core.runtime import Runtime
from tests.conftest import free_port, grant, make_settings

with warnings.catch_warnings():  # starlette warns that its TestClient wants httpx2
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as TestClient

REFERENCE_IDS = [
    "550e8400-e29b-41d4-a716-446655440001",
    "550e8400-e29b-41d4-a716-446655440002",
    "550e8400-e29b-41d4-a716-446655440003",
]
REFERENCE_EXAMPLE: dict[str, Any] = {
    "ids": REFERENCE_IDS,
    "entity_type": "person",
    "max_credits": 100,
}
RESULT_HEADER = "id,first_name,last_name,company_name,company_url,linkedin,phone_number,phone_found"
ERROR_FIELDS = {
    "error",
    "details",
    "request_id",
    "credits_required",
    "credits_remaining",
    "retry_after",
}


POST = "/v1/agents/phone"


def body(**over: Any) -> dict[str, Any]:
    """A valid batch body; ``field=...`` drops a field."""
    base: dict[str, Any] = {
        "records": [{"first_name": "John", "last_name": "Smith", "company_name": "Acme"}],
        "entity_type": "person",
        "max_credits": 10,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not ...}


def new_key(rt: Runtime, user: str) -> str:
    """A key of ``user``, who is put in the registry first (keys belong to its users)."""
    with rt.db.begin() as conn:
        if users.get(conn, user) is None:
            users.add(conn, user, user.title())
        return keys.create(conn, user, "test")[1]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


ClientFactory = Callable[[Runtime], httpx.Client]


@pytest.fixture(params=["asgi", "http"])
def make_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """Build a client for an app over ``rt``: TestClient, or httpx against real uvicorn."""
    opened: list[Any] = []

    def build(rt: Runtime) -> httpx.Client:
        app = create_app(rt)
        if request.param == "asgi":
            client: httpx.Client = TestClient(app, raise_server_exceptions=False)
            opened.append(client)
            return client
        server = ServerThread(app).__enter__()
        opened.append(server)
        client = httpx.Client(base_url=server.base_url, timeout=30)
        opened.append(client)
        return client

    yield build
    for item in reversed(opened):
        if isinstance(item, ServerThread):
            item.__exit__(None, None, None)
        else:
            item.close()


@pytest.fixture(scope="module", params=["asgi", "http"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Runtime, httpx.Client]]:
    """One install and client per module and transport, for tests that only need a user
    of their own (``fresh_user``): much faster than a fresh install per test."""
    bootstrap.shutdown()
    data = tmp_path_factory.mktemp("api") / "data"
    # test_401 sends many bad keys from one client on purpose: no lockout in the way here
    rt = bootstrap.get_runtime(
        make_settings(data, api_rate_per_minute=100_000, api_auth_max_failures=1_000_000)
    )
    app = create_app(rt)
    try:
        if request.param == "asgi":
            with TestClient(app, raise_server_exceptions=False) as client:
                yield rt, client
        else:
            with (
                ServerThread(app) as server,
                httpx.Client(base_url=server.base_url, timeout=30) as client,
            ):
                yield rt, client
    finally:
        bootstrap.shutdown()


def fresh_user(rt: Runtime, credits_granted: int = 0) -> tuple[str, str]:
    """A new user with a key (and optionally credits) on a shared install."""
    user = f"user-{uuid.uuid4().hex[:12]}"
    if credits_granted:
        grant(rt, user, credits_granted)
    return user, new_key(rt, user)


@pytest.fixture
def api_rt(make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime whose rate limit does not get in the way of the tests."""
    return make_runtime(api_rate_per_minute=100_000)


@pytest.fixture
def frozen_rt(tmp_path: Path) -> Iterator[Runtime]:
    """No worker in this process: submitted runs stay queued and keep their hold."""
    bootstrap.shutdown()
    settings = make_settings(tmp_path / "data", api_rate_per_minute=100_000)
    yield bootstrap.get_runtime(settings, worker=False)
    bootstrap.shutdown()


@pytest.fixture
def client(make_client: ClientFactory, api_rt: Runtime) -> httpx.Client:
    return make_client(api_rt)


def check_error_body(body: dict[str, Any], error: str | None = None) -> None:
    assert set(body) == ERROR_FIELDS
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["request_id"], str) and body["request_id"]
    if error is not None:
        assert body["error"] == error


def check_validation_body(body: dict[str, Any]) -> None:
    assert set(body) == {"detail"}
    assert isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert set(item) == {"loc", "msg", "type"}
        assert isinstance(item["loc"], list) and item["loc"]
        assert all(isinstance(p, str | int) for p in item["loc"])
        assert isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str) and item["type"]
