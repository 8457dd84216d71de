"""What the CLI, the web app and the HTTP API call: submit, preflight, read, cancel, rerun.

Every function takes the acting ``user`` and only ever touches that user's runs and
people; ``admin=True`` lifts that for reading (the admin pages), never for spending.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Connection

from phone_core import batch_views, credits, db, engine, notify, persons, run_views, runs
from phone_core.credits import worst_case
from phone_core.csvtext import DELIMITERS
from phone_core.errors import InputError, NotFound
from phone_core.models import (
    CREDITS_FILE,
    MAX_BATCH,
    OUTPUT_FILES,
    PERSON_FIELD_MAX_LEN,
    RESULTS_FILE,
    BatchAccepted,
    BatchCreate,
    Detail,
    Person,
    Preflight,
    RecordOutcome,
    Run,
)
from phone_core.records import (
    first_occurrences,
    identity_key,
    identity_of,
    normalize,
)
from phone_core.runtime import Runtime
from phone_core.sources.cache import cache_key, cached_phones
from phone_core.storage import output_key


@dataclass(frozen=True)
class Prepared:
    people: list[Person]
    known: list[bool]
    identities: list[str]
    dup_of: list[int | None]


def prepare_people(people: list[Person], known: list[bool] | None = None) -> Prepared:
    known = known or [True] * len(people)
    # identity_key is '' exactly when the person is not enrichable (records.py)
    identities = [identity_key(p) if k else "" for p, k in zip(people, known, strict=True)]
    return Prepared(people, known, identities, first_occurrences(identities))


def _resolve(rt: Runtime, user: str, req: BatchCreate) -> Prepared:
    if req.records is not None:
        people = [normalize(r) for r in req.records]
        return prepare_people(people)
    assert req.ids is not None
    with rt.db.connect() as conn:
        found = persons.fetch(conn, user, req.ids)
    people = [found.get(i) or Person(id=i) for i in req.ids]
    return prepare_people(people, [i in found for i in req.ids])


def _paths(rt: Runtime, run_id: str) -> tuple[str, str]:
    return (
        rt.store.uri(rt.store.key_for(run_id, RESULTS_FILE.name)),
        rt.store.uri(rt.store.key_for(run_id, CREDITS_FILE.name)),
    )


Chunk = tuple[Prepared, Sequence[dict[str, str]] | None]  # a run's people, source rows


def _leaders(rt: Runtime, user: str, prep: Prepared) -> list[str]:
    """The cache keys of the people of a chunk that would be looked up (first of each)."""
    return [
        cache_key(ident, user, rt.settings.cache_scope)
        for ident, dup in zip(prep.identities, prep.dup_of, strict=True)
        if ident and dup is None
    ]


def _costs_nothing(conn: Connection, rt: Runtime, leaders: list[str], per_record: int) -> bool:
    """True when no record of the batch would go to a paid source right now."""
    if per_record == 0:
        return True
    return len(cached_phones(conn, leaders, rt.settings.cache_ttl_days)) == len(set(leaders))


def _create_runs(
    rt: Runtime,
    user: str,
    chunks: Iterable[Chunk],
    max_credits: int,
    *,
    store_people: bool,
    parts: int | None = None,
    label: str = "",
    parent_run_id: str | None = None,
    source_delimiter: str | None = None,
    batch_id: str | None = None,
    rows_of: Sequence[Sequence[int]] | None = None,
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    """Create one run per chunk under one budget (held in full by the first), then queue.

    ``chunks`` may be a stream (``parts`` then says how many it yields): each is written
    and let go before the next is made, so an upload of any size takes the memory of one.

    Every way to spend (API, upload, re-run) comes through here, so the rules on the
    hold are checked once: at least 1 credit, and no more than is available. The one
    exception is a batch that cannot cost anything (every row skipped, a duplicate, or
    already known, or free sources): it may hold 0, so a user with no credits can still
    get phones the organisation already has.
    """
    credits.check_amount(max_credits, "max credits")
    if parts is None:
        parts = len(chunks) if isinstance(chunks, Sequence) else None
    if not parts:
        raise ValueError("the number of parts must be known and at least 1")
    group_id = uuid.uuid4().hex if parts > 1 else None
    chosen = [s.name for s in rt.sources_for(check_sources(rt, sources))]
    per_record = worst_case(rt.source_prices(chosen))
    run_ids = [str(uuid.uuid4()) for _ in range(parts)]
    accepted = [
        BatchAccepted(run_id=run_id, result_path=paths[0], credits_csv_path=paths[1])
        for run_id, paths in ((r, _paths(rt, r)) for r in run_ids)
    ]
    free_check = max_credits == 0 and per_record > 0  # a cap of 0: is every row free?
    leaders: list[str] = []
    totals: list[int] = []
    with rt.db.begin() as conn:
        if parts == 1:
            # One run (every API submit): its records first (no lock: the run id is new),
            # then the user's credit lock, the check, the person store and the run row, so
            # that concurrent submits of one user queue for a few statements, not for the
            # records too. Person rows are written under the credit lock on every path:
            # no two submits of a user lock the same person rows in different orders.
            ((prep, source_rows),) = list(chunks)
            _insert_chunk(conn, run_ids[0], prep, source_rows, rows_of, 0, 0)
            totals.append(len(prep.people))
            if free_check:
                leaders += _leaders(rt, user, prep)
            _check_budget(conn, rt, user, max_credits, leaders, per_record)
            if store_people:
                persons.upsert(conn, user, prep.people)
        else:
            # An upload in parts: the lock and the check first (a cap of 0: the check once
            # every part is known), then each part in turn.
            credits.lock_account(conn, user)
            if not free_check:
                _check_budget(conn, rt, user, max_credits, leaders, per_record)
            offset = 0
            for seq, (prep, source_rows) in enumerate(chunks):
                if seq >= parts:
                    raise ValueError("more chunks than parts")
                if store_people:
                    persons.upsert(conn, user, prep.people)
                _insert_chunk(conn, run_ids[seq], prep, source_rows, rows_of, seq, offset)
                totals.append(len(prep.people))
                offset += len(prep.people)
                if free_check:
                    leaders += _leaders(rt, user, prep)
            if len(totals) != parts:
                raise ValueError("fewer chunks than parts")
            if free_check:
                _check_budget(conn, rt, user, max_credits, leaders, per_record)
        runs.create_many(
            conn,
            [
                runs.NewRun(
                    run_id=run_id,
                    owner=user,
                    max_credits=max_credits if seq == 0 else 0,
                    total=total,
                    worst_case=per_record,
                    result_path=acc.result_path,
                    credits_path=acc.credits_csv_path,
                    label=f"{label} (part {seq + 1}/{parts})" if group_id else label,
                    parent_run_id=parent_run_id,
                    group_id=group_id,
                    group_seq=seq,
                    source_delimiter=source_delimiter,
                    batch_id=batch_id,
                    sources=chosen,
                )
                for seq, (run_id, acc, total) in enumerate(
                    zip(run_ids, accepted, totals, strict=True)
                )
            ],
        )
    rt.queue.enqueue(accepted[0].run_id)  # later parts are started by the part before them
    return accepted


def _check_budget(
    conn: Connection,
    rt: Runtime,
    user: str,
    max_credits: int,
    leaders: list[str],
    per_record: int,
) -> None:
    """Take the user's credit lock and check the hold (``leaders``: the batch's people
    looked up, needed only for a cap of 0)."""
    if max_credits < 1 and not (max_credits == 0 and _costs_nothing(conn, rt, leaders, per_record)):
        raise InputError("max credits must be at least 1")
    credits.lock_account(conn, user)
    credits.check_hold(conn, user, max_credits)


def _insert_chunk(
    conn: Connection,
    run_id: str,
    prep: Prepared,
    source_rows: Sequence[dict[str, str]] | None,
    rows_of: Sequence[Sequence[int]] | None,
    seq: int,
    offset: int,
) -> None:
    """A run's records; their rows in the batch's upload are ``rows_of[seq]``, else (a new
    upload: consecutive rows) from ``offset``."""
    rows = rows_of[seq] if rows_of is not None else range(offset, offset + len(prep.people))
    runs.insert_records(
        conn,
        run_id,
        prep.people,
        prep.identities,
        prep.dup_of,
        prep.known,
        source_rows,
        list(rows),
    )


def submit_batch(rt: Runtime, user: str, req: BatchCreate, *, label: str = "") -> BatchAccepted:
    """The batch API: hold ``max_credits`` and queue one run (402 error if not available)."""
    if req.webhook_url:  # refused before anything is held (SSRF, no signing secret)
        notify.check_run_webhook(rt, user, req.webhook_url)
    prep = _resolve(rt, user, req)
    accepted = _create_runs(
        rt,
        user,
        [(prep, None)],
        req.max_credits,
        store_people=req.records is not None,
        label=label,
        sources=req.sources,
    )[0]
    if req.webhook_url:
        notify.register_run_webhook(rt, accepted.run_id, user, req.webhook_url)
    return accepted


def _check_lengths(people: Sequence[Person], first_row: int = 1) -> None:
    """Refuse a value longer than its column holds (an API request is held to the same
    limits by its model): a clear message instead of a database error."""
    for row, person in enumerate(people, start=first_row):
        for field, limit in PERSON_FIELD_MAX_LEN.items():
            if len(getattr(person, field)) > limit:
                name = field.replace("_", " ")
                raise InputError(
                    f"row {row}: the {name} is longer than {limit} characters; "
                    "shorten it, or leave that column unmapped"
                )


UploadPart = tuple[Sequence[Mapping[str, str]], Sequence[dict[str, str]] | None]


def submit_upload(
    rt: Runtime,
    user: str,
    rows: Sequence[Mapping[str, str]],
    max_credits: int,
    *,
    source_rows: Sequence[dict[str, str]] | None = None,
    label: str = "",
    source_delimiter: str | None = None,
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    """An uploaded table (already mapped): runs of at most 1000 rows under one budget.
    ``source_delimiter``: the uploaded CSV's (None for XLSX), kept for the exports."""
    parts = (
        (
            rows[start : start + MAX_BATCH],
            source_rows[start : start + MAX_BATCH] if source_rows else None,
        )
        for start in range(0, len(rows), MAX_BATCH)
    )
    return submit_parts(
        rt,
        user,
        len(rows),
        parts,
        max_credits,
        label=label,
        source_delimiter=source_delimiter,
        sources=sources,
    )


