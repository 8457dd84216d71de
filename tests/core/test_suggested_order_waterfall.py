"""Issue 12's three-vendor waterfall, end to end through the admin's configuration path.

Three fake vendors (Prospeo single-record, Lusha bulk, FullEnrich async job) each know a
different, overlapping ~40% of 2000 people. An admin configures them the way the Sources
page does (``ui_admin.save_source``: enabled, base URL, key, prices, rate, concurrency), in
the wrong order (dearest first); batch 1 (records 0..999) measures them; "apply suggested
order" (``ui_admin.apply_suggested_order``) puts the cheapest per phone first; batch 2
(records 1000..1999) then finds every record any vendor knows, each at the cheapest vendor
that knows it, and spends exactly the sum of the found prices.

Nothing is built by hand: the runtime's ``SourceRegistry`` builds the sources from the
stored configuration. ``PHONE_WATERFALL`` is left unset so the page decides the order.
The one knob outside the configuration: the fake FullEnrich finishes a job on its first
poll (``polls_needed = 0``), because the adapter's poll interval (5 s) is not a setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from phone_core import db, service, source_stats, ui_admin, ui_api, ui_batches
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import drain, free_port
from tests.fakes.batches import USER, finish, fund, ledger_total, people
from tests.fakes.vendor_base import FakeVendor
from tests.fakes.vendor_fullenrich import FakeFullEnrich
from tests.fakes.vendor_lusha import FakeLusha
from tests.fakes.vendor_prospeo import FakeProspeo

pytestmark = pytest.mark.slow

POPULATION = 2000
HALF = POPULATION // 2
PRICE = {"prospeo": 10, "lusha": 5, "fullenrich": 2}  # credits per phone found
LINE = {"prospeo": "mobile", "lusha": "direct", "fullenrich": ""}
VENDORS = tuple(PRICE)
WRONG = ["prospeo", "lusha", "fullenrich"]  # dearest first
CHEAPEST_FIRST = sorted(VENDORS, key=PRICE.__getitem__)


def _knows(vendor: str, i: int) -> bool:
    """Each vendor knows ~40% of the people, independently of the others (deterministic)."""
    digest = hashlib.sha256(f"{vendor}:{i}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < 40


def _phone(i: int) -> str:
    return f"+1212555{i:04d}"


KNOWN = {v: {i for i in range(POPULATION) if _knows(v, i)} for v in VENDORS}


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    # no ``waterfall``: PHONE_WATERFALL unset, so the Sources page orders the vendors;
    # empty vendor_* so no PHONE_VENDOR_* variable of this machine leaks in
    settings = Settings(
        data_dir=tmp_path / "data", s3_port=free_port(), vendor_keys={}, vendor_values={}
    )
    runtime = memory_runtime(settings)
    for module in (ui_api, ui_batches, ui_admin):  # the pages' process runtime
        monkeypatch.setattr(module, "runtime", lambda: runtime)
    yield runtime
    runtime.close()


def _submit(rt: Runtime, first: int) -> str:
    rows = people(HALF, start=first)
    req = BatchCreate(
        records=[PersonRecord(**r) for r in rows], entity_type="person", max_credits=50_000
    )
    return service.submit_batch(rt, USER, req).run_id


def _configure(fakes: dict[str, FakeVendor]) -> None:
    """What an admin does on the Sources page, vendor by vendor, then the order."""
    for name, fake in fakes.items():
        ui_admin.save_source(
            name,
            by="admin",
            enabled=True,
            base_url=fake.url,
            api_key=f"key-{name}",
            lookup_cost=0,
            found_cost=PRICE[name],
            failed_cost=0,
            rate_per_sec=2000.0,
            concurrency=8,
        )
    ui_admin.set_source_order(WRONG, by="admin")


def test_suggested_order_finds_each_record_at_the_cheapest_vendor_that_knows_it(
    rt: Runtime,
) -> None:
    def population(vendor: str) -> dict[str, list[tuple[str, str]]]:
        return {f"leep{i}": [(_phone(i), LINE[vendor])] for i in sorted(KNOWN[vendor])}

    with (
        FakeProspeo(api_key="key-prospeo", people=population("prospeo")) as fp,
        FakeLusha(api_key="key-lusha", people=population("lusha")) as fl,
        FakeFullEnrich(api_key="key-fullenrich", people=population("fullenrich")) as ff,
    ):
        ff.polls_needed = 0  # the job is done at its first poll (the 5 s interval is fixed)
        fakes: dict[str, FakeVendor] = {"prospeo": fp, "lusha": fl, "fullenrich": ff}
        assert not ui_admin.waterfall_order_from_env()
        _configure(fakes)
        assert ui_batches.batch_source_choices() == ["directory", *WRONG]
        fund(rt, 200_000)

        # batch 1, dearest first: what each vendor finds is measured
        run_1 = _submit(rt, 0)
        drain(rt)
        done_1 = finish(rt, run_1)
        first = set(range(HALF))
        asked = set(first)
        for name in WRONG:  # each vendor is asked only what the ones before it missed
            hits = asked & KNOWN[name]
            with rt.db.connect() as conn:
                st = {s.source: s for s in source_stats.stats(conn, names=VENDORS)}[name]
            assert (st.lookups, st.found, st.errors) == (len(asked), len(hits), 0), name
            assert st.credits == PRICE[name] * len(hits), name
            asked -= hits
        assert done_1.run.counts.found == HALF - len(asked)

        # one click: the suggested order, cheapest per phone found first
        suggested = [
            s["source"]
            for s in ui_admin.sources_report(None, None)["suggested_order"]
            if s["source"] in VENDORS
        ]
        assert suggested == CHEAPEST_FIRST == ["fullenrich", "lusha", "prospeo"]
        applied = ui_admin.apply_suggested_order(by="admin")
        assert applied == CHEAPEST_FIRST  # only sources that can run (lantern has no URL)
        assert ui_batches.batch_source_choices() == ["directory", *CHEAPEST_FIRST]
        assert [v.name for v in ui_admin.source_views() if v.usable] == CHEAPEST_FIRST

        # batch 2, in the suggested order
        run_2 = _submit(rt, HALF)
        drain(rt)
        done_2 = finish(rt, run_2)

    with rt.db.connect() as conn:
        sources = conn.execute(
            sa.select(db.runs.c.sources).where(db.runs.c.run_id == run_2)
        ).scalar_one()
    assert sources == ["directory", *CHEAPEST_FIRST]
    # in batch 2 each vendor was asked only what the cheaper ones before it missed
    with rt.db.connect() as conn:
        asked_2: dict[str, int] = dict(
            conn.execute(
                sa.select(db.source_calls.c.source, sa.func.count())
                .where(db.source_calls.c.run_id == run_2)
                .group_by(db.source_calls.c.source)
            ).all()
        )
    left = set(range(HALF, POPULATION))
    assert asked_2["directory"] == HALF
    for name in CHEAPEST_FIRST:
        assert asked_2[name] == len(left), name
        left -= KNOWN[name]

    rows = done_2.by_id()
    phones = {o.person.id: o.phone for o in done_2.outcomes}
    assert len(rows) == HALF
    expected_spend = 0
    anyone = 0
    for i in range(HALF, POPULATION):
        row = rows[f"p{i}"]
        knowers = [v for v in VENDORS if i in KNOWN[v]]
        if not knowers:
            assert (row["status"], int(row["credits_charged"])) == ("not_found", 0), i
            continue
        anyone += 1
        cheapest = min(knowers, key=PRICE.__getitem__)
        assert (row["status"], row["source"], phones[f"p{i}"]) == (
            "found",
            cheapest,
            _phone(i),
        ), i
        assert int(row["credits_charged"]) == PRICE[cheapest], i
        expected_spend += PRICE[cheapest]
    assert 0 < anyone < HALF  # both kinds of record are in the batch
    counts = done_2.run.counts
    assert (counts.found, counts.not_found, counts.error) == (anyone, HALF - anyone, 0)
    assert done_2.run.credits_spent == expected_spend == ledger_total(rt, run_2)
