"""Automatic column mapping: which uploaded column holds which person field.

Header names decide (as CRM and prospecting exports spell them, in several languages); the cells
of the first rows confirm them, veto clearly wrong ones, and decide alone for generic headers
such as ``Column 3`` or ``URL``. Cell contents are never logged. The spellings and word lists
are data, in ``phone_core/data/mapping.toml`` (see ``load_spec``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice

from phone_core import mapping_data
from phone_core.errors import InputError
from phone_core.mapping_data import MappingSpec, Rule, header_score, normalize_with, ruled_out
from phone_core.models import PERSON_FIELDS, Confidence
from phone_core.records import has_identity_fields
from phone_core.tables import Table

FULL_NAME = "full_name"  # one column with the whole name: fills first and last name
PHONE = "phone"  # a directory file's phone column
# On screen: the name columns (a full-name column after them), company, contact, then the id.
PERSON_TARGETS = (*PERSON_FIELDS[1:3], FULL_NAME, *PERSON_FIELDS[3:], PERSON_FIELDS[0])
FIELDS = (*PERSON_TARGETS, PHONE)
DIRECTORY_TARGETS = FIELDS
PERSON_KEYS = PERSON_FIELDS  # the keys of a mapped row (plus ``phone`` when mapped)
FIELD_LABELS = {f: f.replace("_", " ").capitalize() for f in FIELDS} | {
    "company_url": "Company website",
    "linkedin": "LinkedIn",
    "id": "ID",
}
# records.ENRICHABLE_RULE, phrased as the columns to map.
NOTHING_TO_ENRICH = (
    "Nothing to enrich yet: map at least LinkedIn, Email, or First + Last name "
    "with Company (name or website)."
)
SAMPLE_ROWS = 200
_MIN_SCORE = 0.35
_NAME_FIELDS = ("first_name", "last_name", FULL_NAME, "company_name")
_PERSON_NAMES = _NAME_FIELDS[:3]

_EMAIL = re.compile(r"^(?:mailto:)?[^@\s<>,;]+@[^@\s<>,;]+\.[a-z]{2,}$", re.I)
_LINKEDIN_PROFILE = re.compile(r"linkedin\.com/(?:in|pub)/[^/?#\s]+", re.I)
_LINKEDIN_ANY = re.compile(r"(?:^|[/.])linkedin\.com(?:[/:?#]|$)", re.I)
_SALES_NAV = re.compile(r"linkedin\.com/(?:sales|talent|recruiter)/", re.I)
_SLUG = re.compile(r"^(?=[^/]*[a-z])[a-z0-9%_]+(?:-[a-z0-9%_]+)+/?$")
_BARE_SLUG = re.compile(r"^[\w\-%.]{2,100}/?$")
_DOMAIN = re.compile(
    r"^(?:https?://)?(?:www\.)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63})"
    r"(?::\d+)?(?:[/?#]\S*)?$",
    re.I,
)
_NOT_A_WEBSITE = re.compile(
    r"(?:^|\.)(?:linkedin|facebook|twitter|x|instagram|youtube|crunchbase|zoominfo|apollo|"
    r"hubspot|force|salesforce|lusha|clay|google|github)\.[a-z.]+$"
)
_ID_LIKE = re.compile(
    r"^(?:[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"  # uuid
    r"|(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{15}(?:[a-z0-9]{3})?"  # salesforce
    r"|[a-z]{1,8}[-_]?\d{1,12})$",  # prefixed code
    re.I,
)
_INT = re.compile(r"^\d{1,20}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PHONE = re.compile(r"^(?:\+|00)?[\d\s().\-/]{6,24}(?:\s*(?:x|ext\.?)\s*\d{1,6})?$", re.I)
_NICKNAME = re.compile(r"\([^)]*\)|\"[^\"]*\"|“[^”]*”")

Profile = dict[str, float]  # what a column's sampled cells look like: kind -> fraction
_KINDS = (
    *("email", "linkedin", "linkedin_any", "linkedin_company", "sales_nav", "slug", "bare_slug"),
    *("website", "phone_any", "phone_formatted", "long_int", "short_int", "id_like", "spaces"),
    *("person_name", "company", "one_word"),
)
_NAME_TOKEN = re.compile(r"^[^\W\d_](?:[^\W\d_]|['’.\-])*$")
_VALUE_TOKEN = re.compile(r"[\w&+']+(?:\.[\w&+']+)*\.?")


def normalize_header(header: str) -> str:
    """``"Person LinkedIn-URL"`` -> ``"person linkedin url"`` (accents, case, camelCase)."""
    return normalize_with(header, SPEC.rejoin)


def header_signature(headers: Iterable[str]) -> str:
    """Stable sha256 hex of the sorted normalised headers (order and spelling independent)."""
    joined = "\n".join(sorted(normalize_header(h) for h in headers))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def suggest_mapping(
    table: Table, fields: Sequence[str] = PERSON_TARGETS, *, spec: MappingSpec | None = None
) -> dict[str, str | None]:
    """Field -> header (or None); each header and each field used at most once.

    ``spec`` is the mapping data (default: the packaged ``mapping.toml``).
    """
    spec = spec or SPEC
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    candidates: list[tuple[float, int, str, str]] = []
    for position, header in enumerate(table.headers):
        profile = _profile(_sample(table, position), spec)
        for field in fields:
            score = _score(header, field, profile, spec)
            if score >= _MIN_SCORE:
                candidates.append((score, -position, header, field))
    mapping: dict[str, str | None] = dict.fromkeys(fields)
    for _, _, header, field in sorted(candidates, reverse=True):
        if mapping[field] is None and header not in mapping.values():
            mapping[field] = header
    full, first = mapping.get(FULL_NAME), mapping.get("first_name")
    # "Vorname" + "Name", "Prénom" + "Nom": a one-word name column is the last name.
    if full and first and "last_name" in mapping and mapping["last_name"] is None:
        one_word = _profile(_sample(table, table.headers.index(full)), spec)["spaces"] < 0.5
        mapping["last_name"], mapping[FULL_NAME] = (full, None) if one_word else (None, full)
    return mapping


HIGH_SCORE = 0.85  # a score at least this is a sure suggestion (a known header, clear cells)
MEDIUM_SCORE = 0.6  # at least this, a likely one; below, a guess to check


def confidence(
    table: Table, field: str, header: str, *, spec: MappingSpec | None = None
) -> Confidence:
    """How sure mapping ``header`` to ``field`` is: the score ``suggest_mapping`` gives the pair
    (high from ``HIGH_SCORE``, medium from ``MEDIUM_SCORE``); low whatever the score when the
    cells do not fit the field (what ``mapping_warnings`` says) or the column is empty; at
    most medium for a name or company column that only its cells point to."""
    spec = spec or SPEC
    position = table.headers.index(header)
    values = _sample(table, position)
    if not values:
        return Confidence.LOW
    profile = _profile(values, spec)
    if _content_problem(field, profile):
        return Confidence.LOW
    score = _score(header, field, profile, spec)
    if field == "last_name":  # "Vorname" + "Name": the name column holds last names
        score = max(score, 0.7 * _score(header, FULL_NAME, profile, spec))
    if field in (FULL_NAME, "company_name") and not header_score(
        normalize_with(header, spec.rejoin), field, spec
    ):
        score = min(score, HIGH_SCORE - 0.01)  # names told by their cells alone: a likely guess
    if score >= HIGH_SCORE:
        return Confidence.HIGH
    return Confidence.MEDIUM if score >= MEDIUM_SCORE else Confidence.LOW


def mapping_warnings(table: Table, mapping: Mapping[str, str | None]) -> list[str]:
    """Human warnings: mapped columns whose contents look wrong, or nothing enrichable."""
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for field, header in mapping.items():
        if not header:
            continue
        label = FIELD_LABELS.get(field, field)
        if header not in table.headers:
            warnings.append(f'The column "{header}" (mapped to {label}) is not in the file.')
            continue
        if header in seen:
            warnings.append(f'"{header}" is mapped to both {seen[header]} and {label}.')
        seen[header] = label
        values = _sample(table, table.headers.index(header))
        problem = _content_problem(field, _profile(values, SPEC)) if values else None
        if not any(table.column(header)):
            problem = "it is empty."
        if field == "id" and not problem:
            ids = [v for v in table.column(header) if v]
            if len(set(ids)) < len(ids):
                problem = "some values repeat; rows with the same ID count as the same person."
        if problem:
            warnings.append(f'"{header}" (mapped to {label}): {problem}')
    if not can_enrich({f: h for f, h in mapping.items() if h in table.headers}):
        warnings.append(NOTHING_TO_ENRICH)
    return warnings


def can_enrich(mapping: Mapping[str, str | None]) -> bool:
    """Whether rows mapped this way can be enrichable at all: ``records.has_identity_fields``
    on the mapped fields, a full-name column standing for first and last name."""
    mapped = {field for field, header in mapping.items() if header}
    if FULL_NAME in mapped:
        mapped |= {"first_name", "last_name"}
    return has_identity_fields(mapped)


def apply_mapping(table: Table, mapping: Mapping[str, str | None]) -> list[dict[str, str]]:
    """One dict of raw cell strings per row, keyed by the canonical person fields."""
    return list(map_rows(table.headers, table.rows, mapping))


def map_rows(
    headers: Sequence[str], rows: Iterable[Sequence[str]], mapping: Mapping[str, str | None]
) -> Iterator[dict[str, str]]:
    """``apply_mapping`` of a stream of rows under ``headers``, a row at a time."""
    index: dict[str, int] = {}
    for field, header in mapping.items():
        if header and header not in headers:
            raise InputError(f'The column "{header}" is not in the file.')
        if header:
            index[field] = list(headers).index(header)
    keys = [*PERSON_KEYS, PHONE] if PHONE in index else list(PERSON_KEYS)
    full = index.get(FULL_NAME)
    for row in rows:
        record = {key: row[index[key]] if key in index else "" for key in keys}
        if full is not None and row[full] and not (record["first_name"] and record["last_name"]):
            first, last = split_full_name(row[full])
            record["first_name"] = record["first_name"] or first
            record["last_name"] = record["last_name"] or last
        yield record


def split_full_name(name: str) -> tuple[str, str]:
    """``"Jane van der Berg"`` -> (Jane, van der Berg); ``"Smith, John"`` -> (John, Smith)."""
    text = " ".join(_NICKNAME.sub(" ", name).split()).strip(" ,;")
    head, comma, tail = text.partition(",")
    if comma:
        tail_tokens = tail.replace(",", " ").split()
        if all(_bare(t) in SPEC.suffixes for t in tail_tokens):
            text = head  # "Jane Doe, PhD"
        elif head.strip():
            first = [t for t in tail_tokens if _bare(t) not in SPEC.suffixes | SPEC.honorifics]
            return " ".join(first), head.strip()
    tokens = [t for t in text.split() if any(c.isalpha() for c in t)]
    while len(tokens) > 1 and _bare(tokens[0]) in SPEC.honorifics:
        tokens.pop(0)
    while len(tokens) > 2 and _bare(tokens[-1]) in SPEC.suffixes:
        tokens.pop()
    if len(tokens) < 2:
        return (tokens[0] if tokens else ""), ""
    split = next((i for i in range(1, len(tokens) - 1) if tokens[i].lower() in SPEC.particles), 0)
    split = split or len(tokens) - 1
    first = [tokens[0], *(t for t in tokens[1:split] if len(_bare(t)) > 1)]  # no initials
    return " ".join(first), " ".join(tokens[split:])


def _bare(token: str) -> str:
    return token.strip(".,;").lower()


def load_spec(text: str | None = None) -> MappingSpec:
    """The mapping data: the packaged ``mapping.toml``, or ``text`` in its format."""
    return mapping_data.load(text, FIELDS)


SPEC = load_spec()


def _score(header: str, field: str, profile: Profile, spec: MappingSpec) -> float:
    """Header evidence wins; contents confirm, veto, or decide for generic headers."""
    if _vetoed(field, profile):
        return 0.0
    norm = normalize_with(header, spec.rejoin)
    from_header = header_score(norm, field, spec)
    from_content = _content_score(field, profile)
    if spec.generic.match(norm):
        return max(from_header, 0.9 * from_content)
    if from_header:
        return from_header + 0.05 * from_content
    if field in ("email", "linkedin", "company_url") and from_content >= 0.8:
        rule = spec.rules.get(field, Rule(0.0, (), frozenset(), None))
        return 0.0 if ruled_out(set(norm.split()), rule, spec) else 0.6 * from_content
    if field == "company_name" and from_content >= 0.6 and header_score(norm, FULL_NAME, spec):
        return 0.6 * from_content  # "Name" over company names (a list of accounts)
    return 0.0


def _content_score(field: str, p: Profile) -> float:
    if field == FULL_NAME:
        # People's names: two to four capitalised words, nearly all different, no company.
        return 0.0 if p["unique"] < 0.8 else max(0.0, p["person_name"] - p["company"])
    if field == "company_name":
        # Companies: a legal form or company word in many values; the rest are mostly one word.
        return 0.0 if p["company"] < 0.25 else min(1.0, p["company"] + 0.5 * p["one_word"])
    if field == "linkedin":
        return max(p["linkedin"], 0.6 * p["slug"])
    if field == "company_url":
        return p["website"]
    if field == "phone":
        return p["phone_formatted"] + 0.6 * p["long_int"]
    if field == "id":
        if p["unique"] < 0.95 or p["count"] < 2:
            return 0.0
        return 0.9 * p["id_like"] + 0.7 * p["short_int"] + 0.5 * p["long_int"]
    return p["email"] if field == "email" else 0.0


def _vetoed(field: str, p: Profile) -> bool:
    """Contents that clearly contradict the field, whatever the header says."""
    if p["count"] < 2:
        return False
    if field == "company_url":
        return max(p["linkedin_any"], p["email"]) >= 0.5
    if field == "email":
        return p["email"] < 0.2 and max(p["website"], p["linkedin_any"], p["phone_any"]) >= 0.5
    if field == "linkedin":
        return p["linkedin"] < 0.2 and max(p["email"], p["website"]) >= 0.5
    if field == "phone":
        return max(p["email"], p["website"], p["linkedin_any"]) >= 0.5
    if field == FULL_NAME and p["company"] >= 0.6 and p["person_name"] < 0.2:
        return True  # "Name" over company names
    return field in _NAME_FIELDS and max(p["email"], p["linkedin_any"]) >= 0.8


def _sample(table: Table, position: int) -> list[str]:
    """Up to ``SAMPLE_ROWS`` non-empty cells of a column, from its first rows."""
    cells = (row[position] for row in table.rows[: SAMPLE_ROWS * 10] if row[position])
    return list(islice(cells, SAMPLE_ROWS))


def _profile(values: list[str], spec: MappingSpec) -> Profile:
    """Fractions of the (non-empty) values that look like each kind of data."""
    counts = dict.fromkeys(_KINDS, 0.0)
    for value in values:
        name_kind = _name_kind(value, spec)
        low = value.lower()
        email = bool(_EMAIL.match(value))
        linkedin_any = bool(_LINKEDIN_ANY.search(low))
        domain = None if email else _DOMAIN.match(low)
        digits = sum(ch.isdigit() for ch in value)
        integer = bool(_INT.match(value))
        phone = bool(_PHONE.match(value)) and 7 <= digits <= 15 and not _ISO_DATE.match(value)
        flags = {
            "email": email,
            "linkedin": bool(_LINKEDIN_PROFILE.search(low)),
            "linkedin_any": linkedin_any,
            "linkedin_company": "linkedin.com/company/" in low,
            "sales_nav": bool(_SALES_NAV.search(low)),
            "slug": bool(_SLUG.match(value)),
            "bare_slug": bool(_BARE_SLUG.match(value)) and not integer and not domain,
            "website": bool(domain and not _NOT_A_WEBSITE.search(domain.group(1))),
            "phone_any": phone,
            "phone_formatted": phone and not integer,
            "long_int": integer and 10 <= digits <= 15,
            "short_int": integer and digits < 10,
            "id_like": bool(_ID_LIKE.match(value)) and not integer,
            "spaces": " " in value,
            "person_name": name_kind == "person_name",
            "company": name_kind == "company",
            "one_word": name_kind == "one_word",
        }
        for key, flag in flags.items():
            counts[key] += flag
    n = len(values) or 1
    profile = {key: count / n for key, count in counts.items()}
    return profile | {"count": len(values), "unique": len(set(values)) / n}


def _name_kind(value: str, spec: MappingSpec) -> str:
    """What a short text value looks like: ``person_name`` ("Dr. Ann Lee", "Lee, Ann"),
    ``company`` ("Globex GmbH", "AT&T"), ``one_word`` ("Initech", "Ann"), or ``""`` (a job
    title, a sentence, a number, an address...). The word lists are in ``mapping.toml``."""
    if len(value) > 80 or "@" in value or "/" in value:
        return ""
    words = _VALUE_TOKEN.findall(_NICKNAME.sub(" ", value))
    if not words or len(words) > 6:
        return ""
    bare = [w.replace(".", "").lower() for w in words]
    if any(w in spec.title_words for w in bare):
        return ""
    if any(w in spec.company_words for w in bare) or "&" in value:
        return "company"
    if any(c.isdigit() for c in value):
        return ""
    person = [w for w, b in zip(words, bare, strict=True) if b not in spec.honorifics]
    while len(person) > 2 and person[-1].replace(".", "").lower() in spec.suffixes:
        person.pop()
    if not all(_NAME_TOKEN.match(w) for w in person):
        return ""
    if len(person) == 1:
        return "one_word"
    uniform = value.islower() or value.isupper()
    capitalised = all(uniform or w[0].isupper() or w.lower() in spec.particles for w in person)
    return "person_name" if capitalised and 2 <= len(person) <= 4 else ""


def _content_problem(field: str, p: Profile) -> str | None:
    """Why the sampled values do not fit the field, or None (lenient: no over-warning)."""
    for kind, message in _PROBLEMS.get("name" if field in _NAME_FIELDS else field, ()):
        if p[kind] >= 0.5:
            return message
    if field in _PERSON_NAMES and p["company"] >= 0.5 and p["person_name"] < 0.25:
        return "the values look like company names, not people's names."
    if field not in _EXPECTED:
        return None
    kind, what = _EXPECTED[field]
    share = p[kind] + (p["bare_slug"] if field == "linkedin" else 0.0)
    if share >= 0.5:
        return None
    return f"{f'only {round(100 * share)}%' if share else 'none'} of the values look like {what}."


_NOT_NAMES = "the values look like email or web addresses, not names."
_PROBLEMS: dict[str, tuple[tuple[str, str], ...]] = {
    "email": (("website", "the values look like domains or websites, not email addresses."),),
    "company_url": (
        ("email", "the values look like email addresses, not company websites."),
        ("linkedin_any", "the values are LinkedIn links, not company websites."),
    ),
    "linkedin": (
        (
            "sales_nav",
            "Sales Navigator links cannot be used; export public linkedin.com/in/ links.",
        ),
        ("linkedin_company", "these are LinkedIn company pages, not people's profiles."),
    ),
    "name": (("email", _NOT_NAMES), ("website", _NOT_NAMES), ("linkedin_any", _NOT_NAMES)),
}
_EXPECTED = {
    "email": ("email", "email addresses"),
    "linkedin": ("linkedin", "LinkedIn profiles"),
    "company_url": ("website", "websites or domains"),
    "phone": ("phone_any", "phone numbers"),
}
