"""Retention (purge with a fake clock) and erasure (right to be forgotten) across every
store: run records, the person store, the cache, the directory, and the stored files
(runs' and batches'). Fast tier: the in-process engine with the in-memory object store,
on SQLite and, when PHONE_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import batch_views, batches, db, erasure, retention, service
from phone_core.credits import Price
from phone_core.errors import InputError, NotFound
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.sources import directory
from phone_core.sources.directory import DirectorySource
from phone_core.storage import InMemoryObjectStore
from tests.api.backends import NO_PG, PG_URL, _pg_database
from tests.conftest import drain, grant, make_settings

ANN = {"first_name": "Annika", "last_name": "Lindqvist", "email": "annika@lindqvist.example"}
BOB = {"first_name": "Bob", "last_name": "Okafor", "email": "bob@okafor.example"}
ANN_PHONE, BOB_PHONE = "+12125550101", "+12125550102"
ANN_TRACES = (b"Annika", b"Lindqvist", b"annika@", ANN_PHONE.encode(), b"2125550101")


@pytest.fixture(params=["sqlite", "postgres"])
def prt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    overrides: dict[str, Any] = {"waterfall": []}
    databases: Iterator[str] | None = None
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip(NO_PG)
        databases = _pg_database()
        overrides["database_url"] = next(databases)
    overrides.update(getattr(request, "param_overrides", {}))
    rt = memory_runtime(
        make_settings(
            tmp_path / "mem",
            retain_outputs_days=30,
            retain_records_days=90,
            retain_persons_days=60,
            **overrides,
        )
    )
    rt.sources = [DirectorySource(rt.db, Price("directory", 0, 1))]
    directory.load_rows(
        rt.db,
        [{**ANN, "phone": "(212) 555-0101"}, {**BOB, "phone": "(212) 555-0102"}],
        file_name="dir.csv",
        loaded_by="admin",
    )
    grant(rt, "ann", 1000)
    grant(rt, "bob", 1000)
    try:
        yield rt
    finally:
        rt.close()
        if databases is not None:
            next(databases, None)


def _upload(rt: Runtime, user: str, people: list[dict[str, str]]) -> str:
    rows = [{"id": f"r{i}", **p} for i, p in enumerate(people)]
    source_rows = [{"Name": p["first_name"], "Mail": p["email"], "Notes": "vip"} for p in people]
    (acc,) = service.submit_upload(rt, user, rows, 100, source_rows=source_rows, label="l.csv")
    return acc.run_id


def _api(rt: Runtime, user: str, people: list[dict[str, str]]) -> str:
    req = BatchCreate(
        records=[PersonRecord(id=f"api{i}", **p) for i, p in enumerate(people)],
        entity_type="person",
        max_credits=100,
    )
    return service.submit_batch(rt, user, req).run_id


def _objects(rt: Runtime) -> dict[str, bytes]:
    assert isinstance(rt.store, InMemoryObjectStore)
    return {k: v for k, (v, _) in rt.store.objects.items()}


def _records(rt: Runtime, run_id: str) -> list[dict[str, Any]]:
    rr = db.run_records
    with rt.db.connect() as conn:
        rows = conn.execute(sa.select(rr).where(rr.c.run_id == run_id).order_by(rr.c.idx))
        return [dict(r._mapping) for r in rows]


def _count(rt: Runtime, table: sa.Table, *where: Any) -> int:
    with rt.db.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar() or 0
        )


def _charges(rt: Runtime) -> list[tuple[Any, ...]]:
    lg = db.ledger
    with rt.db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(lg.c.run_id, lg.c.record_idx, lg.c.amount).order_by(lg.c.id)
            )
        ]


def _audit(rt: Runtime, prefix: str) -> list[tuple[str, Any]]:
    t = db.audit_log
    with rt.db.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.action, t.c.detail).where(t.c.action.startswith(prefix)).order_by(t.c.id)
        )
        return [(r[0], r[1]) for r in rows]


def _batch(rt: Runtime, run_id: str) -> str:
    with rt.db.connect() as conn:
        return batch_views.batch_of_run(conn, run_id)


def _two_users(rt: Runtime) -> tuple[str, str]:
    upload = _upload(rt, "ann", [ANN, BOB])
    api = _api(rt, "bob", [ANN])  # bob's person store holds ann too
    assert set(drain(rt)) == {upload, api}
    return upload, api


def test_erasure_by_email_reaches_every_store_and_file(prt: Runtime) -> None:
    upload, api = _two_users(prt)
    batches.download_batch(prt, "ann", _batch(prt, upload), "enriched.csv", 1)  # stored
    before = _objects(prt)
    assert any(ANN_PHONE.encode() in body for body in before.values())
    charges = _charges(prt)

    erasure_id = erasure.start(prt, "email", "  Annika@Lindqvist.example ", "admin")

    with prt.db.connect() as conn:
        state, receipt = erasure.status(conn, erasure_id)
    assert state == erasure.DONE
    # records: id, status and credits kept; personal fields, phone and the uploaded row blank
    ann_row, bob_row = _records(prt, upload)
    assert ann_row["person_id"] == "r0" and ann_row["status"] == "found" and ann_row["credits"] == 1
    assert ann_row["detail"] == "erased" and ann_row["phone"] == "" and ann_row["email"] == ""
    assert ann_row["first_name"] == ann_row["last_name"] == ann_row["identity"] == ""
    assert ann_row["source_row"] == {"Name": "", "Mail": "", "Notes": ""}
    assert bob_row["email"] == BOB["email"] and bob_row["phone"] == BOB_PHONE
    (api_row,) = _records(prt, api)
    assert api_row["detail"] == "erased" and api_row["email"] == ""
    assert _charges(prt) == charges  # the ledger is untouched: credits still reconcile
    # the person store of every user, the cache, the directory
    assert _count(prt, db.persons, db.persons.c.email == ANN["email"]) == 0
    assert _count(prt, db.persons, db.persons.c.email == BOB["email"]) == 1
    assert _count(prt, db.cache, db.cache.c.phone == ANN_PHONE) == 0
    assert _count(prt, db.cache, db.cache.c.phone == BOB_PHONE) == 1
    assert _count(prt, db.directory, db.directory.c.phone == ANN_PHONE) == 0
    assert _count(prt, db.directory, db.directory.c.phone == BOB_PHONE) == 1
    # every stored file: no trace of her, bob still there, the same files as before
    after = _objects(prt)
    assert set(after) == set(before)
    for key, body in after.items():
        assert not any(t in body for t in ANN_TRACES), key
    results = after[prt.store.key_of(service.get_run(prt, "ann", upload).result_path)]
    assert BOB_PHONE.encode() in results and b"r0," in results
    credits_csv = after[prt.store.key_of(service.get_run(prt, "ann", upload).credits_csv_path)]
    assert b"r0,found,directory,1,erased" in credits_csv
    # the receipt: what was touched, nothing personal
    assert receipt["runs"] == sorted([upload, api])
    assert (
        receipt["run_records_redacted"] == 2 and receipt["persons_deleted"] == 2
    )  # both users' stores
    assert receipt["directory_rows_deleted"] == 1 and receipt["cache_entries_deleted"] >= 1
    assert set(receipt["objects_rewritten"]) == set(after)
    text = json.dumps(receipt).lower()
    assert "annika" not in text and "lindqvist" not in text and "0101" not in text
    er = db.erasures
    with prt.db.connect() as conn:
        row = conn.execute(sa.select(er.c.subject, er.c.plan)).one()
    assert tuple(row) == ("", None)

    # idempotent: the same erasure again changes nothing; a new one finds nothing left
    assert erasure.run_all(prt, erasure_id) == receipt
    again = erasure.start(prt, "email", ANN["email"], "admin")
    with prt.db.connect() as conn:
        _, second = erasure.status(conn, again)
    assert second["runs"] == [] and second["run_records_redacted"] == 0
    assert _objects(prt) == after

    # the audit log: who asked, what was done (counts), never the identifier
    log = _audit(prt, "erasure")
    assert [a for a, _ in log] == ["erasure_requested", "erasure_done"] * 2
    assert "annika" not in json.dumps([d for _, d in log]).lower()


def test_erasure_by_phone_and_refused_identifiers(prt: Runtime) -> None:
    upload, _api_run = _two_users(prt)
    erasure.start(prt, "phone", "(212) 555-0102", "admin")
    ann_row, bob_row = _records(prt, upload)
    assert bob_row["detail"] == "erased" and bob_row["email"] == "" and bob_row["phone"] == ""
    assert ann_row["phone"] == ANN_PHONE
    assert _count(prt, db.directory, db.directory.c.phone == BOB_PHONE) == 0
    for kind, value in (("email", "not-an-email"), ("phone", "12"), ("name", "Bob")):
        with pytest.raises(InputError):
            erasure.start(prt, kind, value, "admin")


def test_retention_purge_with_a_fake_clock(prt: Runtime) -> None:
    upload, api = _two_users(prt)
    run = service.get_run(prt, "ann", upload)
    assert run.finished_at is not None
    t0 = run.finished_at
    files = set(_objects(prt))
    charges = _charges(prt)
    kept = ("person_id", "status", "source", "credits", "detail")
    outcomes = [[r[k] for k in kept] for r in _records(prt, upload) + _records(prt, api)]

    assert retention.purge(prt, now=t0 + timedelta(days=29))["objects_deleted"] == 0
    assert set(_objects(prt)) == files

    counts = retention.purge(prt, now=t0 + timedelta(days=31), trigger="cli")
    assert counts["runs_files_deleted"] == 2 and counts["objects_deleted"] == len(files)
    assert _objects(prt) == {}
    with pytest.raises(NotFound, match="retention policy"):
        service.download(prt, "ann", upload, "enriched.csv")  # not rebuilt from the records
    with pytest.raises(NotFound, match="retention policy"):
        batches.download_batch(prt, "ann", _batch(prt, upload), "enriched.csv", 1)
    assert _records(prt, upload)[0]["email"] == ANN["email"]  # records: 90 days

    counts = retention.purge(prt, now=t0 + timedelta(days=91))
    assert counts["runs_files_deleted"] == 0  # done already: not counted twice
    assert counts["records_redacted"] == 3 and counts["runs_records_redacted"] == 2
    assert counts["persons_deleted"] == 3  # ann's store (2 from her upload), bob's (1)
    assert counts["cache_entries_deleted"] == 2  # past the cache's 90 days
    for row in _records(prt, upload) + _records(prt, api):
        assert row["email"] == row["phone"] == row["first_name"] == row["identity"] == ""
    assert [[r[k] for k in kept] for r in _records(prt, upload) + _records(prt, api)] == outcomes
    assert _charges(prt) == charges
    assert service.get_run(prt, "ann", upload).counts.found == 2  # counts still add up

    assert retention.purge(prt, now=t0 + timedelta(days=92)) == dict.fromkeys(counts, 0)
    with prt.db.connect() as conn:
        last = retention.last_purges(conn)
    assert [p.trigger for p in last] == ["admin", "admin", "cli", "admin"]
    assert last[1].counts["records_redacted"] == 3 and last[1].finished_at is not None
    assert last[0].policy["records_days"] == 90
    assert [a for a, _ in _audit(prt, "retention")] == ["retention_purge"] * 4


def test_the_default_policy_keeps_everything(tmp_path: Path) -> None:
    rt = memory_runtime(make_settings(tmp_path / "m", waterfall=[], cache_ttl_days=0))
    try:
        rt.sources = [DirectorySource(rt.db, Price("directory", 0, 1))]
        grant(rt, "bob", 100)
        _api(rt, "bob", [ANN])
        drain(rt)
        files = set(_objects(rt))
        counts = retention.purge(rt, now=db.utcnow() + timedelta(days=3650))
        # Only the source's measurement of the lookup goes (400 days by default): no
        # personal data, and not kept unless configured.
        assert counts.pop("source_calls_deleted") == 1
        assert counts == dict.fromkeys(counts, 0) and set(_objects(rt)) == files
    finally:
        rt.close()


def test_erasure_of_a_run_not_processed_yet(prt: Runtime) -> None:
    run_id = _upload(prt, "ann", [ANN, BOB])  # queued, not processed
    erasure.start(prt, "email", ANN["email"], "admin")
    ann_row, bob_row = _records(prt, run_id)
    assert ann_row["status"] == "skipped" and ann_row["detail"] == "erased"
    assert bob_row["status"] is None
    drain(prt)
    ann_row, bob_row = _records(prt, run_id)
    assert (ann_row["status"], ann_row["detail"], ann_row["credits"]) == ("skipped", "erased", 0)
    assert bob_row["status"] == "found"
    for key, body in _objects(prt).items():
        assert not any(t in body for t in ANN_TRACES), key


def test_the_purge_bounds_what_grows_with_every_lookup(prt: Runtime) -> None:
    """Source measurements older than their days and the vendor jobs of runs finished two
    days ago go; a running run's jobs stay whatever their age (it may still poll them)."""
    upload, _ = _two_users(prt)
    now = db.utcnow()
    queued = _api(prt, "bob", [BOB])  # not processed: unfinished
    calls, jobs, links = db.source_calls, db.vendor_jobs, db.vendor_job_records
    before = _count(prt, calls)
    with prt.db.begin() as conn:
        conn.execute(sa.update(calls).values(created_at=now - timedelta(days=401)))
        conn.execute(
            sa.insert(calls),
            [{"source": "x", "status": "found", "created_at": now - timedelta(days=399)}],
        )
        old = now - timedelta(days=3)
        for key, run in (("done", upload), ("running", queued), ("call", "call-1")):
            conn.execute(
                sa.insert(jobs).values(
                    job_key=key, source="fe", run_id=run, state="done", records=1,
                    created_at=old, updated_at=old,
                )
            )  # fmt: skip
            conn.execute(
                sa.insert(links).values(source="fe", run_id=run, record_id="r0", job_key=key)
            )
        conn.execute(
            sa.insert(jobs).values(
                job_key="fresh", source="fe", run_id=upload, state="done", records=1,
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    counts = retention.purge(prt, now=now)
    assert counts["source_calls_deleted"] == before >= 1
    assert counts["vendor_jobs_deleted"] == 2
    assert _count(prt, calls) == 1  # 399 days old: kept
    with prt.db.connect() as conn:
        left = sorted(k for (k,) in conn.execute(sa.select(jobs.c.job_key)))
        linked = sorted(k for (k,) in conn.execute(sa.select(links.c.job_key)))
    assert left == ["fresh", "running"] and linked == ["running"]
    with prt.db.connect() as conn:
        assert retention.last_purges(conn)[0].policy["source_calls_days"] == 400
