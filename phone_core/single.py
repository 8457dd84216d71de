"""One person, looked up now: the use case behind ``POST /v1/enrich/phone``.

The synchronous counterpart of a batch, through the same cache, waterfall and credits:

1. the person is normalised; one that cannot be enriched is refused (``InputError``);
2. a fresh cache hit answers at once, free;
3. else the caller must have the worst case of the waterfall available (no hold is taken:
   two calls racing may together spend up to one worst case beyond the balance, as a
   sign-in attempt that passes its check at the same moment does);
4. the sources are asked in order until one finds a phone; what each did is recorded
   (``source_stats``) and what they charged is one ledger charge, in one transaction
   with the cache entry.

The answer is what the Lantern-compatible source reads (``sources.lantern_wire``), so
one install can be another's upstream. No personal data is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from phone_core import credits, source_stats
from phone_core.credits import worst_case
from phone_core.errors import InputError, InsufficientCredits
from phone_core.models import Detail, RecordStatus, SourceResult
from phone_core.records import identity_key, is_enrichable, normalize
from phone_core.runtime import Runtime
from phone_core.sources.base import FATAL_DETAILS, Lookup, Source
from phone_core.sources.cache import cache_key, cached_phones, remember

log = logging.getLogger(__name__)
# The request fields of the Lantern-compatible wire format -> the person's fields.
WIRE_FIELDS = {
    "first_name": "first_name",
    "last_name": "last_name",
    "company": "company_name",
    "company_name": "company_name",
    "domain": "company_url",
    "company_url": "company_url",
    "linkedin_id": "linkedin",
    "linkedin": "linkedin",
    "email": "email",
}
MAX_FIELD = 500


@dataclass(frozen=True)
class SingleResult:
    phone: str | None
    source: str  # "" when not found
    credits: int
    cached: bool
    detail: str  # no_match, invalid_phone, or the error that ended it
    error: bool  # every source failed on it (not a plain miss)


def person_of(body: Mapping[str, object]) -> dict[str, str]:
    """The person fields of a wire request (unknown keys ignored, values bounded)."""
    out: dict[str, str] = {}
    for key, field in WIRE_FIELDS.items():
        value = body.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InputError(f"{key} must be a string")
        if len(value) > MAX_FIELD:
            raise InputError(f"{key} is longer than {MAX_FIELD} characters")
        out.setdefault(field, value)
    return out


async def enrich_one(
    rt: Runtime, user: str, fields: Mapping[str, str], record_id: str = ""
) -> SingleResult:
    person = normalize({**fields, "id": record_id or "single"})
    if not is_enrichable(person):
        raise InputError(
            "not enough to look up: give a linkedin_id, an email, or first and last name "
            "with a company or domain"
        )
    identity = identity_key(person)
    key = cache_key(identity, user, rt.settings.cache_scope)
    sources = await asyncio.to_thread(rt.current_sources)
    need = worst_case([s.price for s in sources])

    def check() -> str | None:
        with rt.db.connect() as conn:
            hit = cached_phones(conn, [key], rt.settings.cache_ttl_days).get(key)
            if hit is None and need > 0:
                available = credits.summarize(conn, user).available
                if available < need:
                    raise InsufficientCredits(required=need, remaining=available)
        return hit

    hit = await asyncio.to_thread(check)
    if hit is not None:
        return SingleResult(hit, "cache", 0, True, "", False)
    rid = hashlib.sha256(identity.encode()).hexdigest()[:8]
    result, calls = await _waterfall(sources, Lookup(0, person, identity))
    spent = sum(c.credits for c in calls)

    def settle() -> None:
        with rt.db.begin() as conn:
            source_stats.record(conn, None, calls)
            credits.charge_single(conn, user, spent, result.source if result.phone else "")
            if result.phone:
                remember(conn, {key: (result.phone, result.source)})

    await asyncio.to_thread(settle)
    log.info("single lookup %s: %s after %d source(s)", rid, result.status.value, len(calls))
    return SingleResult(
        phone=result.phone,
        source=result.source if result.phone else "",
        credits=spent,
        cached=False,
        detail=result.detail,
        error=result.status == RecordStatus.ERROR,
    )


async def _waterfall(
    sources: Sequence[Source], lookup: Lookup
) -> tuple[SourceResult, list[source_stats.Call]]:
    """Down the sources until one finds; the last answer (or the first error, when no
    source found and one failed) and what each source did."""
    calls: list[source_stats.Call] = []
    error: SourceResult | None = None
    note = ""
    for src in sources:
        began = time.monotonic()
        res = (await src.lookup_many([lookup]))[0]
        elapsed = (time.monotonic() - began) * 1000
        reported = res.raw.get("latency_ms") if res.raw else None
        latency = reported if isinstance(reported, int | float) else elapsed
        calls.append(
            source_stats.Call(src.name, res.status.value, res.detail, res.credits, int(latency))
        )
        if res.status == RecordStatus.FOUND and res.phone:
            return res.model_copy(update={"source": src.name}), calls
        if res.status == RecordStatus.ERROR:
            error = error or res.model_copy(update={"source": src.name})
        elif res.detail and res.detail != Detail.NO_MATCH.value:
            note = note or res.detail
    if error is not None:
        return error, calls
    return SourceResult(source="", status=RecordStatus.NOT_FOUND, detail=note or "no_match"), calls


def is_fatal(detail: str) -> bool:
    return detail in FATAL_DETAILS
