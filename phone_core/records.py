"""Records: normalisation on the way in, the enrichability rule and identity keys.

The identity key names a person independently of formatting, so two rows that describe
the same person share it (in-run dedup) and a later run finds the earlier outcome (cache).
The strongest field wins: linkedin slug, then email, then name + domain, then name +
normalised company name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from phone_core.models import IDENTITY_MAX_LEN, Person, PersonRecord

_LINKEDIN_PATH = re.compile(r"/(?:in|pub)/([^/?#]+)", re.IGNORECASE)
_SLUG_OK = re.compile(r"^[\w\-.%]{2,100}$", re.UNICODE)
_COMPANY_SUFFIXES = re.compile(
    r"\b(incorporated|inc|corp|corporation|co|company|llc|ltd|limited|gmbh|ag|sa|sas|srl|bv|"
    r"nv|plc|pty|oy|ab|as|spa|kk|pte|the)\b"
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


_EMPTY_WORDS = frozenset({"nan", "none", "null", "n/a", "#n/a"})


def clean(value: object) -> str:
    """Trim, fold inner whitespace, drop control characters; None and NaN-ish become ''."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= 4 and text.lower() in _EMPTY_WORDS:
        return ""
    if text.isprintable() and "  " not in text and text == text.strip():
        return text  # the common case, without regex work
    return " ".join(_CONTROL.sub(" ", text).split())


@lru_cache(maxsize=65536)
def _domain_of(text: str) -> str:
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    if "/" not in text and ":" not in text and "?" not in text and "#" not in text:
        host = text  # a bare domain: no URL parsing needed
    else:
        if "://" not in text:
            text = "http://" + text
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return ""
    host = host.strip(".")
    if host.startswith("www."):
        host = host[4:]
    return host if "." in host and " " not in host else ""


def normalize_domain(value: object) -> str:
    """``https://www.Acme.com/about`` -> ``acme.com``; an email gives its domain."""
    text = clean(value).lower()
    return _domain_of(text) if text else ""


def normalize_linkedin(value: object) -> str:
    """A profile URL or a bare slug becomes the slug (lowercase, URL-decoded)."""
    text = clean(value)
    if not text:
        return ""
    match = _LINKEDIN_PATH.search(text)
    if match:
        slug = match.group(1)
    elif "linkedin." in text.lower() or "/" in text.strip("/"):
        return ""
    else:
        slug = text.strip("/")
    slug = unquote(slug).strip().lower()
    return slug if _SLUG_OK.match(slug) else ""


def normalize_email(value: object) -> str:
    text = clean(value).lower()
    if text.startswith("mailto:"):
        text = text[7:]
    return text if _EMAIL.match(text) else ""


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lowercase, strip accents and punctuation: for comparing names."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_ish = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", ascii_ish).strip()


def normalize_company(value: object) -> str:
    """Company name for matching: folded, legal suffixes removed."""
    folded = fold(clean(value))
    return " ".join(_COMPANY_SUFFIXES.sub(" ", folded).split())


def name_key(first: str, last: str) -> str:
    return f"{fold(first)}|{fold(last)}"


_PERSON_FIELDS = frozenset(Person.model_fields)
# ``Person.model_construct`` without its per-call generality (aliases, defaults, extras):
# the same attributes set directly, valid while Person has no private attributes or
# post-init hook (else the plain call is used).
_PLAIN_PERSON = not Person.__private_attributes__ and not Person.__pydantic_post_init__
_set = object.__setattr__


def _person(values: dict[str, str]) -> Person:
    if not _PLAIN_PERSON:
        return Person.model_construct(None, **values)
    person = Person.__new__(Person)
    _set(person, "__dict__", values)
    _set(person, "__pydantic_fields_set__", set(_PERSON_FIELDS))
    _set(person, "__pydantic_extra__", None)
    _set(person, "__pydantic_private__", None)
    return person


