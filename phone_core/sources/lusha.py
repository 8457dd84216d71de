"""Lusha Person API v2, bulk: up to 100 people per call, answered at once.

Written to Lusha's public API documentation (https://docs.lusha.com, "Search Multiple
Contacts" / "Bulk enrich up to 100 contacts with POST /v2/person", "Error handling"):

- ``POST {base}/v2/person`` (base ``https://api.lusha.com``), API key in the ``api_key``
  request header.
- body: ``{"contacts": [...], "metadata": {"filterBy": "phoneNumbers"}}``; each contact
  needs ``contactId`` ("your own sequential identifier used to match results back to
  inputs") and one of ``email``, ``linkedinUrl``, or ``fullName`` with a ``companies``
  entry ``{"name"|"domain", "isCurrent": true}``. We send the position in the chunk as
  ``contactId`` ("0", "1", ...). ``filterBy: phoneNumbers`` returns only contacts with a
  phone (Lusha bills a match). ``revealPhones`` is not sent: it needs the "Unified
  Credits" plan and answers 403 on the others; without it phones are returned anyway.
- answer: ``{"contacts": {"<contactId>": {...}}, "companies": {...}}``. The documented
  schema types each contact value as ``any``; we read it defensively: ``error`` (an
  object or a string) means a per-record failure (``NOT_FOUND``-like codes -> not found,
  others -> ``upstream_rejected``), else the person is ``data`` (or the value itself)
  with ``phoneNumbers: [{"number", "phoneType", "doNotCall"}]`` (the v2 metadata per
  number: type, Do-Not-Call flag). A list instead of a dict is matched by ``contactId``.
- mapping back: by ``contactId`` only, never by position, so a reordered answer is read
  right; a contact missing from the answer ends ``error``/``upstream_incomplete``
  (charged the failed cost: Lusha saw it), an unknown ``contactId`` is ignored.
- errors (documented status codes): 400 / 412 bad request (the whole call: every record
  ``upstream_rejected``), 401 invalid key and 403 account not active or plan
  restriction (``upstream_auth``, fatal), 402 (not listed; treated as out of credits),
  429 rate/credit limits (retried with backoff; ``Retry-After`` honoured when present,
  the docs name none), 5xx retried. Rate limit: documented as 25 requests/second for
  this endpoint (plan dependent); our default is lower.
- test connection: ``GET {base}/account/usage`` (documented, reads the credit usage).

``verified_at`` is the time of the answer (Lusha gives no verification date here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from phone_core.credits import Price
from phone_core.errors import FatalSourceError
from phone_core.models import Detail, SourceResult
from phone_core.ranking import Candidate
from phone_core.sources.base import Lookup
from phone_core.sources.vendor_base import (
    BULK,
    VendorConfig,
    VendorSpec,
    domain_of,
    error_result,
    linkedin_url,
    not_found,
    phones_result,
    split_name,
)
from phone_core.sources.vendor_http import (
    HttpClientOwner,
    VendorCallError,
    VendorHttp,
    standard_check,
)

log = logging.getLogger(__name__)

NAME = "lusha"
PATH = "/v2/person"
USAGE_PATH = "/account/usage"
MAX_BATCH = 100
_NOT_FOUND_CODES = {"NOT_FOUND", "404", "CONTACT_NOT_FOUND", "NO_MATCH"}


def contact_of(position: int, lookup: Lookup) -> dict[str, Any]:
    p = lookup.person
    _, _, full = split_name(p)
    contact: dict[str, Any] = {"contactId": str(position)}
    if full:
        contact["fullName"] = full
    if p.email:
        contact["email"] = p.email
    if p.linkedin:
        contact["linkedinUrl"] = linkedin_url(p.linkedin)
    company: dict[str, Any] = {}
    if p.company_name:
        company["name"] = p.company_name
    if p.company_url:
        company["domain"] = domain_of(p.company_url)
    if company:
        contact["companies"] = [{**company, "isCurrent": True}]
    return contact


def request_body(lookups: Sequence[Lookup]) -> dict[str, Any]:
    return {
        "contacts": [contact_of(i, lk) for i, lk in enumerate(lookups)],
        "metadata": {"filterBy": "phoneNumbers"},
    }


check = standard_check  # Lusha's errors are plain HTTP statuses


def _entries(payload: Any) -> dict[str, Any]:
    """contactId -> that contact's value, from a dict or a list answer."""
    contacts = payload.get("contacts") if isinstance(payload, Mapping) else None
    if isinstance(contacts, Mapping):
        return {str(k): v for k, v in contacts.items()}
    out: dict[str, Any] = {}
    if isinstance(contacts, list):
        for item in contacts:
            if isinstance(item, Mapping):
                key = item.get("contactId", item.get("id"))
                if key is not None and str(key) not in out:
                    out[str(key)] = item
    return out


