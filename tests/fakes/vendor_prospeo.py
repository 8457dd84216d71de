"""A fake Prospeo (``POST /enrich-person``, ``POST /account-info``) over real HTTP.

Speaks the documented wire format: ``X-KEY`` header, JSON bodies that always carry
``"error": true|false``, errors as 400 + ``error_code`` (``NO_MATCH``,
``INSUFFICIENT_CREDITS``, ``INVALID_DATAPOINTS``), 401 ``INVALID_API_KEY``, 429
``RATE_LIMITED`` with the ``x-minute-*`` headers (no Retry-After, as documented).
A person is found when the fake holds a mobile for them (``only_verified_mobile``); only
the first number it holds is returned, as Prospeo returns one mobile.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.vendor_base import FakeVendor, Reply, Request


def _err(status: int, code: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"error": True, "error_code": code}, headers or {})


class FakeProspeo(FakeVendor):
    FAULTS = (
        "429",
        "500",
        "no_credits",
        "invalid_datapoints",
        "bad_json",
        "html",
        "timeout",
        "unrevealed",
    )

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.credits_used = 0

    def route(self, req: Request) -> Reply | None:
        if req.method != "POST":
            return _err(405, "METHOD_NOT_ALLOWED")
        if req.headers.get("x-key") != self.api_key:
            return _err(401, "INVALID_API_KEY")
        if req.path == "/account-info":
            return Reply(200, {"error": False, "response": {"remaining_credits": 990}})
        if req.path != "/enrich-person":
            return _err(404, "NOT_FOUND")
        fault = self.next_fault()
        if fault == "429":
            return _err(
                429, "RATE_LIMITED", {"x-minute-request-left": "0", "x-minute-reset-seconds": "1"}
            )
        if fault == "500":
            return _err(500, "INTERNAL_ERROR")
        if fault == "no_credits":
            return _err(400, "INSUFFICIENT_CREDITS")
        if fault == "invalid_datapoints":
            return _err(400, "INVALID_DATAPOINTS")
        if fault == "bad_json":
            return Reply(200, raw=b'{"error": false, "person": {"mob')
        if fault == "html":
            return Reply(200, raw=b"<html>maintenance</html>", ctype="text/html")
        if fault == "timeout":
            return None
        body = req.body if isinstance(req.body, dict) else {}
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        phones = self.phones_of(data.get("last_name"))
        if not phones:
            return _err(400, "NO_MATCH")
        number = phones[0][0]
        revealed = fault != "unrevealed"
        if revealed:
            with self.lock:
                self.credits_used += 10
        mobile = {
            "status": "VERIFIED",
            "revealed": revealed,
            "mobile": number if revealed else None,
            "mobile_international": number if revealed else None,
            "mobile_country_code": "US",
        }
        person = {
            "person_id": "aaaacd817619fba3d254cd64",
            "first_name": data.get("first_name"),
            "last_name": data.get("last_name"),
            "mobile": mobile,
        }
        return Reply(200, {"error": False, "free_enrichment": False, "person": person})
