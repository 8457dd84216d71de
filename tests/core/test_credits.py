from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone_core import credits, db
from phone_core.credits import Price, admissible, worst_case
from phone_core.errors import InputError, InsufficientCredits


@pytest.mark.parametrize(
    ("prices", "expected"),
    [
        ([], 0),
        ([Price("a", 0, 1)], 1),
        ([Price("a", 0, 1), Price("b", 0, 3)], 3),
        ([Price("a", 1, 1), Price("b", 2, 5)], 1 + 2 + 5),
        ([Price("a", 1, 1, failed_cost=2), Price("b", 0, 1)], 3 + 1),
        ([Price("a", 0, 0)], 0),
    ],
)
def test_worst_case(prices: list[Price], expected: int) -> None:
    assert worst_case(prices) == expected


@pytest.mark.parametrize(
    ("left", "worst", "wanted", "expected"),
    [(10, 1, 5, 5), (10, 3, 5, 3), (2, 3, 5, 0), (0, 0, 5, 5), (-1, 1, 5, 0), (10, 1, 0, 0)],
)
def test_admissible(left: int, worst: int, wanted: int, expected: int) -> None:
    assert admissible(left, worst, wanted) == expected


def _simulate(
    prices: list[Price], hit_rates: list[float], n: int, max_credits: int, wave: int, seed: int
) -> tuple[int, int, int]:
    """The engine's admission rule over a waterfall: (spent, started, not started)."""
    rng = random.Random(seed)
    per_record = worst_case(prices)
    spent = started = 0
    remaining = n
    while remaining:
        take = admissible(max_credits - spent, per_record, min(wave, remaining))
        if take == 0:
            break
        for _ in range(take):
            cost = 0
            for price, rate in zip(prices, hit_rates, strict=True):
                found = rng.random() < rate
                failed = not found and rng.random() < 0.1
                cost += price.cost(found=found, failed=failed)
                if found:
                    break
            assert cost <= per_record
            spent += cost
        started += take
        remaining -= take
    return spent, started, remaining


price_st = st.builds(
    Price,
    source=st.sampled_from(["a", "b", "c"]),
    lookup_cost=st.integers(0, 3),
    found_cost=st.integers(0, 5),
    failed_cost=st.integers(0, 2),
)


@settings(max_examples=300, deadline=None)
@given(
    prices=st.lists(price_st, min_size=1, max_size=3),
    data=st.data(),
    n=st.integers(1, 400),
    max_credits=st.integers(1, 500),
    balance=st.integers(0, 600),
    wave=st.integers(1, 64),
    seed=st.integers(0, 10**6),
)
def test_spend_never_exceeds_cap_or_balance(
    prices: list[Price],
    data: st.DataObject,
    n: int,
    max_credits: int,
    balance: int,
    wave: int,
    seed: int,
) -> None:
    hit_rates = data.draw(st.lists(st.floats(0, 1), min_size=len(prices), max_size=len(prices)))
    # the hold: a run only starts with max_credits <= available balance
    cap = min(max_credits, balance)
    if cap < 1:
        return
    spent, _started, not_started = _simulate(prices, hit_rates, n, cap, wave, seed)
    assert spent <= cap <= balance
    per_record = worst_case(prices)
    if not_started:  # stopped for credit: the next record's worst case no longer fits
        assert cap - spent < per_record


def test_grant_hold_and_limits(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, "ann", 100)
        s = credits.summarize(conn, "ann")
        assert (s.balance, s.held, s.available) == (100, 0, 100)
        credits.check_hold(conn, "ann", 100)
        with pytest.raises(InsufficientCredits) as err:
            credits.check_hold(conn, "ann", 101)
        assert (err.value.required, err.value.remaining) == (101, 100)
        credits.set_monthly_limit(conn, "ann", 30)
        assert credits.summarize(conn, "ann").available == 30
        with pytest.raises(InsufficientCredits):
            credits.check_hold(conn, "ann", 31)
        with pytest.raises(InputError):
            credits.grant(conn, "ann", 0)
        with pytest.raises(InputError):
            credits.grant(conn, "ann", -101)
        credits.grant(conn, "ann", -50)
        assert credits.summarize(conn, "ann").balance == 50
        assert credits.month_start(datetime(2026, 3, 17, 5, 6)) == datetime(2026, 3, 1)


def test_found_rate_counts_distinct_people_looked_up() -> None:
    from phone_core.models import RunCounts

    c = RunCounts(total=10, found=3, cached=1, not_found=3, error=1, duplicate=1, skipped=1)
    assert c.found_rate == 4 / 8
    assert RunCounts(total=2, skipped=2).found_rate == 0.0
