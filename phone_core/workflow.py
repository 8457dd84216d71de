"""The DBOS adapter: the durable run workflow, its steps, launch, and the run queues.

One workflow per run (workflow id = run id), made of checkpointed steps that call the
batch algorithm in ``engine``. A worker process launches DBOS and queues through the
registered queue (``DbosRunQueue``); a process that only submits queues through a
``DBOSClient`` (``DbosClientQueue``). Workflow and step inputs are run ids only: no
personal data is ever stored in the DBOS system database.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS, DBOSClient, SetWorkflowID
from dbos import _dbos as dbos_internals

from phone_core import engine, erasure, retention
from phone_core.errors import redacted_trace
from phone_core.runtime import Runtime
from phone_core.settings import Settings

log = logging.getLogger(__name__)

QUEUE_NAME = "phone_runs"
WORKFLOW_NAME = "phone_run"

# The runtime the steps of this process use; set by ``launch`` (one worker per process).
_bound: list[Runtime] = []
_closed = threading.Event()  # this process's worker was shut down (it may launch again)


def _rt() -> Runtime:
    if not _bound:
        if _closed.is_set():
            # A run the shutdown did not reach in time (a step about to start as DBOS
            # stopped): it must not fail for that. Cancelled, its workflow stays PENDING
            # and resumes from its last checkpoint on the next start.
            raise asyncio.CancelledError("the worker of this process has shut down")
        raise RuntimeError("DBOS is not launched in this process")
    return _bound[0]


def _shutting_down() -> bool:
    return _closed.is_set() or bool(_bound and _bound[0].closing)


class StepFailed(Exception):
    """Raised by a step instead of the error it met, with that error's type name only:
    DBOS logs and stores a step's exception, and a message from a parser or driver can
    carry cell values (personal data). The full stack, without the message, is logged."""


def _scrubbed(run_id: str, step: str, exc: Exception) -> BaseException:
    """The error a failed step raises: ``StepFailed`` (the run fails), or, when this
    process is shutting down (its sources' clients closing under the step), a
    cancellation: the run is not failed for that, its workflow stays PENDING and resumes
    from its last checkpoint on the next start."""
    if _shutting_down():
        log.info("run %s: step %s interrupted by the shutdown", run_id, step)
        return asyncio.CancelledError("the worker of this process is shutting down")
    log.error("run %s: step %s failed: %s", run_id, step, redacted_trace(exc))
    return StepFailed(type(exc).__name__)


@DBOS.step(name="phone_run_start")
async def _start_step(run_id: str) -> bool:
    try:
        return await asyncio.to_thread(engine.start_run, _rt(), run_id)
    except Exception as exc:
        raise _scrubbed(run_id, "start", exc) from None


@DBOS.step(name="phone_run_wave")
async def _wave_step(run_id: str) -> bool:
    try:
        return await engine.Wave(_rt(), run_id).run()
    except Exception as exc:
        raise _scrubbed(run_id, "wave", exc) from None


@DBOS.step(name="phone_run_finish", retries_allowed=True, max_attempts=5, interval_seconds=1.0)
async def _finish_step(run_id: str, failed: bool) -> str | None:
    try:
        return await asyncio.to_thread(engine.finish_run, _rt(), run_id, failed)
    except Exception as exc:
        raise _scrubbed(run_id, "finish", exc) from None


@DBOS.step(name="phone_run_exports", retries_allowed=True, max_attempts=3)
async def _exports_step(run_id: str) -> None:
    try:
        await asyncio.to_thread(engine.publish_exports, _rt(), run_id)
    except Exception as exc:
        raise _scrubbed(run_id, "exports", exc) from None


# The workflow tasks running in this process, with their loops: a shutdown interrupts
# them (each step is atomic; the run resumes from its last checkpoint on the next start).
_running: set[tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = set()


@DBOS.workflow(name=WORKFLOW_NAME)
async def run_workflow(run_id: str) -> None:
    """The durable twin of ``engine.process_run``: the same steps, each checkpointed."""
    task = asyncio.current_task()
    entry = (asyncio.get_running_loop(), task) if task is not None else None
    if entry:
        _running.add(entry)
    try:
        await _run_steps(run_id)
    finally:
        if entry:
            _running.discard(entry)


async def _run_steps(run_id: str) -> None:
    failed = False
    if await _start_step(run_id):
        try:
            while await _wave_step(run_id):
                pass
        except StepFailed:
            failed = True  # logged by the step
    nxt = await _finish_step(run_id, failed)
    try:
        await _exports_step(run_id)
    except StepFailed:
        log.warning("run %s: exports not written now; they are built on download", run_id)
    if nxt:
        with SetWorkflowID(nxt):
            await _queue().enqueue_async(run_workflow, nxt)


# --- privacy jobs (issue 13): erasure and the daily retention purge -------------------------
# Inputs are an erasure id (the identifier stays in the state DB) or the scheduled time;
# step results are run and batch ids only.

RETENTION_WORKFLOW = "phone_retention_purge"
RETENTION_SCHEDULE = "phone_retention_daily"


@DBOS.step(name="phone_erasure_plan", retries_allowed=True, max_attempts=3)
async def _erasure_plan_step(erasure_id: str) -> dict[str, list[str]]:
    try:
        return await asyncio.to_thread(erasure.plan, _rt(), erasure_id)
    except Exception as exc:
        raise _scrubbed(erasure_id, "erasure plan", exc) from None


@DBOS.step(name="phone_erasure_step", retries_allowed=True, max_attempts=5, interval_seconds=1.0)
async def _erasure_step(erasure_id: str, step: str, target: str) -> None:
    rt = _rt()
    try:
        if step in erasure.SIMPLE_STEPS:
            await asyncio.to_thread(erasure.run_step, rt, erasure_id, step)
        elif step == "finish":
            await asyncio.to_thread(erasure.finish, rt, erasure_id)
        else:
            await asyncio.to_thread(erasure.rewrite_files, rt, erasure_id, step, target)
    except Exception as exc:
        raise _scrubbed(erasure_id, f"erasure {step}", exc) from None


ERASURE_RUN_WAIT_SEC = 15.0
ERASURE_RUN_WAITS = 24 * 3600 // 15  # then its files are rewritten anyway


@DBOS.step(name="phone_erasure_run_final", retries_allowed=True, max_attempts=5)
async def _erasure_run_final_step(run_id: str) -> bool:
    try:
        return await asyncio.to_thread(erasure.run_final, _rt(), run_id)
    except Exception as exc:
        raise _scrubbed(run_id, "erasure wait", exc) from None


@DBOS.workflow(name=erasure.WORKFLOW_NAME)
async def erasure_workflow(erasure_id: str) -> None:
    """``erasure.run_all``, each step checkpointed: a crash resumes after the last one."""
    targets = await _erasure_plan_step(erasure_id)
    for step in erasure.SIMPLE_STEPS:
        await _erasure_step(erasure_id, step, "")
    for run_id in targets["runs"]:
        for _ in range(ERASURE_RUN_WAITS):  # a run still going: its files come at its end
            if await _erasure_run_final_step(run_id):
                break
            await DBOS.sleep_async(ERASURE_RUN_WAIT_SEC)
        await _erasure_step(erasure_id, "run_files", run_id)
    for batch_id in targets["batches"]:
        await _erasure_step(erasure_id, "batch_files", batch_id)
    await _erasure_step(erasure_id, "finish", "")


@DBOS.step(name="phone_retention_step", retries_allowed=True, max_attempts=3, interval_seconds=5.0)
async def _retention_step(as_of: str) -> dict[str, int]:
    try:
        now = datetime.fromisoformat(as_of)
        return await asyncio.to_thread(retention.purge, _rt(), now=now, trigger="schedule")
    except Exception as exc:
        raise _scrubbed("retention", "purge", exc) from None


@DBOS.workflow(name=RETENTION_WORKFLOW)
async def retention_workflow(scheduled_at: datetime, context: Any) -> None:
    """The daily purge (``PHONE_RETENTION_CRON``), as of its scheduled time (naive UTC):
    DBOS starts one per tick across workers; the purge is idempotent anyway."""
    as_of = (
        scheduled_at.astimezone(UTC).replace(tzinfo=None) if scheduled_at.tzinfo else scheduled_at
    )
    await _retention_step(as_of.isoformat())


_WORKFLOWS: dict[str, Any] = {erasure.WORKFLOW_NAME: erasure_workflow}


def _schedule_retention(settings: Settings) -> None:
    try:
        DBOS.apply_schedules(
            [
                {
                    "schedule_name": RETENTION_SCHEDULE,
                    "workflow_fn": retention_workflow,
                    "schedule": settings.retention_cron,
                }
            ]
        )
    except Exception as exc:  # e.g. a bad cron: the product runs, the purge does not
        log.error("the daily retention purge is not scheduled: %s", redacted_trace(exc))


_queues: list[Any] = []


def _queue() -> Any:
    return _queues[0]


def dbos_config(settings: Settings) -> dict[str, Any]:
    return {
        "name": "phone-enrich",
        "system_database_url": settings.system_db_url,
        "application_version": settings.app_version,
        "executor_id": settings.executor_id,
        "notification_listener_polling_interval_sec": 0.1,
        "log_level": "WARNING",
    }


class DbosRunQueue:
    """This process runs batches: DBOS launched, the run queue registered."""

    def __init__(self, rt: Runtime) -> None:
        DBOS(config=dbos_config(rt.settings))  # type: ignore[arg-type]
        DBOS.launch()
        queue = DBOS.register_queue(
            QUEUE_NAME,
            worker_concurrency=rt.settings.queue_concurrency,
            polling_interval_sec=rt.settings.queue_polling_interval_sec,
        )
        _queues[:] = [queue]
        _bound[:] = [rt]
        _closed.clear()
        _schedule_retention(rt.settings)

    def enqueue(self, run_id: str) -> None:
        with SetWorkflowID(run_id):
            _queue().enqueue(run_workflow, run_id)

    def enqueue_workflow(self, name: str, workflow_id: str, arg: str) -> None:
        """Queue another durable job (e.g. an erasure) by its registered name."""
        with SetWorkflowID(workflow_id):
            _queue().enqueue(_WORKFLOWS[name], arg)

    def recover(self, executor_ids: list[str]) -> int:
        """Put the unfinished workflows of dead executors back on the run queue."""
        pending = DBOS.list_workflows(status="PENDING", executor_id=list(executor_ids))
        ids = [w.workflow_id for w in pending]
        if ids:
            DBOS.resume_workflows(ids, queue_name=QUEUE_NAME)
        return len(ids)

    def interrupt(self) -> None:
        """Stop taking runs off the queue, then interrupt those in flight (the runtime
        closes their sources next: no run may start after this)."""
        _closed.set()
        _stop_dequeuing()
        _interrupt_running()

    def close(self) -> None:
        """Interrupt the runs in flight, then stop DBOS: DBOS stops its event loop with
        whatever still runs on it, which leaves coroutines never awaited and a closed
        loop under live tasks. Cancelled here, each run ends its current await cleanly;
        its last step's commit is atomic, and it resumes from that checkpoint on the next
        start (its workflow stays PENDING). Dequeuing stops first, so no run starts
        after the interrupt."""
        _closed.set()
        _stop_dequeuing()
        self.interrupt()
        DBOS.destroy(destroy_registry=False)
        _queues.clear()
        _bound.clear()


class _QuietCancel(logging.Filter):
    """Drops DBOS's warning for each task cancelled by an orderly shutdown (we log one
    line for all of them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Asyncio task cancelled")


def _stop_dequeuing(timeout: float = 10.0) -> None:
    """Stop DBOS's queue workers and wait for them. ``DBOS.destroy`` stops its event loop
    before it joins them, so a worker that has just claimed a run hands that run's start
    to a closed loop: the start coroutine is never awaited and the run waits for
    recovery. Setting the stop events first lets each worker finish the dispatch it is
    in (onto a live loop, where ``_interrupt_running`` then cancels it) and exit."""
    dbos = dbos_internals._dbos_global_instance
    if dbos is None:
        return
    for event in list(dbos.background_thread_stop_events):
        event.set()
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("queue-worker-"):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _interrupt_running(timeout: float = 10.0) -> None:
    tasks = list(_running)
    if not tasks:
        return
    log.info("shutting down: interrupting %d run(s); they resume on the next start", len(tasks))
    quiet = _QuietCancel()
    dbos_log = logging.getLogger("dbos")
    dbos_log.addFilter(quiet)
    try:
        for loop, task in tasks:
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not all(t.done() for _, t in tasks):
            time.sleep(0.02)
    finally:
        dbos_log.removeFilter(quiet)


class DbosClientQueue:
    """This process only submits: runs go to the queue for whichever worker is up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: DBOSClient | None = None

    def enqueue(self, run_id: str) -> None:
        self.enqueue_workflow(WORKFLOW_NAME, run_id, run_id)

    def enqueue_workflow(self, name: str, workflow_id: str, arg: str) -> None:
        if self._client is None:
            DBOS.migrate(self.settings.system_db_url)  # a client may come before any worker
            self._client = DBOSClient(system_database_url=self.settings.system_db_url)
        self._client.enqueue(
            {
                "queue_name": QUEUE_NAME,
                "workflow_name": name,
                "workflow_id": workflow_id,
                "app_version": self.settings.app_version,
            },
            arg,
        )

    def recover(self, executor_ids: list[str]) -> int:
        raise RuntimeError("only a worker process can take over runs")

    def interrupt(self) -> None:
        return None

    def close(self) -> None:
        if self._client is not None:
            self._client.destroy()
            self._client = None
