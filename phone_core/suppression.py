"""Suppression (do-not-call) lists: the only writer of ``suppression_lists`` and
``suppression_entries``, the file loader, and the check a run's outcomes go through.

A list has a name and entries of three kinds, each normalised the way records are:
phones in E.164 (``phones.to_e164``, any written form), emails (``records.normalize_email``)
and LinkedIn slugs (``records.normalize_linkedin``). Matching is exact on those forms.

Loading a file streams it (``tablestream`` within the directory's limits: up to millions
of rows, a chunk in memory at a time) in one transaction: loading a list under an
existing name replaces that list's entries (an updated DNC register is loaded again), and
a failure mid-way leaves the list as it was. Columns are found by the mapping rules
(``mapping.suggest_mapping`` on phone / email / linkedin); a file of one column without a
recognisable header (a bare column of numbers) is read cell by cell, header row included.

``screen`` is the check of a run: the engine calls it on every batch of final outcomes,
in the transaction that settles them and charges them (``runs.apply``), after the
waterfall and the cache. An outcome with a phone whose phone, email or LinkedIn is on a
list is, by ``PHONE_DNC_MODE``:

- ``flag``: kept and charged as usual, with the lists' names in ``dnc_list``;
- ``withhold``: ``suppressed``, no phone, no charge, the lists' names as its detail.

Erasure and retention (issue 13 items 2 and 3) leave the lists alone: an entry is the
minimal record kept so that an opt-out is honoured (erasing it would make the person
callable again); ``listed`` tells an erasure receipt which lists still hold the person.
Numbers written without a country code are read in ``PHONE_DEFAULT_REGION``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from phone_core import audit, db
from phone_core.errors import FileFormatError, InputError
from phone_core.mapping import suggest_mapping
from phone_core.models import Person, RecordStatus
from phone_core.phones import to_e164
from phone_core.records import normalize_email, normalize_linkedin
from phone_core.runs import Outcome
from phone_core.settings import Settings
from phone_core.tables import Table
from phone_core.tablestream import open_rows, sample

PHONE = "ph"
EMAIL = "em"
LINKEDIN = "li"
KINDS = {PHONE: "phone", EMAIL: "email", LINKEDIN: "linkedin"}
FLAG = "flag"
WITHHOLD = "withhold"
NAME_MAX_LEN = 100
LOAD_CHUNK = 10_000
_QUERY_CHUNK = 500
_SAMPLE_ROWS = 200
_lists = db.suppression_lists
_entries = db.suppression_entries

Key = tuple[str, str]  # (kind, normalised value)


@dataclass(frozen=True)
class ListInfo:
    name: str
    phones: int
    people: int
    rows_read: int
    rows_refused: int
    loaded_by: str
    loaded_at: datetime


def clean_name(name: str) -> str:
    text = " ".join(name.split())
    if not text:
        raise InputError("give the list a name")
    if len(text) > NAME_MAX_LEN:
        raise InputError(f"a list name is at most {NAME_MAX_LEN} characters")
    if ";" in text:
        raise InputError("a list name cannot contain ';'")
    if audit._looks_personal(text):
        raise InputError("a list name must not be an email address or a phone number")
    return text


def name_of_file(filename: str) -> str:
    return clean_name(PurePath(filename).stem or "suppression list")[:NAME_MAX_LEN]


# --- normalising -------------------------------------------------------------------------


def _auto(cell: str, region: str) -> Key | None:
    """One cell of a file with no recognised columns: an email, a LinkedIn URL or a phone."""
    if "@" in cell:
        email = normalize_email(cell)
        return (EMAIL, email) if email else None
    if "linkedin" in cell.lower():
        slug = normalize_linkedin(cell)
        return (LINKEDIN, slug) if slug else None
    phone = to_e164(cell, region)
    return (PHONE, phone) if phone else None


def keys_of_row(row: Mapping[str, str], region: str = "US") -> list[Key]:
    """The entries one mapped row gives (keys ``phone``, ``email``, ``linkedin``)."""
    found: list[Key] = []
    phone = to_e164(row.get("phone"), region) if row.get("phone") else None
    if phone:
        found.append((PHONE, phone))
    email = normalize_email(row.get("email", ""))
    if email:
        found.append((EMAIL, email))
    slug = normalize_linkedin(row.get("linkedin", ""))
    if slug:
        found.append((LINKEDIN, slug))
    return found


@dataclass(frozen=True)
class _Columns:
    positions: dict[str, int]  # "phone"/"email"/"linkedin" -> column index
    auto: int | None  # a single unrecognised column read cell by cell
    header_is_data: bool


def _columns(table: Table, region: str) -> _Columns:
    mapping = suggest_mapping(table, ("phone", "email", "linkedin"))
    positions = {f: table.headers.index(c) for f, c in mapping.items() if c}
    if positions:  # a file without a header row: its first row was taken for one
        first = {f: table.headers[i] for f, i in positions.items()}
        data = keys_of_row(first, region)
        if "linkedin.com/" not in first.get("linkedin", "").lower():
            data = [k for k in data if k[0] != LINKEDIN]
        return _Columns(positions, None, bool(data))
    if len(table.headers) == 1:
        return _Columns({}, 0, _auto(table.headers[0], region) is not None)
    raise InputError(
        "No column of phone numbers, emails or LinkedIn profiles was recognised: name the "
        "columns phone, email or linkedin (or give a file of one column)."
    )


def _keys(rows: Iterable[Sequence[str]], cols: _Columns, region: str) -> Iterator[list[Key]]:
    for row in rows:
        if cols.auto is not None:
            key = _auto(row[cols.auto], region)
            yield [key] if key else []
        else:
            yield keys_of_row({f: row[i] for f, i in cols.positions.items()}, region)


# --- writing -----------------------------------------------------------------------------


def load_stream(
    engine: Engine,
    name: str,
    keyed_rows: Iterable[list[Key]],
    *,
    loaded_by: str,
) -> ListInfo:
    """Load (or replace) the list ``name`` from rows of keys, in one transaction."""
    name = clean_name(name)
    read = refused = 0
    with engine.begin() as conn:
        existing = conn.execute(sa.select(_lists.c.id).where(_lists.c.name == name)).scalar()
        now = db.utcnow()
        if existing is None:
            created = conn.execute(
                sa.insert(_lists).values(
                    name=name,
                    phones=0,
                    people=0,
                    rows_read=0,
                    rows_refused=0,
                    loaded_by=loaded_by[:200],
                    loaded_at=now,
                )
            ).inserted_primary_key
            assert created is not None
            list_id = int(created[0])
        else:
            list_id = int(existing)
            conn.execute(sa.delete(_entries).where(_entries.c.list_id == list_id))
        it = iter(keyed_rows)
        for part in iter(lambda: list(itertools.islice(it, LOAD_CHUNK)), []):
            read += len(part)
            refused += sum(1 for keys in part if not keys)
            unique = {k for keys in part for k in keys}
            rows = [(list_id, kind, value[:500]) for kind, value in sorted(unique)]
            db.bulk_insert(conn, _entries, ("list_id", "kind", "value"), rows)
        if read == 0:
            raise InputError("The file has no rows to load.")
        if read == refused:
            raise InputError(
                "No row of this file holds a valid phone number, email or LinkedIn profile."
            )
        distinct = sa.func.count(sa.distinct(_entries.c.value))
        by_kind: dict[str, int] = dict(
            conn.execute(
                sa.select(_entries.c.kind, distinct)
                .where(_entries.c.list_id == list_id)
                .group_by(_entries.c.kind)
            ).all()
        )
        phones = int(by_kind.get(PHONE, 0))
        people = int(by_kind.get(EMAIL, 0)) + int(by_kind.get(LINKEDIN, 0))
        conn.execute(
            sa.update(_lists)
            .where(_lists.c.id == list_id)
            .values(
                phones=phones,
                people=people,
                rows_read=read,
                rows_refused=refused,
                loaded_by=loaded_by[:200],
                loaded_at=now,
            )
        )
        audit.record(
            conn,
            action=audit.SUPPRESSION_LOAD,
            target=name,
            detail={
                "phones": phones,
                "people": people,
                "rows_read": read,
                "rows_refused": refused,
                "replaced": existing is not None,
            },
        )
    return ListInfo(name, phones, people, read, refused, loaded_by, now)


def load_file(
    engine: Engine,
    settings: Settings,
    source: BinaryIO,
    filename: str,
    *,
    name: str | None = None,
    loaded_by: str,
) -> ListInfo:
    """Load a CSV/XLSX file (seekable, not closed here) as the list ``name`` (default:
    the file's name), streamed, within the directory's size and row limits."""
    region = settings.default_region
    list_name = clean_name(name) if name else name_of_file(filename)
    with open_rows(
        source,
        filename,
        max_rows=settings.directory_max_rows,
        max_bytes=settings.directory_max_bytes,
        max_columns=settings.upload_max_columns,
        max_uncompressed_bytes=settings.xlsx_max_uncompressed_bytes,
    ) as stream:
        # The stream turns any error inside this block into "not a readable file": keep
        # ours (no usable column, a database error) as they are.
        try:
            head = sample(stream, _SAMPLE_ROWS)
            cols = _columns(head, region)
            rows: Iterable[Sequence[str]] = itertools.chain(head.rows, stream.rows)
            if cols.header_is_data:
                rows = itertools.chain([head.headers], rows)
            keyed = _keys(rows, cols, region)
            return load_stream(engine, list_name, keyed, loaded_by=loaded_by)
        except FileFormatError:
            raise
        except Exception as exc:
            failed = exc
    raise failed


def load_path(
    engine: Engine, settings: Settings, path: Path, *, name: str | None = None, loaded_by: str
) -> ListInfo:
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    with path.open("rb") as source:
        return load_file(engine, settings, source, path.name, name=name, loaded_by=loaded_by)


def remove(conn: Connection, name: str) -> ListInfo:
    """Remove the list and its entries; NotFound-style InputError when there is none."""
    info = get(conn, name)
    if info is None:
        raise InputError(f"there is no suppression list named {name!r}")
    list_id = conn.execute(sa.select(_lists.c.id).where(_lists.c.name == info.name)).scalar_one()
    conn.execute(sa.delete(_entries).where(_entries.c.list_id == list_id))
    conn.execute(sa.delete(_lists).where(_lists.c.id == list_id))
    audit.record(
        conn,
        action=audit.SUPPRESSION_REMOVE,
        target=info.name,
        detail={"phones": info.phones, "people": info.people},
    )
    return info


# --- reading and matching ----------------------------------------------------------------


def _info(m: Any) -> ListInfo:
    return ListInfo(
        name=str(m["name"]),
        phones=int(m["phones"]),
        people=int(m["people"]),
        rows_read=int(m["rows_read"]),
        rows_refused=int(m["rows_refused"]),
        loaded_by=str(m["loaded_by"]),
        loaded_at=m["loaded_at"],
    )


def lists(conn: Connection) -> list[ListInfo]:
    return [_info(r._mapping) for r in conn.execute(sa.select(_lists).order_by(_lists.c.name))]


def get(conn: Connection, name: str) -> ListInfo | None:
    row = conn.execute(sa.select(_lists).where(_lists.c.name == " ".join(name.split()))).first()
    return None if row is None else _info(row._mapping)


def any_list(conn: Connection) -> bool:
    return conn.execute(sa.select(_lists.c.id).limit(1)).first() is not None


def match(conn: Connection, keys: Iterable[Key]) -> dict[Key, list[str]]:
    """Each key on a list -> the names of its lists (sorted)."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in keys:
        if value:
            by_kind.setdefault(kind, set()).add(value)
    found: dict[Key, set[str]] = {}
    for kind, values in by_kind.items():
        wanted = sorted(values)
        for start in range(0, len(wanted), _QUERY_CHUNK):
            part = wanted[start : start + _QUERY_CHUNK]
            rows = conn.execute(
                sa.select(_entries.c.value, _lists.c.name)
                .select_from(_entries.join(_lists, _lists.c.id == _entries.c.list_id))
                .where(_entries.c.kind == kind, _entries.c.value.in_(part))
            )
            for value, list_name in rows:
                found.setdefault((kind, str(value)), set()).add(str(list_name))
    return {k: sorted(v) for k, v in found.items()}


def listed(conn: Connection, *, phone: str = "", email: str = "", linkedin: str = "") -> list[str]:
    """The lists holding any of these (normalised here, as a load does): for erasure
    receipts and support questions."""
    keys: list[Key] = []
    e164 = to_e164(phone) if phone else None
    if e164:
        keys.append((PHONE, e164))
    if normalize_email(email):
        keys.append((EMAIL, normalize_email(email)))
    if normalize_linkedin(linkedin):
        keys.append((LINKEDIN, normalize_linkedin(linkedin)))
    found = match(conn, keys)
    return sorted({n for names in found.values() for n in names})


def keys_of(phone: str, person: Person | None) -> list[Key]:
    """What an outcome is matched on: its phone, and its person's email and LinkedIn."""
    keys: list[Key] = [(PHONE, phone)] if phone else []
    if person is not None:
        if person.email:
            keys.append((EMAIL, person.email))
        if person.linkedin:
            keys.append((LINKEDIN, person.linkedin))
    return keys


def lists_for(found: Mapping[Key, list[str]], keys: Iterable[Key]) -> str:
    """The ";"-joined names of the lists any of ``keys`` is on ("" when none)."""
    names = sorted({n for k in keys for n in found.get(k, ())})
    return ";".join(names)[:200]


def screen(
    conn: Connection,
    items: Sequence[Outcome],
    people: Mapping[int, Person],
    mode: str,
) -> list[Outcome]:
    """The outcomes as they are to be settled: those with a phone on a list flagged or
    withheld (see the module docstring); the others unchanged."""
    carrying = [o for o in items if o.status.carries_phone and o.phone]
    if not carrying or not any_list(conn):
        return list(items)
    keys = {o.idx: keys_of(o.phone, people.get(o.idx)) for o in carrying}
    found = match(conn, itertools.chain.from_iterable(keys.values()))
    out: list[Outcome] = []
    for o in items:
        names = lists_for(found, keys.get(o.idx, ()))
        if not names:
            out.append(o)
        elif mode == WITHHOLD:
            out.append(Outcome(o.idx, RecordStatus.SUPPRESSED, o.source, "", 0, names, names))
        else:
            out.append(replace(o, dnc_list=names))
    return out
