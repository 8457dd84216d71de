"""Issue 9, item 12: API request limits, on SQLite and on PostgreSQL.

- A body over ``api_max_body_bytes`` is answered 413 before it is read: at once from its
  Content-Length, and as soon as a streamed (chunked) body passes the limit.
- Every text field is refused (422) past the size of the column it lands in; a body with
  every field at its limit is accepted (202), also on PostgreSQL, which enforces sizes.
- NUL (which PostgreSQL text refuses) in a path, a query or a body string is a 422, and in
  a bearer key a 401: never a 500.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from phone_core import db, service
from phone_core.api.app import create_app
from phone_core.api.limits import largest_batch_body_bytes
from phone_core.models import (
    ID_MAX_LEN,
    IDENTITY_MAX_LEN,
    MAX_BATCH,
    PERSON_FIELD_MAX_LEN,
    PersonRecord,
)
from phone_core.records import identity_key, identity_of, normalize
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.api.backends import backend_rt
from tests.api.conftest import (
    POST,
    ServerThread,
    TestClient,
    auth,
    body,
    check_error_body,
    check_validation_body,
    fresh_user,
)
from tests.conftest import grant

__all__ = ["backend_rt"]  # the fixture, imported for pytest

LIMIT = Settings().api_max_body_bytes


@pytest.fixture(scope="module")
def client(backend_rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(backend_rt), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def server(backend_rt: Runtime) -> Iterator[ServerThread]:
    with ServerThread(create_app(backend_rt)) as s:
        yield s


def user_key(rt: Runtime) -> tuple[str, str]:
    return fresh_user(rt, 10_000)


def max_record(char: str = "x") -> dict[str, str]:
    """A record with every field at its column's size (``char`` repeated)."""
    return {name: char * size for name, size in PERSON_FIELD_MAX_LEN.items()}


# -- field lengths match the columns -----------------------------------------------------


def test_model_limits_are_the_column_sizes() -> None:
    """One source for both: a model limit cannot drift from its column."""
    for name, size in PERSON_FIELD_MAX_LEN.items():
        column = "person_id" if name == "id" else name
        assert db.run_records.c[column].type.length == size, name
        assert db.persons.c[name].type.length == size, name
        PersonRecord.model_validate({name: "x" * size})
        with pytest.raises(ValidationError):
            PersonRecord.model_validate({name: "x" * (size + 1)})
    assert set(PERSON_FIELD_MAX_LEN) == set(PersonRecord.model_fields)


def test_every_field_at_its_limit_is_accepted(backend_rt: Runtime, client: TestClient) -> None:
    """Names at 500 characters made an identity key longer than its column: 500 on PG."""
    user, key = user_key(backend_rt)
    records = [max_record(), {**max_record("y"), "company_url": "", "linkedin": ""}]
    r = client.post(POST, json=body(records=records), headers=auth(key))
    assert r.status_code == 202, r.text
    r = client.post(POST, json=body(records=..., ids=["i" * ID_MAX_LEN]), headers=auth(key))
    assert r.status_code == 202, r.text
    assert len(service.list_runs(backend_rt, user)) == 2


def test_identity_of_a_max_length_record_fits_its_column() -> None:
    """3 x 500 characters of name and company (and folding, which may expand a character:
    U+FDFA is 18 characters after NFKD) gave an identity past its 1200-character column."""
    for record in (max_record(), {**max_record("\ufdfa"), "company_url": "", "linkedin": ""}):
        record = {**record, "linkedin": "", "email": ""}
        key = identity_key(normalize(record))
        assert 0 < len(key) <= db.run_records.c.identity.type.length == IDENTITY_MAX_LEN
        assert key == identity_of(record)
    assert identity_key(normalize(max_record())) != identity_key(normalize(max_record("y")))


@pytest.mark.parametrize("field", sorted(PERSON_FIELD_MAX_LEN))
def test_a_field_past_its_column_is_422(
    backend_rt: Runtime, client: TestClient, field: str
) -> None:
    """A 300-character id was a 500 on PostgreSQL (the model allowed 500, the column 200)."""
    user, key = user_key(backend_rt)
    record = {"first_name": "A", "last_name": "B", "company_name": "C"}
    record[field] = "z" * (PERSON_FIELD_MAX_LEN[field] + 1)
    r = client.post(POST, json=body(records=[record]), headers=auth(key))
    assert r.status_code == 422, r.text
    check_validation_body(r.json())
    assert r.json()["detail"][0]["loc"] == ["body", "records", 0, field]
    assert service.list_runs(backend_rt, user) == []


def test_300_character_id_is_422_not_500(backend_rt: Runtime, client: TestClient) -> None:
    user, key = user_key(backend_rt)
    for payload in (
        body(records=[{"id": "x" * 300, "first_name": "A", "last_name": "B", "company_name": "C"}]),
        body(records=..., ids=["x" * 300]),
    ):
        r = client.post(POST, json=payload, headers=auth(key))
        assert r.status_code == 422, r.text
    assert service.list_runs(backend_rt, user) == []


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/agents/runs/{'r' * 65}",
        f"/v1/credits/usage?start_date=2024-01-01&end_date=2024-01-02&run_id={'r' * 65}",
    ],
    ids=["run_path", "usage_query"],
)
def test_run_id_past_its_column_is_422(backend_rt: Runtime, client: TestClient, path: str) -> None:
    _, key = user_key(backend_rt)
    r = client.get(path, headers=auth(key))
    assert r.status_code == 422, r.text
    check_validation_body(r.json())


# -- NUL ----------------------------------------------------------------------------------

