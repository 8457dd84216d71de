"""Prospeo (single-record, mobile reveal) against its fake over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from phone_core.errors import SourceError
from phone_core.models import RecordStatus
from phone_core.sources import prospeo
from phone_core.sources.prospeo import ProspeoSource
from phone_core.sources.vendors import probe
from tests.core.vendor_helpers import config_for, fast, run
from tests.fakes.vendor_base import key_of, lookups
from tests.fakes.vendor_prospeo import FakeProspeo

MOBILE = "+12125550101"


def _source(fake: FakeProspeo, **over: object) -> ProspeoSource:
    src = ProspeoSource(config_for(prospeo.VENDOR, fake.url, **over), None)
    fast(src.http)
    return src


def _one(src: ProspeoSource, i: int = 0) -> tuple[str, str, str | None, int, str]:
    (res,) = run(src.lookup_many(lookups(1, start=i)), src)
    return (res.status.value, res.detail, res.phone, res.credits, res.line_type)


def test_found_not_found_and_request_shape() -> None:
    with FakeProspeo(people={key_of(0): [(MOBILE, "mobile")]}) as fake:
        src = _source(fake)
        results = run(src.lookup_many(lookups(2)), src)
        assert [(r.status, r.phone, r.credits, r.line_type) for r in results] == [
            (RecordStatus.FOUND, MOBILE, 10, "mobile"),
            (RecordStatus.NOT_FOUND, None, 0, ""),
        ]
        assert results[0].source == "prospeo" and results[0].verified_at is not None
        assert results[1].detail == "no_match"
        (body,) = [r.body for r in fake.requests if r.body["data"]["last_name"] == "Lee0"]
        assert body["enrich_mobile"] is True and body["only_verified_mobile"] is True
        assert body["data"]["company_website"] == "acme0.com"
        assert body["data"]["linkedin_url"] == "https://www.linkedin.com/in/ann-lee-0"
        assert fake.credits_used == 10


def test_bad_phone_and_unrevealed_mobile_are_not_found() -> None:
    with FakeProspeo(people={key_of(0): [("12345", "mobile")], key_of(1): [(MOBILE, "")]}) as fake:
        src = _source(fake)
        assert _one(src, 0)[:2] == ("not_found", "invalid_phone")
        fake.script("unrevealed")
        assert _one(src, 1)[:3] == ("not_found", "no_match", None)


def test_rate_limited_then_answered() -> None:
    with FakeProspeo(people={key_of(0): [(MOBILE, "mobile")]}) as fake:
        src = _source(fake)
        fake.script("429", "429")
        assert _one(src)[:3] == ("found", "", MOBILE)
        assert fake.count("POST", "/enrich-person") == 3


def test_rate_limited_throughout_ends_the_record_as_error() -> None:
    with FakeProspeo(people={key_of(0): [(MOBILE, "mobile")]}) as fake:
        src = _source(fake)
        fake.script("429", "429", "429")
        assert _one(src)[:2] == ("error", "upstream_rate_limited")


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (("500", "500", "500"), ("error", "upstream_5xx")),
        (("500",), ("found", "")),
        (("timeout",), ("found", "")),
        (("bad_json",), ("error", "upstream_bad_response")),
        (("html",), ("error", "upstream_bad_response")),
        (("invalid_datapoints",), ("not_found", "upstream_rejected")),
    ],
)
def test_faults(faults: tuple[str, ...], expected: tuple[str, str]) -> None:
    with FakeProspeo(people={key_of(0): [(MOBILE, "mobile")]}) as fake:
        fake.hang_sec = 1.0
        src = _source(fake)
        fake.script(*faults)
        assert _one(src)[:2] == expected


def test_out_of_credits_is_fatal_and_not_charged() -> None:
    with FakeProspeo(people={key_of(i): [(MOBILE, "mobile")] for i in range(3)}) as fake:
        src = _source(fake)
        fake.script("no_credits")
        first = _one(src, 0)
        assert first[:2] == ("error", "upstream_credits") and first[3] == 0
        # remembered: the next records are not sent while the pause lasts
        sent = fake.count("POST", "/enrich-person")
        assert _one(src, 1)[:2] == ("error", "upstream_credits")
        assert fake.count("POST", "/enrich-person") == sent


def test_bad_key_is_fatal_auth_and_test_connection_says_so() -> None:
    with FakeProspeo(api_key="right") as fake:
        src = _source(fake, api_key="wrong")
        assert _one(src)[:2] == ("error", "upstream_auth")
        with pytest.raises(SourceError) as err:
            run(src.test_connection(), src)
        assert err.value.detail == "upstream_auth"
        good = config_for(prospeo.VENDOR, fake.url, api_key="right")
        assert run(probe(prospeo.VENDOR, good, None)) == ""  # type: ignore[arg-type]
        bad = config_for(prospeo.VENDOR, fake.url, api_key="nope")
        assert "refused the API key" in run(probe(prospeo.VENDOR, bad, None))  # type: ignore[arg-type]
        assert all(r.path == "/account-info" for r in fake.requests[1:])


def test_concurrency_bounds_requests_in_flight() -> None:
    people = {key_of(i): [(MOBILE, "mobile")] for i in range(12)}
    with FakeProspeo(people=people, latency=0.05) as fake:
        src = _source(fake, concurrency=3)
        results = run(src.lookup_many(lookups(12)), src)
        assert all(r.status == RecordStatus.FOUND for r in results)
        assert len(fake.requests) == 12
        assert fake.max_in_flight <= 3


def test_engine_sees_single_record_batches() -> None:
    assert ProspeoSource.batch_size == 1
    assert asyncio.iscoroutinefunction(ProspeoSource.test_connection)
