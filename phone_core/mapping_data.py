"""The column-mapping data file (``phone_core/data/mapping.toml``): load it and check it.

The file holds every header spelling, token rule and word list the automatic mapping uses
(see its comments for the format), so adding a spelling needs no code change. ``load``
refuses a file that breaks the schema, naming the problem.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[\W_]+")


def normalize_with(header: str, rejoin: re.Pattern[str]) -> str:
    """Accents off, casefolded, camelCase split, punctuation as spaces; ``rejoin`` glues
    back the words camelCase tore apart (``LinkedIn`` -> ``linked in`` -> ``linkedin``)."""
    text = unicodedata.normalize("NFKD", _CAMEL.sub(" ", header))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = " ".join(_NON_WORD.sub(" ", text).split())
    return rejoin.sub(lambda match: match.group().replace(" ", ""), text)


@dataclass(frozen=True)
class Rule:
    """A token rule: any of ``words`` (each a set of words, all needed) indicates the field,
    unless the header has one of ``unless``, or (when ``only_with`` is set) another word."""

    score: float
    words: tuple[frozenset[str], ...]
    unless: frozenset[str]
    only_with: frozenset[str] | None


@dataclass(frozen=True)
class MappingSpec:
    """The contents of ``mapping.toml``, checked and ready for matching."""

    exact: dict[str, dict[str, float]]  # field -> normalised spelling -> score
    rules: dict[str, Rule]
    noise: frozenset[str]
    blocked: frozenset[str]
    weaker: frozenset[str]
    rejoin: re.Pattern[str]
    generic: re.Pattern[str]
    honorifics: frozenset[str]
    suffixes: frozenset[str]
    particles: frozenset[str]
    company_words: frozenset[str]  # words that make a value a company's name ("GmbH", "Labs")
    title_words: frozenset[str]  # words of job titles ("Manager", "VP"), never of a name


def _words_of(section: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = section.get(key)
    if not isinstance(value, list) or not all(isinstance(w, str) and w for w in value):
        raise ValueError(f"{where}.{key} must be a list of non-empty strings")
    return list(value)


def _only_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(section) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")


def _one_of(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in words)


def load(text: str | None, fields: Collection[str]) -> MappingSpec:
    """Parse and check the mapping data for ``fields`` (the packaged file when ``text`` is None).

    Raises ValueError on any schema problem: an unknown field or key, a score outside 0-1,
    a spelling that is not in normalised form, or a spelling claimed twice.
    """
    if text is None:
        text = resources.files("phone_core").joinpath("data", "mapping.toml").read_text("utf-8")
    data = tomllib.loads(text)
    _only_keys(data, {"headers", "names", "fields"}, "mapping.toml")
    headers, names, sections = (
        data.get("headers", {}),
        data.get("names", {}),
        data.get("fields", {}),
    )
    _only_keys(headers, {"noise", "blocked", "weaker", "rejoin", "generic"}, "headers")
    _only_keys(
        names, {"honorifics", "suffixes", "particles", "company_words", "title_words"}, "names"
    )
    generic = headers.get("generic", {})
    _only_keys(generic, {"placeholders", "names", "numbered"}, "headers.generic")
    rejoin = re.compile(rf"\b(?:{_one_of(_words_of(headers, 'rejoin', 'headers'))})\b")
    if set(sections) != set(fields):
        raise ValueError(f"fields must be exactly {sorted(fields)}, got {sorted(sections)}")
    exact: dict[str, dict[str, float]] = {field: {} for field in fields}
    claimed: dict[str, str] = {}
    rules: dict[str, Rule] = {}
    for field, section in sections.items():
        where = f"fields.{field}"
        _only_keys(section, {"exact", "rule"}, where)
        for group in section.get("exact", []):
            _only_keys(group, {"score", "names"}, f"{where}.exact")
            score = _score_of(group, f"{where}.exact")
            for name in _words_of(group, "names", f"{where}.exact"):
                if normalize_with(name, rejoin) != name:
                    raise ValueError(f"{where}: {name!r} is not normalised (see normalize_header)")
                if name in claimed:
                    raise ValueError(f"{name!r} is claimed by {claimed[name]} and {field}")
                claimed[name] = field
                exact[field][name] = score
        if "rule" in section:
            rules[field] = _rule(section["rule"], f"{where}.rule")
    placeholders = _one_of(_words_of(generic, "placeholders", "headers.generic"))
    generic_names = _one_of(_words_of(generic, "names", "headers.generic"))
    numbered = _one_of(_words_of(generic, "numbered", "headers.generic"))
    return MappingSpec(
        exact=exact,
        rules=rules,
        noise=frozenset(_words_of(headers, "noise", "headers")),
        blocked=frozenset(_words_of(headers, "blocked", "headers")),
        weaker=frozenset(_words_of(headers, "weaker", "headers")),
        rejoin=rejoin,
        # "Column 3", "Field", "3"; "Column B", "B" (Excel's column letters); "URL"; "Link 2".
        generic=re.compile(
            rf"^(?:(?:{placeholders})?\s*\d*|(?:(?:{placeholders}) )?[a-z]|{generic_names}"
            rf"|(?:{numbered}) \d+)$"
        ),
        honorifics=frozenset(_words_of(names, "honorifics", "names")),
        suffixes=frozenset(_words_of(names, "suffixes", "names")),
        particles=frozenset(_words_of(names, "particles", "names")),
        company_words=frozenset(_words_of(names, "company_words", "names")),
        title_words=frozenset(_words_of(names, "title_words", "names")),
    )


def _score_of(section: Mapping[str, Any], where: str) -> float:
    score = section.get("score")
    if not isinstance(score, float | int) or isinstance(score, bool) or not 0 < score <= 1:
        raise ValueError(f"{where}: score must be a number in (0, 1]")
    return float(score)


def _rule(section: Mapping[str, Any], where: str) -> Rule:
    _only_keys(section, {"score", "words", "unless", "only_with"}, where)
    if "unless" in section and "only_with" in section:
        raise ValueError(f"{where}: give `unless` or `only_with`, not both")
    only_with = "only_with" in section
    other = frozenset(_words_of(section, "only_with", where)) if only_with else frozenset()
    if "unless" in section:
        other = frozenset(_words_of(section, "unless", where))
    return Rule(
        score=_score_of(section, where),
        words=tuple(frozenset(w.split()) for w in _words_of(section, "words", where)),
        unless=frozenset() if only_with else other,
        only_with=other if only_with else None,
    )


def header_score(norm: str, field: str, spec: MappingSpec) -> float:
    """How strongly a normalised header name alone says ``field`` (0-1)."""
    words = norm.split()
    while len(words) > 1 and words[0] in spec.noise:
        words.pop(0)
    exact = spec.exact[field]
    score = max(exact.get(norm, 0.0), exact.get(" ".join(words), 0.0) * 0.98)
    rule = spec.rules.get(field)
    if score or rule is None:
        return score
    tokens = set(norm.split())
    matched = [a for a in rule.words if a <= tokens]
    if not matched or ruled_out(tokens, rule, spec):
        return 0.0
    if rule.only_with is not None:
        extra = {t for t in tokens - rule.only_with - spec.noise if not t.isdigit()}
        if extra - set().union(*matched):
            return 0.0
    return rule.score * (0.7 if tokens & spec.weaker else 1.0)


def ruled_out(tokens: set[str], rule: Rule, spec: MappingSpec) -> bool:
    return bool(tokens & spec.blocked or tokens & rule.unless)


_NAMES_A_COLUMN = 0.75  # a header score that says "this cell is a column's name"


def names_a_column(cell: str, spec: MappingSpec) -> bool:
    """Whether a cell reads as a column name of a lead list: a known spelling or token rule
    of some field ("E-Mail", "Contact First Name") or a placeholder ("Column 3", "B")."""
    norm = normalize_with(cell, spec.rejoin)
    if not any(c.isalpha() for c in norm):
        return False
    if spec.generic.match(norm):
        return True
    return any(header_score(norm, field, spec) >= _NAMES_A_COLUMN for field in spec.exact)


@lru_cache(maxsize=1)
def packaged() -> MappingSpec:
    """The packaged data, for readers below ``mapping`` (which checks it against its fields)."""
    text = resources.files("phone_core").joinpath("data", "mapping.toml").read_text("utf-8")
    return load(text, list(tomllib.loads(text).get("fields", {})))
