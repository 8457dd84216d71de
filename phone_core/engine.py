"""The batch engine: one durable DBOS workflow per run, records processed in waves.

A wave takes the pending records in order and settles, in this order: skipped (not
enrichable / unknown id), in-run duplicates of an already settled record, cache hits
(all free); then as many records as fit the remaining budget at their worst-case cost
go down the waterfall of sources. Outcomes are committed as soon as a record is final,
with its charge, so a crash re-sends at most the lookups that were in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, SetWorkflowID

from phone_core import db, outputs, runs
from phone_core.credits import admissible, worst_case
from phone_core.models import Detail, RecordStatus, RunState, SourceResult
from phone_core.runs import Outcome, PendingRecord
from phone_core.runtime import QUEUE_NAME, Runtime, current
from phone_core.sources.base import FATAL_DETAILS, Lookup, Source
from phone_core.sources.cache import remember

log = logging.getLogger(__name__)

WORKFLOW_NAME = "phone_run"
CANCEL_POLL_SEC = 0.5


def _rt() -> Runtime:
    rt = current()
    if rt is None:
        raise RuntimeError("phone_core runtime is not started in this process")
    return rt


def _free_outcomes(
    pending: Sequence[PendingRecord], settled: dict[int, Outcome]
) -> tuple[list[Outcome], list[PendingRecord]]:
    """Outcomes that cost nothing and need no source; returns (outcomes, leaders to look up)."""
    free: list[Outcome] = []
    leaders: list[PendingRecord] = []
    for rec in pending:
        if not rec.known:
            free.append(Outcome(rec.idx, RecordStatus.SKIPPED, detail=Detail.UNKNOWN_ID.value))
        elif not rec.identity:
            free.append(
                Outcome(rec.idx, RecordStatus.SKIPPED, detail=Detail.MISSING_REQUIRED_FIELDS.value)
            )
        elif rec.dup_of is not None:
            lead = settled.get(rec.dup_of)
            if lead is None:
                continue  # the first occurrence is not settled yet
            if lead.status in (RecordStatus.NOT_PROCESSED, RecordStatus.SKIPPED):
                free.append(Outcome(rec.idx, lead.status, detail=lead.detail))
            else:
                free.append(
                    Outcome(
                        rec.idx,
                        RecordStatus.DUPLICATE,
                        source=lead.source,
                        phone=lead.phone,
                        detail=f"same_as_row_{rec.dup_of + 1}",
                    )
                )
        else:
            leaders.append(rec)
    return free, leaders


class _Tally:
    """Per-record bookkeeping of one waterfall: credits so far, errors, notes."""

    def __init__(self, disabled: dict[str, str]) -> None:
        # A source stopped earlier in the run (401/402) still explains a miss: such records
        # end as error with that detail, not as an ordinary not_found.
        self.stopped = next(iter(disabled.items()), None)
        self.spent: dict[int, int] = {}
        self.errors: dict[int, tuple[str, str]] = {}
        self.notes: dict[int, str] = {}  # why a source found nothing, when not no_match
        self.fatal: dict[str, str] = {}

    def settle(
        self,
        source: str,
        chunk: Sequence[PendingRecord],
        results: Sequence[SourceResult] | None,
        skipped_reason: str | None,
        last: bool,
        carry: list[PendingRecord],
    ) -> list[Outcome]:
        """Outcomes final after this source; the others go to ``carry`` for the next."""
        finals: list[Outcome] = []
        for i, rec in enumerate(chunk):
            res = results[i] if results is not None else None
            if res is None:
                self.errors[rec.idx] = (source, skipped_reason or "")
            else:
                self.spent[rec.idx] = self.spent.get(rec.idx, 0) + res.credits
                if res.status == RecordStatus.FOUND and res.phone:
                    finals.append(
                        Outcome(
                            rec.idx,
                            RecordStatus.FOUND,
                            source,
                            res.phone,
                            self.spent[rec.idx],
                            res.detail,
                        )
                    )
                    continue
                if res.status == RecordStatus.ERROR:
                    self.errors[rec.idx] = (source, res.detail)
                    if res.detail in FATAL_DETAILS:
                        self.fatal.setdefault(source, res.detail)
                elif res.detail and res.detail != Detail.NO_MATCH.value:
                    self.notes.setdefault(rec.idx, res.detail)  # e.g. invalid_phone
            if last:
                finals.append(self.final_miss(rec.idx))
            else:
                carry.append(rec)
        return finals

    def final_miss(self, idx: int) -> Outcome:
        spent = self.spent.get(idx, 0)
        error = self.errors.get(idx) or self.stopped
        if error:
            return Outcome(idx, RecordStatus.ERROR, error[0], "", spent, error[1])
        detail = self.notes.get(idx, Detail.NO_MATCH.value)
        return Outcome(idx, RecordStatus.NOT_FOUND, "", "", spent, detail)


class Wave:
    """One wave of one run. ``run()`` returns True while records remain pending."""

    def __init__(self, rt: Runtime, run_id: str) -> None:
        self.rt = rt
        self.run_id = run_id
        self.newly_disabled: dict[str, str] = {}
        self._cancelled = False
        self._cancel_checked_at = 0.0

    def _commit(self, owner: str, items: Sequence[Outcome], identities: dict[int, str]) -> None:
        if not items:
            return
        with self.rt.engine.begin() as conn:
            runs.apply(conn, self.run_id, owner, items)
            remember(
                conn,
                {
                    identities[o.idx]: (o.phone, o.source)
                    for o in items
                    if o.status == RecordStatus.FOUND and o.phone and identities.get(o.idx)
                },
            )

    async def run(self) -> bool:
        rt = self.rt
        with rt.engine.connect() as conn:
            row = runs.get_row(conn, self.run_id)
            m = row._mapping
            if RunState(m["state"]).finished or m["cancel_requested"]:
                return False
            pending = runs.pending(conn, self.run_id)
            settled = runs.resolved(
                conn, self.run_id, [p.dup_of for p in pending if p.dup_of is not None]
            )
        if not pending:
            return False
        owner = str(m["owner"])
        disabled: dict[str, str] = dict(m["disabled_sources"] or {})
        identities = {p.idx: p.identity for p in pending}
        free, leaders = _free_outcomes(pending, settled)
        leaders = leaders[: rt.settings.wave_size]
        cache_hits: list[Outcome] = []
        misses = leaders
        if rt.cache is not None and leaders:
            results = await rt.cache.lookup_many(
                [Lookup(p.idx, p.person, p.identity) for p in leaders]
            )
            misses = []
            for rec, res in zip(leaders, results, strict=True):
                if res.status == RecordStatus.CACHED and res.phone:
                    cache_hits.append(
                        Outcome(rec.idx, RecordStatus.CACHED, "cache", res.phone, 0, "")
                    )
                else:
                    misses.append(rec)
        if not (free or leaders):  # cannot happen: a duplicate's first occurrence is pending
            log.error("run %s: no record can be settled; closing the run", self.run_id)
            return False
        await asyncio.to_thread(self._commit, owner, free + cache_hits, identities)

        active = [s for s in rt.sources if s.name not in disabled]
        per_record = worst_case([s.price for s in active])
        budget_left = int(m["max_credits"]) - int(m["spent"])
        n = admissible(budget_left, per_record, len(misses))
        if misses and n == 0:
            stopped = [
                Outcome(r.idx, RecordStatus.NOT_PROCESSED, detail=Detail.CREDIT_LIMIT.value)
                for r in misses
            ]
            await asyncio.to_thread(self._commit, owner, stopped, identities)
        elif misses:
            await self._waterfall(owner, misses[:n], active, disabled, identities)
        if self.newly_disabled:
            self._record_disabled(disabled)
        return True

    async def _cancel_requested(self) -> bool:
        """Re-read the run's cancel flag at most every CANCEL_POLL_SEC during a wave."""
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked_at >= CANCEL_POLL_SEC:
            self._cancel_checked_at = now

            def read() -> bool:
                with self.rt.engine.connect() as conn:
                    return bool(runs.get_row(conn, self.run_id)._mapping["cancel_requested"])

            self._cancelled = await asyncio.to_thread(read)
        return self._cancelled

    async def _waterfall(
        self,
        owner: str,
        records: list[PendingRecord],
        sources: Sequence[Source],
        disabled: dict[str, str],
        identities: dict[int, str],
    ) -> None:
        """Send records down the sources in order; each is committed once it is final.

        A source that works per record (``batch_size`` 1, e.g. an HTTP vendor) has its
        in-flight lookups bounded by ``concurrency`` and each held until committed, so a
        crash re-sends at most that many. Records not yet sent when a cancel arrives stay
        pending and end as ``not_processed``/``cancelled``.
        """
        tally = _Tally(disabled)
        remaining = records
        for pos, src in enumerate(sources):
            last = pos == len(sources) - 1
            batch = max(1, int(getattr(src, "batch_size", len(remaining)) or 1))
            limit = asyncio.Semaphore(max(1, int(getattr(src, "concurrency", 1))))
            carry: list[PendingRecord] = []

            async def one_chunk(
                chunk: list[PendingRecord],
                src: Source = src,
                last: bool = last,
                limit: asyncio.Semaphore = limit,
                carry: list[PendingRecord] = carry,
            ) -> None:
                async with limit:  # held until committed: a crash re-sends <= limit
                    if await self._cancel_requested():
                        return
                    reason = self.newly_disabled.get(src.name)
                    results = (
                        None
                        if reason
                        else await src.lookup_many(
                            [Lookup(r.idx, r.person, r.identity) for r in chunk]
                        )
                    )
                    finals = tally.settle(src.name, chunk, results, reason, last, carry)
                    for name, why in tally.fatal.items():
                        self.newly_disabled.setdefault(name, why)
                    await asyncio.to_thread(self._commit, owner, finals, identities)

            chunks = [remaining[i : i + batch] for i in range(0, len(remaining), batch)]
            await asyncio.gather(*(one_chunk(c) for c in chunks))
            remaining = sorted(carry, key=lambda r: r.idx)
        if remaining and not sources:
            finals = [tally.final_miss(r.idx) for r in remaining]
            await asyncio.to_thread(self._commit, owner, finals, identities)

    def _record_disabled(self, disabled: dict[str, str]) -> None:
        merged = {**disabled, **self.newly_disabled}
        notice = "; ".join(f"{name} stopped for this run: {why}" for name, why in merged.items())
        with self.rt.engine.begin() as conn:
            conn.execute(
                sa.update(db.runs)
                .where(db.runs.c.run_id == self.run_id)
                .values(disabled_sources=merged, notice=notice[:1000])
            )


