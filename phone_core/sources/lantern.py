"""The Lantern-compatible HTTP source: ``POST {base_url}/v1/enrich/phone``, one record a call.

Per record: wait for a free in-process slot (``concurrency``), for the circuit breaker,
for the shared rate limiter (all runs and workers on the state DB), then send. Failures
end as a per-record ``status=error`` result, never as an exception:

- 429: wait ``retry_after`` (JSON body, else ``Retry-After``), push the shared limiter
  back by as much (the whole source slows down), retry; a ``retry_after`` longer than
  ``backoff_max_sec`` ends the record at once (no early retry against the vendor's word);
- 5xx, timeouts, connection errors: retry with exponential backoff + jitter;
- after ``max_attempts``: ``upstream_rate_limited`` / ``upstream_5xx`` /
  ``upstream_timeout`` / ``upstream_connection``, charged ``price.cost(found=False,
  failed=True)``;
- 401/403 and 402: ``upstream_auth`` / ``upstream_credits`` (fatal: the engine stops using
  the source for the run; this instance also stops sending for ``breaker_pause_sec``),
  not charged: the vendor did no work;
- other 4xx: ``upstream_rejected``; bad JSON, wrong content type, body over
  ``max_body_bytes`` (streamed, reading stops at the limit): ``upstream_bad_response``;
- circuit breaker: after ``breaker_failures`` consecutive failures calls pause for
  ``breaker_pause_sec``, then one probe goes; a record waits at most ``3 * pause`` (and not
  at all in an outage older than that), then ends as ``upstream_circuit_open`` (charged
  the failed cost only if one of its attempts was sent).

httpx errors become ``phone_core.errors`` here and nowhere else. One ``AsyncClient`` and
one semaphore per event loop (DBOS runs steps on its own loop). Logs carry record-id
prefixes (a hash), status codes and counts, never names, emails, phones or the key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Engine

from phone_core.errors import FatalSourceError, RetryableSourceError, SourceError
from phone_core.models import Detail, RecordStatus, SourceResult
from phone_core.ratelimit import RequestSpacer
from phone_core.settings import Settings
from phone_core.sources.base import Lookup
from phone_core.sources.lantern_wire import (
    NAME,
    PATH,
    LanternConfig,
    config_from_settings,
    parse_response,
    request_body,
)
from phone_core.sources.loop_clients import LoopClients
from phone_core.sources.resilience import CircuitBreaker, backoff_delay

log = logging.getLogger(__name__)

_RATE_LIMITED = Detail.UPSTREAM_RATE_LIMITED.value
_BAD_RESPONSE = Detail.UPSTREAM_BAD_RESPONSE.value


class _CircuitOpen(Exception):
    pass


@dataclass
class _Attempts:
    """Per-record bookkeeping across attempts."""

    sent: bool = False
    breaker_waited: float = 0.0


class LanternSource:
    name = NAME
    batch_size = 1  # the engine sends one record per call and commits each when final

    def __init__(
        self,
        config: LanternConfig,
        limiter: RequestSpacer,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.price = config.price
        self.concurrency = max(1, config.concurrency)
        self.limiter = limiter
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_pause_sec)
        self._url = config.base_url.rstrip("/") + PATH
        self._headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}
        self._timeout = httpx.Timeout(config.read_timeout_sec, connect=config.connect_timeout_sec)
        # An overall cap per attempt, so a server dripping bytes cannot hold a slot forever.
        self._deadline = config.connect_timeout_sec + 2 * config.read_timeout_sec
        self._breaker_wait = 3 * config.breaker_pause_sec
        self._lock = threading.Lock()
        self._clients = LoopClients(self.concurrency, self._timeout, transport)
        self._fatal: tuple[str, float] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        engine: Engine | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> LanternSource:
        """Build from ``lantern_*`` settings; with ``engine`` the rate limit is shared by
        every process on that state DB, without it only within this process."""
        config = config_from_settings(settings)
        limiter = RequestSpacer(NAME, settings.lantern_rate_per_sec, engine)
        return cls(config, limiter, transport)

    # -- per-loop resources ---------------------------------------------------------------
    async def _loop_state(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        return await self._clients.get()

    def reset(self) -> None:
        """Forget the breaker state and a remembered 401/402 (tests; an admin "retry now")."""
        self.breaker = CircuitBreaker(self.config.breaker_failures, self.config.breaker_pause_sec)
        self._fatal = None

    async def aclose(self) -> None:
        """Close this event loop's HTTP client (for callers that run their own short-lived
        loops, e.g. ``asyncio.run``: a client must close before its loop does)."""
        await self._clients.aclose()

    def close(self) -> None:
        """Close every loop's HTTP client, each on its own loop (called on shutdown, from
        any thread, before the loops stop). A client whose loop is gone is dropped."""
        self._clients.close()

    # -- the Source protocol --------------------------------------------------------------
    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        return list(await asyncio.gather(*(self._lookup_one(lk) for lk in lookups)))

    async def _lookup_one(self, lookup: Lookup) -> SourceResult:
        body = request_body(lookup)
        rid = lookup.record_id[:8]
        tries = _Attempts()
        cfg = self.config
        for attempt in range(1, cfg.max_attempts + 1):
            fatal = self._fatal_detail()
            if fatal:
                return self._error(fatal, charged=False)
            try:
                return await self._attempt(body, tries)
            except _CircuitOpen:
                log.warning("lantern %s: circuit open, giving up", rid)
                return self._error(Detail.UPSTREAM_CIRCUIT_OPEN.value, charged=tries.sent)
            except FatalSourceError as exc:
                if not self._fatal_detail():
                    log.error("lantern %s: %s (%s), stopping", rid, exc.detail, exc)
                    self._remember_fatal(exc.detail)
                return self._error(exc.detail, charged=False)
            except RetryableSourceError as exc:
                log.warning(
                    "lantern %s attempt %d/%d: %s (%s)",
                    rid,
                    attempt,
                    cfg.max_attempts,
                    exc.detail,
                    exc,
                )
                delay = exc.retry_after
                if delay is None:
                    delay = backoff_delay(attempt, cfg.backoff_base_sec, cfg.backoff_max_sec)
                if exc.detail == _RATE_LIMITED:
                    await self.limiter.penalize(min(delay, cfg.backoff_max_sec))
                if attempt == cfg.max_attempts or delay > cfg.backoff_max_sec:
                    # out of attempts, or told to wait longer than we hold a record for
                    return self._error(exc.detail, charged=True)
                await asyncio.sleep(delay)
            except SourceError as exc:
                log.warning("lantern %s: %s (%s)", rid, exc.detail, exc)
                return self._error(exc.detail, charged=True)
        raise AssertionError("unreachable: the last attempt always returns")

    async def _attempt(self, body: dict[str, str], tries: _Attempts) -> SourceResult:
        client, slots = await self._loop_state()
        async with slots:
            await self._admit(tries)
            try:
                await self.limiter.acquire()
            except BaseException:
                self.breaker.release()
                raise
            fatal = self._fatal_detail()
            if fatal:  # another record hit 401/402 while this one waited for its slot
                self.breaker.release()
                raise FatalSourceError(fatal, "stopped earlier")
            tries.sent = True
            try:
                result = await self._post(client, body)
            except RetryableSourceError as exc:
                if exc.detail == _RATE_LIMITED:
                    self.breaker.release()
                else:
                    self.breaker.failure()
                raise
            except SourceError as exc:
                if exc.detail == _BAD_RESPONSE:
                    self.breaker.failure()
                else:
                    self.breaker.success()
                raise
            except BaseException:
                self.breaker.release()
                raise
        self.breaker.success()
        return result

    async def _admit(self, tries: _Attempts) -> None:
        """Wait while the breaker is open: at most ``3 * pause`` per record, and not at all
        once the outage is older than that (then only the probes go out; the rest of the
        run drains quickly as ``upstream_circuit_open`` instead of queueing behind it)."""
        while True:
            wait = self.breaker.admit()
            if wait <= 0:
                return
            left = self._breaker_wait - tries.breaker_waited
            if left <= 0 or self.breaker.outage_sec() >= self._breaker_wait:
                raise _CircuitOpen
            step = min(wait, left)
            tries.breaker_waited += step
            await asyncio.sleep(step)

    async def _post(self, client: httpx.AsyncClient, body: dict[str, str]) -> SourceResult:
        cap = self.config.max_body_bytes
        try:
            async with asyncio.timeout(self._deadline):
                async with client.stream(
                    "POST", self._url, json=body, headers=self._headers
                ) as resp:
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > cap:
                        raise SourceError(_BAD_RESPONSE, "declared body over the limit")
                    data = bytearray()
                    async for chunk in resp.aiter_bytes():
                        data += chunk
                        if len(data) > cap:
                            raise SourceError(_BAD_RESPONSE, "body over the limit")
                    status, headers = resp.status_code, resp.headers
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise RetryableSourceError(Detail.UPSTREAM_TIMEOUT.value, type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise RetryableSourceError(
                Detail.UPSTREAM_CONNECTION.value, type(exc).__name__
            ) from None
        except httpx.HTTPError as exc:  # decoding errors, redirects, ...
            raise SourceError(_BAD_RESPONSE, type(exc).__name__) from None
        return parse_response(status, headers, bytes(data), self.price, self.config.region)

    # -- helpers --------------------------------------------------------------------------
    def _fatal_detail(self) -> str | None:
        fatal = self._fatal
        if fatal is None:
            return None
        if time.monotonic() >= fatal[1]:
            self._fatal = None
            return None
        return fatal[0]

    def _remember_fatal(self, detail: str) -> None:
        self._fatal = (detail, time.monotonic() + max(1.0, self.config.breaker_pause_sec))

    def _error(self, detail: str, *, charged: bool) -> SourceResult:
        return SourceResult(
            source=NAME,
            status=RecordStatus.ERROR,
            detail=detail,
            credits=self.price.cost(found=False, failed=True) if charged else 0,
        )
