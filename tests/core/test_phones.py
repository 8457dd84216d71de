from __future__ import annotations

import pytest

from phone_core.phones import describe, to_e164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1-415-555-2671", "US", "+14155552671"),
        ("(212) 555-0143", "US", "+12125550143"),
        ("212.555.0143", "US", "+12125550143"),
        ("+44 20 7946 0123", "US", "+442079460123"),
        ("020 7946 0123", "GB", "+442079460123"),
        ("12345", "US", None),
        ("+1 555 123 4567", "US", None),  # 555 is not a valid area code
        ("call me", "US", None),
        ("", "US", None),
        (None, "US", None),
        ("1" * 60, "US", None),
    ],
)
def test_to_e164(raw: str | None, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


def test_describe() -> None:
    info = describe("+442079460123")
    assert info is not None and info.country == "GB" and info.type == "fixed_line"
    us = describe("+12125550143")
    assert us is not None and us.country == "US" and us.type == "fixed_line_or_mobile"
    assert describe("") is None
