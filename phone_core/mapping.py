"""Automatic column mapping: which uploaded column holds which person field.

Header names decide (as CRM and prospecting exports spell them, in several languages); the cells
of the first rows confirm them, veto clearly wrong ones, and decide alone for generic headers
such as ``Column 3`` or ``URL``. Cell contents are never logged.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice

from phone_core.errors import InputError
from phone_core.tables import Table


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIELDS = _words("first_name last_name full_name company_name company_url linkedin email id phone")
PERSON_TARGETS = tuple(f for f in FIELDS if f != "phone")
DIRECTORY_TARGETS = (*PERSON_TARGETS, "phone")
PERSON_KEYS = ("id", "first_name", "last_name", "company_name", "company_url", "linkedin", "email")
FIELD_LABELS = {f: f.replace("_", " ").capitalize() for f in FIELDS} | {
    "company_url": "Company website",
    "linkedin": "LinkedIn",
    "id": "ID",
}
SAMPLE_ROWS = 200
_MIN_SCORE = 0.35
_NAME_FIELDS = ("first_name", "last_name", "full_name", "company_name")

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
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[\W_]+")
_GENERIC = re.compile(
    r"^(?:(?:column|col|field|unnamed|untitled|spalte|feld|colonne|champ)?\s*\d*|url|link|"
    r"links|profile|profile url|profile link|url \d+|link \d+|value|data|info|other|misc)$"
)
# Leading words that do not change what a header means ("Contact First Name", "Apollo ID").
_NOISE = frozenset(
    _words(
        "contact lead person people prospect member candidate customer record apollo zoominfo "
        "zi hubspot hs salesforce sfdc sf lusha clay crm my the"
    )
)
_NICKNAME = re.compile(r"\([^)]*\)|\"[^\"]*\"|“[^”]*”")
_HONORIFICS = frozenset(_words("mr mrs ms miss mx dr prof sir dame mme mlle herr frau"))
_SUFFIXES = frozenset(_words("jr sr ii iii iv phd md mba cpa esq pmp cfa dds rn msc bsc jd llm"))
_PARTICLES = frozenset(_words("van von der den de del della di da du dos das la le ter ten bin al"))

_REJOIN = re.compile(r"\b(?:linked in|e mail|zoom info|hub spot|sales force)\b")  # camelCase undone
Profile = dict[str, float]  # what a column's sampled cells look like: kind -> fraction
_KINDS = _words(
    "email linkedin linkedin_any linkedin_company sales_nav slug bare_slug website phone_any "
    "phone_formatted long_int short_int id_like spaces"
)


def normalize_header(header: str) -> str:
    """``"Person LinkedIn-URL"`` -> ``"person linkedin url"`` (accents, case, camelCase)."""
    text = unicodedata.normalize("NFKD", _CAMEL.sub(" ", header))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = " ".join(_NON_WORD.sub(" ", text).split())
    return _REJOIN.sub(lambda match: match.group().replace(" ", ""), text)


def header_signature(headers: Iterable[str]) -> str:
    """Stable sha256 hex of the sorted normalised headers (order and spelling independent)."""
    joined = "\n".join(sorted(normalize_header(h) for h in headers))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def suggest_mapping(table: Table, fields: Sequence[str] = PERSON_TARGETS) -> dict[str, str | None]:
    """Field -> header (or None); each header and each field used at most once."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    candidates: list[tuple[float, int, str, str]] = []
    for position, header in enumerate(table.headers):
        profile = _profile(_sample(table, position))
        for field in fields:
            score = _score(header, field, profile)
            if score >= _MIN_SCORE:
                candidates.append((score, -position, header, field))
    mapping: dict[str, str | None] = dict.fromkeys(fields)
    for _, _, header, field in sorted(candidates, reverse=True):
        if mapping[field] is None and header not in mapping.values():
            mapping[field] = header
    full, first = mapping.get("full_name"), mapping.get("first_name")
    # "Vorname" + "Name", "Prénom" + "Nom": a one-word name column is the last name.
    if full and first and "last_name" in mapping and mapping["last_name"] is None:
        one_word = _profile(_sample(table, table.headers.index(full)))["spaces"] < 0.5
        mapping["last_name"], mapping["full_name"] = (full, None) if one_word else (None, full)
    return mapping


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
        problem = _content_problem(field, _profile(values)) if values else None
        if not any(table.column(header)):
            problem = "it is empty."
        if field == "id" and not problem:
            ids = [v for v in table.column(header) if v]
            if len(set(ids)) < len(ids):
                problem = "some values repeat; rows with the same ID count as the same person."
        if problem:
            warnings.append(f'"{header}" (mapped to {label}): {problem}')
    has = {field for field, header in mapping.items() if header and header in table.headers}
    names = {"first_name", "last_name"} <= has or "full_name" in has
    if not has & {"linkedin", "email"} and not (names and has & {"company_name", "company_url"}):
        warnings.append(
            "Nothing to enrich yet: map at least LinkedIn, Email, or First + Last name "
            "with Company (name or website)."
        )
    return warnings


