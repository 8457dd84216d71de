"""The batch engine driven in process: the real wave, admission, waterfall and
settlement over a SQLite file, an in-memory object store and the inline queue."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phone_core import db, service
from phone_core.credits import Price, worst_case
from phone_core.errors import InsufficientCredits
from phone_core.models import (
    RESULT_COLUMNS,
    BatchCreate,
    Detail,
    PersonRecord,
    RecordStatus,
    RunState,
)
from phone_core.runtime import Runtime
from phone_core.storage import InMemoryObjectStore
from tests.conftest import drain, grant
from tests.fakes.sources import ScriptedSource


def _people(n: int, prefix: str = "p") -> list[dict[str, str]]:
    return [
        {
            "id": f"{prefix}{i}",
            "first_name": "Ann",
            "last_name": f"L{prefix}{i}",
            "company_url": "a.com",
        }
        for i in range(n)
    ]


def _batch(rows: list[dict[str, str]], max_credits: int) -> BatchCreate:
    return BatchCreate(
        records=[PersonRecord(**r) for r in rows], entity_type="person", max_credits=max_credits
    )


def _csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_wave_settles_free_records_first_then_the_waterfall(memory_rt: Runtime) -> None:
    first = ScriptedSource("first", Price("first", 0, 1), hit_rate=0.5, seed=1)
    second = ScriptedSource("second", Price("second", 0, 2), hit_rate=1.0, seed=2)
    memory_rt.sources = [first, second]
    grant(memory_rt, "ann", 1000)
    rows = _people(40)
    rows += [dict(rows[3], id="dup-of-3")]  # the same person again
    rows += [{"id": "nobody", "first_name": "Only"}]  # not enrichable
    acc = service.submit_batch(memory_rt, "ann", _batch(rows, 500))
    assert drain(memory_rt) == [acc.run_id]

    run = service.get_run(memory_rt, "ann", acc.run_id)
    assert run.state is RunState.COMPLETED
    by_id = {o.person.id: o for o in service.run_outcomes(memory_rt, "ann", acc.run_id)}
    assert by_id["nobody"].status is RecordStatus.SKIPPED
    assert by_id["nobody"].detail == Detail.MISSING_REQUIRED_FIELDS.value
    assert by_id["dup-of-3"].status is RecordStatus.DUPLICATE
    assert by_id["dup-of-3"].phone == by_id["p3"].phone and by_id["dup-of-3"].credits_charged == 0
    found_by_first = [
        o for o in by_id.values() if o.source == "first" and o.status is RecordStatus.FOUND
    ]
    assert len(first.seen) == 40  # 41 enrichable rows, one a duplicate
    assert len(second.seen) == 40 - len(found_by_first)  # only the first one's misses
    assert {o.source for o in by_id.values() if o.status is RecordStatus.FOUND} == {
        "first",
        "second",
    }
    spent = sum(o.credits_charged for o in by_id.values())
    assert (
        spent
        == run.credits_spent
        == sum(
            1 if o.source == "first" else 2
            for o in by_id.values()
            if o.status is RecordStatus.FOUND
        )
    )

    # A second run finds everyone in the cache: free, no source called.
    before = len(first.seen) + len(second.seen)
    again = service.submit_batch(memory_rt, "ann", _batch(_people(40), 10))
    drain(memory_rt)
    rerun = service.get_run(memory_rt, "ann", again.run_id)
    assert rerun.counts.cached == 40 and rerun.credits_spent == 0
    assert len(first.seen) + len(second.seen) == before


def test_outputs_are_written_at_the_uris_stored_on_the_run(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=0.7)]
    grant(memory_rt, "ann", 100)
    acc = service.submit_batch(memory_rt, "ann", _batch(_people(10), 100))
    drain(memory_rt)
    store = memory_rt.store
    assert isinstance(store, InMemoryObjectStore)
    keys = set(store.objects)
    assert store.key_of(acc.result_path) in keys and store.key_of(acc.credits_csv_path) in keys
    results = _csv(service.download(memory_rt, "ann", acc.run_id, "results.csv"))
    assert list(results[0]) == list(RESULT_COLUMNS) and len(results) == 10
    charged = _csv(service.download(memory_rt, "ann", acc.run_id, "credits.csv"))
    run = service.get_run(memory_rt, "ann", acc.run_id)
    assert sum(int(r["credits_charged"]) for r in charged) == run.credits_spent
    assert service.download(memory_rt, "ann", acc.run_id, "enriched.xlsx")[:2] == b"PK"


def test_credit_cap_stops_the_run_and_reports_not_processed(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 100)
    acc = service.submit_batch(memory_rt, "ann", _batch(_people(30), 12))
    drain(memory_rt)
    run = service.get_run(memory_rt, "ann", acc.run_id)
    assert run.state is RunState.CREDIT_LIMIT_REACHED
    assert run.credits_spent == 12 and run.counts.found == 12 and run.counts.not_processed == 18
    assert service.rerunnable_count(memory_rt, "ann", acc.run_id) == 18


def test_a_fatal_source_is_stopped_for_the_run(memory_rt: Runtime) -> None:
    dead = ScriptedSource("dead", Price("dead", 0, 1), fatal=Detail.UPSTREAM_AUTH.value)
    memory_rt.sources = [dead]
    grant(memory_rt, "ann", 100)
    acc = service.submit_batch(memory_rt, "ann", _batch(_people(5), 50))
    drain(memory_rt)
    run = service.get_run(memory_rt, "ann", acc.run_id)
    assert run.counts.error == 5 and "dead stopped for this run" in run.notice


def test_cancel_before_start_processes_nothing(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(memory_rt, "ann", 100)
    acc = service.submit_batch(memory_rt, "ann", _batch(_people(5), 50))
    service.cancel(memory_rt, "ann", acc.run_id)
    drain(memory_rt)
    run = service.get_run(memory_rt, "ann", acc.run_id)
    assert run.state is RunState.CANCELLED and run.counts.not_processed == 5
    assert run.credits_spent == 0


def test_a_large_upload_is_parts_under_one_budget(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 5000)
    accepted = service.submit_upload(memory_rt, "ann", _people(2100), 2500, label="big.csv")
    assert len(accepted) == 3
    assert drain(memory_rt) == [a.run_id for a in accepted]  # each part starts the next
    parts = [service.get_run(memory_rt, "ann", a.run_id) for a in accepted]
    assert [p.label for p in parts] == [f"big.csv (part {i}/3)" for i in (1, 2, 3)]
    assert [p.credits_spent for p in parts] == [1000, 1000, 100]
    assert all(p.state is RunState.COMPLETED for p in parts)


def test_one_writer_keeps_charges_idempotent(memory_rt: Runtime) -> None:
    """Settling the same records twice (a wave re-run after a crash) charges once."""
    from phone_core import runs
    from phone_core.runs import Outcome

    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1))]
    grant(memory_rt, "ann", 100)
    acc = service.submit_batch(memory_rt, "ann", _batch(_people(3), 10))
    outcome = [Outcome(0, RecordStatus.FOUND, "s", "+12125550100", 1)]
    with memory_rt.db.begin() as conn:
        assert runs.apply(conn, acc.run_id, "ann", outcome) == 1
    with memory_rt.db.begin() as conn:
        assert runs.apply(conn, acc.run_id, "ann", outcome) == 0
    with memory_rt.db.connect() as conn:
        charged = conn.execute(
            sa.select(sa.func.count()).where(db.ledger.c.run_id == acc.run_id)
        ).scalar()
    assert charged == 1


price_st = st.builds(
    Price,
    source=st.just(""),
    lookup_cost=st.integers(0, 3),
    found_cost=st.integers(0, 5),
    failed_cost=st.integers(0, 2),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prices=st.lists(price_st, min_size=1, max_size=3),
    data=st.data(),
    n=st.integers(1, 120),
    max_credits=st.integers(1, 300),
    balance=st.integers(0, 300),
    wave=st.integers(1, 64),
    seed=st.integers(0, 10**6),
)
def test_spend_never_exceeds_cap_or_balance(
    memory_rt: Runtime,
    prices: list[Price],
    data: st.DataObject,
    n: int,
    max_credits: int,
    balance: int,
    wave: int,
    seed: int,
) -> None:
    """The real engine over random prices, hit rates and wave sizes: spend <= cap <= balance,
    every charge once, and a run stops for credit only when no worst case fits."""
    rates = data.draw(st.lists(st.floats(0, 1), min_size=len(prices), max_size=len(prices)))
    named = [
        Price(f"s{i}", p.lookup_cost, p.found_cost, p.failed_cost) for i, p in enumerate(prices)
    ]
    memory_rt.sources = [
        ScriptedSource(p.source, p, rate, failed_rate=0.1, seed=seed)
        for p, rate in zip(named, rates, strict=True)
    ]
    memory_rt.settings = memory_rt.settings.model_copy(update={"wave_size": wave})
    user = f"u{seed}-{n}-{max_credits}-{balance}-{wave}"
    if balance:
        grant(memory_rt, user, balance)
    cap = min(max_credits, balance)
    if cap < 1:
        with pytest.raises(InsufficientCredits):
            service.submit_batch(memory_rt, user, _batch(_people(n, user), max_credits))
        return
    acc = service.submit_batch(memory_rt, user, _batch(_people(n, user), cap))
    drain(memory_rt)
    run = service.get_run(memory_rt, user, acc.run_id)
    assert run.credits_spent <= cap <= balance
    with memory_rt.db.connect() as conn:
        ledger = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(db.ledger.c.amount), 0)).where(
                db.ledger.c.run_id == acc.run_id
            )
        ).scalar()
    assert ledger == run.credits_spent
    if run.state is RunState.CREDIT_LIMIT_REACHED:
        assert cap - run.credits_spent < worst_case(named)
    else:
        assert run.state is RunState.COMPLETED and run.counts.not_processed == 0


def test_a_rerun_keeps_the_batch_name(memory_rt: Runtime) -> None:
    memory_rt.sources = [ScriptedSource("s", Price("s", 0, 1), hit_rate=1.0)]
    grant(memory_rt, "ann", 100)
    (acc,) = service.submit_upload(memory_rt, "ann", _people(5), 2, label="q4-leads.csv")
    drain(memory_rt)
    again = service.rerun(memory_rt, "ann", acc.run_id, 10)
    drain(memory_rt)
    rerun = service.get_run(memory_rt, "ann", again.run_id)
    assert rerun.label == "q4-leads.csv (re-run)" and rerun.parent_run_id == acc.run_id
    assert rerun.counts.found == 3
