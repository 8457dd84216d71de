"""The Lantern-compatible source as a vendor adapter (``VendorSpec``), beside the others.

Its wire format is this product's own ``POST /v1/enrich/phone`` (``lantern_wire``), so the
base URL may point at another install of this product. It has no default base URL: it is
usable once one is set (settings ``PHONE_LANTERN_BASE_URL`` or the Sources page).
``build_with`` keeps the ``lantern_*`` settings the page does not show (attempts, backoff,
circuit breaker, body limit, region) while taking base URL, key, price, rate, concurrency
and timeout from the ``VendorConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.engine import Engine

from phone_core.credits import Price
from phone_core.ratelimit import RequestSpacer
from phone_core.settings import Settings
from phone_core.sources.base import Source
from phone_core.sources.lantern_wire import NAME, LanternConfig
from phone_core.sources.vendors import VendorConfig, VendorSpec

DOCS_URL = 'README.md, section "Sources": POST /v1/enrich/phone of this product'


def _config(cfg: VendorConfig, base: LanternConfig | None) -> LanternConfig:
    if base is None:
        base = LanternConfig(base_url=cfg.base_url, api_key=cfg.api_key)
    return replace(
        base,
        base_url=cfg.base_url,
        api_key=cfg.api_key,
        price=Price(NAME, cfg.price.lookup_cost, cfg.price.found_cost, cfg.price.failed_cost),
        concurrency=max(1, cfg.concurrency),
        read_timeout_sec=cfg.timeout_sec,
    )


def build(cfg: VendorConfig, engine: Engine) -> Source:
    """The source from a ``VendorConfig`` alone (default attempts, backoff, breaker)."""
    from phone_core.sources.lantern import LanternSource

    return LanternSource(_config(cfg, None), RequestSpacer(NAME, cfg.rate_per_sec, engine))


def build_with(settings: Settings) -> Callable[[VendorConfig, Engine], Source]:
    """``build``, keeping the ``lantern_*`` settings the ``VendorConfig`` does not carry."""
    from phone_core.sources.lantern import LanternSource

    def make(cfg: VendorConfig, engine: Engine) -> Source:
        base = LanternConfig(
            base_url=cfg.base_url,
            api_key=cfg.api_key,
            region=settings.default_region,
            connect_timeout_sec=settings.lantern_connect_timeout_sec,
            max_attempts=settings.lantern_max_attempts,
            backoff_base_sec=settings.lantern_backoff_base_sec,
            backoff_max_sec=settings.lantern_backoff_max_sec,
            breaker_failures=settings.lantern_breaker_failures,
            breaker_pause_sec=settings.lantern_breaker_pause_sec,
            max_body_bytes=settings.lantern_max_body_bytes,
        )
        return LanternSource(_config(cfg, base), RequestSpacer(NAME, cfg.rate_per_sec, engine))

    return make


LANTERN = VendorSpec(
    name=NAME,
    label="Lantern-compatible upstream",
    shape="single",
    default_price=Price(NAME, 0, 1, 0),
    default_rate_per_sec=50.0,
    default_concurrency=10,
    docs_url=DOCS_URL,
    build=build,
)
NEEDS_BASE_URL = frozenset({NAME})  # adapters without a default base URL
KEY_OPTIONAL = frozenset({NAME})  # an upstream of this product may be open (no key)
