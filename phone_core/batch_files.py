"""A batch's merged files, by version: the upload's rows in order, each row's newest
outcome as of that version (``batch_views``), built by the same builders as a run's files.

Version ``n`` is written to S3 when its last run finishes (``publish_ready``), or on the
first download if that comes sooner; once written it is read back, never rebuilt, so a
version downloads the same bytes for good.

A version's files are written together from windows of ``WINDOW`` rows read from the
database (``outputs.write_files``: one pass for the enriched exports' shape, one feeding
every file), each into a spooled temporary file streamed to S3: memory does not grow
with the batch (a 100,000-row upload: BENCHMARKS.md, bench_big_upload).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from phone_core import batch_views, outputs
from phone_core.errors import RETENTION_DELETED, ExportError, NotFound, redacted_trace
from phone_core.models import OUTPUT_FILES, RecordOutcome
from phone_core.runs import RunRow
from phone_core.runtime import Runtime
from phone_core.storage import batch_key

log = logging.getLogger(__name__)


# Rows read from the database at a time while a file is written: the file's memory.
WINDOW = 2000
# A file being written stays in memory up to this size, then goes to a temporary file.
SPOOL_BYTES = 4 * 1024 * 1024


def outcomes(rt: Runtime, rows: list[RunRow], version: int) -> outputs.Outcomes:
    """Version ``version``'s rows, each row's newest outcome, read a window at a time
    (a connection per window, none held while a file is written)."""
    parts = batch_views.version_rows(rows, version)

    def each() -> Iterator[RecordOutcome]:
        with rt.db.connect() as conn:
            end = batch_views.row_end(conn, parts)
        for start in range(0, end, WINDOW):
            with rt.db.connect() as conn:
                window = batch_views.current_window(conn, parts, start, start + WINDOW)
            yield from window

    return each


def _context(rows: list[RunRow]) -> outputs.ExportContext:
    """The upload's (the batch's first run's) delimiter, for the Excel-friendly CSV."""
    return outputs.ExportContext(source_delimiter=rows[0].source_delimiter)


def _write(rt: Runtime, rows: list[RunRow], version: int, names: Iterable[str]) -> Written:
    """Write files ``names`` of the version to S3 from one reading of its outcomes (each
    through a spooled temporary file); those that could not be built are not written."""
    spools = {n: tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) for n in names}  # noqa: SIM115
    try:
        streams = {n: cast(BinaryIO, f) for n, f in spools.items()}
        failed = outputs.write_files(outcomes(rt, rows, version), streams, _context(rows))
        for name, body in streams.items():
            if name not in failed:
                key = batch_key(rt.store, rows[0].batch_id, version, name)
                rt.store.put_file(key, body, OUTPUT_FILES[name].mime)
    except BaseException:
        for f in spools.values():
            f.close()
        raise
    return Written(streams, failed)


@dataclass
class Written:
    """Files just written (each positioned anywhere: ``read`` seeks) and those that could
    not be built, with why; ``close`` drops the temporary files."""

    files: dict[str, BinaryIO]
    failed: dict[str, Exception]

    def read(self, name: str) -> bytes:
        body = self.files[name]
        body.seek(0)
        return body.read()

    def close(self) -> None:
        for f in self.files.values():
            f.close()


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
    written = _write(rt, rows, version, [name])
    try:
        exc = written.failed.get(name)
        if isinstance(exc, ExportError):
            raise exc
        if exc is not None:
            log.warning("batch %s: %s not built: %s", batch_id, name, redacted_trace(exc))
            label = OUTPUT_FILES[name].label
            raise ExportError(f"the {label} file could not be built for this batch") from exc
        return written.read(name)
    finally:
        written.close()


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
    # Written already (a retried step, or a download first): kept as it is.
    names = [
        n for n in OUTPUT_FILES if not rt.store.exists(batch_key(rt.store, batch_id, version, n))
    ]
    if not names:
        return
    written = _write(rt, rows, version, names)
    written.close()
    for name, exc in written.failed.items():
        log.warning("batch %s: %s not built: %s", batch_id, name, redacted_trace(exc))


def keys(rt: Runtime, rows: list[RunRow]) -> list[str]:
    """The keys every version of the batch of ``rows`` has (or would have) files at."""
    batch_id = rows[0].batch_id
    return [
        batch_key(rt.store, batch_id, v.version, name)
        for v in batch_views.versions(rows)
        for name in OUTPUT_FILES
    ]


def rewrite(
    rt: Runtime, rows: list[RunRow], names: Iterable[str] = OUTPUT_FILES, *, all_: bool = False
) -> tuple[list[str], list[str]]:
    """Rebuild files ``names`` of every version of the batch of ``rows`` from its records
    as they are now (after an erasure redacted some, or do-not-call marks changed): the
    one exception to 'a stored version never changes'. Only files already written are
    rewritten unless ``all_``; one that cannot be built now is removed (the old one must
    not stay). The keys rewritten, and those that failed."""
    batch_id = rows[0].batch_id
    done: list[str] = []
    failed: list[str] = []
    for ready in batch_views.versions(rows):
        keys = {n: batch_key(rt.store, batch_id, ready.version, n) for n in names}
        if not all_:  # never written: built from the records as they are on download
            keys = {n: k for n, k in keys.items() if rt.store.exists(k)}
        if not keys:
            continue
        written = _write(rt, rows, ready.version, keys)
        written.close()
        for name, key in keys.items():
            exc = written.failed.get(name)
            if exc is None:
                done.append(key)
                continue
            log.warning("batch %s: %s not rebuilt: %s", batch_id, name, redacted_trace(exc))
            rt.store.delete(key)
            failed.append(key)
    return done, failed
