"""A fake Lantern-compatible upstream over real HTTP on 127.0.0.1 (tests and benchmarks).

``POST /v1/enrich/phone`` answers from a deterministic population: a ``phones`` dict
(record_id -> phone or None) when given, else "found when sha256(record_id) % 100 <
hit_rate" with a phone derived from the same hash. Behaviour is settable at any time:

- ``latency``: seconds slept before answering (each connection has its own thread, so
  100 concurrent requests with 200 ms latency take ~200 ms, not 20 s);
- faults, picked per request in this order: ``fail_record(rid, *faults)`` (next calls for
  that record), ``script(*faults)`` (next requests, whatever the record),
  ``default_fault`` (every request), ``mix`` ({fault: probability}, seeded RNG);
- fault names: see ``FAULTS``; ``shape`` picks how a found phone is spelled.

Every request is logged (``requests``: arrival time, record_id, status, fault, body);
``max_in_flight`` is the highest number of requests being served at once.
Never imported by ``phone_core``.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.upstream_http import FakeServer

PATH = "/v1/enrich/phone"
FAULTS = (
    "ok",  # the population's answer
    "not_found",
    "invalid_phone",  # 200 with a phone that is not a valid number
    "429",  # retry_after in the JSON body (or only the Retry-After header: retry_after_header)
    "500",
    "503",
    "timeout",  # sleeps hang_sec (longer than the client's read timeout), then answers
    "reset",  # TCP RST without a response
    "bad_json",
    "wrong_type",  # 200 text/html
    "huge",  # a JSON body of huge_bytes with Content-Length
    "huge_chunked",  # the same without Content-Length (chunked): the client must stop reading
    "400",
    "401",
    "402",
    "403",
)
SHAPES = ("phone_number", "phone", "phones", "phones_obj")


def phone_for_hash(record_id: str) -> str:
    """A valid US number derived from the record id (the fake population's phone)."""
    h = int(hashlib.sha256(record_id.encode()).hexdigest(), 16)
    return f"+1212{200 + h % 800:03d}{(h // 1000) % 10000:04d}"


@dataclass
class Call:
    ts: float  # time.time() when the request arrived
    record_id: str
    fault: str
    body: dict[str, Any] = field(default_factory=dict)
    status: int = 0  # 0: no HTTP response (reset, client gone)
    done: float = 0.0


class FakeUpstream:
    """The fake server; use as a context manager (``with FakeUpstream() as fake``)."""

    def __init__(
        self,
        *,
        api_key: str = "k",
        latency: float = 0.0,
        hit_rate: int = 100,
        phones: dict[str, str | None] | None = None,
        shape: str = "phone_number",
        seed: int = 0,
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.hit_rate = hit_rate
        self.phones = phones
        self.shape = shape
        self.retry_after = 0.2
        self.retry_after_header = False
        self.hang_sec = 2.0
        self.huge_bytes = 1_000_000
        self.default_fault: str | None = None
        self.mix: dict[str, float] = {}
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._log: list[Call] = []
        self._script: deque[str] = deque()
        self._per_record: dict[str, deque[str]] = {}
        self._in_flight = 0
        self.max_in_flight = 0
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeUpstream:
        from tests.fakes.upstream_http import FakeServer, Handler

        server = FakeServer(("127.0.0.1", 0), Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- behaviour ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the log and every fault; keep population, latency and key."""
        with self._lock:
            self._log.clear()
            self._script.clear()
            self._per_record.clear()
            self.default_fault = None
            self.mix = {}
            self._rng = random.Random(self._seed)
            self.max_in_flight = 0

    def script(self, *faults: str) -> None:
        """The next requests (any record) get these faults, in order."""
        self._check(faults)
        with self._lock:
            self._script.extend(faults)

    def fail_record(self, record_id: str, *faults: str) -> None:
        """The next calls for ``record_id`` get these faults, in order."""
        self._check(faults)
        with self._lock:
            self._per_record.setdefault(record_id, deque()).extend(faults)

    def phone_for(self, record_id: str) -> str | None:
        if self.phones is not None:
            return self.phones.get(record_id)
        h = int(hashlib.sha256(record_id.encode()).hexdigest(), 16)
        return phone_for_hash(record_id) if h % 100 < self.hit_rate else None

    def payload(self, phone: str | None, record_id: str) -> dict[str, Any]:
        cached = sum(1 for c in self._log if c.record_id == record_id) > 1
        out: dict[str, Any] = {"record_id": record_id, "credits_consumed": 1 if phone else 0}
        out["cached"] = cached
        if phone is None:
            out["phone_number"] = None
        elif self.shape == "phone":
            out["phone"] = phone
        elif self.shape == "phones":
            out["phones"] = [phone]
        elif self.shape == "phones_obj":
            out["phones"] = [{"number": phone, "type": "mobile"}]
        else:
            out["phone_number"] = phone
        return out

    # -- the log --------------------------------------------------------------------------
    @property
    def requests(self) -> list[Call]:
        with self._lock:
            return list(self._log)

    def count(self, *, record_id: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for c in self.requests
            if (record_id is None or c.record_id == record_id)
            and (status is None or c.status == status)
        )

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _check(faults: Iterable[str]) -> None:
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {FAULTS}")

    def _arrive(self, record_id: str, body: dict[str, Any]) -> Call:
        with self._lock:
            queue = self._per_record.get(record_id)
            if queue:
                fault = queue.popleft()
            elif self._script:
                fault = self._script.popleft()
            elif self.default_fault:
                fault = self.default_fault
            else:
                fault = "ok"
                roll = self._rng.random()
                for name, share in self.mix.items():
                    if roll < share:
                        fault = name
                        break
                    roll -= share
            call = Call(ts=time.time(), record_id=record_id, fault=fault, body=body)
            self._log.append(call)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return call

    def _leave(self, call: Call) -> None:
        with self._lock:
            self._in_flight -= 1
            call.done = time.time()


def max_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most events in any half-open window ``[t, t + window)``."""
    ts = sorted(times)
    best = 0
    j = 0
    for i, start in enumerate(ts):
        j = max(j, i)
        while j < len(ts) and ts[j] < start + window:
            j += 1
        best = max(best, j - i)
    return best
