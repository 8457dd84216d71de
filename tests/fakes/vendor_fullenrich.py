"""A fake FullEnrich v2 bulk enrichment (async jobs) over real HTTP.

``POST /contact/enrich/bulk`` (``Authorization: Bearer``) creates a job and answers
``{"enrichment_id"}``; ``GET /contact/enrich/bulk/{id}`` answers ``{"id", "name",
"status", "cost": {"credits"}, "data": [...]}`` with ``IN_PROGRESS`` for the first
``polls_needed`` polls of a job (forever while ``hold`` is set), then ``end_status``
(``FINISHED`` by default). Items carry the ``custom`` object sent, echoed, and
``contact_info.phones`` / ``most_probable_phone`` (``{"number", "region"}``), in reverse
order of the request (mapping must use ``custom``); ``drop`` leaves last names out.
Errors are ``{"code": "error.xxx", "message"}``: 400, 401, 402, 404, 429 (no headers).
``jobs_submitted`` counts created jobs; ``credits_charged`` is billed once per job when it
finishes (10 a phone found), like the vendor.
Jobs live in this object: a worker process killed mid-wait finds them still here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.vendor_base import FakeVendor, Reply, Request

PREFIX = "/contact/enrich/bulk"


def _err(status: int, code: str, message: str = "") -> Reply:
    return Reply(status, {"code": code, "message": message or code})


@dataclass
class Job:
    id: str
    name: str
    contacts: list[dict[str, Any]]
    polls: int = 0
    billed: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)


class FakeFullEnrich(FakeVendor):
    FAULTS = (
        "429",
        "500",
        "400",
        "402",
        "500_after_create",
        "in_progress_400",
        "bad_json",
    )

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.jobs: dict[str, Job] = {}
        self.polls_needed = 1
        self.hold = False
        self.end_status = "FINISHED"
        self.drop: set[str] = set()
        self.credits_charged = 0

    @property
    def jobs_submitted(self) -> int:
        with self.lock:
            return len(self.jobs)

    def polls_of(self, job_id: str) -> int:
        with self.lock:
            return self.jobs[job_id].polls

    def route(self, req: Request) -> Reply | None:
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return _err(401, "error.unauthorized", "Invalid API key")
        if req.method == "GET" and req.path == "/account/credits":
            return Reply(200, {"balance": 1000})
        fault = self.next_fault()
        if fault == "429":
            return _err(429, "error.rate_limit", "Too many requests")
        if fault in ("500", "400", "402"):
            return _err(int(fault), f"error.fake_{fault}")
        if fault == "bad_json":
            return Reply(200, raw=b'{"enrichment_id": ')
        if req.method == "POST" and req.path == PREFIX:
            job = self._create(req.body)
            if job is None:
                return _err(400, "error.bad_request", "data must hold 1 to 100 contacts")
            if fault == "500_after_create":
                return _err(500, "error.internal")
            return Reply(200, {"enrichment_id": job.id})
        if req.method == "GET" and req.path.startswith(PREFIX + "/"):
            if fault == "in_progress_400":
                return _err(400, "error.enrichment.in_progress", "Enrichment is still in progress")
            return self._poll(req.path[len(PREFIX) + 1 :].split("?", 1)[0])
        return _err(404, "error.not_found")

    def _create(self, body: Any) -> Job | None:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or not 1 <= len(data) <= 100:
            return None
        job = Job(str(uuid.uuid4()), str(body.get("name", "")), data)
        with self.lock:
            self.jobs[job.id] = job
        return job

    def _poll(self, job_id: str) -> Reply:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return _err(404, "error.enrichment.not_found", "Enrichment not found")
            job.polls += 1
            running = self.hold or job.polls <= self.polls_needed
            status = "IN_PROGRESS" if running else self.end_status
            if status == "FINISHED" and not job.billed:
                job.billed = True
                job.results = self._results(job)
                self.credits_charged += 10 * sum(
                    1 for r in job.results if r["contact_info"]["phones"]
                )
        cost = 10 * sum(1 for r in job.results if r["contact_info"]["phones"])
        payload: dict[str, Any] = {
            "id": job.id,
            "name": job.name,
            "status": status,
            "cost": {"credits": cost if status == "FINISHED" else 0},
            "data": job.results if status == "FINISHED" else [],
        }
        return Reply(200, payload)

    def _results(self, job: Job) -> list[dict[str, Any]]:
        out = []
        for c in job.contacts:
            last = str(c.get("last_name") or "").lower()
            if last in self.drop:
                continue
            phones = [{"number": n, "region": "US"} for n, _ in self.phones_of(last) or []]
            info: dict[str, Any] = {"phones": phones, "work_emails": [], "personal_emails": []}
            info["most_probable_phone"] = phones[0] if phones else None
            out.append(
                {
                    "input": {"first_name": c.get("first_name"), "last_name": c.get("last_name")},
                    "custom": c.get("custom"),
                    "contact_info": info,
                }
            )
        out.reverse()
        return out
