from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone_core import db
from phone_core.mapping import can_enrich
from phone_core.models import PERSON_FIELDS, Person, PersonRecord
from phone_core.records import (
    first_occurrences,
    has_identity_fields,
    identity_key,
    identity_of,
    is_enrichable,
    normalize,
    normalize_company,
    normalize_domain,
    normalize_email,
    normalize_linkedin,
)
from phone_core.sources import directory


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.com", "acme.com"),
        ("  WWW.ACME.CO.UK  ", "acme.co.uk"),
        ("http://sub.acme.io:8080/x?y=1", "sub.acme.io"),
        ("jane@acme.com", "acme.com"),
        ("", ""),
        ("not a domain", ""),
        (None, ""),
        ("n/a", ""),
    ],
)
def test_normalize_domain(raw: str | None, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://linkedin.com/in/john-smith-123/", "john-smith-123"),
        ("https://www.linkedin.com/in/John-Smith-123?trk=abc", "john-smith-123"),
        ("linkedin.com/in/j%C3%BCrgen-m", "jürgen-m"),
        ("john-smith-123", "john-smith-123"),
        ("/john-smith-123/", "john-smith-123"),
        ("https://www.linkedin.com/company/acme", ""),
        ("https://uk.linkedin.com/in/jane-d/details/", "jane-d"),
        ("", ""),
    ],
)
def test_normalize_linkedin(raw: str, expected: str) -> None:
    assert normalize_linkedin(raw) == expected


def test_normalize_email_and_company() -> None:
    assert normalize_email(" Jane.Doe@Acme.COM ") == "jane.doe@acme.com"
    assert normalize_email("mailto:a@b.io") == "a@b.io"
    assert normalize_email("not-an-email") == ""
    assert normalize_company("Acme, Inc.") == normalize_company("ACME Incorporated") == "acme"
    assert normalize_company("Société Générale SA") == "societe generale"


def test_normalize_trims_and_generates_id() -> None:
    p = normalize(
        PersonRecord(
            first_name="  John ", last_name="Smith", company_url="https://www.Acme.com/about"
        )
    )
    assert p.first_name == "John"
    assert p.company_url == "acme.com"
    assert len(p.id) == 36
    assert normalize({"id": " 42 "}).id == "42"
    assert normalize({}, new_id=False).id == ""


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"linkedin": "jane"}, True),
        ({"email": "a@b.co"}, True),
        ({"first_name": "A", "last_name": "B", "company_name": "C"}, True),
        ({"first_name": "A", "last_name": "B", "company_url": "c.com"}, True),
        ({"first_name": "A", "last_name": "B"}, False),
        ({"first_name": "A", "company_name": "C"}, False),
        ({"company_name": "C", "company_url": "c.com"}, False),
        ({}, False),
    ],
)
def test_enrichable(fields: dict[str, str], ok: bool) -> None:
    person = Person(id="1", **fields)
    assert is_enrichable(person) is ok
    assert bool(identity_key(person)) is ok


def test_identity_ignores_formatting() -> None:
    a = normalize({"first_name": "José", "last_name": "Núñez", "company_url": "https://acme.com"})
    b = normalize({"first_name": "JOSE", "last_name": "nunez", "company_url": "www.acme.com/x"})
    assert identity_key(a) == identity_key(b)
    c = normalize({"linkedin": "https://linkedin.com/in/x-1/"})
    d = normalize({"linkedin": "X-1", "email": "other@b.com"})
    assert identity_key(c) == identity_key(d) == "li:x-1"


def test_first_occurrences() -> None:
    assert first_occurrences(["a", "b", "a", "", "", "b", "a"]) == [None, None, 0, None, None, 1, 0]


def test_control_characters_are_dropped() -> None:
    p = normalize({"first_name": "Jo\x00hn", "last_name": "Sm\tith\r\n", "company_name": "A\x7fB"})
    assert (p.first_name, p.last_name, p.company_name) == ("Jo hn", "Sm ith", "A B")


_field = st.one_of(
    st.just(""),
    st.sampled_from(["Ann", " JOSÉ ", "van der Berg", "Acme, Inc.", "Inc", "n/a", "x\x00y"]),
    st.sampled_from(["https://www.Acme.com/x", "acme.com", "a@b.io", "mailto:C@D.org"]),
    st.sampled_from(["https://linkedin.com/in/ann-1/", "ann-1", "https://linkedin.com/company/x"]),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({f: _field for f in PERSON_FIELDS[1:]}))
def test_identity_of_matches_identity_key_of_normalize(data: dict[str, str]) -> None:
    assert identity_of(data) == identity_key(normalize(data, new_id=False))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({f: _field for f in PERSON_FIELDS[1:]}))
def test_one_rule_decides_enrichability_everywhere(data: dict[str, str]) -> None:
    """The person check, the field-set check, the identity and the mapping check agree."""
    person = normalize(data, new_id=False)
    filled = {f for f in PERSON_FIELDS[1:] if getattr(person, f)}
    assert is_enrichable(person) == has_identity_fields(filled) == bool(identity_key(person))
    assert can_enrich(dict.fromkeys(filled, "column")) == has_identity_fields(filled)


def test_a_full_name_column_stands_for_first_and_last_name() -> None:
    assert can_enrich({"full_name": "Name", "company_url": "Website"})
    assert not can_enrich({"full_name": "Name"})
    assert not can_enrich({"first_name": "First", "company_name": None, "company_url": ""})


def test_the_directory_loads_exactly_the_enrichable_rows(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    db.migrate(engine)
    rows = [
        {"linkedin": "ann-1"},
        {"email": "bob@globex.com"},
        {"first_name": "Cat", "last_name": "Fox", "company_name": "Initech"},
        {"last_name": "Fox", "company_name": "Initech"},  # no first name: not a lookup key
        {"first_name": "Dan", "last_name": "Ng"},  # no company
    ]
    for i, row in enumerate(rows):
        row["phone"] = f"+1415555{i:04d}"
    rows.append({"linkedin": "no-phone"})
    assert directory.load_rows(engine, rows, file_name="d.csv", loaded_by="t") == (6, 3)
    engine.dispose()
