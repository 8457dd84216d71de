"""Vendor sources as configured: the only module that writes ``vendor_settings``.

Each adapter (``sources.vendors.ALL_VENDORS`` and the Lantern-compatible one) has one row
once an admin saved it on the Sources page: enabled, position in the waterfall, prices,
rate limit, concurrency, base URL and API key (a Fernet token, see ``secretbox``; the key
is never read back out to a page, the API or a log). Every value resolves as

    environment (settings) > the Sources page (this table) > the adapter's default

Environment: ``PHONE_WATERFALL`` when set decides which sources run and in which order;
``PHONE_LANTERN_*`` the Lantern-compatible one's values; ``PHONE_VENDOR_<NAME>_<FIELD>``
any adapter's (see ``settings.VENDOR_ENV_FIELDS``). ``VendorView.from_env`` says which
values came from there, so the page can say why they cannot be changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import db, secretbox
from phone_core.credits import MAX_AMOUNT, Price
from phone_core.errors import InputError, NotFound
from phone_core.settings import Settings
from phone_core.sources import lantern_spec
from phone_core.sources.vendors import ALL_VENDORS, VendorConfig, VendorSpec

log = logging.getLogger(__name__)
_t = db.vendor_settings
DEFAULT_TIMEOUT_SEC = 10.0
MAX_RATE_PER_SEC = 10_000.0
MAX_CONCURRENCY = 1_000
DIRECTORY = "directory"


def specs() -> tuple[VendorSpec, ...]:
    """Every adapter, Lantern-compatible first, each name once."""
    out: dict[str, VendorSpec] = {lantern_spec.LANTERN.name: lantern_spec.LANTERN}
    for spec in ALL_VENDORS:
        out.setdefault(spec.name, spec)
    return tuple(out.values())


def spec_of(name: str) -> VendorSpec:
    for spec in specs():
        if spec.name == name:
            return spec
    raise NotFound(f"no source called {name!r}")


@dataclass(frozen=True)
class VendorView:
    """One adapter as the page and the CLI show it (no key, only whether one is set)."""

    name: str
    label: str
    shape: str
    docs_url: str
    enabled: bool
    position: int
    price: Price
    rate_per_sec: float
    concurrency: int
    timeout_sec: float
    base_url: str
    key_set: bool
    key_set_at: datetime | None
    from_env: frozenset[str]  # fields whose value comes from the environment
    problem: str  # why an enabled source cannot run ("" when it can)

    @property
    def usable(self) -> bool:
        return self.enabled and not self.problem


@dataclass(frozen=True)
class Resolved:
    view: VendorView
    config: VendorConfig = field(repr=False)


def _env_values(settings: Settings, name: str) -> dict[str, Any]:
    """The values the environment sets for ``name`` (only those it sets)."""
    out: dict[str, Any] = {}
    raw = dict(settings.vendor_values.get(name, {}))
    conv: dict[str, Callable[[str], Any]] = {
        "enabled": lambda v: str(v).strip().lower() in ("1", "true", "yes", "on"),
        "order": int,
        "lookup_cost": int,
        "found_cost": int,
        "failed_cost": int,
        "rate_per_sec": float,
        "concurrency": int,
        "timeout_sec": float,
        "base_url": str,
    }
    for key, value in raw.items():
        if key in conv:
            try:
                out[key] = conv[key](value)
            except ValueError:
                log.warning("PHONE_VENDOR_%s_%s is not valid: ignored", name.upper(), key.upper())
    if name in settings.vendor_keys:
        out["api_key"] = settings.vendor_keys[name].get_secret_value()
    if name == lantern_spec.LANTERN.name:
        s, given = settings, settings.model_fields_set
        pairs: dict[str, tuple[str, Any]] = {
            "lantern_enabled": ("enabled", s.lantern_enabled),
            "lantern_lookup_cost": ("lookup_cost", s.lantern_lookup_cost),
            "lantern_found_cost": ("found_cost", s.lantern_found_cost),
            "lantern_failed_cost": ("failed_cost", s.lantern_failed_cost),
            "lantern_rate_per_sec": ("rate_per_sec", s.lantern_rate_per_sec),
            "lantern_concurrency": ("concurrency", s.lantern_concurrency),
            "lantern_read_timeout_sec": ("timeout_sec", s.lantern_read_timeout_sec),
            "lantern_base_url": ("base_url", s.lantern_base_url),
            "lantern_api_key": (
                "api_key",
                s.lantern_api_key.get_secret_value() if s.lantern_api_key else None,
            ),
        }
        for setting, (key, value) in pairs.items():
            if setting in given and value is not None:
                out.setdefault(key, value)
    if "waterfall" in settings.model_fields_set:  # PHONE_WATERFALL decides on and order
        out["enabled"] = name in settings.waterfall and out.get("enabled", True)
        if name in settings.waterfall:
            out["order"] = settings.waterfall.index(name)
    return out


def _rows(conn: Connection) -> dict[str, Any]:
    return {r.name: r for r in conn.execute(sa.select(_t))}


def _pick(env: dict[str, Any], row: Any, key: str, column: str, default: Any) -> Any:
    if key in env:
        return env[key]
    value = getattr(row, column, None) if row is not None else None
    return default if value is None else value


def resolve(conn: Connection, settings: Settings) -> list[Resolved]:
    """Every adapter with its effective values, in waterfall order (disabled ones last)."""
    rows = _rows(conn)
    out: list[Resolved] = []
    for index, spec in enumerate(specs()):
        row = rows.get(spec.name)
        env = _env_values(settings, spec.name)
        default_on = spec.name == lantern_spec.LANTERN.name and "lantern" in settings.waterfall
        enabled = bool(_pick(env, row, "enabled", "enabled", default_on))
        position = int(_pick(env, row, "order", "position", 100 + index))
        dp = spec.default_price
        price = Price(
            spec.name,
            int(_pick(env, row, "lookup_cost", "lookup_cost", dp.lookup_cost)),
            int(_pick(env, row, "found_cost", "found_cost", dp.found_cost)),
            int(_pick(env, row, "failed_cost", "failed_cost", dp.failed_cost)),
        )
        rate = float(_pick(env, row, "rate_per_sec", "rate_per_sec", spec.default_rate_per_sec))
        conc = int(_pick(env, row, "concurrency", "concurrency", spec.default_concurrency))
        timeout = float(env.get("timeout_sec", DEFAULT_TIMEOUT_SEC))
        base_url = str(_pick(env, row, "base_url", "base_url", "") or "")
        key = env.get("api_key")
        key_set_at = row.key_set_at if row is not None else None
        if key is None and row is not None and row.api_key:
            key = secretbox.decrypt(settings, row.api_key)
            if key is None:
                log.warning("the stored API key of %s cannot be read: set it again", spec.name)
        problem = ""
        if key is None and spec.name not in lantern_spec.KEY_OPTIONAL:
            problem = (
                "the stored API key cannot be read (the secrets key changed): set it again"
                if row is not None and row.api_key
                else "no API key"
            )
        if not base_url and spec.name in lantern_spec.NEEDS_BASE_URL:
            problem = "no base URL"
        view = VendorView(
            name=spec.name,
            label=spec.label,
            shape=spec.shape,
            docs_url=spec.docs_url,
            enabled=enabled,
            position=position,
            price=price,
            rate_per_sec=rate if rate > 0 else spec.default_rate_per_sec,
            concurrency=max(1, conc),
            timeout_sec=timeout,
            base_url=base_url,
            key_set=bool(key),
            key_set_at=key_set_at,
            from_env=frozenset(env),
            problem=problem,
        )
        config = VendorConfig(
            name=spec.name,
            base_url=base_url or spec.default_base_url,  # "": the vendor's documented one
            api_key=key or "",
            price=price,
            rate_per_sec=view.rate_per_sec,
            concurrency=view.concurrency,
            timeout_sec=timeout,
            region=settings.default_region,
        )
        out.append(Resolved(view, config))
    out.sort(key=lambda r: (not r.view.enabled, r.view.position, r.view.name))
    return out


def waterfall_names(conn: Connection, settings: Settings) -> list[str]:
    """The sources new batches use by default, in order: the directory (when
    ``PHONE_WATERFALL`` has it; first, unless ``PHONE_WATERFALL`` orders it elsewhere),
    then every enabled vendor that can run, in the admin's order."""
    unknown = [n for n in settings.waterfall if n not in known_names()]
    if unknown:
        raise ValueError(f"unknown source in PHONE_WATERFALL: {', '.join(unknown)}")
    vendors = [r.view for r in resolve(conn, settings) if r.view.usable]
    names = [v.name for v in vendors]
    if DIRECTORY not in settings.waterfall:
        return names
    if "waterfall" in settings.model_fields_set:
        where = settings.waterfall.index(DIRECTORY)
        before = [v.name for v in vendors if v.position < where]
        return [*before, DIRECTORY, *[n for n in names if n not in before]]
    return [DIRECTORY, *names]