def apply_mapping(table: Table, mapping: Mapping[str, str | None]) -> list[dict[str, str]]:
    """One dict of raw cell strings per row, keyed by the canonical person fields."""
    index: dict[str, int] = {}
    for field, header in mapping.items():
        if header and header not in table.headers:
            raise InputError(f'The column "{header}" is not in the file.')
        if header:
            index[field] = table.headers.index(header)
    keys = [*PERSON_KEYS, "phone"] if "phone" in index else list(PERSON_KEYS)
    full = index.get("full_name")
    records: list[dict[str, str]] = []
    for row in table.rows:
        record = {key: row[index[key]] if key in index else "" for key in keys}
        if full is not None and row[full] and not (record["first_name"] and record["last_name"]):
            first, last = split_full_name(row[full])
            record["first_name"] = record["first_name"] or first
            record["last_name"] = record["last_name"] or last
        records.append(record)
    return records


def split_full_name(name: str) -> tuple[str, str]:
    """``"Jane van der Berg"`` -> (Jane, van der Berg); ``"Smith, John"`` -> (John, Smith)."""
    text = " ".join(_NICKNAME.sub(" ", name).split()).strip(" ,;")
    head, comma, tail = text.partition(",")
    if comma:
        tail_tokens = tail.replace(",", " ").split()
        if all(_bare(t) in _SUFFIXES for t in tail_tokens):
            text = head  # "Jane Doe, PhD"
        elif head.strip():
            first = [t for t in tail_tokens if _bare(t) not in _SUFFIXES | _HONORIFICS]
            return " ".join(first), head.strip()
    tokens = [t for t in text.split() if any(c.isalpha() for c in t)]
    while len(tokens) > 1 and _bare(tokens[0]) in _HONORIFICS:
        tokens.pop(0)
    while len(tokens) > 2 and _bare(tokens[-1]) in _SUFFIXES:
        tokens.pop()
    if len(tokens) < 2:
        return (tokens[0] if tokens else ""), ""
    split = next((i for i in range(1, len(tokens) - 1) if tokens[i].lower() in _PARTICLES), 0)
    split = split or len(tokens) - 1
    first = [tokens[0], *(t for t in tokens[1:split] if len(_bare(t)) > 1)]  # no initials
    return " ".join(first), " ".join(tokens[split:])


def _bare(token: str) -> str:
    return token.strip(".,;").lower()


