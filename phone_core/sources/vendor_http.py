"""One HTTP call to a vendor, with the policy every HTTP source follows.

Built on the same pieces as the Lantern source (``resilience`` backoff and circuit
breaker, the shared ``RequestSpacer`` on the state DB, ``lantern_wire.parse_retry_after``):

- each attempt waits for the breaker, then for the shared rate limiter (every worker on
  the state DB counts against the vendor's rate), then sends;
- the vendor's ``check(status, headers, payload)`` turns its error style into
  ``phone_core.errors``: ``RetryableSourceError`` (429 with its wait, 5xx), ``Fatal...``
  (bad key, out of credits: remembered, nothing more is sent for ``breaker_pause_sec``),
  ``SourceError`` (the vendor refused this call);
- 429: the whole vendor slows down (the limiter is pushed back by the wait) and the call
  is retried; 5xx, timeouts and resets are retried with backoff + jitter, but only for
  calls that are safe to repeat (``idempotent``): a call that creates a paid job is
  retried only when it surely never arrived (connection refused, 429), so a vendor is
  never asked to do (and bill) the same work twice;
- after the last attempt a ``VendorCallError`` says whether anything reached the vendor
  (``sent``), which decides whether the records are charged the failed cost.

httpx errors become ``phone_core.errors`` here. Logs carry the vendor, status codes and
counts, never the key or anything about a person.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from phone_core.errors import FatalSourceError, RetryableSourceError, SourceError
from phone_core.models import Detail
from phone_core.ratelimit import RequestSpacer
from phone_core.sources.lantern_wire import parse_retry_after
from phone_core.sources.loop_clients import LoopClients
from phone_core.sources.resilience import CircuitBreaker, backoff_delay
from phone_core.sources.vendor_base import VendorConfig

log = logging.getLogger(__name__)

Check = Callable[[int, Mapping[str, str], Any], None]

_RATE_LIMITED = Detail.UPSTREAM_RATE_LIMITED.value
_BAD_RESPONSE = Detail.UPSTREAM_BAD_RESPONSE.value


class VendorCallError(SourceError):
    """A call that failed for good; ``sent``: whether any attempt reached the vendor."""

    def __init__(self, detail: str, message: str = "", *, sent: bool) -> None:
        self.sent = sent
        super().__init__(detail, message)


def json_payload(body: bytes) -> Any:
    """The JSON value of a body, or None when it is not JSON."""
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def retry_after_of(headers: Mapping[str, str], payload: Any, *keys: str) -> float | None:
    """A wait from the JSON body's ``keys`` (first found), else the Retry-After header."""
    if isinstance(payload, Mapping):
        for key in keys:
            value = parse_retry_after(payload.get(key))
            if value is not None:
                return value
    return parse_retry_after(headers.get("retry-after"))


def standard_check(status: int, headers: Mapping[str, str], payload: Any, code: str = "") -> None:
    """The common HTTP meaning of a status: 2xx fine, 429 and 5xx retried (429 after its
    Retry-After), 401/403 and 402 stop the source, anything else rejects the record.
    A vendor's ``check`` handles its own codes first, then calls this; ``code`` (the
    vendor's error code, never a message) goes into the logged reason."""
    if 200 <= status < 300:
        return
    if status == 429:
        raise RetryableSourceError(
            _RATE_LIMITED, "HTTP 429", retry_after=retry_after_of(headers, payload)
        )
    if status >= 500:
        raise RetryableSourceError(Detail.UPSTREAM_5XX.value, f"HTTP {status}")
    reason = f"HTTP {status} {code}".strip()
    if status in (401, 403):
        raise FatalSourceError(Detail.UPSTREAM_AUTH.value, reason)
    if status == 402:
        raise FatalSourceError(Detail.UPSTREAM_CREDITS.value, reason)
    raise SourceError(Detail.UPSTREAM_REJECTED.value, reason)


class NoMatch(Exception):
    """A non-2xx answer that is a verdict about the record (e.g. a 400 ``NO_MATCH``), not
    a failure: raised by a vendor's ``check``, passed through to the adapter."""

    def __init__(self, detail: str = Detail.NO_MATCH.value) -> None:
        self.detail = detail
        super().__init__(detail)


class _NotSent(RetryableSourceError):
    """The request never reached the vendor (connection refused): always safe to retry."""


class HttpClientOwner:
    """The clients of a source that calls its vendor through ``self.http``."""

    http: VendorHttp

    async def aclose(self) -> None:
        """Close this event loop's HTTP client (the inline queue runs each run on a loop
        of its own: ``inline.close_loop_clients``)."""
        await self.http.aclose()

    def close(self) -> None:
        self.http.close()

    async def free_call(self, method: str, path: str, body: Any = None, *, refused: str) -> None:
        """The "test connection" call: once, no retry, no rate-limit wait; a vendor's
        error as its ``SourceError``, a refusal of the call itself as ``refused``."""
        try:
            await self.http.request(method, path, body, limited=False, attempts=1)
        except NoMatch as miss:
            raise SourceError(miss.detail, refused) from None
        finally:
            self.http.reset()


