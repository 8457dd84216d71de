"""A batch's merged files, by version: the upload's rows in order, each row's newest
outcome as of that version (``batch_views``), built by the same builders as a run's files.

Version ``n`` is written to S3 when its last run finishes (``publish_ready``), or on the
first download if that comes sooner; once written it is read back, never rebuilt, so a
version downloads the same bytes for good.
"""

from __future__ import annotations

import logging

from phone_core import batch_views, outputs
from phone_core.errors import RETENTION_DELETED, ExportError, NotFound, redacted_trace
from phone_core.models import OUTPUT_FILES, RecordOutcome
from phone_core.runs import RunRow
from phone_core.runtime import Runtime
from phone_core.storage import batch_key

log = logging.getLogger(__name__)


def build(
    name: str, items: list[RecordOutcome], ctx: outputs.ExportContext = outputs.PLAIN
) -> bytes:
    """One merged file from merged outcomes: the one place the run builders are called."""
    contract = outputs.contract_files(items)
    if name in contract:
        return contract[name]
    builder = outputs.EXPORT_BUILDERS.get(name)
    if builder is None:
        raise NotFound(f"no output called {name}")
    return builder(items, ctx)


def _items(rt: Runtime, rows: list[RunRow], version: int) -> list[RecordOutcome]:
    with rt.db.connect() as conn:
        parts = batch_views.version_rows(rows, version)
        return [c.outcome for c in batch_views.current(conn, parts)]


def _context(rows: list[RunRow]) -> outputs.ExportContext:
    """The upload's (the batch's first run's) delimiter, for the Excel-friendly CSV."""
    return outputs.ExportContext(source_delimiter=rows[0].source_delimiter)


def _write(rt: Runtime, batch_id: str, version: int, name: str, body: bytes) -> None:
    rt.store.put(batch_key(rt.store, batch_id, version, name), body, OUTPUT_FILES[name].mime)


def read(rt: Runtime, rows: list[RunRow], version: int, name: str) -> bytes:
    """Version ``version`` of file ``name`` of the batch of ``rows`` (built if not yet)."""
    if name not in OUTPUT_FILES:
        raise NotFound(f"no output called {name}")
    if version not in {v.version for v in batch_views.versions(rows)}:
        raise NotFound("the batch's files are written when its runs have finished")
    batch_id = rows[0].batch_id
    if any(r.outputs_deleted_at is not None for r in rows):
        raise NotFound(RETENTION_DELETED)
    try:
        return rt.store.get(batch_key(rt.store, batch_id, version, name))
    except NotFound:
        pass
    try:
        body = build(name, _items(rt, rows, version), _context(rows))
    except ExportError:
        raise
    except Exception as exc:
        log.warning("batch %s: %s not built: %s", batch_id, name, redacted_trace(exc))
        label = OUTPUT_FILES[name].label
        raise ExportError(f"the {label} file could not be built for this batch") from exc
    _write(rt, batch_id, version, name, body)
    return body


def publish_ready(rt: Runtime, run_id: str) -> None:
    """After a run ends: write the versions it completes, if any (each file on its own:
    one that cannot be built is built, and explained, on download)."""
    with rt.db.connect() as conn:
        rows = batch_views.batch_rows(conn, batch_views.batch_of_run(conn, run_id))
    subs = batch_views.submissions(rows)
    mine = next(n for n, sub in enumerate(subs, start=1) if run_id in {r.run_id for r in sub})
    for ready in batch_views.versions(rows):
        if ready.version >= mine:
            _publish(rt, rows, ready.version)


def _publish(rt: Runtime, rows: list[RunRow], version: int) -> None:
    batch_id = rows[0].batch_id
    items = _items(rt, rows, version)
    for name in OUTPUT_FILES:
        try:
            rt.store.get(batch_key(rt.store, batch_id, version, name))
            continue  # written already (a retried step, or a download first): keep it
        except NotFound:
            pass
        try:
            body = build(name, items, _context(rows))
        except Exception as exc:
            log.warning("batch %s: %s not built: %s", batch_id, name, redacted_trace(exc))
            continue
        _write(rt, batch_id, version, name, body)


def keys(rt: Runtime, rows: list[RunRow]) -> list[str]:
    """The keys every version of the batch of ``rows`` has (or would have) files at."""
    batch_id = rows[0].batch_id
    return [
        batch_key(rt.store, batch_id, v.version, name)
        for v in batch_views.versions(rows)
        for name in OUTPUT_FILES
    ]


def rewrite(rt: Runtime, rows: list[RunRow]) -> list[str]:
    """Rebuild every stored version of the batch of ``rows`` from its records as they are
    now (after an erasure redacted some): the one exception to 'a stored version never
    changes'. Only files already written are rewritten; the keys rewritten."""
    batch_id = rows[0].batch_id
    done: list[str] = []
    for ready in batch_views.versions(rows):
        items: list[RecordOutcome] | None = None
        for name in OUTPUT_FILES:
            key = batch_key(rt.store, batch_id, ready.version, name)
            try:
                rt.store.get(key)
            except NotFound:
                continue  # never written: built from the redacted records on download
            if items is None:
                items = _items(rt, rows, ready.version)
            try:
                body = build(name, items, _context(rows))
            except Exception as exc:  # cannot be built now: remove the old one
                log.warning("batch %s: %s not rebuilt: %s", batch_id, name, redacted_trace(exc))
                rt.store.delete(key)
                done.append(key)
                continue
            _write(rt, batch_id, ready.version, name, body)
            done.append(key)
    return done
