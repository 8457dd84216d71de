"""Every vendor adapter this product ships, for the admin side to configure and build.

Each adapter module ``phone_core/sources/<vendor>.py`` exposes ``VENDOR``, a
``VendorSpec``; ``ALL_VENDORS`` lists them. The Lantern-compatible source is configured
from settings and wrapped by the registry separately.

    spec = by_name("prospeo")
    source = spec.build(spec.config(api_key, base_url=...), engine)
    await probe(spec, config, engine)       # the "test connection" button

Each built source has ``async def test_connection() -> None``: one harmless call (the
vendor's account/credits endpoint: no person is looked up, nothing is billed) that
raises a ``phone_core.errors.SourceError`` whose ``detail`` says what is wrong
(``upstream_auth``, ``upstream_credits``, ``upstream_connection``...); ``probe`` turns
that into a sentence for the page.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Engine

from phone_core.errors import SourceError
from phone_core.sources import fullenrich, lusha, prospeo
from phone_core.sources.vendor_base import SHAPES, VendorConfig, VendorSpec

ALL_VENDORS: tuple[VendorSpec, ...] = (prospeo.VENDOR, lusha.VENDOR, fullenrich.VENDOR)

_MESSAGES = {
    "upstream_auth": "the vendor refused the API key",
    "upstream_credits": "the vendor account is out of credits",
    "upstream_connection": "the vendor could not be reached",
    "upstream_timeout": "the vendor did not answer in time",
    "upstream_5xx": "the vendor had a server error",
    "upstream_rate_limited": "the vendor is rate limiting this key; try again in a minute",
    "upstream_circuit_open": "the vendor failed repeatedly; calls are paused",
    "upstream_bad_response": "the vendor answered something that is not its API",
    "upstream_rejected": "the vendor refused the call",
}


class _Testable(Protocol):
    async def test_connection(self) -> None: ...

    def close(self) -> None: ...


def by_name(name: str) -> VendorSpec:
    for spec in ALL_VENDORS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def describe_error(exc: SourceError) -> str:
    """A short sentence for a failed connection test (no key, no person data)."""
    return _MESSAGES.get(exc.detail, f"the call failed ({exc.detail})")


async def probe(spec: VendorSpec, config: VendorConfig, engine: Engine) -> str:
    """Build the source, make its one harmless call, close it: "" when fine, else why not."""
    source = spec.build(config, engine)
    try:
        tester: _Testable = source  # type: ignore[assignment]
        await tester.test_connection()
    except SourceError as exc:
        return describe_error(exc)
    finally:
        aclose = getattr(getattr(source, "http", None), "aclose", None)
        if aclose is not None:
            await aclose()
        source.close()
    return ""


assert all(spec.shape in SHAPES for spec in ALL_VENDORS)
assert len({spec.name for spec in ALL_VENDORS}) == len(ALL_VENDORS)

__all__ = ["ALL_VENDORS", "VendorConfig", "VendorSpec", "by_name", "describe_error", "probe"]
