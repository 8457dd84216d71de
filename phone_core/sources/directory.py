"""The organisation's own contacts: loaded by an admin, matched with indexed set queries.

Match order per record: linkedin slug, email, first+last name with domain, first+last
name with normalised company name. A record matching several rows takes the first match.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from phone_core import db
from phone_core.credits import Price
from phone_core.models import Detail, RecordStatus, SourceResult
from phone_core.phones import to_e164
from phone_core.records import is_enrichable, name_key, normalize, normalize_company
from phone_core.sources.base import Lookup

NAME = "directory"
_CHUNK = 500
_INSERT_CHUNK = 5000


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


def load_rows(
    engine: Engine,
    rows: Iterable[Mapping[str, str]],
    *,
    file_name: str,
    loaded_by: str,
    replace: bool = True,
    default_region: str = "US",
) -> tuple[int, int]:
    """Load contact rows (canonical keys + ``phone``); returns (rows read, rows loaded).

    Rows without a valid phone or without any matchable key are not loaded.
    """
    read = loaded = 0
    batch: list[dict[str, str]] = []
    with engine.begin() as conn:
        if replace:
            conn.execute(sa.delete(db.directory))

        def flush() -> None:
            if batch:
                conn.execute(sa.insert(db.directory), batch)
                batch.clear()

        for row in rows:
            read += 1
            phone = to_e164(row.get("phone"), default_region)
            if not phone:
                continue
            person = normalize(row, new_id=False)
            if not is_enrichable(person):  # nothing a lookup could match it on
                continue
            nk = name_key(person.first_name, person.last_name) if person.last_name else ""
            company = normalize_company(person.company_name)
            batch.append(
                {
                    "linkedin": person.linkedin,
                    "email": person.email,
                    "name_key": nk,
                    "domain": person.company_url,
                    "company_key": company,
                    "phone": phone,
                }
            )
            loaded += 1
            if len(batch) >= _INSERT_CHUNK:
                flush()
        flush()
        conn.execute(
            sa.insert(db.directory_loads).values(
                file_name=file_name[:500],
                rows_read=read,
                rows_loaded=loaded,
                loaded_by=loaded_by,
                replaced=replace,
                loaded_at=db.utcnow(),
            )
        )
    return read, loaded


def stats(engine: Engine) -> dict[str, object]:
    """Size of the directory and its last load, for the admin page and CLI."""
    with engine.connect() as conn:
        size = int(conn.execute(sa.select(sa.func.count()).select_from(db.directory)).scalar() or 0)
        last = conn.execute(
            sa.select(db.directory_loads).order_by(db.directory_loads.c.id.desc()).limit(1)
        ).first()
    return {"contacts": size, "last_load": dict(last._mapping) if last else None}
