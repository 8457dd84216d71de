"""The expected cost of a batch (issue 10, item 3): each source's hit rate measured from past
runs, smoothed towards a prior, priced down the waterfall; never above the worst case."""

from __future__ import annotations

import math
from datetime import timedelta

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from phone_core import db, service
from phone_core.credits import (
    PRIOR_HIT_RATE,
    PRIOR_LOOKUPS,
    Price,
    SourceRate,
    SourceTally,
    expected_cost,
    measured_rates,
    worst_case,
)
from phone_core.models import RecordStatus
from phone_core.runtime import Runtime
from tests.conftest import drain, grant
from tests.fakes.sources import ScriptedSource

FIRST = Price("first", lookup_cost=0, found_cost=1)
SECOND = Price("second", lookup_cost=1, found_cost=2, failed_cost=1)


def people(n: int, prefix: str) -> list[dict[str, str]]:
    return [
        {
            "id": f"{prefix}{i}",
            "first_name": "Ann",
            "last_name": f"{prefix}{i}",
            "company_url": "a.co",
        }
        for i in range(n)
    ]


# --- the rule, pure -------------------------------------------------------------------------------


def test_a_source_without_history_counts_as_the_prior() -> None:
    rates = measured_rates([FIRST, SECOND], SourceTally(0, {}, {}))
    assert rates == [SourceRate(PRIOR_HIT_RATE, 0.0), SourceRate(PRIOR_HIT_RATE, 0.0)]
    cost, found = expected_cost([FIRST, SECOND], rates)
    assert math.isclose(cost, 0.3 * 1 + 0.7 * (1 + 0.3 * 2))
    assert math.isclose(found, 1 - 0.7 * 0.7)


def test_measured_rates_follow_the_waterfall_order() -> None:
    # 1,000 looked up: "first" found 400; of the 600 left "second" found 150, 60 failed there;
    # 50 were found by a source no longer configured.
    tally = SourceTally(1_050, {"first": 400, "second": 150, "gone": 50}, {"second": 60})
    first, second = measured_rates([FIRST, SECOND], tally)
    assert math.isclose(first.hit, (400 + 0.3 * PRIOR_LOOKUPS) / (1_000 + PRIOR_LOOKUPS))
    assert math.isclose(second.hit, (150 + 0.3 * PRIOR_LOOKUPS) / (600 + PRIOR_LOOKUPS))
    assert math.isclose(second.failed, 60 / (600 + PRIOR_LOOKUPS))
    assert first.failed == 0.0
    cost, _ = expected_cost([FIRST, SECOND], [first, second])
    expected = first.hit * 1 + (1 - first.hit) * (1 + second.hit * 2 + second.failed * 1)
    assert math.isclose(cost, expected)


def test_a_sure_first_source_leaves_nothing_for_the_next() -> None:
    cost, found = expected_cost([FIRST, SECOND], [SourceRate(1.0), SourceRate(0.5)])
    assert (cost, found) == (1.0, 1.0)


rates_st = st.builds(SourceRate, st.floats(0, 1), st.just(0.0))
prices_st = st.builds(
    Price, st.sampled_from(["a", "b", "c"]), st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)
)


@given(st.lists(st.tuples(prices_st, rates_st), max_size=4))
def test_the_expected_cost_is_never_above_the_worst_case(
    pairs: list[tuple[Price, SourceRate]],
) -> None:
    prices = [p for p, _ in pairs]
    cost, found = expected_cost(prices, [r for _, r in pairs])
    assert 0 <= cost <= worst_case(prices) + 1e-9
    assert 0 <= found <= 1


@given(
    st.integers(0, 5_000),
    st.dictionaries(st.sampled_from(["first", "second", "gone"]), st.integers(0, 5_000)),
    st.dictionaries(st.sampled_from(["first", "second"]), st.integers(0, 5_000)),
)
def test_measured_rates_are_rates(
    looked_up: int, found: dict[str, int], failed: dict[str, int]
) -> None:
    for rate in measured_rates([FIRST, SECOND], SourceTally(looked_up, found, failed)):
        assert 0 <= rate.hit <= 1 and 0 <= rate.failed <= 1 - rate.hit + 1e-12


# --- measured on a runtime ------------------------------------------------------------------------


def test_the_preflight_expects_the_measured_hit_rates(memory_rt: Runtime) -> None:
    memory_rt.sources = [
        ScriptedSource("first", FIRST, hit_rate=0.5, seed=1),
        ScriptedSource("second", SECOND, hit_rate=0.25, seed=2),
    ]
    grant(memory_rt, "ann", 10_000)
    fresh = service.preflight(memory_rt, "bob", people(100, "new"))
    assert fresh.hit_rates == {"first": PRIOR_HIT_RATE, "second": PRIOR_HIT_RATE}
    assert fresh.expected_credits == math.ceil(100 * (0.3 + 0.7 * (1 + 0.3 * 2)))

    service.submit_upload(memory_rt, "ann", people(200, "past"), 10_000)
    drain(memory_rt)
    with memory_rt.db.connect() as conn:
        statuses = conn.execute(sa.select(db.run_records.c.status, db.run_records.c.source)).all()
    n1 = statuses.count((RecordStatus.FOUND.value, "first"))
    n2 = statuses.count((RecordStatus.FOUND.value, "second"))
    assert 60 < n1 < 140 and 0 < n2 < n1  # the scripted rates, about
    h1 = (n1 + 0.3 * 20) / (200 + 20)
    h2 = (n2 + 0.3 * 20) / (200 - n1 + 20)

    pf = service.preflight(memory_rt, "bob", people(100, "new"))  # measured for everyone
    assert pf.to_look_up == 100 and pf.worst_case_credits == 100 * 3
    assert pf.hit_rates == {"first": round(h1, 4), "second": round(h2, 4)}
    assert pf.expected_credits == math.ceil(100 * (h1 * 1 + (1 - h1) * (1 + h2 * 2)))
    assert pf.expected_found == round(100 * (1 - (1 - h1) * (1 - h2)))
    assert pf.expected_credits < fresh.expected_credits < pf.worst_case_credits

    again = service.preflight(memory_rt, "ann", people(200, "past"))
    assert again.to_look_up == 200 - n1 - n2  # the found ones come from the cache
    assert again.expected_credits == math.ceil(again.to_look_up * (h1 + (1 - h1) * (1 + 2 * h2)))

    with memory_rt.db.begin() as conn:  # runs older than the window no longer count
        conn.execute(sa.update(db.runs).values(created_at=db.utcnow() - timedelta(days=91)))
    assert service.preflight(memory_rt, "bob", people(100, "new")).hit_rates == fresh.hit_rates


def test_no_sources_expect_nothing(memory_rt: Runtime) -> None:
    pf = service.preflight(memory_rt, "ann", people(5, "p"))
    assert (pf.to_look_up, pf.worst_case_credits, pf.expected_credits) == (5, 0, 0)
    assert (pf.expected_found, pf.hit_rates) == (0, {})