class VendorHttp:
    """HTTP calls to one vendor. One ``AsyncClient`` and semaphore per event loop."""

    max_attempts = 4
    backoff_base_sec = 0.5
    backoff_max_sec = 20.0
    breaker_failures = 8
    breaker_pause_sec = 10.0
    max_body_bytes = 4 * 1024 * 1024

    def __init__(
        self,
        config: VendorConfig,
        headers: Mapping[str, str],
        check: Check,
        engine: Engine | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.concurrency = max(1, config.concurrency)
        self.limiter = RequestSpacer(config.name, config.rate_per_sec, engine)
        self.breaker = CircuitBreaker(self.breaker_failures, self.breaker_pause_sec)
        self._check = check
        self._base = config.base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        self._timeout = httpx.Timeout(config.timeout_sec, connect=min(config.timeout_sec, 10.0))
        self._lock = threading.Lock()
        self._clients = LoopClients(self.concurrency, self._timeout, transport)
        self._fatal: tuple[str, float] | None = None

    # -- per-loop resources ---------------------------------------------------------------
    async def _loop_state(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        return await self._clients.get()

    async def aclose(self) -> None:
        await self._clients.aclose()

    def close(self) -> None:
        self._clients.close()

    # -- fatal memory ---------------------------------------------------------------------
    def fatal_detail(self) -> str | None:
        with self._lock:
            if self._fatal is None:
                return None
            detail, since = self._fatal
            if time.monotonic() - since > self.breaker_pause_sec:
                self._fatal = None
                return None
            return detail

    def _remember_fatal(self, detail: str) -> None:
        with self._lock:
            if self._fatal is None:
                log.error("%s: %s, stopping for %.0fs", self.name, detail, self.breaker_pause_sec)
            self._fatal = (detail, time.monotonic())

    def reset(self) -> None:
        self.breaker = CircuitBreaker(self.breaker_failures, self.breaker_pause_sec)
        with self._lock:
            self._fatal = None

    # -- the call -------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool = True,
        limited: bool = True,
        attempts: int | None = None,
    ) -> Any:
        """The JSON payload of a 2xx answer, or raise ``FatalSourceError`` /
        ``VendorCallError``. ``limited=False`` skips the rate limiter and ``attempts``
        caps the tries (a connection test: one call, at once)."""
        client, slots = await self._loop_state()
        sent = False
        breaker_waited = 0.0
        tries = max(1, attempts or self.max_attempts)
        for attempt in range(1, tries + 1):
            fatal = self.fatal_detail()
            if fatal:
                raise FatalSourceError(fatal, "stopped earlier")
            async with slots:
                breaker_waited = await self._admit(breaker_waited, sent)
                try:
                    if limited:
                        await self.limiter.acquire()
                    status, headers, payload = await self._send(client, method, path, body)
                    sent = True
                    self._check(status, headers, payload)
                except _NotSent as exc:
                    self.breaker.failure()
                    error: RetryableSourceError = exc
                except RetryableSourceError as exc:
                    sent = True
                    if exc.detail == _RATE_LIMITED:
                        self.breaker.release()
                    else:
                        self.breaker.failure()
                    error = exc
                except NoMatch:
                    self.breaker.success()
                    raise
                except FatalSourceError as exc:
                    self.breaker.success()
                    self._remember_fatal(exc.detail)
                    raise
                except SourceError as exc:
                    if exc.detail == _BAD_RESPONSE:
                        self.breaker.failure()
                    else:
                        self.breaker.success()
                    raise VendorCallError(exc.detail, str(exc), sent=True) from None
                except BaseException:
                    self.breaker.release()
                    raise
                else:
                    self.breaker.success()
                    return payload
            log.warning("%s %s attempt %d/%d: %s", self.name, method, attempt, tries, error.detail)
            safe = idempotent or isinstance(error, _NotSent) or error.detail == _RATE_LIMITED
            delay = error.retry_after
            if delay is None:
                delay = backoff_delay(attempt, self.backoff_base_sec, self.backoff_max_sec)
            if error.detail == _RATE_LIMITED:
                await self.limiter.penalize(min(delay, self.backoff_max_sec))
            if not safe or attempt == tries or delay > self.backoff_max_sec:
                raise VendorCallError(error.detail, str(error), sent=sent)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt always raises or returns")

    async def _admit(self, waited: float, sent: bool) -> float:
        limit = 3 * self.breaker_pause_sec
        while True:
            wait = self.breaker.admit()
            if wait <= 0:
                return waited
            if waited >= limit or self.breaker.outage_sec() >= limit:
                raise VendorCallError(Detail.UPSTREAM_CIRCUIT_OPEN.value, "circuit open", sent=sent)
            step = min(wait, limit - waited)
            waited += step
            await asyncio.sleep(step)

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, body: Any
    ) -> tuple[int, Mapping[str, str], Any]:
        cap = self.max_body_bytes
        url = self._base + path
        deadline = 2 * self.config.timeout_sec + 10.0
        try:
            async with asyncio.timeout(deadline):
                async with client.stream(method, url, json=body, headers=self._headers) as resp:
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > cap:
                        raise SourceError(_BAD_RESPONSE, "declared body over the limit")
                    data = bytearray()
                    async for chunk in resp.aiter_bytes():
                        data += chunk
                        if len(data) > cap:
                            raise SourceError(_BAD_RESPONSE, "body over the limit")
                    status, headers = resp.status_code, resp.headers
        except httpx.ConnectError as exc:
            raise _NotSent(Detail.UPSTREAM_CONNECTION.value, type(exc).__name__) from None
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise RetryableSourceError(Detail.UPSTREAM_TIMEOUT.value, type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise RetryableSourceError(
                Detail.UPSTREAM_CONNECTION.value, type(exc).__name__
            ) from None
        except httpx.HTTPError as exc:
            raise SourceError(_BAD_RESPONSE, type(exc).__name__) from None
        payload = json_payload(bytes(data))
        if 200 <= status < 300:
            ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                raise SourceError(_BAD_RESPONSE, "not a JSON content type")
            if payload is None:
                raise SourceError(_BAD_RESPONSE, "body is not JSON")
        return status, headers, payload
