"""Shared bits of the vendor adapter tests: configs pointing at a fake, fast retries."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from phone_core.sources.vendor_base import VendorConfig, VendorSpec
from phone_core.sources.vendor_http import VendorHttp

T = TypeVar("T")


def config_for(spec: VendorSpec, url: str, **over: Any) -> VendorConfig:
    key = over.pop("api_key", "k")
    values: dict[str, Any] = {
        "base_url": url,
        "rate_per_sec": 500.0,
        "concurrency": 4,
        "timeout_sec": 0.5,
    }
    values.update(over)
    return spec.config(key, **values)


def fast(http: VendorHttp) -> VendorHttp:
    """Retries and breaker pauses short enough for tests."""
    http.backoff_base_sec = 0.01
    http.backoff_max_sec = 0.3
    http.max_attempts = 3
    http.breaker_pause_sec = 0.2
    http.reset()
    return http


def run(coro: Coroutine[Any, Any, T], *sources: Any) -> T:
    """Run ``coro`` on a fresh loop; close the sources' clients on that loop after."""

    async def main() -> T:
        try:
            return await coro
        finally:
            for src in sources:
                await src.http.aclose()

    return asyncio.run(main())
