"""Lusha (bulk person, up to 100 a call) against its fake over real HTTP."""

from __future__ import annotations

import pytest

from phone_core.models import RecordStatus
from phone_core.sources import lusha
from phone_core.sources.lusha import LushaSource
from tests.core.vendor_helpers import config_for, fast, run
from tests.fakes.vendor_base import key_of, lookups
from tests.fakes.vendor_lusha import FakeLusha

MOBILE = "+12125550101"
DIRECT = "+12125550102"
OFFICE = "+12125550103"


def _source(fake: FakeLusha, batch_size: int = 100, **over: object) -> LushaSource:
    src = LushaSource(config_for(lusha.VENDOR, fake.url, **over), None, batch_size=batch_size)
    fast(src.http)
    return src


def _summary(src: LushaSource, n: int) -> list[tuple[str, str, str | None]]:
    return [(r.status.value, r.detail, r.phone) for r in run(src.lookup_many(lookups(n)), src)]


def test_found_not_found_and_best_of_several_phones() -> None:
    people = {
        key_of(0): [(OFFICE, "work"), (DIRECT, "direct"), (MOBILE, "mobile")],
        key_of(2): [(OFFICE, "work"), (DIRECT, "direct")],
    }
    with FakeLusha(people=people) as fake:
        src = _source(fake)
        results = run(src.lookup_many(lookups(3)), src)
        assert [(r.status, r.phone, r.line_type, r.credits) for r in results] == [
            (RecordStatus.FOUND, MOBILE, "mobile", 5),
            (RecordStatus.NOT_FOUND, None, "", 0),
            (RecordStatus.FOUND, DIRECT, "direct", 5),
        ]
        assert fake.batch_sizes == [3]  # one call for the three
        body = fake.requests[0].body
        assert body["metadata"] == {"filterBy": "phoneNumbers"}
        assert body["contacts"][0] == {
            "contactId": "0",
            "fullName": "Ann Lee0",
            "email": "ann.lee0@acme0.com",
            "linkedinUrl": "https://www.linkedin.com/in/ann-lee-0",
            "companies": [{"name": "Acme", "domain": "acme0.com", "isCurrent": True}],
        }
        assert fake.requests[0].headers["api_key"] == "k"


def test_do_not_call_numbers_come_last_and_invalid_ones_are_dropped() -> None:
    people = {key_of(0): [("555", "mobile"), (MOBILE, "mobile"), (OFFICE, "work")]}
    with FakeLusha(people=people) as fake:
        fake.dnc = {MOBILE}
        src = _source(fake)
        assert _summary(src, 1) == [("found", "", OFFICE)]
        fake.people[key_of(0)] = [("555", "mobile"), ("12", "")]
        assert _summary(src, 1) == [("not_found", "invalid_phone", None)]


@pytest.mark.parametrize("shape", ["reorder", "as_list", "both"])
def test_reordered_answers_map_back_by_contact_id(shape: str) -> None:
    people = {key_of(i): [(f"+1212555{i:04d}", "mobile")] for i in range(0, 8, 2)}
    with FakeLusha(people=people) as fake:
        fake.reorder = shape in ("reorder", "both")
        fake.as_list = shape in ("as_list", "both")
        fake.stranger = True  # an id we never sent: ignored, never attributed
        src = _source(fake)
        got = _summary(src, 8)
        assert got == [
            ("found", "", f"+1212555{i:04d}") if i % 2 == 0 else ("not_found", "no_match", None)
            for i in range(8)
        ]


def test_partial_failure_dropped_and_errored_contacts() -> None:
    people = {key_of(i): [(f"+1212555{i:04d}", "mobile")] for i in range(4)}
    with FakeLusha(people=people) as fake:
        fake.drop = {key_of(1)}
        fake.errors = {key_of(2): "ENRICH_FAILED", key_of(3): "NOT_FOUND"}
        src = _source(fake)
        results = run(src.lookup_many(lookups(4)), src)
        assert [(r.status.value, r.detail, r.phone) for r in results] == [
            ("found", "", "+12125550000"),
            ("error", "upstream_incomplete", None),
            ("error", "upstream_rejected", None),
            ("not_found", "no_match", None),
        ]


def test_chunks_of_batch_size() -> None:
    people = {key_of(i): [(f"+1212555{i:04d}", "")] for i in range(7)}
    with FakeLusha(people=people) as fake:
        src = _source(fake, batch_size=3)
        assert [s for s, _, _ in _summary(src, 7)] == ["found"] * 7
        assert sorted(fake.batch_sizes) == [1, 3, 3]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (("429",), "found"),
        (("503", "500"), "found"),
        (("timeout",), "found"),
        (("429", "429", "429"), "upstream_rate_limited"),
        (("500", "500", "500"), "upstream_5xx"),
        (("400",), "upstream_rejected"),
        (("bad_json",), "upstream_bad_response"),
        (("402",), "upstream_credits"),
        (("403",), "upstream_auth"),
    ],
)
def test_whole_call_faults(faults: tuple[str, ...], expected: str) -> None:
    people = {key_of(i): [(MOBILE, "mobile")] for i in range(3)}
    with FakeLusha(people=people) as fake:
        fake.hang_sec = 1.0
        src = _source(fake)
        fake.script(*faults)
        results = run(src.lookup_many(lookups(3)), src)
        if expected == "found":
            assert [r.status for r in results] == [RecordStatus.FOUND] * 3
        else:
            assert [(r.status, r.detail) for r in results] == [(RecordStatus.ERROR, expected)] * 3
        if expected in ("upstream_credits", "upstream_auth"):
            assert [r.credits for r in results] == [0, 0, 0]


def test_bad_key_and_test_connection() -> None:
    with FakeLusha(api_key="right") as fake:
        src = _source(fake, api_key="wrong")
        assert {(s, d) for s, d, _ in _summary(src, 2)} == {("error", "upstream_auth")}
        ok = _source(fake, api_key="right")
        run(ok.test_connection(), ok)
        assert fake.requests[-1].path == "/account/usage"
