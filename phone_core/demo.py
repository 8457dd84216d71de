"""Generated demo data (Faker, fixed seed): a reference directory and a lead list.

Every phone is in a fictional range (US 555-01XX, UK 020 7946 0XXX), every person is
made up. The lead list is built from the same population as the directory, so a first
user sees found, not found, duplicate and skipped outcomes.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

from faker import Faker

SEED = 20261129
US_AREAS = (
    212,
    415,
    312,
    617,
    646,
    202,
    305,
    512,
    206,
    303,
    213,
    404,
    503,
    615,
    702,
    713,
    720,
    801,
    919,
    971,
)
LEAD_HEADERS = [
    "Record ID",
    "First Name",
    "Last Name",
    "Company",
    "Website",
    "Person Linkedin Url",
    "Email Address",
    "Title",
]
DIRECTORY_HEADERS = [
    "first_name",
    "last_name",
    "company_name",
    "company_url",
    "linkedin",
    "email",
    "phone",
]


@dataclass(frozen=True)
class Contact:
    first: str
    last: str
    company: str
    domain: str
    slug: str
    email: str
    phone: str
    title: str


def _phone(rng: random.Random, i: int) -> str:
    if i % 10 == 9:  # one in ten is in London
        return f"+44 20 7946 0{i % 1000:03d}"
    area = US_AREAS[(i // 100) % len(US_AREAS)]
    return f"({area}) 555-01{i % 100:02d}"


def population(n: int, seed: int = SEED) -> list[Contact]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    companies = [fake.unique.company() for _ in range(max(10, n // 8))]
    out: list[Contact] = []
    for i in range(n):
        first, last = fake.first_name(), fake.last_name()
        company = rng.choice(companies)
        domain = "".join(c for c in company.lower().split(",")[0] if c.isalnum())[:20] + ".example"
        slug = f"{first}-{last}-{rng.randrange(10**6, 10**7)}".lower()
        out.append(
            Contact(
                first,
                last,
                company,
                domain,
                slug,
                f"{first}.{last}@{domain}".lower(),
                _phone(rng, i),
                fake.job(),
            )
        )
    return out


def directory_rows(people: list[Contact]) -> list[dict[str, str]]:
    return [
        {
            "first_name": p.first,
            "last_name": p.last,
            "company_name": p.company,
            "company_url": p.domain,
            "linkedin": f"https://www.linkedin.com/in/{p.slug}",
            "email": p.email,
            "phone": p.phone,
        }
        for p in people
    ]


def lead_rows(people: list[Contact], n: int = 300, seed: int = SEED) -> list[list[str]]:
    """Leads: ~70% from the directory, ~15% strangers, ~8% missing fields, ~7% duplicates."""
    rng = random.Random(seed + 1)
    fake = Faker("en_US")
    fake.seed_instance(seed + 1)
    rows: list[list[str]] = []
    for i in range(n):
        roll = rng.random()
        rid = f"lead-{i + 1:04d}"
        if roll < 0.08:  # not enrichable: a first name only, or a last name with a company
            rows.append([rid, fake.first_name(), "", "", "", "", "", fake.job()])
        elif roll < 0.15 and rows:  # the same person again, spelled another way
            src = rng.choice(rows)
            rows.append(
                [
                    rid,
                    src[1].upper(),
                    src[2],
                    src[3],
                    ("https://www." + src[4]) if src[4] else "",
                    src[5].rstrip("/") + "/" if src[5] else "",
                    src[6],
                    src[7],
                ]
            )
        elif roll < 0.30:  # a stranger: nobody knows their phone
            first, last = fake.first_name(), fake.last_name()
            rows.append([rid, first, last, fake.company(), fake.domain_name(), "", "", fake.job()])
        else:
            p = rng.choice(people)
            style = rng.random()
            linkedin = f"https://www.linkedin.com/in/{p.slug}/" if style < 0.4 else ""
            email = p.email if 0.4 <= style < 0.6 else ""
            rows.append(
                [
                    rid,
                    p.first,
                    p.last,
                    p.company,
                    p.domain if style >= 0.2 else "",
                    linkedin,
                    email,
                    p.title,
                ]
            )
    return rows


def to_csv(headers: list[str], rows: list[list[str]] | list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r[h] for h in headers] if isinstance(r, dict) else r)
    return buf.getvalue()


def write_examples(directory: Path, contacts: int = 2000, leads: int = 300) -> tuple[Path, Path]:
    """Write examples/leads.csv and examples/directory.csv (deterministic)."""
    directory.mkdir(parents=True, exist_ok=True)
    people = population(contacts)
    leads_path = directory / "leads.csv"
    dir_path = directory / "directory.csv"
    leads_path.write_text(to_csv(LEAD_HEADERS, lead_rows(people, leads)))
    dir_path.write_text(to_csv(DIRECTORY_HEADERS, directory_rows(people)))
    return leads_path, dir_path