# Normalised header spellings seen in CRM and prospecting exports (several languages), by
# field and score. Lines starting with spaces continue the previous line.
_EXACT_SPEC = """
first_name 1.0 first name|firstname|given name|givenname|forename|prenom|vorname|voornaam
first_name 0.9 first|fname|first nm|nombre|nome|imie|preferred first name|имя
last_name 1.0 last name|lastname|surname|family name|familyname|nom de famille|nachname|
  familienname|apellido|apellidos|achternaam|cognome|nazwisko
last_name 0.9 last|lname|last nm|nom|фамилия
full_name 1.0 full name|fullname|nom complet|nom et prenom|prenom nom|nom prenom|nombre completo|
  vollstandiger name|name vollstandig|nome completo|volledige naam|first and last name
full_name 0.9 name|first last name|display name|naam
full_name 0.7 contact|person|prospect
company_name 1.0 company|company name|companyname|company account|entreprise|nom entreprise|
  nom de l entreprise|societe|raison sociale|firma|firmenname|unternehmen|unternehmensname|
  empresa|nombre de la empresa|nombre empresa|azienda|bedrijf|bedrijfsnaam
company_name 0.9 account name|organization|organisation|organization name|organisation name|
  current company|current company name|account|employer|employer name|associated company|
  primary company|company legal name|business name|org|org name|firm|компания|организация
company_name 0.6 company name for emails
company_url 1.0 website|web site|company website|company web site|website url|company domain|
  company website url|company domain name|website domain|site web|site internet|webseite|
  sitio web|sito web
company_url 0.9 domain|company url|account website|corporate website|company homepage|homepage|
  domain name|home page|homepage url|internetseite|pagina web|primary domain|root domain|web|www
company_url 0.5 url|site|email domain|company email domain
linkedin 1.0 linkedin|linkedin url|linkedin profile|linkedin profile url|linkedin link|
  linkedin profile link|linkedin slug|linkedin handle|linkedin username|linkedin public url|
  linkedin public profile url|public linkedin url|li url|li profile|li profile url|li link|
  profil linkedin|profile linkedin|linkedin contact profile url
linkedin 0.9 linkedin id
linkedin 0.7 li|public profile url|linkedin bio
linkedin 0.4 profile|profile url
email 1.0 email|email address|emailaddress|work email|business email|professional email|
  primary email|courriel|adresse email|adresse mail|email adresse|emailadresse|correo|
  correo electronico|email 1|work email address|business email address
email 0.9 emails|mail|corporate email|verified email|почта|электронная почта
email 0.5 personal email|private email|secondary email|other email|email 2|alternate email
id 1.0 id|record id
id 0.9 uid|uuid|guid|external id|crm id|unique id|identifier|row id|object id
id 0.5 key|record
phone 1.0 phone|phone number|phonenumber|mobile|mobile phone|mobile number|mobile phone number|
  cell phone|cellphone|direct dial|direct phone|direct phone number|work direct phone|telephone|
  telefon|telefonnummer|handy|handynummer|mobil|mobilnummer|mobiltelefon|portable|telefono|
  telephone portable|numero de telephone|movil|celular|cellulare|phone 1|first phone
phone 0.9 cell|tel|direct line|work phone|телефон
phone 0.6 office phone|home phone|other phone|company phone|corporate phone|phone 2|hq phone|
  company hq phone
"""

# Token rules for other headers: "field score: words that indicate it (a&b: both) / words that
# rule it out" or "... + the only other words allowed".
_RULES_SPEC = """
first_name 0.8: first&name firstname prenom vorname forename given / last initial
last_name 0.8: last&name lastname surname nachname family&name / first initial
full_name 0.75: name + full contact person display complete formatted lead prospect the of
company_name 0.8: company organization organisation account employer org firm societe
  entreprise firma unternehmen empresa + name current associated primary legal nom de l la du
  the raison sociale official registered actuelle actuel aktuelle actual
company_url 0.7: website domain homepage url web site www webseite webpage / li linkedin facebook
  twitter instagram youtube xing crunchbase github zoominfo apollo sales navigator profile logo
  image photo avatar picture source tracking referring landing utm visit visits page authority
  rank rating score
linkedin 0.85: linkedin li&url li&profile / company organization organisation account employer
  sales navigator salesnav connections followers headline summary industry school job title
  location skills
email 0.8: email emails mail courriel correo + address adresse work business professional
  primary corporate personal private secondary other alternate main direct office de e
  electronico verified professionnel personnel perso pro geschaftlich dienstlich privat
id 0.8: id uuid guid uid identifier + crm external unique internal row object system char
phone 0.8: phone phones mobile cell cellphone tel telephone telefon telefono dial portable handy
  mobil movil celular telefonnummer handynummer mobilnummer + number nr no num direct work office
  home other personal private business main company corporate hq first second line de du fixe
  secondary alternate professionnel personnel perso pro geschaftlich dienstlich privat
"""
_BLOCK_ALL = frozenset(
    _words(
        "owner assistant manager rep sdr bdr creator created modified updated by referrer "
        "referred reports assigned recruiter spouse emergency previous former past old parent"
    )
)
_WEAKER = frozenset(_words("secondary other alternate alternative personal private home hq 2 3"))
Rule = tuple[float, tuple[frozenset[str], ...], frozenset[str], bool]  # score, wanted, other, only


