"""Sending one signed JSON POST to a URL a user gave, safely (the notifications' wire).

A webhook URL is typed by a user and fetched by the server, so it is checked like any
server-side fetch (SSRF): ``http`` or ``https`` only, no user name or password in it, and
by default every address its host resolves to must be a public one (loopback, private,
link-local, shared, multicast and reserved ranges are refused; ``allow_private`` lifts
this, e.g. ``PHONE_NOTIFY_ALLOW_PRIVATE`` in tests). The check is made again on every
delivery and the request goes to the very address checked (Host header and TLS name kept),
so a DNS answer that changes in between cannot steer it elsewhere. Redirects are not
followed, proxies from the environment are not used, the response body is never read, and
each attempt has a time limit.

The body is signed with HMAC-SHA256 under the user's secret, two ways:

- ``X-Phone-Timestamp: <unix seconds when sent>`` and ``X-Phone-Signature-256:
  sha256=<hex of HMAC(secret, "<timestamp>." + raw body)>``: the timestamp is signed with
  the body, so a receiver that refuses timestamps more than 5 minutes from its clock
  (``verify_timestamped``) cannot be fed an old delivery again (replay). Use this one.
- ``X-Phone-Signature: sha256=<hex of HMAC(secret, raw body)>``: the first scheme, kept
  for receivers set up before the timestamp existed.

Receivers recompute over the raw bytes, and drop a repeat of an ``X-Phone-Delivery`` id
(delivery is at least once). Nothing here logs a URL (a chat webhook URL is itself a
credential).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from phone_core.errors import InputError

MAX_URL_LEN = 2000
SIGNATURE_HEADER = "X-Phone-Signature"
SIGNATURE_256_HEADER = "X-Phone-Signature-256"  # over "<timestamp>." + body
TIMESTAMP_HEADER = "X-Phone-Timestamp"
REPLAY_TOLERANCE_SEC = 300
EVENT_HEADER = "X-Phone-Event"
DELIVERY_HEADER = "X-Phone-Delivery"
USER_AGENT = "phone-enrich-webhooks/1"
MAX_ADDRESSES = 3  # of a host's addresses, tried in turn when one cannot be reached

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def sign(secret: str, body: bytes) -> str:
    """The ``X-Phone-Signature`` value of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def sign_timestamped(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Phone-Signature-256`` value: HMAC over ``"<timestamp>." + body``."""
    signed = str(int(timestamp)).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def verify_timestamped(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float,
    tolerance: float = REPLAY_TOLERANCE_SEC,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(sign_timestamped(secret, ts, body), signature)


def signed_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Both signature headers and the timestamp of one delivery."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_256_HEADER: sign_timestamped(secret, timestamp, body),
        SIGNATURE_HEADER: sign(secret, body),
    }


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address is judged as IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class UnsafeUrl(InputError):
    """The URL is refused; the message says why, for the user who typed it."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code  # what the outbox records (no URL, no message)


def _parts(url: str) -> tuple[SplitResult, str, int]:
    if len(url) > MAX_URL_LEN:
        raise UnsafeUrl(f"The address is too long (at most {MAX_URL_LEN:,} characters).", "url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("This is not a valid web address.", "url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeUrl(
            "The address must start with https:// (or http://), like the webhook URL that "
            "Slack, Teams or Zapier gives you.",
            "scheme",
        )
    host = parts.hostname or ""
    if not host:
        raise UnsafeUrl("The address has no server name, e.g. https://hooks.slack.com/...", "url")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The address must not contain a user name or password.", "url")
    default = 443 if parts.scheme.lower() == "https" else 80
    return parts, host, port or default


def _literal(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return []


def _lookup(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addrs: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addrs:
            addrs.append(ip)
    return addrs


def resolve(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """The addresses of ``host``; refused when any is not public (unless allowed)."""
    addrs = _literal(host) or _lookup(host, port)
    if not addrs:
        raise UnsafeUrl(f"The server {host} could not be found.", "dns_failed")
    if not allow_private and not all(is_public(ip) for ip in addrs):
        raise UnsafeUrl(
            "This address points to a local or private network, which notifications may "
            "not be sent to. Use the public webhook URL of your chat or automation tool.",
            "private_address",
        )
    return addrs


def check_url(url: str, allow_private: bool) -> str:
    """The URL to save ("" stays "": notifications off), or ``UnsafeUrl`` saying why."""
    url = url.strip()
    if not url:
        return ""
    _, host, port = _parts(url)
    resolve(host, port, allow_private)
    return url


@dataclass(frozen=True)
class Delivery:
    """How one attempt went: ``status`` when the receiver answered, else ``error``."""

    status: int | None = None
    error: str | None = None  # an error type: timeout, connection_failed, private_address...

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def code(self) -> str:
        """What the outbox records as the last error."""
        return f"HTTP {self.status}" if self.status is not None else (self.error or "unknown")

    def describe(self, timeout: float) -> str:
        """In words, for the user who pressed 'Send a test notification'."""
        if self.ok:
            return f"Delivered: the receiver answered HTTP {self.status}."
        if self.status is not None:
            return f"Not delivered: the receiver answered HTTP {self.status}."
        return "Not delivered: " + {
            "timeout": f"the receiver did not answer within {timeout:g} seconds (timed out).",
            "connection_failed": "the receiver could not be reached (connection failed).",
            "dns_failed": "the server name could not be found.",
            "private_address": "the address points to a local or private network.",
            "scheme": "the address must start with https:// or http://.",
            "url": "the address is not valid.",
        }.get(self.error or "", f"the request failed ({self.error}).")


def _pinned(parts: SplitResult, ip: IPAddress) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool
) -> Delivery:
    """POST ``body`` once; never raises for network or receiver trouble. The addresses
    of the host are tried in turn while none can be connected to (nothing sent yet)."""
    try:
        parts, host, port = _parts(url)
        addrs = resolve(host, port, allow_private)
    except UnsafeUrl as exc:
        return Delivery(error=exc.code)
    netloc_host = f"[{host}]" if ":" in host else host
    sent = {
        **headers,
        "Host": f"{netloc_host}:{parts.port}" if parts.port else netloc_host,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    # Over https the certificate is checked against the host's name, not the address.
    extensions = {"sni_hostname": host} if parts.scheme.lower() == "https" else {}
    with httpx.Client(
        timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
    ) as client:
        result = Delivery(error="connection_failed")
        for ip in addrs[:MAX_ADDRESSES]:
            try:
                with client.stream(
                    "POST", _pinned(parts, ip), content=body, headers=sent, extensions=extensions
                ) as response:
                    return Delivery(status=response.status_code)  # the body is never read
            except httpx.ConnectTimeout:
                result = Delivery(error="timeout")
            except httpx.ConnectError:
                result = Delivery(error="connection_failed")
            except httpx.TimeoutException:
                return Delivery(error="timeout")
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                return Delivery(error="connection_failed")
            except httpx.HTTPError as exc:
                return Delivery(error=type(exc).__name__)
    return result