def parse_contact(entry: Any, price: Price, region: str) -> SourceResult:
    """One contact's value -> found / not found / error."""
    if not isinstance(entry, Mapping):
        return not_found(NAME, price) if entry is None else _rejected(price)
    error = entry.get("error")
    if error:
        code = ""
        if isinstance(error, Mapping):
            code = str(error.get("code") or error.get("name") or "")
        elif isinstance(error, str):
            code = error
        norm = code.strip().upper().replace(" ", "_")
        if norm in _NOT_FOUND_CODES or "NOT_FOUND" in norm:
            return not_found(NAME, price)
        return _rejected(price)
    data = entry.get("data", entry)
    phones = data.get("phoneNumbers") if isinstance(data, Mapping) else None
    cands: list[Candidate] = []
    if isinstance(phones, list):
        for item in phones[:20]:
            if isinstance(item, Mapping):
                number = item.get("number") or item.get("internationalNumber")
                cands.append(
                    Candidate(number, item.get("phoneType"), item.get("doNotCall") is True)
                )
            elif isinstance(item, str):
                cands.append(Candidate(item))
    return phones_result(NAME, cands, price, region)


def _rejected(price: Price) -> SourceResult:
    return error_result(NAME, Detail.UPSTREAM_REJECTED.value, price, charged=True)


def map_back(
    lookups: Sequence[Lookup], payload: Any, price: Price, region: str
) -> list[SourceResult]:
    """One result per lookup, by ``contactId``; missing ones -> ``upstream_incomplete``."""
    entries = _entries(payload)
    sent = {str(i) for i in range(len(lookups))}
    extra = set(entries) - sent
    if extra:
        log.warning("%s: %d contacts in the answer that were not sent, ignored", NAME, len(extra))
    out: list[SourceResult] = []
    missing = 0
    for i in range(len(lookups)):
        key = str(i)
        if key not in entries:
            missing += 1
            out.append(error_result(NAME, Detail.UPSTREAM_INCOMPLETE.value, price, charged=True))
        else:
            out.append(parse_contact(entries[key], price, region))
    if missing:
        log.warning("%s: %d of %d contacts missing from the answer", NAME, missing, len(lookups))
    return out


class LushaSource(HttpClientOwner):
    """Bulk source: the engine hands it up to ``batch_size`` records per call."""

    name = NAME
    batch_size = MAX_BATCH

    def __init__(
        self,
        config: VendorConfig,
        engine: Engine | None,
        transport: httpx.AsyncBaseTransport | None = None,
        batch_size: int = MAX_BATCH,
    ) -> None:
        self.config = config
        self.name = config.name
        self.price = config.price
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.concurrency = max(1, config.concurrency)
        self.http = VendorHttp(config, {"api_key": config.api_key}, check, engine, transport)

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        chunks = [
            list(lookups[i : i + self.batch_size]) for i in range(0, len(lookups), self.batch_size)
        ]
        parts = await asyncio.gather(*(self._chunk(c) for c in chunks))
        return [res for part in parts for res in part]

    async def _chunk(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        if not lookups:
            return []
        try:
            payload = await self.http.request("POST", PATH, request_body(lookups))
        except FatalSourceError as exc:
            return [error_result(self.name, exc.detail, self.price, charged=False)] * len(lookups)
        except VendorCallError as exc:
            log.warning("%s: a call of %d contacts failed: %s", self.name, len(lookups), exc.detail)
            return [error_result(self.name, exc.detail, self.price, charged=exc.sent)] * len(
                lookups
            )
        results = map_back(lookups, payload, self.price, self.config.region)
        return [r.model_copy(update={"source": self.name}) for r in results]

    async def test_connection(self) -> None:
        await self.free_call("GET", USAGE_PATH, refused="Lusha refused the usage call")


VENDOR = VendorSpec(
    name=NAME,
    label="Lusha (bulk person)",
    shape=BULK,
    default_price=Price(NAME, lookup_cost=0, found_cost=5, failed_cost=0),
    default_rate_per_sec=5.0,
    default_concurrency=2,
    docs_url="https://docs.lusha.com/apis/openapi/person-enrichment/searchmultiplecontacts",
    build=LushaSource,
    default_base_url="https://api.lusha.com",
)
