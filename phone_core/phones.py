"""Phone numbers: E.164 normalisation and type/country via ``phonenumbers``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

_TYPE_NAMES: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}


def to_e164(raw: object, default_region: str = "US") -> str | None:
    """Return the E.164 form of ``raw``, or None when it is not a valid phone number."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@dataclass(frozen=True)
class PhoneInfo:
    e164: str
    type: str
    country: str


@lru_cache(maxsize=65536)
def describe(e164: str) -> PhoneInfo | None:
    """Type (mobile, fixed_line, ...) and ISO country of an E.164 number."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    kind = _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")
    country = phonenumbers.region_code_for_number(number) or ""
    return PhoneInfo(e164=e164, type=kind, country=str(country))
