"""The phone cache is shared per the PHONE_CACHE_SCOPE setting (issue 9, item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phone_core import service
from phone_core.credits import Price
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from tests.conftest import drain, grant, make_settings
from tests.fakes.sources import ScriptedSource

ROWS = [{"first_name": "Ann", "last_name": f"Lee{i}", "company_url": "a.com"} for i in range(5)]


def _batch() -> BatchCreate:
    return BatchCreate(
        records=[PersonRecord(**r) for r in ROWS], entity_type="person", max_credits=10
    )


@pytest.mark.parametrize(("scope", "shared"), [("organisation", True), ("user", False)])
def test_cache_scope(tmp_path: Path, scope: str, shared: bool) -> None:
    rt = memory_runtime(make_settings(tmp_path / "d", waterfall=[], cache_scope=scope))
    try:
        source = ScriptedSource("s", Price("s", 0, 1))
        rt.sources = [source]
        for user in ("ann", "bob"):
            grant(rt, user, 20)
        service.submit_batch(rt, "ann", _batch())
        drain(rt)
        assert len(source.seen) == 5

        preview = service.preflight(rt, "bob", ROWS)
        assert preview.cache_hits == (5 if shared else 0)
        acc = service.submit_batch(rt, "bob", _batch())
        drain(rt)
        run = service.get_run(rt, "bob", acc.run_id)
        assert run.counts.cached == (5 if shared else 0)
        assert run.credits_spent == (0 if shared else 5)
        # Each user always reuses their own phones.
        again = service.submit_batch(rt, "ann", _batch())
        drain(rt)
        assert service.get_run(rt, "ann", again.run_id).counts.cached == 5
    finally:
        rt.close()