def submit_parts(
    rt: Runtime,
    user: str,
    total_rows: int,
    parts: Iterable[UploadPart],
    max_credits: int,
    *,
    label: str = "",
    source_delimiter: str | None = None,
    sources: Sequence[str] | None = None,
) -> list[BatchAccepted]:
    """``submit_upload`` of a table given a part at a time (``MAX_BATCH`` rows each, the
    last one fewer; ``total_rows`` in all): each part is normalised, written and let go
    before the next, so an upload's memory does not grow with its rows."""
    if total_rows < 1:
        raise InputError("the file has no rows to enrich")

    def chunks() -> Iterator[Chunk]:
        first = 1
        for rows, source in parts:
            people = [normalize(r) for r in rows]
            _check_lengths(people, first)
            first += len(people)
            yield prepare_people(people), list(source) if source else None

    return _create_runs(
        rt,
        user,
        chunks(),
        max_credits,
        store_people=True,
        parts=-(-total_rows // MAX_BATCH),
        label=label,
        source_delimiter=source_delimiter if source_delimiter in DELIMITERS else None,
        sources=sources,
    )


def check_sources(rt: Runtime, names: Sequence[str] | None) -> list[str] | None:
    """``names`` when each is a source of the current waterfall (None: the whole of it);
    else InputError saying which are unknown or not enabled."""
    if names is None:
        return None
    current = [s.name for s in rt.current_sources()]
    wrong = [n for n in dict.fromkeys(names) if n not in current]
    if wrong:
        from phone_core import vendor_config

        known = set(vendor_config.known_names())
        parts = [
            f"{n!r} is not enabled on this install" if n in known else f"unknown source {n!r}"
            for n in wrong
        ]
        choice = ", ".join(current) or "none"
        raise InputError(f"{'; '.join(parts)} (sources you can choose: {choice})")
    if not names:
        raise InputError("choose at least one source")
    return list(names)


def preflight(
    rt: Runtime,
    user: str,
    rows: Iterable[Mapping[str, str]],
    sources: Sequence[str] | None = None,
) -> Preflight:
    """Counts, worst-case and expected cost of a mapped table, before anything is spent.

    The worst case counts every person looked up as found by the dearest path down the
    waterfall (it is the most the batch can spend). The expected cost uses each source's hit
    rate measured over the runs of the last ``credits.HIT_RATE_DAYS`` days, all users
    together (sources are the organisation's), smoothed towards a 30% prior for a source
    with little history: the rule is ``credits.measured_rates``, the cost down the
    waterfall ``credits.expected_cost``.
    """
    identities = [identity_of(r) for r in rows]  # ``rows`` may be a stream: read once
    count = len(identities)
    skipped = sum(1 for i in identities if not i)
    dups = 0
    seen: set[str] = set()
    unique: list[str] = []
    for ident in identities:
        if not ident:
            continue
        if ident in seen:
            dups += 1
        else:
            seen.add(ident)
            unique.append(ident)
    with rt.db.connect() as conn:
        keys = [cache_key(i, user, rt.settings.cache_scope) for i in unique]
        hits = len(cached_phones(conn, keys, rt.settings.cache_ttl_days))
        available = credits.summarize(conn, user).available
        prices = rt.source_prices(check_sources(rt, sources))
        rates = _hit_rates(conn, prices)

    per_record = worst_case(prices)
    expected, found = credits.expected_cost(prices, rates)
    to_look_up = len(unique) - hits
    return Preflight(
        rows=count,
        enrichable=count - skipped,
        skipped={Detail.MISSING_REQUIRED_FIELDS.value: skipped} if skipped else {},
        duplicates=dups,
        cache_hits=hits,
        to_look_up=to_look_up,
        worst_case_credits=to_look_up * per_record,
        per_record_worst_case=per_record,
        available_credits=available,
        runs_needed=max(1, -(-count // MAX_BATCH)),
        expected_credits=min(to_look_up * per_record, math.ceil(to_look_up * expected - 1e-9)),
        expected_found=round(to_look_up * found),
        hit_rates={p.source: round(r.hit, 4) for p, r in zip(prices, rates, strict=True)},
    )


def _hit_rates(conn: Connection, prices: Sequence[credits.Price]) -> list[credits.SourceRate]:
    """Each source's measured hit rate, in waterfall order (``prices``' order)."""
    since = db.utcnow() - timedelta(days=credits.HIT_RATE_DAYS)
    return credits.measured_rates(prices, run_views.source_tally(conn, since))


def get_run(rt: Runtime, user: str, run_id: str, *, admin: bool = False) -> Run:
    with rt.db.connect() as conn:
        return run_views.load_run(conn, run_id, None if admin else user)


def list_runs(
    rt: Runtime, user: str, *, admin: bool = False, owner: str | None = None, limit: int = 200
) -> list[Run]:
    with rt.db.connect() as conn:
        return run_views.load_runs(conn, owner if admin else user, limit)


def run_outcomes(
    rt: Runtime, user: str, run_id: str, *, admin: bool = False
) -> list[RecordOutcome]:
    with rt.db.connect() as conn:
        runs.get(conn, run_id, None if admin else user)
        return run_views.outcomes(conn, run_id)


def cancel(rt: Runtime, user: str, run_id: str, *, admin: bool = False) -> Run:
    """Ask a run (and the later parts of its upload) to stop; queued runs stop at once."""
    with rt.db.begin() as conn:
        runs.request_cancel(conn, runs.get(conn, run_id, None if admin else user))
    return get_run(rt, user, run_id, admin=admin)


def rerun(rt: Runtime, user: str, run_id: str, max_credits: int) -> BatchAccepted:
    """A new run over the records of ``run_id`` that ended in error or not processed."""
    with rt.db.connect() as conn:
        row = runs.get(conn, run_id, user)
        if not row.state.finished:
            raise InputError("wait for the run to finish before re-running its failed rows")
        items = run_views.failed_outcomes(conn, run_id)
        upload_rows = batch_views.upload_rows(conn, run_id)
    if not items:
        raise InputError("this run has no failed or unprocessed rows to re-run")
    rows_of = [upload_rows[o.idx] for o in items]
    return rerun_items(rt, user, row, items, rows_of, max_credits, row.label)[0]


def rerun_items(
    rt: Runtime,
    user: str,
    parent: runs.RunRow,
    items: Sequence[RecordOutcome],
    rows_of: Sequence[int],
    max_credits: int,
    label: str,
) -> list[BatchAccepted]:
    """Runs (parts of at most MAX_BATCH rows) over ``items``, in ``parent``'s batch."""
    chunks = []
    chunk_rows = []
    for start in range(0, len(items), MAX_BATCH):
        part = items[start : start + MAX_BATCH]
        src = [o.source_row for o in part]
        source_rows = [s for s in src if s is not None] if all(s is not None for s in src) else None
        chunks.append((prepare_people([o.person for o in part]), source_rows))
        chunk_rows.append(rows_of[start : start + MAX_BATCH])
    return _create_runs(
        rt,
        user,
        chunks,
        max_credits,
        store_people=False,
        label=f"{label or 'Untitled batch'} (re-run)"[:500],
        parent_run_id=parent.run_id,
        batch_id=parent.batch_id,
        rows_of=chunk_rows,
        source_delimiter=parent.source_delimiter,
        sources=_still_there(rt, parent.sources),
    )


def _still_there(rt: Runtime, names: Sequence[str] | None) -> list[str] | None:
    """A re-run keeps its batch's choice of sources, less those no longer enabled."""
    if names is None:
        return None
    current = {s.name for s in rt.current_sources()}
    return [n for n in names if n in current] or None


def rerunnable_count(rt: Runtime, user: str, run_id: str) -> int:
    """The rows a re-run of the user's run would send (``run_views.worth_rerun``)."""
    with rt.db.connect() as conn:
        runs.get(conn, run_id, user)
        return run_views.failed_count(conn, run_id)


def download(rt: Runtime, user: str, run_id: str, name: str, *, admin: bool = False) -> bytes:
    """One output file of a finished run, read from S3 at the URI stored on the run."""
    spec = OUTPUT_FILES.get(name)
    if spec is None:
        raise NotFound(f"no output called {name}")
    run = get_run(rt, user, run_id, admin=admin)
    if not run.state.finished:
        raise NotFound("the outputs are written when the run ends")
    try:
        return rt.store.get(output_key(rt.store, run.result_path, name))
    except NotFound:
        if spec.contract:
            raise
        return engine.publish_exports(rt, run_id, only=name)[name]


def presigned_urls(rt: Runtime, run: Run) -> dict[str, str]:
    if not run.state.finished:
        return {}
    return {
        name: rt.store.presign(output_key(rt.store, run.result_path, name))
        for name, spec in OUTPUT_FILES.items()
        if spec.contract
    }


def active_holds(rt: Runtime, user: str) -> list[tuple[str, int]]:
    """(run_id, credits held) for each of the user's queued/running runs holding credits."""
    with rt.db.connect() as conn:
        return run_views.active_holds(conn, user)