def start_run(rt: Runtime, run_id: str) -> bool:
    """queued -> running; False when the run is already final (e.g. cancelled while queued)."""
    with rt.engine.begin() as conn:
        conn.execute(
            sa.update(db.runs)
            .where(db.runs.c.run_id == run_id, db.runs.c.state == RunState.QUEUED.value)
            .values(state=RunState.RUNNING.value, started_at=db.utcnow())
        )
        state = RunState(runs.get_row(conn, run_id)._mapping["state"])
    return not state.finished


def finish_run(rt: Runtime, run_id: str, failed: bool = False) -> str | None:
    """Settle the final state, write both CSVs to S3, then mark the run final.

    Returns the id of the next run of the same upload group, which starts next.
    """
    with rt.engine.begin() as conn:
        row = runs.get_row(conn, run_id)
        if RunState(row._mapping["state"]).finished:
            return None
        owner = row._mapping["owner"]
        if failed:
            runs.close_pending(conn, run_id, owner, Detail.RUN_FAILED)
            state = RunState.FAILED
        elif row._mapping["cancel_requested"]:
            runs.close_pending(conn, run_id, owner, Detail.CANCELLED)
            state = RunState.CANCELLED
        else:
            runs.close_pending(conn, run_id, owner, Detail.CREDIT_LIMIT)
            state = (
                RunState.CREDIT_LIMIT_REACHED
                if runs.credit_limit_hit(conn, run_id)
                else RunState.COMPLETED
            )
    outputs.write_run_outputs(rt, run_id)
    with rt.engine.begin() as conn:
        nxt = runs.finish(conn, run_id, state)
    log.info("run %s finished: %s", run_id, state.value)
    return nxt