NUL_REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "path": ("GET", "/v1/agents/runs/ab%00cd", {}),
    "path_raw_only": ("GET", "/v1/agents/runs/%00", {}),
    "query": (
        "GET",
        "/v1/credits/usage?start_date=2024-01-01&end_date=2024-01-02&run_id=a%00b",
        {},
    ),
    "query_name": ("GET", "/v1/credits/remaining?a%00=1", {}),
    "unknown_route": ("GET", "/v1/nothing%00here", {}),
    "body_id": ("POST", POST, {"json": body(records=..., ids=["a\x00b"])}),
    "body_record": ("POST", POST, {"json": body(records=[{"first_name": "a\x00"}])}),
    "body_record_id": (
        "POST",
        POST,
        {"json": body(records=[{"id": "\x00", "first_name": "A", "last_name": "B"}])},
    ),
}


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), NUL_REQUESTS.values(), ids=NUL_REQUESTS.keys()
)
def test_nul_is_422_never_500(
    backend_rt: Runtime, client: TestClient, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    user, key = user_key(backend_rt)
    r = client.request(method, path, headers=auth(key), **kwargs)
    assert r.status_code == 422, r.text
    check_validation_body(r.json())
    assert "\x00" not in r.text and "\\u0000" not in r.text
    assert r.headers["x-request-id"]
    assert service.list_runs(backend_rt, user) == []


def test_nul_in_a_bearer_key_is_401(backend_rt: Runtime, client: TestClient) -> None:
    for token in ("pe_ab\x00cd_secret", "pe_abcd_se\x00cret", "\x00", "pe_" + "a" * 5000 + "_x"):
        r = client.get("/v1/credits/remaining", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
        check_error_body(r.json(), "invalid or missing API key")


# -- body size ----------------------------------------------------------------------------


def test_default_limit_is_a_little_above_the_largest_valid_body() -> None:
    """The default is computed, not guessed: the largest valid 1000-record body (every
    field at its limit, 4 UTF-8 bytes per character) fits, with less than 35 % to spare."""
    largest = largest_batch_body_bytes()
    assert largest < LIMIT < largest * 1.35
    widest = "\U0001f600"  # 4 bytes in UTF-8
    records = [max_record(widest)] * MAX_BATCH
    payload = {"records": records, "entity_type": "person", "max_credits": 2**62}
    sent = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(sent) <= largest


def _raw_request(port: int, head: bytes, chunks: Iterator[bytes] | None = None) -> bytes:
    """Send ``head`` (and then ``chunks``), return what the server answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        if chunks is not None:
            try:
                for chunk in chunks:
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered and closed: what it said is read below
        out = b""
        try:
            while b"\r\n\r\n" not in out:
                data = sock.recv(65536)
                if not data:
                    break
                out += data
        except ConnectionResetError:
            pass
        return out


def _head(key: str, extra: str) -> bytes:
    return (
        f"POST {POST} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_413_from_content_length_before_the_body_is_read(
    backend_rt: Runtime, server: ServerThread
) -> None:
    """No byte of the body is sent: a server that waited for it would time out instead."""
    user, key = user_key(backend_rt)
    started = time.monotonic()
    answer = _raw_request(server.port, _head(key, f"Content-Length: {LIMIT + 1}\r\n"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5
    assert b"x-request-id" in answer.lower()
    assert service.list_runs(backend_rt, user) == []


def test_413_for_a_chunked_body_past_the_limit(backend_rt: Runtime, server: ServerThread) -> None:
    user, key = user_key(backend_rt)
    block = b"x" * 65536
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        while sent < LIMIT * 2:
            sent += len(block)
            yield b"%x\r\n%s\r\n" % (len(block), block)
        yield b"0\r\n\r\n"

    answer = _raw_request(server.port, _head(key, "Transfer-Encoding: chunked\r\n"), chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert service.list_runs(backend_rt, user) == []


def test_413_body_shape_and_the_largest_valid_body_passes(
    backend_rt: Runtime, client: TestClient
) -> None:
    user, key = user_key(backend_rt)
    grant(backend_rt, user, 10_000)
    records = [max_record("\U0001f600")] * MAX_BATCH
    payload = json.dumps(body(records=records), ensure_ascii=False, separators=(",", ":")).encode()
    headers = {**auth(key), "Content-Type": "application/json"}
    r = client.post(POST, content=payload, headers=headers)
    assert r.status_code == 202, r.text[:300]

    too_big = payload + b" " * (LIMIT - len(payload) + 1)
    r = client.post(POST, content=too_big, headers=headers)
    assert r.status_code == 413
    check_error_body(r.json(), "request body too large")
    assert str(LIMIT) in r.json()["details"]

    def stream() -> Iterator[bytes]:
        yield too_big

    r = client.post(POST, content=stream(), headers=headers)  # no Content-Length
    assert r.status_code == 413
    check_error_body(r.json(), "request body too large")
    assert len(service.list_runs(backend_rt, user)) == 1


def test_the_limit_is_a_setting(backend_rt: Runtime) -> None:
    small = backend_rt.settings.model_copy(update={"api_max_body_bytes": 2048})
    app = create_app(backend_rt, settings=small)
    _, key = user_key(backend_rt)
    with TestClient(app, raise_server_exceptions=False) as c:
        big = body(records=[{"first_name": "A" * 400, "last_name": "B", "company_name": "C"}] * 6)
        r = c.post(POST, json=big, headers=auth(key))
        assert r.status_code == 413
        r = c.post(POST, json=body(), headers=auth(key))
        assert r.status_code == 202, r.text
