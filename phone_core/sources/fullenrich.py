"""FullEnrich bulk enrichment: an asynchronous job (submit, then poll), up to 100 people.

Written to FullEnrich's public API documentation (https://docs.fullenrich.com, v2
"Start Bulk Enrichment" / "Get Enrichment Result", and its OpenAPI):

- submit: ``POST {base}/contact/enrich/bulk`` (base ``https://app.fullenrich.com/api/v2``),
  ``Authorization: Bearer <key>``. Body ``{"name": ..., "data": [...]}``, at most 100
  contacts, each ``first_name`` + ``last_name`` and ``domain`` or ``company_name``, or a
  ``linkedin_url``; ``enrich_fields: ["contact.phones"]`` asks for phones only (a mobile
  costs 10 FullEnrich credits, nothing when none is found); ``custom`` (string values,
  "echoed back unchanged") carries our ``record_id``. Answer: ``{"enrichment_id": uuid}``.
- poll: ``GET {base}/contact/enrich/bulk/{enrichment_id}`` -> ``{"id", "name", "status",
  "cost": {"credits"}, "data": [...]}``; ``status`` is one of ``CREATED``,
  ``IN_PROGRESS``, ``CANCELED``, ``CREDITS_INSUFFICIENT``, ``FINISHED``, ``RATE_LIMIT``,
  ``UNKNOWN``. Each ``data`` item: ``custom`` (ours, echoed), ``contact_info`` with
  ``most_probable_phone`` and ``phones`` (``{"number": E.164, "region": ISO}``). The API
  documents no line type per number: libphonenumber's is used. No verification date is
  given: ``verified_at`` is when the job finished for us. Polling is free.
- webhooks (``webhook_url``) are the vendor's recommended way; this adapter polls instead
  (a worker behind NAT has no public URL), every ``poll_interval_sec``, for at most
  ``max_wait_sec`` (then the records end ``upstream_timeout``; the job stays
  checkpointed).
- errors (documented): 400 bad request (also "enrichment still in progress" on the GET:
  polled again), 401 bad key (``upstream_auth``), 402 payment required
  (``upstream_credits``), 404 unknown enrichment id (the records end
  ``upstream_job_unknown``), 429 rate limited (documented at 60 requests/minute per
  account, no published rate-limit headers: backoff, ``Retry-After`` honoured if sent);
  error bodies ``{"code": "error.xxx", "message": ...}``. A job ending
  ``CREDITS_INSUFFICIENT`` -> ``upstream_credits`` (fatal), ``CANCELED`` ->
  ``upstream_rejected``. ``RATE_LIMIT``/``UNKNOWN`` (not described further) are treated
  as still running.
- idempotency: none is published ("a retry creates a new enrichment_id"), so the submit
  is retried only when it surely never arrived (429, connection refused); a timeout or
  5xx on submit ends the records ``error`` rather than risk paying twice.

Durability: the job is checkpointed in ``vendor_jobs`` before the submit and its id right
after it, before the first poll, keyed per (source, run, record). The run comes from
``base.current_run_id`` (set by the engine around a waterfall); a restarted worker resumes
polling the same enrichment and never submits those records again in that run. Without a
run (a direct call) each call gets its own key: nothing to resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from phone_core.credits import Price
from phone_core.errors import FatalSourceError
from phone_core.models import Detail, SourceResult
from phone_core.ranking import Candidate
from phone_core.sources import vendor_jobs
from phone_core.sources.base import Lookup, current_run_id
from phone_core.sources.vendor_base import (
    ASYNC,
    VendorConfig,
    VendorSpec,
    domain_of,
    error_result,
    linkedin_url,
    now_utc,
    phones_result,
    split_name,
)
from phone_core.sources.vendor_http import (
    HttpClientOwner,
    NoMatch,
    VendorCallError,
    VendorHttp,
    standard_check,
)

log = logging.getLogger(__name__)

NAME = "fullenrich"
SUBMIT_PATH = "/contact/enrich/bulk"
CREDITS_PATH = "/account/credits"
MAX_BATCH = 100
RUNNING = frozenset({"CREATED", "IN_PROGRESS", "RATE_LIMIT", "UNKNOWN"})


class _InProgress(Exception):
    """A 400 on the GET that says the enrichment is not finished yet."""


class _UnknownJob(Exception):
    """404 on the GET: the vendor does not know (any more) this enrichment id."""


def check(status: int, headers: Mapping[str, str], payload: Any) -> None:
    """FullEnrich's own answers first (a job it does not know, one still in progress),
    then the common meaning of the status."""
    body = payload if isinstance(payload, Mapping) else {}
    code = str(body.get("code") or "").lower()
    if status == 404:
        raise NoMatch(Detail.UPSTREAM_JOB_UNKNOWN.value)
    if status == 400 and "progress" in (code + " " + str(body.get("message") or "")).lower():
        raise NoMatch("in_progress")
    standard_check(status, headers, body, code)


def contact_of(lookup: Lookup) -> dict[str, Any]:
    p = lookup.person
    first, last, _ = split_name(p)
    fields = {
        "first_name": first,
        "last_name": last,
        "domain": domain_of(p.company_url),
        "company_name": p.company_name,
        "linkedin_url": linkedin_url(p.linkedin),
    }
    contact: dict[str, Any] = {k: v for k, v in fields.items() if v}
    contact["enrich_fields"] = ["contact.phones"]
    contact["custom"] = {"record_id": lookup.record_id}
    return contact


def submit_body(name: str, lookups: Sequence[Lookup]) -> dict[str, Any]:
    return {"name": name, "data": [contact_of(lk) for lk in lookups]}


def parse_record(item: Mapping[str, Any], price: Price, region: str) -> SourceResult:
    info = item.get("contact_info") or item.get("contact")
    cands: list[Candidate] = []
    if isinstance(info, Mapping):
        top = info.get("most_probable_phone")
        if isinstance(top, Mapping):
            cands.append(Candidate(top.get("number")))
        phones = info.get("phones")
        if isinstance(phones, list):
            for ph in phones[:20]:
                if isinstance(ph, Mapping):
                    cands.append(Candidate(ph.get("number")))
    return phones_result(NAME, cands, price, region, verified_at=now_utc())


def map_back(
    lookups: Sequence[Lookup], payload: Mapping[str, Any], price: Price, region: str
) -> list[SourceResult]:
    """One result per lookup by the echoed ``custom.record_id``; missing ->
    ``upstream_incomplete``. The first item for a record id wins."""
    by_id: dict[str, Mapping[str, Any]] = {}
    data = payload.get("data")
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, Mapping):
            continue
        custom = item.get("custom")
        rid = custom.get("record_id") if isinstance(custom, Mapping) else None
        if isinstance(rid, str) and rid not in by_id:
            by_id[rid] = item
    out = []
    for lk in lookups:
        item = by_id.get(lk.record_id)
        if item is None:
            out.append(error_result(NAME, Detail.UPSTREAM_INCOMPLETE.value, price, charged=True))
        else:
            out.append(parse_record(item, price, region))
    return out


class FullEnrichSource(HttpClientOwner):
    """Async-job source: the engine hands it up to ``batch_size`` records per call."""

    name = NAME
    batch_size = MAX_BATCH

    def __init__(
        self,
        config: VendorConfig,
        engine: Engine,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        batch_size: int = MAX_BATCH,
        poll_interval_sec: float = 5.0,
        max_wait_sec: float = 1800.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.price = config.price
        self.engine = engine
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.concurrency = max(1, config.concurrency)
        self.poll_interval_sec = poll_interval_sec
        self.max_wait_sec = max_wait_sec
        headers = {"Authorization": f"Bearer {config.api_key}"}
        self.http = VendorHttp(config, headers, check, engine, transport)

    # -- the Source protocol --------------------------------------------------------------
    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        run = current_run_id.get() or f"call-{uuid.uuid4().hex}"
        ids = [lk.record_id for lk in lookups]
        known = await asyncio.to_thread(vendor_jobs.find, self.engine, self.name, run, ids)
        groups: dict[str, tuple[vendor_jobs.Job, list[int]]] = {}
        fresh: list[int] = []
        for i, lk in enumerate(lookups):
            job = known.get(lk.record_id)
            if job is None:
                fresh.append(i)
            else:
                groups.setdefault(job.job_key, (job, []))[1].append(i)
        tasks = [self._resume(job, [lookups[i] for i in idx]) for job, idx in groups.values()]
        fresh_chunks = [
            fresh[s : s + self.batch_size] for s in range(0, len(fresh), self.batch_size)
        ]
        tasks += [self._submit(run, [lookups[i] for i in idx]) for idx in fresh_chunks]
        parts = await asyncio.gather(*tasks)
        order = [idx for _, idx in groups.values()] + fresh_chunks
        out: list[SourceResult | None] = [None] * len(lookups)
        for idx, part in zip(order, parts, strict=True):
            for i, res in zip(idx, part, strict=True):
                out[i] = res.model_copy(update={"source": self.name})
        return [r for r in out if r is not None]

    async def _submit(self, run: str, lookups: Sequence[Lookup]) -> list[SourceResult]:
        ids = [lk.record_id for lk in lookups]
        job = await asyncio.to_thread(vendor_jobs.begin, self.engine, self.name, run, ids)
        name = f"phone-enrich {run[:12]} {job.job_key[:8]}"
        try:
            answer = await self.http.request(
                "POST", SUBMIT_PATH, submit_body(name, lookups), idempotent=False
            )
        except FatalSourceError as exc:
            await asyncio.to_thread(vendor_jobs.drop, self.engine, job.job_key)
            return self._all(lookups, exc.detail, charged=False)
        except (VendorCallError, NoMatch) as exc:
            sent = isinstance(exc, VendorCallError) and exc.sent
            refused = isinstance(exc, NoMatch) or exc.detail in (
                Detail.UPSTREAM_REJECTED.value,
                Detail.UPSTREAM_RATE_LIMITED.value,
            )
            if refused or not sent:  # surely no job at the vendor
                await asyncio.to_thread(vendor_jobs.drop, self.engine, job.job_key)
            else:  # maybe a job (timeout, 5xx): never re-sent in this run
                await asyncio.to_thread(vendor_jobs.abandon, self.engine, job.job_key)
            return self._all(lookups, exc.detail, charged=sent)
        enrichment_id = answer.get("enrichment_id") if isinstance(answer, Mapping) else None
        if not isinstance(enrichment_id, str) or not enrichment_id:
            await asyncio.to_thread(vendor_jobs.abandon, self.engine, job.job_key)
            return self._all(lookups, Detail.UPSTREAM_BAD_RESPONSE.value, charged=True)
        await asyncio.to_thread(vendor_jobs.submitted, self.engine, job.job_key, enrichment_id)
        log.info("%s: job %s submitted (%d records)", self.name, job.job_key[:8], len(lookups))
        return await self._wait(job.job_key, enrichment_id, lookups)

    async def _resume(self, job: vendor_jobs.Job, lookups: Sequence[Lookup]) -> list[SourceResult]:
        if job.state in (vendor_jobs.SUBMITTING, vendor_jobs.ABANDONED) or not job.vendor_job_id:
            if job.state == vendor_jobs.SUBMITTING:
                log.warning("%s: job %s was being submitted at a crash", self.name, job.job_key[:8])
                await asyncio.to_thread(vendor_jobs.abandon, self.engine, job.job_key)
            return self._all(lookups, Detail.UPSTREAM_JOB_UNKNOWN.value, charged=False)
        if job.state == vendor_jobs.FAILED:
            detail = job.detail or Detail.UPSTREAM_REJECTED.value
            return self._all(lookups, detail, charged=False)
        log.info("%s: resuming job %s", self.name, job.job_key[:8])
        return await self._wait(job.job_key, job.vendor_job_id, lookups)

    async def _wait(
        self, key: str, enrichment_id: str, lookups: Sequence[Lookup]
    ) -> list[SourceResult]:
        deadline = time.monotonic() + self.max_wait_sec
        path = f"{SUBMIT_PATH}/{enrichment_id}"
        while True:
            try:
                payload = await self.http.request("GET", path)
            except FatalSourceError as exc:
                return self._all(lookups, exc.detail, charged=False)
            except VendorCallError as exc:
                return self._all(lookups, exc.detail, charged=True)
            except NoMatch as exc:
                if exc.detail != "in_progress":
                    await asyncio.to_thread(
                        vendor_jobs.finish, self.engine, key, vendor_jobs.FAILED, exc.detail
                    )
                    return self._all(lookups, exc.detail, charged=False)
                payload = {"status": "IN_PROGRESS"}
            status = str(payload.get("status") or "") if isinstance(payload, Mapping) else ""
            if status == "FINISHED":
                await asyncio.to_thread(vendor_jobs.finish, self.engine, key, vendor_jobs.DONE)
                return map_back(lookups, payload, self.price, self.config.region)
            if status == "CREDITS_INSUFFICIENT":
                detail = Detail.UPSTREAM_CREDITS.value
                await asyncio.to_thread(
                    vendor_jobs.finish, self.engine, key, vendor_jobs.FAILED, detail
                )
                return self._all(lookups, detail, charged=False)
            if status == "CANCELED" or (status and status not in RUNNING):
                detail = Detail.UPSTREAM_REJECTED.value
                await asyncio.to_thread(
                    vendor_jobs.finish, self.engine, key, vendor_jobs.FAILED, detail
                )
                return self._all(lookups, detail, charged=False)
            if time.monotonic() >= deadline:
                log.warning(
                    "%s: job %s not finished in %.0fs", self.name, key[:8], self.max_wait_sec
                )
                return self._all(lookups, Detail.UPSTREAM_TIMEOUT.value, charged=True)
            await asyncio.sleep(self.poll_interval_sec)

    def _all(self, lookups: Sequence[Lookup], detail: str, *, charged: bool) -> list[SourceResult]:
        return [error_result(self.name, detail, self.price, charged=charged) for _ in lookups]

    async def test_connection(self) -> None:
        """One free call (the credit balance); raises a ``SourceError`` saying what is wrong."""
        await self.free_call(
            "GET", CREDITS_PATH, refused="FullEnrich did not answer the credits call"
        )


VENDOR = VendorSpec(
    name=NAME,
    label="FullEnrich (async waterfall)",
    shape=ASYNC,
    default_price=Price(NAME, lookup_cost=0, found_cost=10, failed_cost=0),
    default_rate_per_sec=1.0,
    default_concurrency=4,
    docs_url="https://docs.fullenrich.com/api/v2/contact/enrich/bulk/post",
    build=FullEnrichSource,
    default_base_url="https://app.fullenrich.com/api/v2",
)