@DBOS.step(name="phone_run_start")
async def _start_step(run_id: str) -> bool:
    return await asyncio.to_thread(start_run, _rt(), run_id)


@DBOS.step(name="phone_run_wave")
async def _wave_step(run_id: str) -> bool:
    return await Wave(_rt(), run_id).run()


@DBOS.step(name="phone_run_finish", retries_allowed=True, max_attempts=5, interval_seconds=1.0)
async def _finish_step(run_id: str, failed: bool) -> str | None:
    return await asyncio.to_thread(finish_run, _rt(), run_id, failed)


@DBOS.step(name="phone_run_exports", retries_allowed=True, max_attempts=3)
async def _exports_step(run_id: str) -> None:
    await asyncio.to_thread(outputs.write_exports, _rt(), run_id)


@DBOS.workflow(name=WORKFLOW_NAME)
async def run_workflow(run_id: str) -> None:
    failed = False
    if await _start_step(run_id):
        try:
            while await _wave_step(run_id):
                pass
        except Exception:
            log.exception("run %s failed in a wave", run_id)
            failed = True
    nxt = await _finish_step(run_id, failed)
    try:
        await _exports_step(run_id)
    except Exception:
        log.exception("run %s: enriched exports not written; built on first download", run_id)
    if nxt:
        with SetWorkflowID(nxt):
            await _rt().queue.enqueue_async(run_workflow, nxt)