def _spec_lines(spec: str) -> list[str]:
    lines: list[str] = []
    for line in spec.strip("\n").splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line.strip() if lines[-1].endswith("|") else " " + line.strip()
        else:
            lines.append(line)
    return lines


def _parse_exact(spec: str) -> dict[str, dict[str, float]]:
    exact: dict[str, dict[str, float]] = {field: {} for field in FIELDS}
    for line in _spec_lines(spec):
        field, score, names = line.split(" ", 2)
        exact[field].update(dict.fromkeys(names.split("|"), float(score)))
    return exact


def _parse_rules(spec: str) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for line in _spec_lines(spec):
        head, _, words = line.partition(": ")
        field, score = head.split()
        only = " + " in words
        wanted, _, other = words.partition(" + " if only else " / ")
        alternatives = tuple(frozenset(w.split("&")) for w in wanted.split())
        rules[field] = (float(score), alternatives, frozenset(other.split()), only)
    return rules


_EXACT = _parse_exact(_EXACT_SPEC)
_RULES = _parse_rules(_RULES_SPEC)


def _header_score(header: str, field: str) -> float:
    """How strongly the header name alone says ``field`` (0-1)."""
    norm = normalize_header(header)
    words = norm.split()
    while len(words) > 1 and words[0] in _NOISE:
        words.pop(0)
    exact = _EXACT[field]
    score = max(exact.get(norm, 0.0), exact.get(" ".join(words), 0.0) * 0.98)
    if score or field not in _RULES:
        return score
    rule_score, alternatives, other, only = _RULES[field]
    tokens = set(norm.split())
    matched = [a for a in alternatives if a <= tokens]
    if not matched or tokens & _BLOCK_ALL or (not only and tokens & other):
        return 0.0
    if only and {t for t in tokens - other - _NOISE if not t.isdigit()} - set().union(*matched):
        return 0.0
    return rule_score * (0.7 if tokens & _WEAKER else 1.0)


def _score(header: str, field: str, profile: Profile) -> float:
    """Header evidence wins; contents confirm, veto, or decide for generic headers."""
    if _vetoed(field, profile):
        return 0.0
    from_header = _header_score(header, field)
    from_content = _content_score(field, profile)
    if _GENERIC.match(normalize_header(header)):
        return max(from_header, 0.9 * from_content)
    if from_header:
        return from_header + 0.05 * from_content
    if field in ("email", "linkedin", "company_url") and from_content >= 0.8:
        tokens = set(normalize_header(header).split())
        _, _, other, only = _RULES[field]
        blocked = tokens & _BLOCK_ALL or (not only and tokens & other)
        return 0.0 if blocked else 0.6 * from_content
    return 0.0


def _content_score(field: str, p: Profile) -> float:
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
    return field in _NAME_FIELDS and max(p["email"], p["linkedin_any"]) >= 0.8


def _sample(table: Table, position: int) -> list[str]:
    """Up to ``SAMPLE_ROWS`` non-empty cells of a column, from its first rows."""
    cells = (row[position] for row in table.rows[: SAMPLE_ROWS * 10] if row[position])
    return list(islice(cells, SAMPLE_ROWS))


def _profile(values: list[str]) -> Profile:
    """Fractions of the (non-empty) values that look like each kind of data."""
    counts = dict.fromkeys(_KINDS, 0.0)
    for value in values:
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
        }
        for key, flag in flags.items():
            counts[key] += flag
    n = len(values) or 1
    profile = {key: count / n for key, count in counts.items()}
    return profile | {"count": len(values), "unique": len(set(values)) / n}


def _content_problem(field: str, p: Profile) -> str | None:
    """Why the sampled values do not fit the field, or None (lenient: no over-warning)."""
    for kind, message in _PROBLEMS.get("name" if field in _NAME_FIELDS else field, ()):
        if p[kind] >= 0.5:
            return message
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
