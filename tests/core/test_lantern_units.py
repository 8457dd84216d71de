"""Unit tests of the Lantern source: wire format, parsing, backoff, breaker, HTTP client."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phone_core.credits import Price
from phone_core.errors import FatalSourceError, RetryableSourceError, SourceError
from phone_core.models import Detail, Person, RecordStatus, SourceResult
from phone_core.ratelimit import RequestSpacer
from phone_core.sources.base import Lookup
from phone_core.sources.lantern import LanternSource
from phone_core.sources.lantern_wire import (
    LanternConfig,
    check_status,
    parse_found,
    parse_response,
    parse_retry_after,
    request_body,
)
from phone_core.sources.resilience import BreakerState, CircuitBreaker, backoff_delay
from tests.fakes.upstream import FakeUpstream, phone_for_hash

PRICE = Price("lantern", lookup_cost=0, found_cost=1, failed_cost=2)
JSON = {"content-type": "application/json"}


def lookup(i: int = 0, **fields: str) -> Lookup:
    person = Person(id=f"p{i}", **fields)
    return Lookup(i, person, f"name:ann|lee{i}|acme.com")


# -- request body -----------------------------------------------------------------------
def test_body_sends_only_present_fields_and_a_stable_record_id() -> None:
    lk = lookup(1, first_name="Ann", last_name="Lee", company_url="acme.com", email="")
    body = request_body(lk)
    assert body == {
        "record_id": lk.record_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "domain": "acme.com",
    }
    again = Lookup(7, Person(id="other"), lk.identity)  # same person, another run/attempt
    assert request_body(again)["record_id"] == lk.record_id
    full = request_body(
        lookup(2, company_name="Acme", linkedin="ann-lee", email="a@acme.com", first_name="A")
    )
    assert {"company", "linkedin_id", "email"} <= set(full)


# -- response parsing -------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        {"phone_number": "+1 212 456 7890"},
        {"phone": "(212) 456-7890"},
        {"phones": ["212.456.7890", "+12125550000"]},
        {"phones": [{"number": "+12124567890", "type": "mobile"}]},
        {"phones": [{"phone_number": "+12124567890"}]},
        {"phones": [{"type": "x"}, "not a phone", "+12124567890"]},
        {"data": {"phone_number": "2124567890"}},
        {"phone_number": None, "phones": ["+12124567890"]},
        {"phone_number": 12124567890},
    ],
)
def test_every_phone_shape_is_found_as_e164(payload: dict[str, object]) -> None:
    res = parse_found(payload, PRICE, "US")
    assert (res.status, res.phone, res.credits) == (RecordStatus.FOUND, "+12124567890", 1)


def test_invalid_or_missing_phone_is_not_found() -> None:
    bad = parse_found({"phone_number": "12345", "credits_consumed": 1}, PRICE, "US")
    assert (bad.status, bad.detail, bad.phone) == (RecordStatus.NOT_FOUND, "invalid_phone", None)
    none = parse_found({"phone_number": None, "phones": []}, PRICE, "US")
    assert (none.status, none.detail) == (RecordStatus.NOT_FOUND, "no_match")
    assert parse_found({"phone": True}, PRICE, "US").detail == "no_match"


def test_default_region_and_raw_fields() -> None:
    res = parse_found(
        {"phone": "020 7946 0123", "credits_consumed": 1, "cached": True, "name": "Ann"},
        PRICE,
        "GB",
    )
    assert res.phone == "+442079460123"
    assert res.raw == {"credits_consumed": 1, "cached": True}  # nothing personal kept


@pytest.mark.parametrize(
    ("status", "kind", "detail"),
    [
        (500, RetryableSourceError, Detail.UPSTREAM_5XX),
        (503, RetryableSourceError, Detail.UPSTREAM_5XX),
        (429, RetryableSourceError, Detail.UPSTREAM_RATE_LIMITED),
        (401, FatalSourceError, Detail.UPSTREAM_AUTH),
        (403, FatalSourceError, Detail.UPSTREAM_AUTH),
        (402, FatalSourceError, Detail.UPSTREAM_CREDITS),
        (400, SourceError, Detail.UPSTREAM_REJECTED),
        (404, SourceError, Detail.UPSTREAM_REJECTED),
        (422, SourceError, Detail.UPSTREAM_REJECTED),
        (302, SourceError, Detail.UPSTREAM_BAD_RESPONSE),
    ],
)
def test_status_mapping(status: int, kind: type[SourceError], detail: Detail) -> None:
    with pytest.raises(kind) as info:
        check_status(status, {}, b"")
    assert type(info.value) is kind
    assert info.value.detail == detail.value


def test_retry_after_from_body_then_header() -> None:
    with pytest.raises(RetryableSourceError) as info:
        check_status(429, {"retry-after": "9"}, json.dumps({"retry_after": 1.5}).encode())
    assert info.value.retry_after == 1.5
    with pytest.raises(RetryableSourceError) as info:
        check_status(429, {"retry-after": "3"}, b"not json")
    assert info.value.retry_after == 3.0
    with pytest.raises(RetryableSourceError) as info:
        check_status(429, {}, b"{}")
    assert info.value.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2.0), (0.5, 0.5), ("-1", None), ("soon", None), (None, None), (True, None),
     ("nan", None), ("1e9", 3600.0)],
)  # fmt: skip
def test_parse_retry_after(value: object, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"content-type": "text/html"}, b'{"phone": "+12124567890"}'),
        ({}, b'{"phone": "+12124567890"}'),
        (JSON, b'{"phone": "+1212'),
        (JSON, b'["+12124567890"]'),
        (JSON, b"\xff\xfe"),
        (JSON, b""),
    ],
)
def test_bad_responses(headers: dict[str, str], body: bytes) -> None:
    with pytest.raises(SourceError) as info:
        parse_response(200, headers, body, PRICE, "US")
    assert info.value.detail == Detail.UPSTREAM_BAD_RESPONSE.value


def test_json_content_type_variants_accepted() -> None:
    body = b'{"phone": "+12124567890"}'
    for ctype in ("application/json; charset=utf-8", "application/vnd.lantern+json"):
        res = parse_response(200, {"content-type": ctype}, body, PRICE, "US")
        assert res.phone == "+12124567890"


# -- backoff ----------------------------------------------------------------------------
def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    lows = [backoff_delay(a, 0.5, 4.0, rand=lambda: 0.0) for a in range(1, 7)]
    highs = [backoff_delay(a, 0.5, 4.0, rand=lambda: 1.0) for a in range(1, 7)]
    assert lows == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert highs == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay(0, 0.5, 4.0) == 0.0
    assert backoff_delay(3, 0.0, 4.0) == 0.0


@given(
    attempt=st.integers(1, 60),
    base=st.floats(0.001, 5.0),
    cap=st.floats(0.001, 60.0),
    r=st.floats(0.0, 1.0),
)
def test_backoff_is_jittered_within_half_and_full_step(
    attempt: int, base: float, cap: float, r: float
) -> None:
    step = min(cap, base * 2.0 ** (attempt - 1))
    delay = backoff_delay(attempt, base, cap, rand=lambda: r)
    assert step / 2 - 1e-9 <= delay <= step + 1e-9


# -- circuit breaker --------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    br = CircuitBreaker(3, 10.0, clock=clock)
    br.failure()
    br.failure()
    br.success()  # not consecutive any more
    br.failure()
    br.failure()
    assert br.state is BreakerState.CLOSED and br.admit() == 0.0
    br.failure()
    assert br.state is BreakerState.OPEN
    assert br.admit() == pytest.approx(10.0)
    clock.now += 4
    assert br.admit() == pytest.approx(6.0)


def test_breaker_half_open_lets_one_probe_through() -> None:
    clock = Clock()
    br = CircuitBreaker(1, 5.0, clock=clock)
    br.failure()
    clock.now += 5
    assert br.admit() == 0.0  # the probe
    assert br.state is BreakerState.HALF_OPEN
    assert br.admit() > 0  # everyone else waits for the probe
    br.failure()  # probe failed: open for another pause
    assert br.state is BreakerState.OPEN
    assert br.admit() == pytest.approx(5.0)
    clock.now += 5
    assert br.admit() == 0.0
    br.release()  # e.g. the probe got a 429 or was cancelled: the next caller probes
    assert br.admit() == 0.0
    assert br.outage_sec() == pytest.approx(10.0)  # one outage since the first opening
    br.success()
    assert br.state is BreakerState.CLOSED
    assert br.admit() == 0.0 and br.admit() == 0.0
    assert br.opened_count == 2
    assert br.outage_sec() == 0.0


# -- the HTTP client --------------------------------------------------------------------
def config(url: str, **kw: object) -> LanternConfig:
    base: dict[str, object] = {
        "base_url": url,
        "api_key": "secret-key-123",
        "price": PRICE,
        "concurrency": 3,
        "read_timeout_sec": 0.3,
        "backoff_base_sec": 0.01,
        "backoff_max_sec": 0.05,
        "max_attempts": 2,
        "breaker_pause_sec": 0.1,
    }
    base.update(kw)
    return LanternConfig(**base)  # type: ignore[arg-type]


def run(src: LanternSource, lookups: list[Lookup]) -> list[SourceResult]:
    """``src.lookup_many`` in a loop of its own, closing that loop's client after."""

    async def go() -> list[SourceResult]:
        try:
            return await src.lookup_many(lookups)
        finally:
            await src.aclose()

    return asyncio.run(go())


