"""Re-checking past runs against the suppression lists as they are now (one click on the
suppression page; ``phone-enrich suppress recheck``).

What a compliance admin gets, and why:

- every finished run's records that carry a phone are matched again (phone, email,
  LinkedIn); each record's ``dnc_list`` becomes the lists it is on *now* (a list removed
  since clears its marks);
- the stored spreadsheet files (enriched CSV, XLSX, Excel-friendly CSV) of each changed
  run, and of every version of its batch, are rebuilt with the ``dnc`` / ``dnc_list``
  columns, so the next download of any of them carries the mark;
- ``results.csv`` and ``credits.csv`` are not rewritten: they are the batch API's contract
  and the billing record of what was delivered and charged then. Nothing is re-charged
  or refunded, and a phone already delivered is marked, not withheld, whatever the mode:
  it has left the product, so the admin needs to know where it went;
- a report (``RecheckReport``, also as CSV) lists each affected run with its owner and
  how many of its rows are on a list now: counts only, never the numbers or people, so it
  can be forwarded to the teams that hold those files.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from phone_core import audit, batch_files, batch_views, db, runs, suppression
from phone_core.engine import publish_exports
from phone_core.errors import redacted_trace
from phone_core.models import OUTPUT_FILES, PERSON_FIELDS, Person, RecordStatus, RunState
from phone_core.runtime import Runtime

log = logging.getLogger(__name__)

rr = db.run_records
rt_ = db.runs
_CHUNK = 1000
_WITH_PHONE = (RecordStatus.FOUND.value, RecordStatus.CACHED.value, RecordStatus.DUPLICATE.value)
_FINISHED = [s.value for s in RunState if s.finished]


@dataclass(frozen=True)
class RunFinding:
    run_id: str
    batch_id: str
    owner: str
    label: str
    rows_on_lists: int  # rows of the run whose phone or person is on a list now
    newly_marked: int  # of which not marked before this re-check
    unmarked: int  # rows marked before whose lists no longer hold them


@dataclass
class RecheckReport:
    lists: int = 0
    runs_checked: int = 0
    rows_checked: int = 0
    runs: list[RunFinding] = field(default_factory=list)
    files_rewritten: int = 0
    files_failed: int = 0

    @property
    def rows_on_lists(self) -> int:
        return sum(f.rows_on_lists for f in self.runs)

    @property
    def newly_marked(self) -> int:
        return sum(f.newly_marked for f in self.runs)

    def to_csv(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(
            ["run_id", "batch_id", "owner", "label", "rows_on_lists", "newly_marked", "unmarked"]
        )
        for f in self.runs:
            label = ("'" + f.label) if f.label[:1] in ("=", "+", "-", "@") else f.label
            w.writerow(
                [f.run_id, f.batch_id, f.owner, label, f.rows_on_lists, f.newly_marked, f.unmarked]
            )
        return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _finished_runs(conn: Connection) -> list[tuple[str, str, str, str]]:
    rows = conn.execute(
        sa.select(rt_.c.run_id, rt_.c.batch_id, rt_.c.owner, rt_.c.label)
        .where(rt_.c.state.in_(_FINISHED))
        .order_by(rt_.c.created_at)
    )
    return [(str(r), str(b or r), str(o), str(lab or "")) for r, b, o, lab in rows]


def _records(conn: Connection, run_id: str) -> Iterator[list[tuple[int, str, Person, str]]]:
    """(idx, phone, person, dnc_list) of the run's records that carry a phone (or a mark),
    a chunk at a time."""
    last = -1
    while True:
        rows = conn.execute(
            sa.select(rr)
            .where(
                rr.c.run_id == run_id,
                rr.c.idx > last,
                rr.c.status.in_(_WITH_PHONE),  # withheld rows keep their lists
                sa.or_(rr.c.phone != "", rr.c.dnc_list != ""),
            )
            .order_by(rr.c.idx)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        part = []
        for r in rows:
            m = r._mapping
            person = Person(id=m["person_id"], **{f: m[f] or "" for f in PERSON_FIELDS[1:]})
            part.append((int(m["idx"]), str(m["phone"]), person, str(m["dnc_list"] or "")))
        yield part
        last = part[-1][0]


def _check_run(rt: Runtime, run: tuple[str, str, str, str]) -> tuple[int, RunFinding | None]:
    run_id, batch_id, owner, label = run
    checked = on_lists = newly = unmarked = 0
    with rt.db.connect() as conn:
        chunks = list(_records(conn, run_id))
    for part in chunks:
        checked += len(part)
        with rt.db.begin() as conn:
            keys = {i: suppression.keys_of(ph, p) if ph else [] for i, ph, p, _ in part}
            found = suppression.match(conn, (k for ks in keys.values() for k in ks))
            marks: dict[int, str] = {}
            for idx, _phone, _p, before in part:
                now = suppression.lists_for(found, keys[idx])
                on_lists += bool(now)
                if now != before:
                    marks[idx] = now
                    newly += bool(now and not before)
                    unmarked += bool(before and not now)
            runs.mark_dnc(conn, run_id, marks)
    if not (on_lists or unmarked):
        return checked, None
    return checked, RunFinding(run_id, batch_id, owner, label, on_lists, newly, unmarked)


def _rewrite(rt: Runtime, findings: list[RunFinding], report: RecheckReport) -> None:
    """The spreadsheet files of changed runs and of every version of their batches."""
    changed = [f for f in findings if f.newly_marked or f.unmarked]
    for f in changed:
        try:
            report.files_rewritten += len(publish_exports(rt, f.run_id))
        except Exception as exc:
            report.files_failed += 1
            log.warning("run %s: exports not rewritten: %s", f.run_id, redacted_trace(exc))
    spreadsheet = [n for n, spec in OUTPUT_FILES.items() if not spec.contract]
    for batch_id in sorted({f.batch_id for f in changed}):
        with rt.db.connect() as conn:
            rows = batch_views.batch_rows(conn, batch_id)
        done, failed = batch_files.rewrite(rt, rows, spreadsheet, all_=True)
        report.files_rewritten += len(done)
        report.files_failed += len(failed)


def recheck_past_runs(rt: Runtime) -> RecheckReport:
    """Mark every finished run's records by the lists as they are now (module docstring)."""
    report = RecheckReport()
    with rt.db.connect() as conn:
        report.lists = len(suppression.lists(conn))
        finished = _finished_runs(conn)
    for run in finished:
        checked, finding = _check_run(rt, run)
        report.runs_checked += 1
        report.rows_checked += checked
        if finding is not None:
            report.runs.append(finding)
    _rewrite(rt, report.runs, report)
    audit.record(
        rt.db,
        action=audit.SUPPRESSION_RECHECK,
        detail={
            "lists": report.lists,
            "runs_checked": report.runs_checked,
            "runs_affected": len(report.runs),
            "rows_on_lists": report.rows_on_lists,
            "newly_marked": report.newly_marked,
            "files_rewritten": report.files_rewritten,
        },
    )
    return report