def views(conn: Connection, settings: Settings) -> list[VendorView]:
    return [r.view for r in resolve(conn, settings)]


def _check(value: float | None, what: str, low: float, high: float) -> None:
    if value is not None and not (low <= value <= high):
        raise InputError(f"{what} must be between {low:g} and {high:g}")


def save(
    conn: Connection,
    settings: Settings,
    name: str,
    *,
    by: str,
    enabled: bool | None = None,
    lookup_cost: int | None = None,
    found_cost: int | None = None,
    failed_cost: int | None = None,
    rate_per_sec: float | None = None,
    concurrency: int | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    clear_key: bool = False,
) -> None:
    """Change the given values of one adapter (None: unchanged). ``api_key`` is encrypted
    before it is stored; "" or None keeps the stored key, ``clear_key`` removes it."""
    spec = spec_of(name)
    for value, what in (
        (lookup_cost, "the lookup price"),
        (found_cost, "the found price"),
        (failed_cost, "the failed price"),
    ):
        _check(value, what, 0, MAX_AMOUNT)
    _check(rate_per_sec, "the rate limit (requests per second)", 0.01, MAX_RATE_PER_SEC)
    _check(concurrency, "the concurrency", 1, MAX_CONCURRENCY)
    values: dict[str, Any] = {
        k: v
        for k, v in {
            "enabled": enabled,
            "lookup_cost": lookup_cost,
            "found_cost": found_cost,
            "failed_cost": failed_cost,
            "rate_per_sec": rate_per_sec,
            "concurrency": concurrency,
        }.items()
        if v is not None
    }
    if base_url is not None:
        url = base_url.strip()
        if url and not url.lower().startswith(("http://", "https://")):
            raise InputError("the base URL must start with http:// or https://")
        if len(url) > 500:
            raise InputError("the base URL must be at most 500 characters")
        values["base_url"] = url
    key = (api_key or "").strip()
    if key:
        if len(key) > 4096 or any(ord(c) < 32 for c in key):
            raise InputError("that does not look like an API key")
        values["api_key"] = secretbox.encrypt(settings, key)
        values["key_set_at"] = db.utcnow()
    elif clear_key:
        values["api_key"] = ""
        values["key_set_at"] = None
    _upsert(conn, spec.name, values, by)
    log.info("source %s configured by %s (%s)", spec.name, by, ", ".join(sorted(values)) or "-")


