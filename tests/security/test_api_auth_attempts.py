"""Issue 9, item 4 (API half): failed API-key attempts are limited, on SQLite and PostgreSQL.

After ``api_auth_max_failures`` bad keys within ``api_auth_window_sec`` a client (and a key
id) gets 429 with Retry-After; every attempt during the lockout lengthens it. The count is
kept in the state DB, so every API process on it enforces the same limit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from phone_core import keys
from phone_core.api.app import create_app
from phone_core.runtime import Runtime
from tests.api.backends import backend_rt
from tests.api.conftest import ServerThread, TestClient, auth, check_error_body, fresh_user

pytestmark = pytest.mark.slow  # lockouts that must drain: not in make test-fast

__all__ = ["backend_rt"]  # the fixture, imported for pytest

N = 3
PATH = "/v1/credits/remaining"
ERROR = "too many failed API key attempts"


def app_for(rt: Runtime, **limits: float) -> FastAPI:
    settings = rt.settings.model_copy(
        update={"api_auth_max_failures": N, "api_auth_window_sec": 60.0, **limits}
    )
    return create_app(rt, settings=settings)


@pytest.fixture
def app(backend_rt: Runtime) -> FastAPI:
    return app_for(backend_rt)


@pytest.fixture
def clients(app: FastAPI) -> Iterator[dict[str, TestClient]]:
    """Two callers that the API sees at different addresses (unique per test)."""
    tag = uuid.uuid4().hex[:8]
    with (
        TestClient(app, raise_server_exceptions=False, client=(f"a-{tag}", 1)) as a,
        TestClient(app, raise_server_exceptions=False, client=(f"b-{tag}", 1)) as b,
    ):
        yield {"a": a, "b": b}


def bad_key() -> str:
    return f"pe_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"


def check_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    check_error_body(r.json(), ERROR)
    wait = int(r.headers["retry-after"])
    assert wait >= 1 and r.json()["retry_after"] == wait
    return wait


def test_bad_keys_from_one_client_are_locked_out_for_a_growing_delay(
    backend_rt: Runtime, clients: dict[str, TestClient]
) -> None:
    a, b = clients["a"], clients["b"]
    _, good = fresh_user(backend_rt)
    for token in [bad_key(), "pe_zz_not-hex", "garbage"]:  # N = 3 failures, any shape
        r = a.get(PATH, headers=auth(token))
        assert r.status_code == 401, r.text
    waits = [check_429(a.get(PATH, headers=auth(bad_key()))) for _ in range(3)]
    assert waits[0] < waits[1] < waits[2]  # every attempt in the lockout lengthens it
    assert a.get(PATH, headers=auth(good)).status_code == 429  # the client, whatever key
    r = b.get(PATH, headers=auth(good))  # another client with a valid key: unaffected
    assert r.status_code == 200, r.text
    assert b.get(PATH, headers=auth(bad_key())).status_code == 401  # and keeps its own count


def test_bad_secrets_for_one_key_id_lock_that_key_id(backend_rt: Runtime, app: FastAPI) -> None:
    """Guesses at one key's secret spread over many clients still stop after N."""
    _, good = fresh_user(backend_rt)
    _, key_id, _secret = good.split("_", 2)
    _, other = fresh_user(backend_rt)
    for i in range(N):
        with TestClient(app, raise_server_exceptions=False, client=(f"g{i}-{key_id}", 1)) as c:
            r = c.get(PATH, headers=auth(f"pe_{key_id}_wrong{i}"))
            assert r.status_code == 401
    with TestClient(app, raise_server_exceptions=False, client=(f"new-{key_id}", 1)) as c:
        check_429(c.get(PATH, headers=auth(f"pe_{key_id}_wrong-again")))
        # Checked before the secret is compared, or the lockout would not slow guessing:
        # the key's owner waits too (key ids are not public: shown to the owner and admins).
        check_429(c.get(PATH, headers=auth(good)))
        assert c.get(PATH, headers=auth(other)).status_code == 200  # other keys unaffected


def test_the_count_is_shared_by_every_api_process(backend_rt: Runtime) -> None:
    """Two apps (as two API processes would) over one state DB: one count."""
    tag = uuid.uuid4().hex[:8]
    first, second = app_for(backend_rt), app_for(backend_rt)
    with TestClient(first, raise_server_exceptions=False, client=(tag, 1)) as c:
        for _ in range(N):
            assert c.get(PATH, headers=auth(bad_key())).status_code == 401
    with TestClient(second, raise_server_exceptions=False, client=(tag, 2)) as c:
        check_429(c.get(PATH, headers=auth(bad_key())))


def test_what_is_not_a_guess_does_not_count(
    backend_rt: Runtime, clients: dict[str, TestClient]
) -> None:
    """No header at all, and a revoked key (its secret is right: not a guess), stay 401."""
    a = clients["a"]
    user, good = fresh_user(backend_rt)
    with backend_rt.db.begin() as conn:
        record, revoked = keys.create(conn, user)
        keys.revoke(conn, user, record.key_id)
    for _ in range(N + 2):
        assert a.get(PATH).status_code == 401
        assert a.get(PATH, headers=auth(revoked)).status_code == 401
    assert a.get(PATH, headers=auth(good)).status_code == 200


def test_the_lockout_ends(backend_rt: Runtime) -> None:
    app = app_for(backend_rt, api_auth_max_failures=2, api_auth_window_sec=1.0)
    _, good = fresh_user(backend_rt)
    with TestClient(app, raise_server_exceptions=False, client=(uuid.uuid4().hex, 1)) as c:
        for _ in range(2):
            assert c.get(PATH, headers=auth(bad_key())).status_code == 401
        wait = check_429(c.get(PATH, headers=auth(good)))
        assert wait <= 2
        time.sleep(wait + 0.2)
        assert c.get(PATH, headers=auth(good)).status_code == 200


def test_over_real_http_the_client_is_its_address(backend_rt: Runtime) -> None:
    """Two loopback addresses: the one that guessed is locked out, the other is not."""
    _, good = fresh_user(backend_rt)
    with ServerThread(app_for(backend_rt)) as server:
        guesser = httpx.Client(
            base_url=server.base_url,
            timeout=30,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        )
        honest = httpx.Client(base_url=server.base_url, timeout=30)
        with guesser, honest:
            for _ in range(N):
                assert guesser.get(PATH, headers=auth(bad_key())).status_code == 401
            check_429(guesser.get(PATH, headers=auth(good)))
            assert honest.get(PATH, headers=auth(good)).status_code == 200
