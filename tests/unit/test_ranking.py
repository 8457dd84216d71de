"""The one rule for keeping a phone out of several (phone_core.ranking)."""

from __future__ import annotations

import pytest

from phone_core.credits import Price
from phone_core.models import RecordStatus
from phone_core.ranking import Candidate, best, number_line_type, rank, vendor_line_type
from phone_core.sources.lantern_wire import parse_found

US_A, US_B, US_C = "+12125550101", "+12125550102", "+12125550103"
UK_MOBILE, UK_LANDLINE, UK_FREE = "+447911123456", "+442079460123", "+448001111111"


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("Mobile", "mobile"),
        ("cell", "mobile"),
        ("direct dial", "direct"),
        ("Direct-Dial", "direct"),
        ("work_hq", "office"),
        ("Office", "office"),
        ("landline", "office"),
        ("fax", "other"),
        ("toll free", "other"),
        ("", ""),
        (None, ""),
        (7, ""),
    ],
)
def test_vendor_labels(label: object, kind: str) -> None:
    assert vendor_line_type(label) == kind


def test_libphonenumber_types_where_it_can_tell() -> None:
    assert number_line_type(UK_MOBILE) == "mobile"
    assert number_line_type(UK_LANDLINE) == "office"
    assert number_line_type(UK_FREE) == "other"
    assert number_line_type(US_A) == ""  # fixed_line_or_mobile: cannot tell


def test_mobile_before_direct_before_unknown_before_office_before_other() -> None:
    cands = [
        Candidate(US_A, "fax"),
        Candidate(US_B, "office"),
        Candidate(US_C),
        Candidate("+12125550104", "direct"),
        Candidate("+12125550105", "mobile"),
    ]
    assert [(r.phone, r.line_type) for r in rank(cands, "US")] == [
        ("+12125550105", "mobile"),
        ("+12125550104", "direct"),
        (US_C, ""),
        (US_B, "office"),
        (US_A, "other"),
    ]


def test_invalid_dropped_duplicates_once_do_not_call_last_ties_keep_vendor_order() -> None:
    cands = [
        Candidate("12345", "mobile"),
        Candidate(US_A, "mobile", do_not_call=True),
        Candidate(US_B, "office"),
        Candidate("(212) 555-0102", "mobile"),  # US_B again, now as a mobile: best label wins
        Candidate(US_C, "mobile"),
    ]
    ranked = rank(cands, "US")
    assert [(r.phone, r.line_type, r.do_not_call) for r in ranked] == [
        (US_B, "mobile", False),
        (US_C, "mobile", False),
        (US_A, "mobile", True),
    ]
    assert best([Candidate("1"), Candidate(None), Candidate(True)], "US") is None


def test_lantern_keeps_the_best_of_several_too() -> None:
    payload = {"phones": [{"number": US_A, "type": "office"}, {"number": US_B, "type": "mobile"}]}
    res = parse_found(payload, Price("lantern"), "US")
    assert (res.status, res.phone, res.line_type) == (RecordStatus.FOUND, US_B, "mobile")
    assert res.verified_at is not None
    dated = parse_found(
        {"phone_number": UK_MOBILE, "verified_at": "2026-01-02T03:04:05Z"}, Price("lantern"), "US"
    )
    assert (dated.line_type, str(dated.verified_at)) == ("mobile", "2026-01-02 03:04:05")
