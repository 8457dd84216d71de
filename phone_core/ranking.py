"""Which of a vendor's phones to keep: the one rule every source uses.

A vendor may return several numbers for one person. We keep exactly one, the best by:

1. valid E.164 only (``phones.to_e164`` with the source's default region); invalid ones
   are dropped, and a record whose numbers are all invalid ends ``invalid_phone``;
2. numbers the vendor flags "do not call" come after every callable one;
3. line type: ``mobile`` < ``direct`` (direct dial) < unknown < ``office`` (switchboard,
   main line, landline) < ``other`` (toll-free, VoIP, pager, fax, ...). The vendor's label
   wins; without one, libphonenumber's type where it can tell (``mobile``, ``fixed_line``
   -> office, ``toll_free``/``voip``/... -> other; ``fixed_line_or_mobile``, e.g. every US
   number, cannot be told apart and stays unknown);
4. ties keep the vendor's own order (vendors list their most probable number first).

The same number listed twice counts once. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phone_core.phones import describe, to_e164

MOBILE = "mobile"
DIRECT = "direct"
OFFICE = "office"
OTHER = "other"
UNKNOWN = ""

LINE_TYPE_ORDER: dict[str, int] = {MOBILE: 0, DIRECT: 1, UNKNOWN: 2, OFFICE: 3, OTHER: 4}

_VENDOR_LABELS: dict[str, str] = {
    "mobile": MOBILE,
    "mobile_phone": MOBILE,
    "cell": MOBILE,
    "cellphone": MOBILE,
    "cell_phone": MOBILE,
    "personal": MOBILE,
    "direct": DIRECT,
    "direct_dial": DIRECT,
    "directdial": DIRECT,
    "direct_phone": DIRECT,
    "work_direct": DIRECT,
    "office": OFFICE,
    "work": OFFICE,
    "work_hq": OFFICE,
    "hq": OFFICE,
    "main": OFFICE,
    "company": OFFICE,
    "switchboard": OFFICE,
    "landline": OFFICE,
    "fixed_line": OFFICE,
    "fixed": OFFICE,
    "phone": UNKNOWN,
    "unknown": UNKNOWN,
    "": UNKNOWN,
}
_LIBPHONENUMBER: dict[str, str] = {
    "mobile": MOBILE,
    "fixed_line": OFFICE,
    "fixed_line_or_mobile": UNKNOWN,
    "unknown": UNKNOWN,
}


def vendor_line_type(label: object) -> str:
    """A vendor's label (``"Mobile"``, ``"direct dial"``, ``"work_hq"``, ...) as ours."""
    if not isinstance(label, str):
        return UNKNOWN
    key = label.strip().lower().replace("-", "_").replace(" ", "_")
    if key in _VENDOR_LABELS:
        return _VENDOR_LABELS[key]
    return OTHER


def number_line_type(e164: str) -> str:
    """What libphonenumber can tell about a valid E.164 number ("" when it cannot)."""
    info = describe(e164)
    if info is None:
        return UNKNOWN
    return _LIBPHONENUMBER.get(info.type, OTHER)


@dataclass(frozen=True)
class Candidate:
    """One number as a vendor gave it, with its label and do-not-call flag if any."""

    raw: object
    label: object = None
    do_not_call: bool = False


@dataclass(frozen=True)
class Ranked:
    phone: str  # E.164
    line_type: str  # one of MOBILE, DIRECT, OFFICE, OTHER, or "" (unknown)
    do_not_call: bool


def rank(candidates: Iterable[Candidate], region: str) -> list[Ranked]:
    """Every valid distinct number, best first (see the module docstring)."""
    seen: dict[str, tuple[tuple[int, int, int], Ranked]] = {}
    for pos, cand in enumerate(candidates):
        if cand.raw is None or isinstance(cand.raw, bool):
            continue
        phone = to_e164(cand.raw, region)
        if not phone:
            continue
        kind = vendor_line_type(cand.label)
        if kind == UNKNOWN:
            kind = number_line_type(phone)
        key = (int(cand.do_not_call), LINE_TYPE_ORDER[kind], pos)
        item = Ranked(phone, kind, cand.do_not_call)
        if phone not in seen or key < seen[phone][0]:
            seen[phone] = (key, item)
    return [item for _, item in sorted(seen.values(), key=lambda kv: kv[0])]


def best(candidates: Iterable[Candidate], region: str) -> Ranked | None:
    """The number to keep, or None when no candidate is a valid phone number."""
    ranked = rank(candidates, region)
    return ranked[0] if ranked else None
