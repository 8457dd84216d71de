"""Prospeo "Enrich Person" with mobile reveal: one person per call, answered at once.

Written to Prospeo's public API documentation (https://prospeo.io/api-docs/enrich-person,
/api-docs/authentication, /api-docs/person-object):

- ``POST {base}/enrich-person`` (base ``https://api.prospeo.io``), headers
  ``X-KEY: <key>`` and ``Content-Type: application/json``; every endpoint is POST.
- body: ``{"enrich_mobile": true, "only_verified_mobile": true, "data": {...}}`` where
  ``data`` holds the datapoints we have: ``first_name``, ``last_name``, ``full_name``,
  ``linkedin_url``, ``email``, ``company_name``, ``company_website``. With
  ``only_verified_mobile`` a person without a mobile is not returned, so it is not
  billed (Prospeo: 1 credit per match, 10 with a mobile, nothing when no result).
- answer: JSON always carries ``"error": false|true``. Success: ``{"error": false,
  "person": {..., "mobile": {...}}}``. The documented example shows a revealed mobile
  inside ``person.mobile``; the exact keys of that object are not spelled out in the
  pages we could read, so we read, in this order, ``mobile_international``, ``mobile``,
  ``number`` (strings) and the ``status`` (``VERIFIED``...) / ``revealed`` flags
  defensively: a mobile that is present but not ``revealed: true`` is not used.
- errors: documented status codes 200 / 400 ("an error occurred", with an
  ``error_code`` in the body) / 401 (invalid key) / 429 (rate limit). ``error_code``
  values we act on: ``NO_MATCH`` -> not found (not billed); ``INSUFFICIENT_CREDITS`` ->
  ``upstream_credits`` (fatal); ``INVALID_API_KEY`` -> ``upstream_auth`` (fatal);
  ``INVALID_DATAPOINTS`` / ``INVALID_REQUEST`` -> not found with ``upstream_rejected``
  noted (the record lacks what Prospeo needs: not worth a retry); ``RATE_LIMITED`` or
  429 -> retry. Any other 400 code -> ``upstream_rejected``.
- rate limits: per plan; Prospeo sends ``x-minute-request-left``,
  ``x-minute-reset-seconds`` etc. A 429 is not documented to carry ``Retry-After``: we
  use it if present, else ``x-second-rate-limit``-style headers are ignored and we back
  off exponentially (the shared limiter is pushed back by the wait).
- test connection: ``POST {base}/account-info`` (documented, free): 200 with
  ``{"error": false, "response": {...}}`` when the key is good.

Line type: Prospeo only returns mobiles here, so the kept number is ``mobile`` (the
vendor's word); ``verified_at`` is the time of the answer (Prospeo gives none).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from phone_core.credits import Price
from phone_core.errors import FatalSourceError, RetryableSourceError, SourceError
from phone_core.models import Detail, SourceResult
from phone_core.ranking import Candidate
from phone_core.sources.base import Lookup
from phone_core.sources.vendor_base import (
    SINGLE,
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
    NoMatch,
    VendorCallError,
    VendorHttp,
    retry_after_of,
)

log = logging.getLogger(__name__)

NAME = "prospeo"
ENRICH_PATH = "/enrich-person"
ACCOUNT_PATH = "/account-info"


def request_body(lookup: Lookup) -> dict[str, Any]:
    p = lookup.person
    first, last, full = split_name(p)
    data = {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "linkedin_url": linkedin_url(p.linkedin),
        "email": p.email,
        "company_name": p.company_name,
        "company_website": domain_of(p.company_url),
    }
    return {
        "enrich_mobile": True,
        "only_verified_mobile": True,
        "data": {k: v for k, v in data.items() if v},
    }


def check(status: int, headers: Mapping[str, str], payload: Any) -> None:
    """Prospeo's error style: an ``error_code`` in a JSON body, status 400/401/429."""
    body = payload if isinstance(payload, Mapping) else {}
    code = str(body.get("error_code") or "").upper()
    if 200 <= status < 300 and body.get("error") is not True:
        return
    if status == 429 or code == "RATE_LIMITED":
        raise RetryableSourceError(
            Detail.UPSTREAM_RATE_LIMITED.value,
            "HTTP 429",
            retry_after=retry_after_of(headers, body),
        )
    if status >= 500 or code == "INTERNAL_ERROR":
        raise RetryableSourceError(Detail.UPSTREAM_5XX.value, f"HTTP {status}")
    if status in (401, 403) or code in ("INVALID_API_KEY", "UNAUTHORIZED"):
        raise FatalSourceError(Detail.UPSTREAM_AUTH.value, f"HTTP {status} {code}".strip())
    if status == 402 or code == "INSUFFICIENT_CREDITS":
        raise FatalSourceError(Detail.UPSTREAM_CREDITS.value, f"HTTP {status} {code}")
    if code == "NO_MATCH":
        raise NoMatch(Detail.NO_MATCH.value)
    if code in ("INVALID_DATAPOINTS", "INVALID_REQUEST"):
        raise NoMatch(Detail.UPSTREAM_REJECTED.value)
    raise SourceError(Detail.UPSTREAM_REJECTED.value, f"HTTP {status} {code}".strip())