def normalize(record: PersonRecord | Mapping[str, object], *, new_id: bool = True) -> Person:
    """Turn caller input into a canonical Person; generate an id when none is given."""
    # A PersonRecord's fields are its __dict__ (no copy as model_dump would make).
    data: Mapping[str, object] = record.__dict__ if isinstance(record, PersonRecord) else record
    get = data.get
    record_id = clean(get("id"))
    if not record_id and new_id:
        record_id = str(uuid.uuid4())
    return _person(  # every field is a str built here: no validation needed
        {
            "id": record_id,
            "first_name": clean(get("first_name")),
            "last_name": clean(get("last_name")),
            "company_name": clean(get("company_name")),
            "company_url": normalize_domain(get("company_url")),
            "linkedin": normalize_linkedin(get("linkedin")),
            "email": normalize_email(get("email")),
        }
    )


# The enrichability rule, in one place: a record is enrichable when every field of one of
# these groups is filled, and its identity comes from the first such group (strongest
# first). Everything else (the mapping check, previews, the directory load) derives from it.
IDENTITY_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("li", ("linkedin",)),
    ("em", ("email",)),
    ("nd", ("first_name", "last_name", "company_url")),
    ("nc", ("first_name", "last_name", "company_name")),
)
# The rule in words, for messages (e.g. why a row is skipped).
ENRICHABLE_RULE = "LinkedIn, email, or first + last name with a company name or website"


def has_identity_fields(filled: Collection[str]) -> bool:
    """Whether these filled fields make a record enrichable (the rule above)."""
    return any(all(f in filled for f in fields) for _, fields in IDENTITY_GROUPS)


def is_enrichable(person: Person) -> bool:
    """linkedin, or email, or first + last + (company name or domain)."""
    return any(all(getattr(person, f) for f in fields) for _, fields in IDENTITY_GROUPS)


# How a normalised field enters an identity key (others enter as they are).
_KEY_PARTS: dict[str, Callable[[str], str]] = {
    "first_name": fold,
    "last_name": fold,
    "company_name": normalize_company,
}
_NORMALIZERS: dict[str, Callable[[object], str]] = {
    "first_name": clean,
    "last_name": clean,
    "company_name": clean,
    "company_url": normalize_domain,
    "linkedin": normalize_linkedin,
    "email": normalize_email,
}


def _bounded(key: str) -> str:
    """A key that fits its column: names + company can pass it (3 x 500 characters, and
    folding may expand a character), so a longer one keeps its kind and becomes a hash."""
    if len(key) <= IDENTITY_MAX_LEN:
        return key
    return f"{key[:3]}#{hashlib.sha256(key.encode()).hexdigest()}"


def identity_key(person: Person) -> str:
    """The person's identity for dedup and cache; empty when not enrichable."""
    return _identity(person.__dict__, None)


def identity_of(data: Mapping[str, object]) -> str:
    """``identity_key(normalize(data))`` without building the Person: for large previews.

    Only the fields that decide the identity are normalised, each at most once.
    """
    return _identity(data, {})


def _identity(data: Mapping[str, object], seen: dict[str, str] | None) -> str:
    """The key of the first complete identity group. ``seen`` is None when ``data`` is
    already normalised, else the cache of the fields normalised so far."""
    for prefix, fields in IDENTITY_GROUPS:
        texts: list[str] = []
        for field in fields:
            if seen is None:
                text = str(data[field])
            elif field in seen:
                text = seen[field]
            else:
                text = seen[field] = _NORMALIZERS[field](data.get(field))
            if not text:
                break
            texts.append(text)
        else:
            parts = (_KEY_PARTS.get(f, str)(t) for f, t in zip(fields, texts, strict=True))
            return _bounded(f"{prefix}:" + "|".join(parts))
    return ""


def first_occurrences(keys: list[str]) -> list[int | None]:
    """For each position, the index of the earlier record with the same key (or None)."""
    seen: dict[str, int] = {}
    out: list[int | None] = []
    for i, key in enumerate(keys):
        if key and key in seen:
            out.append(seen[key])
        else:
            out.append(None)
            if key:
                seen[key] = i
    return out
