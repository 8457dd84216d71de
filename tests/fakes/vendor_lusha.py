"""A fake Lusha Person API v2 bulk endpoint (``POST /v2/person``, ``GET /account/usage``).

Wire format as documented: ``api_key`` header; ``{"contacts": [{"contactId", "fullName",
"email", "linkedinUrl", "companies"}], "metadata": {...}}`` in, ``{"contacts":
{"<contactId>": {...}}, "companies": {}}`` out; a contact's value is ``{"id", "data":
{"phoneNumbers": [{"number", "phoneType", "doNotCall"}]}}`` or ``{"id", "error": {...}}``.
Errors are plain ``{"message"}`` bodies: 400, 401, 403 (account not active), 429 (no
Retry-After), 5xx. Bulk quirks, settable: ``reorder`` (answer keys reversed),
``as_list`` (contacts as a list with ``contactId``), ``drop`` (last names left out of the
answer), ``errors`` (last name -> error code), ``stranger`` (an extra unknown contactId),
``dnc`` (numbers flagged Do Not Call).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.vendor_base import FakeVendor, Reply, Request


def _msg(status: int, message: str) -> Reply:
    return Reply(status, {"statusCode": status, "message": message})


class FakeLusha(FakeVendor):
    FAULTS = ("429", "500", "503", "400", "402", "403", "bad_json", "timeout")

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reorder = False
        self.as_list = False
        self.drop: set[str] = set()
        self.errors: dict[str, str] = {}
        self.stranger = False
        self.dnc: set[str] = set()
        self.contacts_billed = 0
        self.batch_sizes: list[int] = []

    def route(self, req: Request) -> Reply | None:
        if req.headers.get("api_key") != self.api_key:
            return _msg(401, "Invalid API key")
        if req.method == "GET" and req.path == "/account/usage":
            return Reply(200, {"usage": {"used": 10, "total": 1000}})
        if req.method != "POST" or req.path != "/v2/person":
            return _msg(404, "Not found")
        fault = self.next_fault()
        if fault in ("429",):
            return _msg(429, "Too many requests")
        if fault in ("500", "503", "400", "402", "403"):
            return _msg(int(fault), f"fake {fault}")
        if fault == "bad_json":
            return Reply(200, raw=b'{"contacts": {"0": ')
        if fault == "timeout":
            return None
        body = req.body if isinstance(req.body, dict) else {}
        contacts = body.get("contacts") if isinstance(body.get("contacts"), list) else []
        if not contacts or len(contacts) > 100:
            return _msg(400, "contacts must hold 1 to 100 items")
        with self.lock:
            self.batch_sizes.append(len(contacts))
        answer: list[tuple[str, dict[str, Any]]] = []
        for c in contacts:
            cid = str(c.get("contactId"))
            last = str(c.get("fullName") or "").split(" ")[-1].lower()
            if last in self.drop:
                continue
            if last in self.errors:
                code = self.errors[last]
                answer.append((cid, {"id": cid, "error": {"code": code, "message": code}}))
                continue
            phones = self.phones_of(last)
            if not phones:
                err = {"code": 404, "name": "NOT_FOUND", "message": "Contact not found"}
                answer.append((cid, {"id": cid, "error": err}))
                continue
            with self.lock:
                self.contacts_billed += 1
            numbers = [
                {"number": n, "phoneType": t or "phone", "doNotCall": n in self.dnc}
                for n, t in phones
            ]
            data = {"firstName": "Ann", "phoneNumbers": numbers, "emailAddresses": []}
            answer.append((cid, {"id": cid, "isCreditCharged": True, "data": data}))
        if self.stranger:
            answer.append(
                ("999", {"id": "999", "data": {"phoneNumbers": [{"number": "+12125550199"}]}})
            )
        if self.reorder:
            answer.reverse()
        if self.as_list:
            out: Any = [{"contactId": cid, **value} for cid, value in answer]
        else:
            out = dict(answer)
        return Reply(200, {"contacts": out, "companies": {}})