def source(
    url: str, transport: httpx.AsyncBaseTransport | None = None, **kw: object
) -> LanternSource:
    return LanternSource(config(url, **kw), RequestSpacer("lantern", 1000.0), transport)


def test_concurrency_bound_and_client_per_event_loop() -> None:
    with FakeUpstream(latency=0.05, api_key="secret-key-123") as fake:
        src = source(fake.url)
        lks = [lookup(i, first_name="Ann", last_name=f"Lee{i}") for i in range(12)]
        for _ in range(2):  # two loops, one after the other: no "bound to another loop"
            results = run(src, lks)
            assert [r.phone for r in results] == [phone_for_hash(lk.record_id) for lk in lks]
        assert fake.max_in_flight <= 3
        assert len(fake.requests) == 24
        assert {c.body["record_id"] for c in fake.requests} == {lk.record_id for lk in lks}


def test_transport_can_be_swapped_and_errors_are_translated() -> None:
    def ok(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer secret-key-123"
        return httpx.Response(200, json={"phones": [{"number": "+12124567890"}]})

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    res = run(source("http://x", httpx.MockTransport(ok)), [lookup()])
    assert (res[0].status, res[0].phone) == (RecordStatus.FOUND, "+12124567890")
    res = run(source("http://x", httpx.MockTransport(refuse)), [lookup()])
    assert (res[0].status, res[0].detail, res[0].credits) == (
        RecordStatus.ERROR,
        "upstream_connection",
        2,
    )


def test_logs_carry_no_personal_data_or_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeUpstream(api_key="secret-key-123") as fake:
        src = source(fake.url)
        lk = lookup(3, first_name="Zebulon", last_name="Quartermaine", email="zq@acme.com")
        fake.phones = {lk.record_id: "+12124567890"}
        for fault in ("500", "timeout", "bad_json", "400", "402"):
            fake.reset()
            src.reset()
            fake.default_fault = fault
            run(src, [lk])
        fake.reset()
        src.reset()
        assert run(src, [lk])[0].phone == "+12124567890"
    text = caplog.text
    assert "upstream_5xx" in text and "upstream_credits" in text
    for secret in ("Zebulon", "Quartermaine", "zq@acme.com", "4567890", "secret-key-123"):
        assert secret not in text


def test_fake_serves_many_slow_requests_in_parallel() -> None:
    with (
        FakeUpstream(latency=0.2) as fake,
        httpx.Client(timeout=5.0, limits=httpx.Limits(max_connections=100)) as client,
    ):

        def post(i: int) -> int:
            body = {"record_id": f"r{i}"}
            headers = {"Authorization": "Bearer k"}
            resp = client.post(fake.url + "/v1/enrich/phone", json=body, headers=headers)
            return resp.status_code

        with ThreadPoolExecutor(80) as pool:
            codes = list(pool.map(post, range(80)))
        assert codes == [200] * 80
        # Really concurrent, not queued one by one (a loaded 2-core machine schedules
        # fewer of the 80 client threads at once, so no tighter bound; no timing either).
        assert fake.max_in_flight >= 8
