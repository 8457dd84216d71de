"""What every vendor adapter shares: its configuration, its spec, and how a vendor's phones
become a ``SourceResult`` (through the one ranking rule of ``phone_core.ranking``).

``vendors.py`` lists the adapters (``ALL_VENDORS``) and re-exports ``VendorSpec`` and
``VendorConfig``; the adapters import them from here so that no import cycle forms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from phone_core.credits import Price
from phone_core.models import Detail, Person, RecordStatus, SourceResult
from phone_core.ranking import Candidate, best

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from phone_core.sources.base import Source

SINGLE = "single"  # one record per call, answered at once
BULK = "bulk"  # many records per call, answered at once
ASYNC = "async"  # many records per job: submit, then poll for the result
SHAPES = (SINGLE, BULK, ASYNC)


@dataclass(frozen=True)
class VendorConfig:
    """One configured vendor: where it is, the key, what it costs, how fast we may call it.

    ``timeout_sec`` bounds one HTTP call (connect + read); an async job's whole wait is
    bounded separately by the adapter (``max_wait_sec``). ``region`` is the default
    region for numbers a vendor gives without a country code.
    """

    name: str
    base_url: str
    api_key: str = field(repr=False)  # never in logs or reprs
    price: Price
    rate_per_sec: float
    concurrency: int
    timeout_sec: float
    region: str = "US"


@dataclass(frozen=True)
class VendorSpec:
    """A vendor adapter as the admin side sees it: defaults, and how to build its Source.

    ``build(config, engine)``: the engine is the state DB (shared rate limit across
    workers; the async job checkpoint table).
    """

    name: str
    label: str
    shape: str
    default_price: Price
    default_rate_per_sec: float
    default_concurrency: int
    docs_url: str
    build: Callable[[VendorConfig, Engine], Source] = field(repr=False, compare=False)
    default_base_url: str = ""

    def config(self, api_key: str, **overrides: Any) -> VendorConfig:
        """A config with this vendor's defaults (tests, headless installs)."""
        values: dict[str, Any] = {
            "name": self.name,
            "base_url": self.default_base_url,
            "api_key": api_key,
            "price": self.default_price,
            "rate_per_sec": self.default_rate_per_sec,
            "concurrency": self.default_concurrency,
            "timeout_sec": 20.0,
        }
        values.update(overrides)
        return VendorConfig(**values)


def split_name(person: Person) -> tuple[str, str, str]:
    """(first, last, full) from a person record."""
    first, last = person.first_name.strip(), person.last_name.strip()
    return first, last, " ".join(p for p in (first, last) if p)


def linkedin_url(value: str) -> str:
    """A LinkedIn profile URL from a URL or a bare profile id ("" when empty)."""
    value = value.strip()
    if not value:
        return ""
    if "linkedin.com" in value.lower():
        return value if value.lower().startswith("http") else f"https://{value}"
    return f"https://www.linkedin.com/in/{value.strip('/')}"


def domain_of(url: str) -> str:
    """``https://www.acme.com/about`` -> ``acme.com``."""
    text = url.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("/", 1)[0].split("?", 1)[0]
    return text[4:] if text.startswith("www.") else text


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 timestamp from a vendor (naive UTC, like the state DB), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def phones_result(
    source: str,
    candidates: Iterable[Candidate],
    price: Price,
    region: str,
    *,
    verified_at: datetime | None = None,
    raw: Mapping[str, Any] | None = None,
) -> SourceResult:
    """found (the best valid number, ranked), or not_found (``invalid_phone`` when every
    number given was invalid, ``no_match`` when there was none). ``verified_at`` is the
    vendor's own verification time when it gives one, else the time of this answer."""
    cands = [c for c in candidates if c.raw not in (None, "") and not isinstance(c.raw, bool)]
    top = best(cands, region)
    if top is not None:
        return SourceResult(
            source=source,
            phone=top.phone,
            status=RecordStatus.FOUND,
            credits=price.cost(found=True),
            raw=dict(raw or {}),
            line_type=top.line_type,
            verified_at=verified_at or now_utc(),
        )
    detail = Detail.INVALID_PHONE if cands else Detail.NO_MATCH
    return SourceResult(
        source=source,
        status=RecordStatus.NOT_FOUND,
        detail=detail.value,
        credits=price.cost(found=False),
        raw=dict(raw or {}),
    )


def not_found(source: str, price: Price) -> SourceResult:
    return SourceResult(
        source=source,
        status=RecordStatus.NOT_FOUND,
        detail=Detail.NO_MATCH.value,
        credits=price.cost(found=False),
    )


def error_result(source: str, detail: str, price: Price, *, charged: bool) -> SourceResult:
    """A per-record error; charged the failed cost only when the vendor saw the record."""
    return SourceResult(
        source=source,
        status=RecordStatus.ERROR,
        detail=detail,
        credits=price.cost(found=False, failed=True) if charged else 0,
    )
