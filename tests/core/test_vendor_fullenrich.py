"""FullEnrich (async job: submit, then poll) against its fake over real HTTP, with the
job checkpoint on a real SQLite state DB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from phone_core import db
from phone_core.models import RecordStatus
from phone_core.sources import fullenrich, vendor_jobs
from phone_core.sources.base import current_run_id
from phone_core.sources.fullenrich import FullEnrichSource
from tests.core.vendor_helpers import config_for, fast, run
from tests.fakes.vendor_base import key_of, lookups
from tests.fakes.vendor_fullenrich import FakeFullEnrich

MOBILE = "+12125550101"
UK_MOBILE = "+447911123456"
UK_LANDLINE = "+442079460123"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = db.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate(eng)
    yield eng
    eng.dispose()


def _source(fake: FakeFullEnrich, engine: Engine, **over: object) -> FullEnrichSource:
    batch = int(over.pop("batch_size", 100))  # type: ignore[call-overload]
    src = FullEnrichSource(
        config_for(fullenrich.VENDOR, fake.url, **over),
        engine,
        batch_size=batch,
        poll_interval_sec=0.01,
        max_wait_sec=5.0,
    )
    fast(src.http)
    return src


def _in_run(
    src: FullEnrichSource, n: int, run_id: str = "run-1", start: int = 0
) -> list[tuple[str, str, str | None]]:
    async def go() -> list[tuple[str, str, str | None]]:
        current_run_id.set(run_id)
        res = await src.lookup_many(lookups(n, start=start))
        return [(r.status.value, r.detail, r.phone) for r in res]

    return run(go(), src)


def test_found_not_found_several_phones_one_job(engine: Engine) -> None:
    # no line type from FullEnrich: libphonenumber tells a UK mobile from a London line
    people = {key_of(0): [(UK_LANDLINE, ""), (UK_MOBILE, "")], key_of(2): [("123", "")]}
    with FakeFullEnrich(people=people) as fake:
        fake.polls_needed = 2
        src = _source(fake, engine)
        assert _in_run(src, 3) == [
            ("found", "", UK_MOBILE),
            ("not_found", "no_match", None),
            ("not_found", "invalid_phone", None),
        ]
        assert fake.jobs_submitted == 1
        (job,) = fake.jobs.values()
        assert job.polls == 3
        sent = fake.requests[0].body
        assert sent["data"][0]["enrich_fields"] == ["contact.phones"]
        assert sent["data"][0]["custom"] == {"record_id": lookups(1)[0].record_id}
        assert sent["data"][0]["domain"] == "acme0.com"
        (row,) = vendor_jobs.jobs_of(engine, "fullenrich", "run-1")
        assert (row.state, row.vendor_job_id) == ("done", job.id)


def test_results_map_back_by_custom_even_reordered_and_dropped(engine: Engine) -> None:
    people = {key_of(i): [(f"+1212555{i:04d}", "")] for i in range(5)}
    with FakeFullEnrich(people=people) as fake:
        fake.drop = {key_of(3)}
        src = _source(fake, engine)
        got = _in_run(src, 5)
        assert got == [
            ("found", "", "+12125550000"),
            ("found", "", "+12125550001"),
            ("found", "", "+12125550002"),
            ("error", "upstream_incomplete", None),
            ("found", "", "+12125550004"),
        ]


def test_the_same_run_resumes_the_job_instead_of_submitting_again(engine: Engine) -> None:
    people = {key_of(i): [(f"+1212555{i:04d}", "")] for i in range(4)}
    with FakeFullEnrich(people=people) as fake:
        first = _in_run(_source(fake, engine), 4)
        # a crash after the results were read but before the engine committed them:
        # the same run asks again, with the records in other chunks
        again = _in_run(_source(fake, engine, batch_size=3), 4)
        assert again == first
        assert fake.jobs_submitted == 1
        assert fake.credits_charged == 40
        # another run is another job
        _in_run(_source(fake, engine), 4, run_id="run-2")
        assert fake.jobs_submitted == 2


def test_a_job_left_submitting_by_a_crash_is_never_sent_again(engine: Engine) -> None:
    with FakeFullEnrich(people={key_of(0): [(MOBILE, "")]}) as fake:
        ids = [lk.record_id for lk in lookups(2)]
        vendor_jobs.begin(engine, "fullenrich", "run-1", ids)  # then the worker died
        assert _in_run(_source(fake, engine), 2) == [("error", "upstream_job_unknown", None)] * 2
        assert fake.jobs_submitted == 0
        (row,) = vendor_jobs.jobs_of(engine, "fullenrich", "run-1")
        assert row.state == "abandoned"


def test_submit_5xx_may_have_created_a_job_so_it_is_not_retried(engine: Engine) -> None:
    with FakeFullEnrich(people={key_of(0): [(MOBILE, "")]}) as fake:
        fake.script("500_after_create")
        src = _source(fake, engine)
        assert _in_run(src, 1) == [("error", "upstream_5xx", None)]
        assert fake.jobs_submitted == 1  # the vendor made one; we never made a second
        assert _in_run(src, 1) == [("error", "upstream_job_unknown", None)]
        assert fake.jobs_submitted == 1


def test_refused_submits_leave_nothing_behind_and_429_is_retried(engine: Engine) -> None:
    with FakeFullEnrich(people={key_of(0): [(MOBILE, "")]}) as fake:
        src = _source(fake, engine)
        fake.script("400")
        assert _in_run(src, 1) == [("error", "upstream_rejected", None)]
        assert vendor_jobs.jobs_of(engine, "fullenrich", "run-1") == []
        fake.script("429", "429")
        assert _in_run(src, 1) == [("found", "", MOBILE)]
        assert fake.jobs_submitted == 1


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("402", ("error", "upstream_credits")),
        ("credits_insufficient", ("error", "upstream_credits")),
        ("canceled", ("error", "upstream_rejected")),
        ("poll_429", ("found", "")),
        ("poll_500", ("found", "")),
        ("in_progress_400", ("found", "")),
        ("bad_key", ("error", "upstream_auth")),
        ("unknown_job", ("error", "upstream_job_unknown")),
        ("never_done", ("error", "upstream_timeout")),
    ],
)
def test_faults(engine: Engine, setup: str, expected: tuple[str, str]) -> None:
    with FakeFullEnrich(people={key_of(0): [(MOBILE, "")]}, api_key="k") as fake:
        over: dict[str, object] = {}
        if setup == "402":
            fake.script("402")
        elif setup == "credits_insufficient":
            fake.end_status = "CREDITS_INSUFFICIENT"
        elif setup == "canceled":
            fake.end_status = "CANCELED"
        elif setup == "poll_429":
            fake.script("ok", "429", "429")
        elif setup == "poll_500":
            fake.script("ok", "500")
        elif setup == "in_progress_400":
            fake.script("ok", "in_progress_400", "in_progress_400")
        elif setup == "bad_key":
            over["api_key"] = "wrong"
        elif setup == "unknown_job":
            vendor_jobs.submitted(
                engine,
                vendor_jobs.begin(engine, "fullenrich", "run-1", [lookups(1)[0].record_id]).job_key,
                "no-such-job",
            )
        elif setup == "never_done":
            fake.hold = True
        src = _source(fake, engine, **over)
        if setup == "never_done":
            src.max_wait_sec = 0.2
        assert _in_run(src, 1)[0][:2] == expected


def test_test_connection(engine: Engine) -> None:
    with FakeFullEnrich() as fake:
        src = _source(fake, engine)
        run(src.test_connection(), src)
        assert fake.requests[-1].path == "/account/credits"
        assert fake.jobs_submitted == 0


def test_without_a_run_each_call_is_its_own_job(engine: Engine) -> None:
    with FakeFullEnrich(people={key_of(0): [(MOBILE, "")]}) as fake:
        src = _source(fake, engine)
        for _ in range(2):
            (res,) = run(src.lookup_many(lookups(1)), src)
            assert res.status == RecordStatus.FOUND
        assert fake.jobs_submitted == 2
