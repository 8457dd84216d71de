"""Erasure (right to be forgotten, issue 13): a person named by email, LinkedIn or phone
is removed from every store, and a receipt says what was touched.

``request`` stores the identifier (normalised) in an ``erasures`` row and returns its id;
the durable workflow (``workflow.erasure_workflow``) or, without DBOS, ``run_all`` gets
only that id. The steps, each idempotent and each recording its result in the row in the
same transaction as its writes (so a step re-run after a crash neither repeats nor
miscounts):

1. ``plan``: find the person's run records (by the identifier, then by every identity
   those records have, so other runs that named the same person by another field are
   found too), their people in every user's person store, the cache keys and phones;
   stored in the row (the identifiers stay in the state DB, never in workflow inputs).
2. ``records``: the records are redacted through ``runs.redact_records`` (id, status and
   charges kept, personal fields blank, detail ``erased``).
3. ``persons``, ``cache``, ``directory``: the person is deleted from each.
4. one ``run_files`` step per affected run and one ``batch_files`` step per batch: the
   stored files (results.csv, credits.csv, the enriched exports that were written, the
   batch's merged versions) are rebuilt from the redacted records.
5. ``finish``: the receipt (counts, run ids, object keys: no personal data) is kept, the
   identifier and the plan are blanked; only a SHA-256 of the identifier stays, so a
   later request for the same person can be matched to this one.

This module alone writes ``erasures``.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import audit_hook, batch_files, batch_views, db, engine, persons, runs
from phone_core.errors import InputError, NotFound
from phone_core.models import OUTPUT_FILES
from phone_core.phones import to_e164
from phone_core.records import normalize_email, normalize_linkedin
from phone_core.runtime import Runtime
from phone_core.sources import cache, directory
from phone_core.storage import output_key

log = logging.getLogger(__name__)

KINDS = ("email", "linkedin", "phone")
PENDING, RUNNING, DONE = "pending", "running", "done"
WORKFLOW_NAME = "phone_erasure"
SIMPLE_STEPS = ("records", "persons", "cache", "directory")
et = db.erasures
rr = db.run_records
_CHUNK = 400


def normalise(kind: str, value: str, region: str = "US") -> str:
    """The identifier as the stores keep it, or InputError saying what is wrong."""
    if kind == "email":
        out = normalize_email(value)
    elif kind == "linkedin":
        out = normalize_linkedin(value)
    elif kind == "phone":
        out = to_e164(value, region) or ""
    else:
        raise InputError(f"erase by one of {', '.join(KINDS)}")
    if not out:
        what = {"email": "an email address", "linkedin": "a LinkedIn profile URL or slug"}
        raise InputError(f"this is not {what.get(kind, 'a valid phone number')}")
    return out


def subject_hash(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def request(conn: Connection, kind: str, value: str, requested_by: str, region: str = "US") -> str:
    """A new erasure of this person (or the one already under way for them); its id."""
    subject = normalise(kind, value, region)
    digest = subject_hash(kind, subject)
    open_one = conn.execute(
        sa.select(et.c.id).where(et.c.subject_hash == digest, et.c.state != DONE)
    ).scalar()
    if open_one:
        return str(open_one)
    erasure_id = uuid.uuid4().hex
    conn.execute(
        sa.insert(et).values(
            id=erasure_id,
            kind=kind,
            subject=subject,
            subject_hash=digest,
            requested_by=requested_by[:200],
            state=PENDING,
            receipt={},
            requested_at=db.utcnow(),
        )
    )
    return erasure_id


def _row(conn: Connection, erasure_id: str) -> dict[str, Any]:
    row = conn.execute(sa.select(et).where(et.c.id == erasure_id)).first()
    if row is None:
        raise NotFound(f"erasure {erasure_id} not found")
    return dict(row._mapping)


def _save(conn: Connection, erasure_id: str, **values: Any) -> None:
    conn.execute(sa.update(et).where(et.c.id == erasure_id).values(**values))


# --- 1. plan ---------------------------------------------------------------------------------


def _records(conn: Connection, cond: Any) -> list[dict[str, Any]]:
    r = db.runs
    stmt = (
        sa.select(rr.c.run_id, rr.c.idx, rr.c.person_id, rr.c.identity, rr.c.phone, r.c.owner)
        .join(r, r.c.run_id == rr.c.run_id)
        .where(cond)
    )
    return [dict(m._mapping) for m in conn.execute(stmt)]


def _in(column: Any, values: set[str]) -> list[Any]:
    wanted = sorted(v for v in values if v)
    return [column.in_(wanted[i : i + _CHUNK]) for i in range(0, len(wanted), _CHUNK)]


def _find(conn: Connection, kind: str, subject: str) -> dict[str, Any]:
    emails = {subject} if kind == "email" else set()
    linkedins = {subject} if kind == "linkedin" else set()
    phones = {subject} if kind == "phone" else set()
    identities = {f"em:{e}" for e in emails} | {f"li:{s}" for s in linkedins}
    conds = (
        _in(rr.c.email, emails)
        + _in(rr.c.linkedin, linkedins)
        + _in(rr.c.phone, phones)
        + _in(rr.c.identity, identities)
    )
    found = {(m["run_id"], m["idx"]): m for m in _records(conn, sa.or_(*conds))}
    identities |= {m["identity"] for m in found.values() if m["identity"]}
    for cond in _in(rr.c.identity, identities):  # the same person in other runs
        found.update({(m["run_id"], m["idx"]): m for m in _records(conn, cond)})
    by_run: dict[str, list[int]] = {}
    for run_id, idx in sorted(found):
        by_run.setdefault(run_id, []).append(idx)
    owners = {m["owner"] for m in found.values()}
    people = {(m["owner"], m["person_id"]) for m in found.values() if m["person_id"]}
    people |= set(persons.matching(conn, sorted(emails), sorted(linkedins)))
    found_phones = {m["phone"] for m in found.values() if m["phone"]}
    keys = set(identities) | {cache.cache_key(i, o, cache.USER) for i in identities for o in owners}
    batches = sorted(
        {batch_views.batch_of_run(conn, run_id) for run_id in by_run}  # ids only
    )
    return {
        "records": by_run,
        "batches": batches,
        "persons": sorted([list(p) for p in people]),
        "cache_keys": sorted(keys),
        "cache_phones": sorted(phones | found_phones),
        "emails": sorted(emails),
        "linkedins": sorted(linkedins),
        "phones": sorted(phones),
        "identities": sorted(identities),
    }


def plan(rt: Runtime, erasure_id: str) -> dict[str, list[str]]:
    """Step 1 (idempotent): what to erase, stored in the row; returns only ids (the runs
    and batches whose files are rewritten), which is what a workflow may checkpoint."""
    with rt.db.begin() as conn:
        row = _row(conn, erasure_id)
        stored = row["plan"]
        if row["state"] == DONE:
            stored = {"records": {}, "batches": []}
        elif not stored:
            stored = _find(conn, str(row["kind"]), str(row["subject"]))
            _save(conn, erasure_id, plan=stored, state=RUNNING)
    return {"runs": sorted(stored["records"]), "batches": list(stored["batches"])}


# --- 2, 3. the stores ------------------------------------------------------------------------


def _apply(conn: Connection, step: str, p: dict[str, Any]) -> int:
    if step == "records":
        return sum(
            runs.redact_records(conn, run_id, idxs, detail=runs.ERASED)
            for run_id, idxs in p["records"].items()
        )
    if step == "persons":
        return persons.delete(conn, [(o, i) for o, i in p["persons"]])
    if step == "cache":
        return cache.forget(conn, p["cache_keys"], p["cache_phones"])
    if step == "directory":
        return directory.forget(
            conn,
            emails=p["emails"],
            linkedins=p["linkedins"],
            phones=p["phones"],
            identities=p["identities"],
        )
    raise ValueError(f"unknown erasure step {step}")


def run_step(rt: Runtime, erasure_id: str, step: str) -> None:
    """One of ``SIMPLE_STEPS``: its writes and its count in one transaction, once."""
    with rt.db.begin() as conn:
        row = _row(conn, erasure_id)
        receipt = dict(row["receipt"] or {})
        if row["state"] == DONE or step in receipt:
            return
        receipt[step] = _apply(conn, step, dict(row["plan"] or {}))
        _save(conn, erasure_id, receipt=receipt)


# --- 4. stored files -------------------------------------------------------------------------


def run_final(rt: Runtime, run_id: str) -> bool:
    """Whether the run has finished (its files are written): the durable workflow waits
    for a run still going before rewriting its files, so a run that read its records
    just before they were redacted cannot leave files with the person in them."""
    with rt.db.connect() as conn:
        return runs.get(conn, run_id).state.finished


def _rewrite_run(rt: Runtime, run_id: str) -> list[str]:
    with rt.db.connect() as conn:
        row = runs.get(conn, run_id)
    if not row.state.finished or row.outputs_deleted_at is not None:
        return []  # still running (it writes its files from the redacted records) or gone
    engine.publish_contract_files(rt, row)
    touched = [rt.store.key_of(row.result_path), rt.store.key_of(row.credits_path)]
    for name, spec in OUTPUT_FILES.items():
        if spec.contract:
            continue
        key = output_key(rt.store, row.result_path, name)
        if not rt.store.exists(key):
            continue  # never written: built from the redacted records on download
        try:
            engine.publish_exports(rt, run_id, only=name)
        except Exception:
            rt.store.delete(key)  # cannot be rebuilt now: the old one must not stay
        touched.append(key)
    return touched


def _rewrite_batch(rt: Runtime, batch_id: str) -> list[str]:
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_id)
    if not rows or any(r.outputs_deleted_at is not None for r in rows):
        return []
    done, failed = batch_files.rewrite(rt, rows)
    return done + failed  # a file that cannot be rebuilt now is removed


def rewrite_files(rt: Runtime, erasure_id: str, kind: str, target: str) -> None:
    """Step 4 for one run (``kind`` run_files) or batch (batch_files): rebuild its stored
    files from the redacted records (idempotent), then note the keys in the receipt."""
    with rt.db.connect() as conn:
        row = _row(conn, erasure_id)
    done = dict(row["receipt"] or {}).get(kind, {})
    if row["state"] == DONE or target in done:
        return
    pause = rt.settings.erasure_pause_sec
    if pause:
        time.sleep(pause)
    touched = _rewrite_run(rt, target) if kind == "run_files" else _rewrite_batch(rt, target)
    with rt.db.begin() as conn:
        receipt = dict(_row(conn, erasure_id)["receipt"] or {})
        receipt[kind] = {**receipt.get(kind, {}), target: touched}
        _save(conn, erasure_id, receipt=receipt)


# --- 5. finish -------------------------------------------------------------------------------


def finish(rt: Runtime, erasure_id: str) -> dict[str, Any]:
    """The receipt; the identifier and the plan are blanked (idempotent)."""
    with rt.db.begin() as conn:
        row = _row(conn, erasure_id)
        if row["state"] == DONE:
            return dict(row["receipt"] or {})
        steps = dict(row["receipt"] or {})
        p = dict(row["plan"] or {})
        run_files: dict[str, list[str]] = steps.get("run_files", {})
        batch_files_: dict[str, list[str]] = steps.get("batch_files", {})
        finished_at = db.utcnow()
        receipt = {
            "erasure_id": erasure_id,
            "kind": row["kind"],
            "subject_sha256": row["subject_hash"],
            "requested_by": row["requested_by"],
            "requested_at": row["requested_at"].isoformat(timespec="seconds") + "Z",
            "finished_at": finished_at.isoformat(timespec="seconds") + "Z",
            "run_records_redacted": int(steps.get("records", 0)),
            "runs": sorted(p.get("records", {})),
            "batches": list(p.get("batches", [])),
            "persons_deleted": int(steps.get("persons", 0)),
            "cache_entries_deleted": int(steps.get("cache", 0)),
            "directory_rows_deleted": int(steps.get("directory", 0)),
            "objects_rewritten": sorted(
                {k for keys in [*run_files.values(), *batch_files_.values()] for k in keys}
            ),
        }
        _save(
            conn,
            erasure_id,
            state=DONE,
            subject="",
            plan=None,
            receipt=receipt,
            finished_at=finished_at,
        )
    counts = {k: v for k, v in receipt.items() if isinstance(v, int)}
    audit_hook.record(
        rt.db,
        actor=str(row["requested_by"]),
        action=audit_hook.ERASURE_DONE,
        target=f"erasure:{erasure_id}",
        detail={**counts, "runs": len(receipt["runs"])},
    )
    log.info("erasure %s done: %s", erasure_id, counts)
    return receipt


def run_all(rt: Runtime, erasure_id: str) -> dict[str, Any]:
    """Every step in this process (the fast tier and installs without a worker); the
    durable workflow calls the same steps, checkpointed."""
    targets = plan(rt, erasure_id)
    for step in SIMPLE_STEPS:
        run_step(rt, erasure_id, step)
    for run_id in targets["runs"]:
        rewrite_files(rt, erasure_id, "run_files", run_id)
    for batch_id in targets["batches"]:
        rewrite_files(rt, erasure_id, "batch_files", batch_id)
    return finish(rt, erasure_id)


def start(rt: Runtime, kind: str, value: str, requested_by: str) -> str:
    """Request an erasure and start it: on the durable queue when this process has one
    (``enqueue_workflow``), else here and now. Returns its id."""
    with rt.db.begin() as conn:
        erasure_id = request(conn, kind, value, requested_by, rt.settings.default_region)
    audit_hook.record(
        rt.db,
        actor=requested_by,
        action=audit_hook.ERASURE_REQUESTED,
        target=f"erasure:{erasure_id}",
        detail={"kind": kind},
    )
    enqueue = getattr(rt.queue, "enqueue_workflow", None)
    if enqueue is None:
        run_all(rt, erasure_id)
    else:
        enqueue(WORKFLOW_NAME, f"erasure-{erasure_id}", erasure_id)
    return erasure_id


def status(conn: Connection, erasure_id: str) -> tuple[str, dict[str, Any]]:
    """(state, receipt so far) of an erasure: never its identifier."""
    row = _row(conn, erasure_id)
    return str(row["state"]), dict(row["receipt"] or {})


def unfinished(conn: Connection) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(et).where(et.c.state != DONE)).scalar()
        or 0
    )


def recent(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The latest erasures' receipts (or states), newest first: no identifiers."""
    rows = conn.execute(
        sa.select(
            et.c.id, et.c.kind, et.c.state, et.c.requested_by, et.c.requested_at, et.c.receipt
        )
        .order_by(et.c.requested_at.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
