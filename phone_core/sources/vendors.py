"""The vendor adapters this install knows: what each is, and how to build its ``Source``.

``VendorSpec`` describes an adapter (its name, how it answers, its default price, rate and
concurrency, where its API documentation is) and builds the source from a ``VendorConfig``:
the values an admin chose (``phone_core.vendor_config``) or the environment set.
``ALL_VENDORS`` lists the adapters in the order they are shown; the Lantern-compatible one
is described in ``lantern_spec`` (see ``registry_specs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.engine import Engine

from phone_core.credits import Price
from phone_core.sources.base import Source

Shape = Literal["single", "bulk", "async"]


@dataclass(frozen=True)
class VendorConfig:
    """One vendor as configured. ``base_url`` "" means the adapter's documented default."""

    name: str
    base_url: str
    api_key: str = field(repr=False)  # never in logs or reprs
    price: Price
    rate_per_sec: float
    concurrency: int
    timeout_sec: float


@dataclass(frozen=True)
class VendorSpec:
    name: str
    label: str
    shape: Shape
    default_price: Price
    default_rate_per_sec: float
    default_concurrency: int
    docs_url: str
    build: Callable[[VendorConfig, Engine], Source] = field(repr=False, compare=False)


ALL_VENDORS: tuple[VendorSpec, ...] = ()