def parse_person(payload: Any, price: Price, region: str) -> SourceResult:
    """A 200 body -> found (the revealed mobile) or not found."""
    person = payload.get("person") if isinstance(payload, Mapping) else None
    mobile = person.get("mobile") if isinstance(person, Mapping) else None
    cands: list[Candidate] = []
    if isinstance(mobile, Mapping):
        if mobile.get("revealed") is False:
            return not_found(NAME, price)
        for key in ("mobile_international", "mobile", "number"):
            value = mobile.get(key)
            if isinstance(value, str) and value.strip():
                cands.append(Candidate(value, "mobile"))
    elif isinstance(mobile, str):
        cands.append(Candidate(mobile, "mobile"))
    raw = (
        {"free_enrichment": payload.get("free_enrichment")} if isinstance(payload, Mapping) else {}
    )
    return phones_result(NAME, cands, price, region, raw={k: v for k, v in raw.items() if v})


class ProspeoSource(HttpClientOwner):
    """Single-record source: the engine sends one record per call (``batch_size`` 1)."""

    name = NAME
    batch_size = 1

    def __init__(
        self,
        config: VendorConfig,
        engine: Engine | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.price = config.price
        self.concurrency = max(1, config.concurrency)
        self.http = VendorHttp(config, {"X-KEY": config.api_key}, check, engine, transport)

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        return list(await asyncio.gather(*(self._one(lk) for lk in lookups)))

    async def _one(self, lookup: Lookup) -> SourceResult:
        try:
            payload = await self.http.request(
                "POST", ENRICH_PATH, request_body(lookup), idempotent=True
            )
        except NoMatch as miss:
            res = not_found(self.name, self.price)
            return (
                res
                if miss.detail == Detail.NO_MATCH.value
                else res.model_copy(update={"detail": miss.detail})
            )
        except FatalSourceError as exc:
            return error_result(self.name, exc.detail, self.price, charged=False)
        except VendorCallError as exc:
            log.warning("%s %s: %s", self.name, lookup.record_id[:8], exc.detail)
            return error_result(self.name, exc.detail, self.price, charged=exc.sent)
        res = parse_person(payload, self.price, self.config.region)
        return res.model_copy(update={"source": self.name})

    async def test_connection(self) -> None:
        """One free call (account info); raises a ``SourceError`` saying what is wrong."""
        await self.free_call(
            "POST", ACCOUNT_PATH, {}, refused="Prospeo refused the account-info call"
        )


VENDOR = VendorSpec(
    name=NAME,
    label="Prospeo (mobile finder)",
    shape=SINGLE,
    default_price=Price(NAME, lookup_cost=0, found_cost=10, failed_cost=0),
    default_rate_per_sec=5.0,
    default_concurrency=5,
    docs_url="https://prospeo.io/api-docs/enrich-person",
    build=ProspeoSource,
    default_base_url="https://api.prospeo.io",
)
