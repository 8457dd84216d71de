"""The organisation's own contacts: loaded by an admin, matched with indexed set queries.

Match order per record: linkedin slug, email, first+last name with domain, first+last
name with normalised company name. A record matching several rows takes the first match.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import audit, db
from phone_core.credits import Price
from phone_core.models import Detail, RecordStatus, SourceResult
from phone_core.phones import to_e164
from phone_core.records import (
    identity_key,
    is_enrichable,
    name_key,
    normalize,
    normalize_company,
)
from phone_core.sources.base import Lookup

NAME = "directory"
_CHUNK = 500
LOAD_CHUNK = 10_000  # rows read, normalised and written at a time


def _chunks(values: list[str], size: int = _CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class DirectorySource:
    name = NAME

    def __init__(self, engine: Engine, price: Price) -> None:
        self._engine = engine
        self.price = price

    async def lookup_many(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        return await asyncio.to_thread(self._lookup_sync, lookups)

    def close(self) -> None:
        return None

    def _lookup_sync(self, lookups: Sequence[Lookup]) -> list[SourceResult]:
        t = db.directory
        by_li: dict[str, str] = {}
        by_email: dict[str, str] = {}
        by_name_domain: dict[tuple[str, str], str] = {}
        by_name_company: dict[tuple[str, str], str] = {}
        people = [lk.person for lk in lookups]
        slugs = sorted({p.linkedin for p in people if p.linkedin})
        emails = sorted({p.email for p in people if p.email})
        names = sorted({name_key(p.first_name, p.last_name) for p in people if p.last_name})
        with self._engine.connect() as conn:
            for part in _chunks(slugs):
                for li, phone in conn.execute(
                    sa.select(t.c.linkedin, t.c.phone).where(t.c.linkedin.in_(part))
                ):
                    by_li.setdefault(li, phone)
            for part in _chunks(emails):
                for em, phone in conn.execute(
                    sa.select(t.c.email, t.c.phone).where(t.c.email.in_(part))
                ):
                    by_email.setdefault(em, phone)
            for part in _chunks(names):
                rows = conn.execute(
                    sa.select(t.c.name_key, t.c.domain, t.c.company_key, t.c.phone).where(
                        t.c.name_key.in_(part)
                    )
                )
                for nk, domain, company, phone in rows:
                    if domain:
                        by_name_domain.setdefault((nk, domain), phone)
                    if company:
                        by_name_company.setdefault((nk, company), phone)
        results: list[SourceResult] = []
        for person in people:
            nk = name_key(person.first_name, person.last_name)
            phone = (
                (by_li.get(person.linkedin) if person.linkedin else None)
                or (by_email.get(person.email) if person.email else None)
                or (by_name_domain.get((nk, person.company_url)) if person.company_url else None)
                or (
                    by_name_company.get((nk, normalize_company(person.company_name)))
                    if person.company_name
                    else None
                )
            )
            found = bool(phone)
            results.append(
                SourceResult(
                    source=NAME,
                    phone=phone or None,
                    status=RecordStatus.FOUND if found else RecordStatus.NOT_FOUND,
                    detail="" if found else Detail.NO_MATCH.value,
                    credits=self.price.cost(found=found),
                )
            )
        return results


Progress = Callable[[int], None]  # told the rows read so far, after each chunk
_COLUMNS = ("linkedin", "email", "name_key", "domain", "company_key", "phone", "identity")
Contact = tuple[str, str, str, str, str, str, str]  # _COLUMNS, in order


def contact_of(row: Mapping[str, str], default_region: str = "US") -> Contact | None:
    """The directory row of a contact (canonical keys + ``phone``), or None when it is not
    loaded: no valid phone, or nothing a lookup could match it on. The one home of the
    directory's rules, whatever reads the file."""
    phone = to_e164(row.get("phone"), default_region)
    if not phone:
        return None
    person = normalize(row, new_id=False)
    if not is_enrichable(person):
        return None
    return (
        person.linkedin,
        person.email,
        name_key(person.first_name, person.last_name) if person.last_name else "",
        person.company_url,
        normalize_company(person.company_name),
        phone,
        identity_key(person),
    )


