from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

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