def dbos_config(rt: Runtime) -> dict[str, Any]:
    s = rt.settings
    return {
        "name": "phone-enrich",
        "system_database_url": s.system_db_url,
        "application_version": s.app_version,
        "executor_id": s.executor_id,
        "notification_listener_polling_interval_sec": 0.1,
        "log_level": "WARNING",
    }


def launch_dbos(rt: Runtime) -> None:
    """Launch DBOS in this process as a worker: register the run queue, recover, run runs."""
    DBOS(config=dbos_config(rt))  # type: ignore[arg-type]
    DBOS.launch()
    rt.queue = DBOS.register_queue(
        QUEUE_NAME,
        worker_concurrency=rt.settings.queue_concurrency,
        polling_interval_sec=rt.settings.queue_polling_interval_sec,
    )
    rt.dbos_launched = True
    from phone_core.service import requeue_orphans

    requeue_orphans(rt)


def enqueue(rt: Runtime, run_id: str) -> None:
    """Queue the run's workflow (workflow id = run id, so a repeat is a no-op)."""
    if rt.dbos_launched and rt.queue is not None:
        with SetWorkflowID(run_id):
            rt.queue.enqueue(run_workflow, run_id)
        return
    if rt.dbos_client is None:
        DBOS.migrate(rt.settings.system_db_url)  # a client may come before any worker
        rt.dbos_client = DBOSClient(system_database_url=rt.settings.system_db_url)
    rt.dbos_client.enqueue(
        {
            "queue_name": QUEUE_NAME,
            "workflow_name": WORKFLOW_NAME,
            "workflow_id": run_id,
            "app_version": rt.settings.app_version,
        },
        run_id,
    )


def recover(executor_ids: list[str]) -> int:
    """Hand the pending runs of dead executors to this process (scale-out recovery)."""
    handles = DBOS._recover_pending_workflows(executor_ids)
    return len(handles)
