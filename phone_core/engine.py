"""The batch algorithm: a run's records processed in waves, then its outputs published.

No DBOS here: ``workflow`` makes each step durable, ``inline`` runs the same steps in
process (the fast tier).

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
from datetime import datetime

from sqlalchemy.engine import Connection

from phone_core import (
    batch_files,
    notify,
    outputs,
    run_views,
    runs,
    source_stats,
    suppression,
)
from phone_core.credits import admissible, worst_case
from phone_core.errors import RETENTION_DELETED, ExportError, NotFound, redacted_trace
from phone_core.models import (
    CREDITS_FILE,
    OUTPUT_FILES,
    RESULTS_FILE,
    Detail,
    Person,
    RecordStatus,
    RunState,
    SourceResult,
)
from phone_core.runs import Outcome, PendingRecord, RunRow
from phone_core.runtime import Runtime
from phone_core.sources.base import FATAL_DETAILS, Lookup, Source, current_run_id
from phone_core.sources.cache import cache_key, remember
from phone_core.storage import output_key

log = logging.getLogger(__name__)

CANCEL_POLL_SEC = 0.5
LINGER_SEC = 0.2  # how long a batch source waits to fill a chunk once a slot is free


def _first(error: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


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
            elif lead.status == RecordStatus.SUPPRESSED:  # withheld: so is its duplicate
                free.append(
                    Outcome(rec.idx, lead.status, lead.source, "", 0, lead.detail, lead.detail)
                )
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
        self.found_meta: dict[int, tuple[str, datetime | None]] = {}  # line type, verified

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
                    self.found_meta[rec.idx] = (res.line_type, res.verified_at)
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


def calls_of(
    source: str, results: Sequence[SourceResult], elapsed_sec: float
) -> list[source_stats.Call]:
    """What ``source_stats`` records of one call to a source: per record its answer, its
    charge and its latency (the adapter's ``raw["latency_ms"]`` if it gives one, else the
    call's time shared by its records)."""
    share = elapsed_sec * 1000 / max(1, len(results))
    out = []
    for res in results:
        reported = res.raw.get("latency_ms") if res.raw else None
        latency = reported if isinstance(reported, int | float) else share
        out.append(
            source_stats.Call(source, res.status.value, res.detail, res.credits, int(latency))
        )
    return out


class Wave:
    """One wave of one run. ``run()`` returns True while records remain pending."""

    def __init__(self, rt: Runtime, run_id: str) -> None:
        self.rt = rt
        self.run_id = run_id
        self.newly_disabled: dict[str, str] = {}
        self._cancelled = False
        self._cancel_checked_at = 0.0
        self._people: dict[int, Person] = {}

    def _commit(
        self,
        owner: str,
        items: Sequence[Outcome],
        cache_keys: dict[int, str],
        meta: dict[int, tuple[str, datetime | None]] | None = None,
        calls: Sequence[source_stats.Call] = (),
    ) -> None:
        """Settle ``items`` with their charges, in one transaction: the suppression check
        (after the waterfall and the cache, before charging) decides what is settled; the
        cache remembers what the sources found either way (with ``meta``: line type and
        when it was verified); ``calls``: what each source was asked, for its measurement."""
        if not items and not calls:
            return
        found = [
            o for o in items if o.status == RecordStatus.FOUND and o.phone and cache_keys.get(o.idx)
        ]
        with self.rt.db.begin() as conn:
            source_stats.record(conn, self.run_id, calls)
            settled = suppression.screen(conn, items, self._people, self.rt.settings.dnc_mode)
            runs.apply(conn, self.run_id, owner, settled)
            remember(
                conn,
                {cache_keys[o.idx]: (o.phone, o.source) for o in found},
                {cache_keys[o.idx]: meta[o.idx] for o in found if meta and o.idx in meta},
            )

    async def run(self) -> bool:
        rt = self.rt
        with rt.db.connect() as conn:
            row = runs.get(conn, self.run_id)
            if row.state.finished or row.cancel_requested:
                return False
            pending = runs.pending(conn, self.run_id)
            settled = runs.resolved(
                conn, self.run_id, [p.dup_of for p in pending if p.dup_of is not None]
            )
        if not pending:
            return False
        self._people = {p.idx: p.person for p in pending}
        owner = row.owner
        disabled = row.disabled_sources
        scope = rt.settings.cache_scope
        cache_keys = {p.idx: cache_key(p.identity, owner, scope) for p in pending}
        free, leaders = _free_outcomes(pending, settled)
        leaders = leaders[: rt.settings.wave_size]
        cache_hits: list[Outcome] = []
        misses = leaders
        if rt.cache is not None and leaders:
            results = await rt.cache.lookup_many(
                [Lookup(p.idx, p.person, cache_keys[p.idx]) for p in leaders]
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
        await asyncio.to_thread(self._commit, owner, free + cache_hits, cache_keys)

        chosen = await asyncio.to_thread(rt.sources_for, row.sources)  # may re-read the config
        active = [s for s in chosen if s.name not in disabled]
        per_record = worst_case([s.price for s in active])
        n = admissible(row.budget_left, per_record, len(misses))
        if misses and n == 0:
            stopped = [
                Outcome(r.idx, RecordStatus.NOT_PROCESSED, detail=Detail.CREDIT_LIMIT.value)
                for r in misses
            ]
            await asyncio.to_thread(self._commit, owner, stopped, cache_keys)
        elif misses:
            token = current_run_id.set(self.run_id)  # sources that checkpoint per run
            try:
                await self._waterfall(owner, misses[:n], active, disabled, cache_keys)
            finally:
                current_run_id.reset(token)
        if self.newly_disabled:
            self._record_disabled(disabled)
        return True

    async def _cancel_requested(self) -> bool:
        """Re-read the run's cancel flag at most every CANCEL_POLL_SEC during a wave."""
        now = time.monotonic()
        if not self._cancelled and now - self._cancel_checked_at >= CANCEL_POLL_SEC:
            self._cancel_checked_at = now

            def read() -> bool:
                with self.rt.db.connect() as conn:
                    return runs.cancel_requested(conn, self.run_id)

            self._cancelled = await asyncio.to_thread(read)
        return self._cancelled

    async def _waterfall(
        self,
        owner: str,
        records: list[PendingRecord],
        sources: Sequence[Source],
        disabled: dict[str, str],
        cache_keys: dict[int, str],
    ) -> None:
        """Send records down the sources in order; each is committed once it is final.

        The sources work at the same time on different records: a record a source did
        not find goes on to the next source at once, so each vendor is bound only by its
        own rate and concurrency (the wave takes about as long as its slowest vendor, not
        the sum of them). A source takes records in chunks of its ``batch_size`` (all it
        has, without one): a chunk leaves when it is full, when nothing more can come, or
        ``LINGER_SEC`` after a slot freed up. Its chunks in flight are bounded by
        ``concurrency`` and each held until committed, so a crash re-sends at most that
        many. Records not yet sent when a cancel arrives stay pending and end as
        ``not_processed``/``cancelled``.
        """
        tally = _Tally(disabled)
        if not sources:
            if records:
                finals = [tally.final_miss(r.idx) for r in records]
                await asyncio.to_thread(self._commit, owner, finals, cache_keys)
            return
        queues: list[asyncio.Queue[PendingRecord | None]] = [asyncio.Queue() for _ in sources]
        for rec in records:
            queues[0].put_nowait(rec)
        queues[0].put_nowait(None)  # nothing more will come
        try:
            async with asyncio.TaskGroup() as group:
                for pos, src in enumerate(sources):
                    nxt = queues[pos + 1] if pos + 1 < len(sources) else None
                    group.create_task(self._feed(src, queues[pos], nxt, tally, owner, cache_keys))
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None

    async def _feed(
        self,
        src: Source,
        inbox: asyncio.Queue[PendingRecord | None],
        nxt: asyncio.Queue[PendingRecord | None] | None,
        tally: _Tally,
        owner: str,
        cache_keys: dict[int, str],
    ) -> None:
        """One source's share of the waterfall: chunks from ``inbox``, misses to ``nxt``."""
        batch = max(1, int(getattr(src, "batch_size", 0) or 1 << 30))
        linger = LINGER_SEC if batch > 1 else 0.0
        limit = asyncio.Semaphore(max(1, int(getattr(src, "concurrency", 1))))
        last = nxt is None
        loop = asyncio.get_running_loop()

        async def one_chunk(chunk: list[PendingRecord]) -> None:
            try:  # the slot is held until committed: a crash re-sends <= limit
                if await self._cancel_requested():
                    return
                reason = self.newly_disabled.get(src.name)
                results = None
                calls: list[source_stats.Call] = []
                if not reason:
                    began = time.monotonic()
                    results = await src.lookup_many(
                        [Lookup(r.idx, r.person, r.identity) for r in chunk]
                    )
                    calls = calls_of(src.name, results, time.monotonic() - began)
                carry: list[PendingRecord] = []
                finals = tally.settle(src.name, chunk, results, reason, last, carry)
                for name, why in tally.fatal.items():
                    self.newly_disabled.setdefault(name, why)
                await asyncio.to_thread(
                    self._commit, owner, finals, cache_keys, tally.found_meta, calls
                )
                if nxt is not None:
                    for rec in sorted(carry, key=lambda r: r.idx):
                        nxt.put_nowait(rec)
            finally:
                limit.release()

        async with asyncio.TaskGroup() as chunks:
            done = False
            while not done:
                first = await inbox.get()
                if first is None:
                    break
                await limit.acquire()
                chunk = [first]
                deadline = loop.time() + linger
                while len(chunk) < batch:
                    if not inbox.empty():
                        item = inbox.get_nowait()
                    else:
                        left = deadline - loop.time()
                        if left <= 0:
                            break
                        try:
                            item = await asyncio.wait_for(inbox.get(), left)
                        except TimeoutError:
                            break
                    if item is None:
                        done = True
                        break
                    chunk.append(item)
                chunks.create_task(one_chunk(chunk))
        if nxt is not None:
            nxt.put_nowait(None)

    def _record_disabled(self, disabled: dict[str, str]) -> None:
        with self.rt.db.begin() as conn:
            runs.record_disabled_sources(conn, self.run_id, {**disabled, **self.newly_disabled})


def start_run(rt: Runtime, run_id: str) -> bool:
    """queued -> running; False when the run is already final (e.g. cancelled while queued)."""
    with rt.db.begin() as conn:
        return not runs.start(conn, run_id).state.finished


def _final_state(conn: Connection, row: RunRow, failed: bool) -> RunState:
    if failed:
        runs.close_pending(conn, row.run_id, Detail.RUN_FAILED)
        return RunState.FAILED
    if row.cancel_requested:
        runs.close_pending(conn, row.run_id, Detail.CANCELLED)
        return RunState.CANCELLED
    runs.close_pending(conn, row.run_id, Detail.CREDIT_LIMIT)
    if runs.credit_limit_hit(conn, row.run_id):
        return RunState.CREDIT_LIMIT_REACHED
    return RunState.COMPLETED


def finish_run(rt: Runtime, run_id: str, failed: bool = False) -> str | None:
    """Settle the final state, write both CSVs to S3, then mark the run final and
    queue the notification of its batch, if it ends one (``notify``).

    Returns the id of the next run of the same upload group, which starts next.
    """
    with rt.db.begin() as conn:
        row = runs.get(conn, run_id)
        state = None if row.state.finished else _final_state(conn, row, failed)
    if state is None:
        # Finished already (this step again after a crash): its notification may not be
        # queued yet, and queueing it is idempotent.
        notify.batch_finished(rt, run_id)
        notify.run_finished(rt, run_id)
        return None
    publish_contract_files(rt, row)
    with rt.db.begin() as conn:
        nxt = runs.finish(conn, run_id, state)
    log.info("run %s finished: %s", run_id, state.value)
    notify.batch_finished(rt, run_id)  # when this run ends its batch; never raises
    notify.run_finished(rt, run_id)  # the run's own webhook (API), if it has one
    return nxt


def publish_contract_files(rt: Runtime, row: RunRow) -> None:
    """results.csv and credits.csv (whatever is processed) at the URIs stored on the run."""
    with rt.db.connect() as conn:
        items = run_views.outcomes(conn, row.run_id)
    files = outputs.contract_files(items)
    rt.store.put(rt.store.key_of(row.result_path), files[RESULTS_FILE.name], RESULTS_FILE.mime)
    rt.store.put(rt.store.key_of(row.credits_path), files[CREDITS_FILE.name], CREDITS_FILE.mime)


def publish_exports(rt: Runtime, run_id: str, only: str | None = None) -> dict[str, bytes]:
    """Build the enriched exports of a finished run and write them beside its results.

    Each file is built on its own, so one that cannot be built (e.g. too many columns for
    Excel) never blocks the other; with ``only`` just that file is built, and its
    ExportError is raised for the caller to show. Written just after the run ends, or on
    the first download if that comes sooner. Returns what was built.
    """
    with rt.db.connect() as conn:
        row = runs.get(conn, run_id)
        items = run_views.outcomes(conn, run_id)
    if row.outputs_deleted_at is not None:
        raise NotFound(RETENTION_DELETED)
    ctx = outputs.ExportContext(source_delimiter=row.source_delimiter)
    built: dict[str, bytes] = {}
    for name, build in outputs.EXPORT_BUILDERS.items():
        if only is not None and name != only:
            continue
        try:
            body = build(items, ctx)
        except Exception as exc:
            log.warning("run %s: %s not built: %s", run_id, name, redacted_trace(exc))
            if only is None:
                continue
            if isinstance(exc, ExportError):
                raise
            label = OUTPUT_FILES[name].label
            raise ExportError(f"the {label} file could not be built for this run") from exc
        rt.store.put(output_key(rt.store, row.result_path, name), body, OUTPUT_FILES[name].mime)
        built[name] = body
    if only is None:
        try:
            batch_files.publish_ready(rt, run_id)
        except Exception as exc:  # built on download instead
            log.warning("run %s: batch files not written: %s", run_id, redacted_trace(exc))
    return built


async def process_run(rt: Runtime, run_id: str) -> str | None:
    """The whole run in this process, without checkpoints: the steps of the durable
    workflow in the same order. Returns the next run of its upload, if any."""
    failed = False
    if await asyncio.to_thread(start_run, rt, run_id):
        try:
            while await Wave(rt, run_id).run():
                pass
        except Exception as exc:
            log.error("run %s failed in a wave: %s", run_id, redacted_trace(exc))
            failed = True
    nxt = await asyncio.to_thread(finish_run, rt, run_id, failed)
    try:
        await asyncio.to_thread(publish_exports, rt, run_id)
    except Exception as exc:
        log.warning(
            "run %s: exports not written; built on download: %s", run_id, redacted_trace(exc)
        )
    return nxt
