"""What the fake vendors share: the HTTP server (the fake upstream's, with a handler that
routes to the vendor), the population, scripted faults and the request log.

A fake vendor knows people by their last name (every adapter sends it, however the
vendor spells the field): ``people`` maps a lower-cased last name to the numbers the
vendor holds, each ``(number, line_type)`` (``line_type`` may be ``""``). A
``population`` callable answers for names not in ``people`` (the 1000-record waterfall).
Never imported by ``phone_core``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from phone_core.models import Person
from phone_core.sources.base import Lookup
from tests.fakes.upstream_http import FakeServer

Phones = list[tuple[str, str]]


@dataclass
class Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is (bad JSON, HTML)
    ctype: str = "application/json"


@dataclass
class Request:
    ts: float
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0


class VendorServer(FakeServer):
    vendor: FakeVendor


class VendorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: VendorServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        vendor = self.server.vendor
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(time.time(), method, self.path, headers, body)
        vendor._log_request(req)
        vendor._enter()
        try:
            reply = vendor.serve(req)
            if reply is None:  # a hung request: hold it, then drop the connection
                time.sleep(vendor.hang_sec)
                self.close_connection = True
                return
            data = reply.raw if reply.raw is not None else json.dumps(reply.payload).encode()
            req.status = reply.status
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True
        finally:
            vendor._leave()


class FakeVendor:
    """Base of the fake vendors; use as a context manager. Subclasses implement ``route``."""

    FAULTS: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        api_key: str = "k",
        people: Mapping[str, Phones] | None = None,
        population: Callable[[str], Phones | None] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.people: dict[str, Phones] = dict(people or {})
        self.population = population
        self.latency = latency
        self.hang_sec = 2.0
        self.lock = threading.Lock()
        self._script: deque[str] = deque()
        self._log: list[Request] = []
        self._server: VendorServer | None = None
        self._in_flight = 0
        self.max_in_flight = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeVendor:
        server = VendorServer(("127.0.0.1", 0), VendorHandler)
        server.vendor = self
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- behaviour ------------------------------------------------------------------------
    def script(self, *faults: str) -> None:
        """The next requests get these faults, in order (``ok`` for a normal answer)."""
        unknown = [f for f in faults if f not in (*self.FAULTS, "ok")]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {self.FAULTS}")
        with self.lock:
            self._script.extend(faults)

    def next_fault(self) -> str:
        with self.lock:
            return self._script.popleft() if self._script else "ok"

    def phones_of(self, last_name: object) -> Phones | None:
        key = str(last_name or "").strip().lower()
        if key in self.people:
            return self.people[key]
        return self.population(key) if self.population is not None else None

    def serve(self, req: Request) -> Reply | None:
        if self.latency > 0:
            time.sleep(self.latency)
        return self.route(req)

    def route(self, req: Request) -> Reply | None:
        raise NotImplementedError

    # -- the log --------------------------------------------------------------------------
    def _log_request(self, req: Request) -> None:
        with self.lock:
            self._log.append(req)

    def _enter(self) -> None:
        with self.lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self.lock:
            self._in_flight -= 1

    @property
    def requests(self) -> list[Request]:
        with self.lock:
            return list(self._log)

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path_prefix)
        )


def person(i: int, **over: str) -> Person:
    """A test person; its last name ``Lee<i>`` is how the fake vendors know it."""
    values = {
        "id": f"p{i}",
        "first_name": "Ann",
        "last_name": f"Lee{i}",
        "company_name": "Acme",
        "company_url": f"https://www.acme{i % 7}.com/about",
        "linkedin": f"ann-lee-{i}",
        "email": f"ann.lee{i}@acme{i % 7}.com",
    }
    values.update(over)
    return Person(**values)


def lookups(n: int, start: int = 0) -> list[Lookup]:
    out = []
    for i in range(start, start + n):
        p = person(i)
        out.append(Lookup(i, p, f"nd:ann|lee{i}|acme{i % 7}.com"))
    return out


def key_of(i: int) -> str:
    """The fake vendors' key for ``person(i)``."""
    return f"lee{i}"
