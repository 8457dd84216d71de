"""Defence in depth (issue 9, item 15): every caller is held to the same money rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from phone_core import credits, service
from phone_core.credits import Price
from phone_core.errors import InputError
from phone_core.models import BatchCreate, PersonRecord, RunState
from phone_core.runtime import Runtime
from tests.conftest import drain, free_port, grant
from tests.core.test_durability import _cli, _env, _stop_s3
from tests.fakes.sources import ScriptedSource


def _available(rt: Runtime, user: str) -> int:
    with rt.db.connect() as conn:
        return credits.summarize(conn, user).available


@pytest.mark.parametrize("max_credits", [0, -1000, credits.MAX_AMOUNT + 1])
def test_no_caller_can_hold_below_one_or_beyond_the_maximum(
    memory_rt: Runtime, max_credits: int
) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 10)
    body = BatchCreate(
        records=[
            PersonRecord(first_name="A", last_name=f"B{i}", company_url="a.com") for i in range(20)
        ],
        entity_type="person",
        max_credits=10,
    )
    acc = service.submit_batch(memory_rt, "ann", body)
    drain(memory_rt)
    assert service.get_run(memory_rt, "ann", acc.run_id).state is RunState.CREDIT_LIMIT_REACHED
    before = _available(memory_rt, "ann")
    with pytest.raises(InputError):
        service.rerun(memory_rt, "ann", acc.run_id, max_credits)  # once raised the balance
    with pytest.raises(InputError):
        service.submit_upload(memory_rt, "ann", [{"email": "a@b.co"}], max_credits)
    assert _available(memory_rt, "ann") == before


def test_huge_grants_and_limits_are_refused(memory_rt: Runtime) -> None:
    with memory_rt.db.begin() as conn:
        with pytest.raises(InputError, match="at most"):
            credits.grant(conn, "ann", 10**20)
        with pytest.raises(InputError, match="at most"):
            credits.grant(conn, "ann", -(10**20))
        with pytest.raises(InputError, match="at most"):
            credits.set_monthly_limit(conn, "ann", 10**15)
        credits.grant(conn, "ann", credits.MAX_AMOUNT)
        assert credits.summarize(conn, "ann").balance == credits.MAX_AMOUNT


@pytest.mark.integration
def test_cli_usage_errors_and_huge_grants_exit_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = _env(data, free_port(), PHONE_LANTERN_ENABLED="false")
    try:
        bad = _cli(env, "credits", "grant", "ann", "lots")
        assert bad.returncode == 64 and "invalid int value" in bad.stderr
        assert _cli(env, "no-such-command").returncode == 64
        huge = _cli(env, "credits", "grant", "ann", str(10**20))
        assert huge.returncode == 1 and "at most" in huge.stderr
        assert "Traceback" not in huge.stderr + bad.stderr
    finally:
        _stop_s3(data)


def test_an_upload_value_longer_than_its_column_is_refused_plainly(memory_rt: Runtime) -> None:
    grant(memory_rt, "ann", 10)
    ok = {"first_name": "Ann", "last_name": "Lee", "company_url": "a.com"}
    with pytest.raises(InputError, match="row 2: the id is longer than 200"):
        service.submit_upload(memory_rt, "ann", [ok, {**ok, "id": "x" * 201}], 5)
    with pytest.raises(InputError, match="row 1: the first name is longer than 500"):
        service.submit_upload(memory_rt, "ann", [{**ok, "first_name": "y" * 501}], 5)
    assert service.list_runs(memory_rt, "ann") == []


def test_a_hold_of_zero_only_for_a_batch_that_costs_nothing(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 5)
    row = {"first_name": "Ann", "last_name": "Lee", "company_url": "a.com"}
    with pytest.raises(InputError, match="at least 1"):  # not known yet: it may cost
        service.submit_upload(memory_rt, "bob", [row], 0)
    service.submit_upload(memory_rt, "ann", [row], 5)
    drain(memory_rt)
    (free,) = service.submit_upload(memory_rt, "bob", [row, row], 0)  # bob has no credits
    drain(memory_rt)
    run = service.get_run(memory_rt, "bob", free.run_id)
    assert run.credits_spent == 0 and run.counts.cached == 1 and run.counts.duplicate == 1
    with pytest.raises(InputError):
        service.submit_upload(memory_rt, "bob", [row], -1)