def load_rows(
    engine: Engine,
    rows: Iterable[Mapping[str, str]],
    *,
    file_name: str,
    loaded_by: str,
    replace: bool = True,
    default_region: str = "US",
    progress: Progress | None = None,
    chunk: int = LOAD_CHUNK,
    workers: int = 1,
) -> tuple[int, int]:
    """Load contact rows (canonical keys + ``phone``); returns (rows read, rows loaded).

    ``rows`` is consumed a chunk at a time (it may be a stream of any length). Rows without
    a valid phone or without any matchable key are not loaded. One transaction: when
    anything fails (a bad file mid-way), the directory is as it was.

    ``replace``: the file becomes the directory. Else (append) each identity in the file
    (``records.identity_key``) has the file's rows only: rows of earlier loads with that
    identity are dropped, every other row stays.

    ``workers`` > 1: chunks after the first are normalised (``contact_of``: phone parsing
    is most of a load's time) in that many worker processes, while this one reads and writes.
    """
    started = time.monotonic()
    read = loaded = 0
    loads = db.directory_loads
    with engine.begin() as conn:
        created = conn.execute(
            sa.insert(loads).values(
                file_name=file_name[:500],
                rows_read=0,
                rows_loaded=0,
                loaded_by=loaded_by,
                replaced=replace,
                loaded_at=db.utcnow(),
            )
        ).inserted_primary_key
        assert created is not None
        load_id = int(created[0])
        rebuild = replace and conn.dialect.name == "sqlite"
        if rebuild:  # building the indexes once at the end is faster than row by row
            for index in db.directory.indexes:
                index.drop(conn)
        if replace:
            conn.execute(sa.delete(db.directory))
        write = _copy if conn.dialect.name == "postgresql" else _executemany
        it = iter(rows)
        parts = iter(lambda: list(itertools.islice(it, chunk)), [])
        for size, found in _normalised(parts, default_region, workers):
            read += size
            loaded += len(found)
            if found:
                write(conn, found, load_id)
            if progress is not None:
                progress(read)
        if rebuild:
            for index in db.directory.indexes:
                index.create(conn)
        replaced = 0
        if not replace:
            t = db.directory
            mine = sa.select(t.c.identity).where(t.c.load_id == load_id, t.c.identity != "")
            replaced = conn.execute(
                sa.delete(t).where(t.c.load_id.is_distinct_from(load_id), t.c.identity.in_(mine))
            ).rowcount
        conn.execute(
            sa.update(loads)
            .where(loads.c.id == load_id)
            .values(
                rows_read=read,
                rows_loaded=loaded,
                rows_replaced=replaced,
                seconds=round(time.monotonic() - started, 3),
            )
        )
        audit.record(
            conn,
            action=audit.DIRECTORY_LOAD,
            target=f"load {load_id}",
            detail={
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_replaced": replaced,
                "mode": "replace" if replace else "append",
            },
        )
    return read, loaded


def _contacts(part: list[Mapping[str, str]], default_region: str) -> list[Contact]:
    return [c for c in (contact_of(row, default_region) for row in part) if c]


def _normalised(
    parts: Iterator[list[Mapping[str, str]]], default_region: str, workers: int
) -> Iterator[tuple[int, list[Contact]]]:
    """(rows in the chunk, its contacts) of each chunk, in order. With ``workers`` > 1 and
    more than one chunk, a pool of processes (spawned: this one may run threads) works on
    up to two chunks each ahead of the writer, so memory stays a few chunks' worth."""
    first = next(parts, None)
    if first is None:
        return
    second = next(parts, None)
    if workers <= 1 or second is None:
        for part in itertools.chain([first], [] if second is None else [second], parts):
            yield len(part), _contacts(part, default_region)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        ahead: deque[tuple[int, Future[list[Contact]]]] = deque()
        for part in itertools.chain([first, second], parts):
            ahead.append((len(part), pool.submit(_contacts, part, default_region)))
            if len(ahead) >= 2 * workers:
                size, future = ahead.popleft()
                yield size, future.result()
        while ahead:
            size, future = ahead.popleft()
            yield size, future.result()


_INSERT = (
    f"INSERT INTO directory ({', '.join(_COLUMNS)}, load_id) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}, ?)"
)


def _executemany(conn: Connection, found: list[Contact], load_id: int) -> None:
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(_INSERT, [(*c, load_id) for c in found])
    finally:
        cursor.close()


def _copy(conn: Connection, found: list[Contact], load_id: int) -> None:
    """PostgreSQL: COPY into the table, in the load's transaction."""
    raw: Any = conn.connection.driver_connection
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY directory ({', '.join(_COLUMNS)}, load_id) FROM STDIN") as copy,
    ):
        for c in found:
            copy.write_row((*c, load_id))


def forget(
    conn: Connection,
    *,
    emails: Sequence[str] = (),
    linkedins: Sequence[str] = (),
    phones: Sequence[str] = (),
    identities: Sequence[str] = (),
) -> int:
    """Remove the directory rows of a person (erasure): rows with one of these normalised
    emails, LinkedIn slugs, E.164 phones or identities; how many rows."""
    d = db.directory
    gone = 0
    for column, values in (
        (d.c.email, emails),
        (d.c.linkedin, linkedins),
        (d.c.phone, phones),
        (d.c.identity, identities),
    ):
        wanted = sorted({v for v in values if v})
        for part in _chunks(wanted):
            gone += int(conn.execute(sa.delete(d).where(column.in_(part))).rowcount or 0)
    return gone


def stats(engine: Engine) -> dict[str, object]:
    """Size of the directory and its last load, for the admin page and CLI."""
    with engine.connect() as conn:
        size = int(conn.execute(sa.select(sa.func.count()).select_from(db.directory)).scalar() or 0)
        last = conn.execute(
            sa.select(db.directory_loads).order_by(db.directory_loads.c.id.desc()).limit(1)
        ).first()
    return {"contacts": size, "last_load": dict(last._mapping) if last else None}
