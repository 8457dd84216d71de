""" "Test connection": one harmless lookup at a vendor, as configured now, with a message
an admin can act on.

The adapter's own ``test_connection`` is used when it has one (it raises a
``phone_core.errors`` error with a clear message); otherwise one lookup of a made-up
person (Connection Test at example.com) that no vendor should know. Either way the vendor
is called once (plus the adapter's own retries) and its answer is only classified: nothing
is charged here and nothing is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import Engine

from phone_core import vendor_config
from phone_core.errors import InputError, PhoneError, redacted_trace
from phone_core.models import Detail, Person, RecordStatus
from phone_core.settings import Settings
from phone_core.sources import lantern_spec
from phone_core.sources.base import Lookup, Source

log = logging.getLogger(__name__)
TEST_PERSON = Person(
    id="connection-test",
    first_name="Connection",
    last_name="Test",
    company_name="Example",
    company_url="example.com",
)
MESSAGES = {
    Detail.UPSTREAM_AUTH.value: "The vendor refused the API key (HTTP 401/403): check the key.",
    Detail.UPSTREAM_CREDITS.value: "The vendor says this account has no credits left (HTTP 402).",
    Detail.UPSTREAM_CONNECTION.value: "Could not connect to the vendor: check the base URL.",
    Detail.UPSTREAM_TIMEOUT.value: "The vendor did not answer in time: try again later.",
    Detail.UPSTREAM_5XX.value: "The vendor answered with a server error (5xx): try again later.",
    Detail.UPSTREAM_RATE_LIMITED.value: (
        "The vendor is rate limiting this key (HTTP 429): wait a moment and test again."
    ),
    Detail.UPSTREAM_REJECTED.value: "The vendor rejected the test request (HTTP 4xx).",
    Detail.UPSTREAM_BAD_RESPONSE.value: (
        "The vendor's answer is not what its API documents: is the base URL right?"
    ),
    Detail.UPSTREAM_CIRCUIT_OPEN.value: "The vendor kept failing: try again later.",
}


def build(settings: Settings, engine: Engine, name: str) -> Source:
    """The source of ``name`` as configured now, enabled or not (``InputError`` when it
    lacks a key or base URL)."""
    spec = vendor_config.spec_of(name)  # NotFound for an unknown name
    with engine.connect() as conn:
        resolved = {r.view.name: r for r in vendor_config.resolve(conn, settings)}
    found = resolved[spec.name]
    if found.view.problem:
        raise InputError(f"{found.view.label}: {found.view.problem}; save it first")
    if name == lantern_spec.LANTERN.name:
        return lantern_spec.build_with(settings)(found.config, engine)
    return spec.build(found.config, engine)


async def _probe(src: Source) -> tuple[bool, str]:
    try:
        checker: Any = getattr(src, "test_connection", None)
        if checker is not None:
            await checker()
            return True, "Connected: the vendor accepted the key."
        res = (await src.lookup_many([Lookup(0, TEST_PERSON, "connection-test")]))[0]
    finally:
        aclose: Any = getattr(src, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
    if res.status == RecordStatus.ERROR:
        return False, MESSAGES.get(res.detail, f"The vendor call failed ({res.detail}).")
    found = "it returned a phone" if res.status == RecordStatus.FOUND else "no phone"
    return True, f"Connected: the vendor answered the test lookup ({found} for the test person)."


def test_connection(settings: Settings, engine: Engine, name: str) -> tuple[bool, str]:
    """(worked, message). Never raises for a vendor's failure; ``PhoneError`` for a source
    that cannot be built (no key, no base URL, unknown name)."""
    src = build(settings, engine, name)
    try:
        return asyncio.run(_probe(src))
    except PhoneError as exc:  # the adapter's test_connection: its message is for people
        return False, str(exc)
    except Exception as exc:
        log.warning("test connection of %s failed: %s", name, redacted_trace(exc))
        return False, f"The test failed unexpectedly ({type(exc).__name__})."
    finally:
        src.close()