def set_order(conn: Connection, names: Sequence[str], *, by: str) -> None:
    """Positions 0, 1, ... in the order given (other adapters keep theirs, after these)."""
    known = {s.name for s in specs()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown source(s): {', '.join(unknown)}")
    for pos, name in enumerate(dict.fromkeys(names)):
        _upsert(conn, name, {"position": pos}, by)
    log.info("source order set by %s: %s", by, ", ".join(names))


def _upsert(conn: Connection, name: str, values: dict[str, Any], by: str) -> None:
    now = db.utcnow()
    exists = conn.execute(sa.select(_t.c.name).where(_t.c.name == name)).first()
    if exists:
        conn.execute(
            sa.update(_t).where(_t.c.name == name).values(**values, updated_by=by, updated_at=now)
        )
        return
    names = [s.name for s in specs()]
    row = {
        "name": name,
        "enabled": False,
        "position": 100 + names.index(name),
        "base_url": "",
        "api_key": "",
        "updated_by": by,
        "updated_at": now,
        **values,
    }
    if "enabled" not in values and name == lantern_spec.LANTERN.name:
        row["enabled"] = True  # today's default: on once it has a base URL
    db.insert_ignore(conn, _t, row)
    conn.execute(sa.update(_t).where(_t.c.name == name).values(**values))


def known_names(extra: Iterable[str] = (DIRECTORY,)) -> list[str]:
    return [*extra, *(s.name for s in specs())]
