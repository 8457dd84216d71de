"""Column mapping: real export header sets, content evidence, warnings, name splitting."""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone_core.errors import InputError
from phone_core.mapping import (
    DIRECTORY_TARGETS,
    FIELDS,
    PERSON_KEYS,
    PERSON_TARGETS,
    apply_mapping,
    header_signature,
    load_spec,
    mapping_warnings,
    normalize_header,
    split_full_name,
    suggest_mapping,
)
from phone_core.tables import Table

ROOT = Path(__file__).resolve().parents[2]
ENRICH_WARNING = "map at least LinkedIn, Email, or First + Last name with Company"


def table(columns: dict[str, list[str]]) -> Table:
    """A table from column name -> values (all the same length)."""
    headers = list(columns)
    rows = [list(cells) for cells in zip(*columns.values(), strict=True)]
    return Table(headers=headers, rows=rows)


def headers_only(header_line: str, rows: int = 3) -> Table:
    """A table with empty cells from an export's header line (comma separated)."""
    headers = header_line.split(",")
    return Table(headers=headers, rows=[[""] * len(headers) for _ in range(rows)])


def mapped(mapping: dict[str, str | None]) -> dict[str, str]:
    return {field: header for field, header in mapping.items() if header}


def assert_one_to_one(mapping: dict[str, str | None]) -> None:
    headers = [h for h in mapping.values() if h]
    assert len(headers) == len(set(headers))


def test_field_constants() -> None:
    assert FIELDS == (
        "first_name",
        "last_name",
        "full_name",
        "company_name",
        "company_url",
        "linkedin",
        "email",
        "id",
        "phone",
    )
    assert "phone" not in PERSON_TARGETS
    assert (*PERSON_TARGETS, "phone") == DIRECTORY_TARGETS


# --- realistic exports --------------------------------------------------------------------------


def test_salesforce_lead_report() -> None:
    t = headers_only(
        "Lead ID,Salutation,First Name,Last Name,Title,Company / Account,Email,Phone,Mobile,"
        "Website,Lead Source,Lead Status,Lead Owner,Owner Email,Created Date,Account ID"
    )
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert mapped(mapping) == {
        "id": "Lead ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "company_name": "Company / Account",
        "email": "Email",
        "phone": "Phone",
        "company_url": "Website",
    }
    assert mapping["linkedin"] is None and mapping["full_name"] is None


def test_salesforce_contact_export() -> None:
    t = headers_only(
        "Contact ID,Account ID,Contact Owner,First Name,Last Name,Account Name,"
        "Account: Website,Email,Mailing City,Created By"
    )
    assert mapped(suggest_mapping(t)) == {
        "id": "Contact ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "company_name": "Account Name",
        "company_url": "Account: Website",
        "email": "Email",
    }


def test_hubspot_export() -> None:
    t = table(
        {
            "Record ID": ["51", "1001", "77123"],
            "First Name": ["Jane", "John", "Ana"],
            "Last Name": ["Doe", "Roe", "Lima"],
            "Email": ["jane@acme.com", "john@beta.io", "ana@gamma.br"],
            "Phone Number": ["+1 555 123 4567", "", "+55 11 91234 5678"],
            "Company Name": ["Acme", "Beta", "Gamma"],
            "Website URL": ["https://acme.com", "beta.io", "www.gamma.com.br"],
            "Contact owner": ["Bob Seller", "Bob Seller", "Sue Seller"],
            "Lifecycle Stage": ["lead", "lead", "customer"],
            "LinkedIn Company Page": ["https://linkedin.com/company/acme", "", ""],
            "Associated Company": ["Acme", "Beta", "Gamma"],
        }
    )
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert mapped(mapping) == {
        "id": "Record ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "phone": "Phone Number",
        "company_name": "Company Name",
        "company_url": "Website URL",
    }
    assert mapping_warnings(t, mapping) == []


def test_apollo_export() -> None:
    columns = {
        "First Name": ["Jane", "John"],
        "Last Name": ["Doe", "Roe"],
        "Title": ["CEO", "CTO"],
        "Company": ["Acme", "Beta"],
        "Company Name for Emails": ["Acme", "Beta"],
        "Email": ["jane@acme.com", "john@beta.io"],
        "Email Status": ["Verified", "Unavailable"],
        "Contact Owner": ["me@us.com", "me@us.com"],
        "Work Direct Phone": ["", "+1 (555) 222-3333"],
        "Mobile Phone": ["+1 555 123 4567", ""],
        "Corporate Phone": ["+1 555 000 0000", "+1 555 999 0000"],
        "Account Owner": ["me@us.com", "me@us.com"],
        "# Employees": ["120", "45"],
        "Person Linkedin Url": ["http://www.linkedin.com/in/janedoe", "linkedin.com/in/john-roe"],
        "Website": ["http://www.acme.com", "http://www.beta.io"],
        "Company Linkedin Url": ["http://www.linkedin.com/company/acme", ""],
        "Twitter Url": ["https://twitter.com/acme", ""],
        "Apollo Contact Id": ["64f1c2d3e4b5a69788990011", "64f1c2d3e4b5a69788990022"],
        "Apollo Account Id": ["54f1c2d3e4b5a69788990011", "54f1c2d3e4b5a69788990022"],
        "Secondary Email": ["", "jroe@gmail.com"],
    }
    t = table(columns)
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert mapped(mapping) == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "company_name": "Company",
        "email": "Email",
        "phone": "Work Direct Phone",
        "linkedin": "Person Linkedin Url",
        "company_url": "Website",
        "id": "Apollo Contact Id",
    }
    assert mapping_warnings(t, mapping) == []


def test_zoominfo_export() -> None:
    t = headers_only(
        "ZoomInfo Contact ID,Last Name,First Name,Middle Name,Job Title,Direct Phone Number,"
        "Email Address,Email Domain,Mobile phone,Previous Company Name,"
        "ZoomInfo Contact Profile URL,LinkedIn Contact Profile URL,ZoomInfo Company ID,"
        "Company Name,Website,Company HQ Phone,Fax,LinkedIn Company Profile URL"
    )
    assert mapped(suggest_mapping(t)) == {
        "id": "ZoomInfo Contact ID",
        "last_name": "Last Name",
        "first_name": "First Name",
        "email": "Email Address",
        "linkedin": "LinkedIn Contact Profile URL",
        "company_name": "Company Name",
        "company_url": "Website",
    }


def test_sales_navigator_phantombuster_export() -> None:
    t = table(
        {
            "firstName": ["Jane", "John"],
            "lastName": ["Doe", "Roe"],
            "fullName": ["Jane Doe", "John Roe"],
            "companyName": ["Acme", "Beta"],
            "title": ["CEO", "CTO"],
            "profileUrl": [
                "https://www.linkedin.com/sales/lead/ACwAAA1,NAME_SEARCH,x1",
                "https://www.linkedin.com/sales/lead/ACwAAA2,NAME_SEARCH,x2",
            ],
            "linkedInProfileUrl": [
                "https://www.linkedin.com/in/jane-doe-1",
                "https://www.linkedin.com/in/jroe",
            ],
            "companyUrl": [
                "https://www.linkedin.com/sales/company/1234",
                "https://www.linkedin.com/sales/company/5678",
            ],
            "vmid": ["ACwAAA1", "ACwAAA2"],
            "location": ["Paris", "Berlin"],
        }
    )
    mapping = suggest_mapping(t)
    assert mapped(mapping) == {
        "first_name": "firstName",
        "last_name": "lastName",
        "full_name": "fullName",
        "company_name": "companyName",
        "linkedin": "linkedInProfileUrl",
    }
    assert mapping["company_url"] is None  # a LinkedIn company link is not a website


def test_clay_and_lusha_style_export() -> None:
    t = headers_only(
        "Full Name,Job Title,Company Name,Company Domain,LinkedIn Profile,Work Email,"
        "Company Linkedin Url,Email 1,Phone 1,li_url"
    )
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert mapped(mapping) == {
        "full_name": "Full Name",
        "company_name": "Company Name",
        "company_url": "Company Domain",
        "linkedin": "LinkedIn Profile",
        "email": "Work Email",
        "phone": "Phone 1",
    }


def test_french_export() -> None:
    t = table(
        {
            "Prénom": ["Zoë", "Élodie"],
            "Nom": ["Dupont", "Lefèvre"],
            "Société": ["Société Générale", "Crédit Agricole"],
            "Site web": ["societegenerale.com", "credit-agricole.fr"],
            "Adresse e-mail": ["zoe@sg.fr", "elodie@ca.fr"],
            "Profil LinkedIn": ["zoe-dupont", "elodie-lefevre-42"],
            "Téléphone": ["+33 1 23 45 67 89", "01 98 76 54 32"],
        }
    )
    assert mapped(suggest_mapping(t, DIRECTORY_TARGETS)) == {
        "first_name": "Prénom",
        "last_name": "Nom",
        "company_name": "Société",
        "company_url": "Site web",
        "email": "Adresse e-mail",
        "linkedin": "Profil LinkedIn",
        "phone": "Téléphone",
    }


def test_german_export_name_is_the_last_name() -> None:
    t = table(
        {
            "Vorname": ["Jürgen", "Anna"],
            "Name": ["Müller", "Schmidt"],
            "Firma": ["Siemens AG", "SAP SE"],
            "Webseite": ["siemens.de", "sap.com"],
            "E-Mail-Adresse": ["j.mueller@siemens.de", "anna.schmidt@sap.com"],
            "Telefon": ["+49 89 1234567", "+49 6227 747474"],
        }
    )
    mapping = suggest_mapping(t)
    assert mapped(mapping) == {
        "first_name": "Vorname",
        "last_name": "Name",
        "company_name": "Firma",
        "company_url": "Webseite",
        "email": "E-Mail-Adresse",
    }


def test_name_with_first_name_stays_full_name_when_it_holds_full_names() -> None:
    t = table({"First": ["Jane", "John"], "Name": ["Jane Doe", "John Roe"], "Company": ["A", "B"]})
    assert mapped(suggest_mapping(t)) == {
        "first_name": "First",
        "full_name": "Name",
        "company_name": "Company",
    }


def test_generic_headers_are_decided_by_contents() -> None:
    t = table(
        {
            "Column 1": [
                "6f1c2d3e-4b5a-4978-8899-001122334455",
                "7f1c2d3e-4b5a-4978-8899-001122334455",
                "8f1c2d3e-4b5a-4978-8899-001122334455",
            ],
            "Column 2": ["Jane Doe", "John Roe", "Ana Lima"],
            "Column 3": ["jane@acme.com", "john@beta.io", "ana@gamma.br"],
            "Column 4": [
                "https://www.linkedin.com/in/jane-doe",
                "linkedin.com/in/jroe/",
                "https://linkedin.com/in/ana-lima-123",
            ],
            "Column 5": ["acme.com", "https://www.beta.io/about", "gamma.com.br"],
            "Column 6": ["+1 555 123 4567", "(555) 765-4321", "+55 11 91234-5678"],
            "column_7": ["CEO", "CTO", "VP Sales"],
        }
    )
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert mapped(mapping) == {
        "id": "Column 1",
        "full_name": "Column 2",  # people's names, told by their contents (issue 10)
        "email": "Column 3",
        "linkedin": "Column 4",
        "company_url": "Column 5",
        "phone": "Column 6",
    }
    assert "phone" not in suggest_mapping(t)


def test_generic_url_and_profile_headers_follow_contents() -> None:
    t = table(
        {
            "URL": ["https://www.linkedin.com/in/jane-doe", "https://www.linkedin.com/in/jroe"],
            "Profile": ["acme.com", "beta.io"],
            "Notes": ["call back", "hot lead"],
        }
    )
    assert mapped(suggest_mapping(t)) == {"linkedin": "URL", "company_url": "Profile"}


def test_content_only_for_an_unknown_header() -> None:
    t = table({"Contact Info": ["jane@acme.com", "john@beta.io"], "Zip": ["75001", "10115"]})
    assert mapped(suggest_mapping(t)) == {"email": "Contact Info"}


def test_company_url_is_not_mapped_to_linkedin_or_email_contents() -> None:
    t = table(
        {
            "Website": ["https://linkedin.com/company/acme", "https://linkedin.com/company/beta"],
            "Company URL": ["jane@acme.com", "john@beta.io"],
            "Domain": ["acme.com", "beta.io"],
        }
    )
    mapping = suggest_mapping(t)
    assert mapping["company_url"] == "Domain"
    assert mapping["email"] == "Company URL"  # emails are emails, whatever the header says


def test_email_is_not_mapped_to_an_email_domain_column() -> None:
    t = table(
        {
            "Company Email Domain": ["acme.com", "beta.io"],
            "Email": ["acme.com", "beta.io"],
            "Email Status": ["valid", "valid"],
        }
    )
    mapping = suggest_mapping(t)
    assert mapping["email"] is None
    assert mapping["company_url"] in ("Company Email Domain", "Email")


def test_header_beats_contents_for_specific_headers() -> None:
    t = table({"Email": ["jane@acme.com", "n/a"], "Personal Email": ["j@gmail.com", "r@gmail.com"]})
    assert suggest_mapping(t)["email"] == "Email"


def test_lookalike_headers_are_not_mapped() -> None:
    t = headers_only(
        "Email Status,Email Opt Out,Last Email Sent,Contact Owner,Owner Email,Assistant Phone,"
        "Company LinkedIn URL,LinkedIn Connections,Sales Navigator URL,Phone Type,Fax Number,"
        "Domain Authority,Logo URL,Company ID,Account ID,Lead Source,Middle Name,Campaign Name,"
        "Previous Company,Company Size,Twitter URL,Title"
    )
    assert mapped(suggest_mapping(t, DIRECTORY_TARGETS)) == {}


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Contact ID (18 char)", "id"),
        ("E-Mail (geschäftlich)", "email"),
        ("Telefonnummer (mobil)", "phone"),
        ("Entreprise actuelle", "company_name"),
        ("Work Email (verified)", "email"),
        ("Full name (formatted)", "full_name"),
        ("Имя", "first_name"),
    ],
)
def test_unlisted_header_variants(header: str, field: str) -> None:
    mapping = suggest_mapping(Table(headers=[header], rows=[[""]]), DIRECTORY_TARGETS)
    assert mapped(mapping) == {field: header}


def test_sparse_columns_are_sampled_beyond_the_first_rows() -> None:
    emails = [""] * 500 + ["jane@acme.com", "john@beta.io"]
    t = table({"Column 1": emails, "Name": ["x"] * len(emails)})
    assert suggest_mapping(t)["email"] == "Column 1"
    assert mapping_warnings(t, {"email": "Column 1"}) == []


def test_each_header_and_field_used_once_and_fields_respected() -> None:
    t = headers_only("Name,Full Name,Email,E-mail,Phone,Mobile")
    mapping = suggest_mapping(t, ["full_name", "email"])
    assert mapping == {"full_name": "Full Name", "email": "Email"}
    assert_one_to_one(suggest_mapping(t, DIRECTORY_TARGETS))
    with pytest.raises(ValueError):
        suggest_mapping(t, ["nickname"])


@settings(max_examples=150, deadline=None)
@given(
    headers=st.lists(
        st.sampled_from(
            [
                *("Email", "E-mail", "Name", "First Name", "first", "Company", "Website", "URL"),
                *("LinkedIn", "Column 1", "Phone", "ID", "Record ID", "Domain", "", "Prénom"),
            ]
        )
        | st.text(max_size=12),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    cells=st.lists(st.sampled_from(["", "a@b.co", "acme.com", "Jane Doe", "+1 555 123 4567", "7"])),
)
def test_mapping_is_always_one_to_one(headers: list[str], cells: list[str]) -> None:
    width = len(headers)
    rows = [[cells[(r + c) % len(cells)] if cells else "" for c in range(width)] for r in range(4)]
    t = Table(headers=headers, rows=rows)
    mapping = suggest_mapping(t, DIRECTORY_TARGETS)
    assert set(mapping) == set(DIRECTORY_TARGETS)
    assert all(h in headers for h in mapping.values() if h is not None)
    assert_one_to_one(mapping)
    assert isinstance(mapping_warnings(t, mapping), list)
    assert len(apply_mapping(t, mapping)) == len(rows)


# --- warnings ----------------------------------------------------------------------------------


def test_no_warnings_for_a_clean_mapping_with_full_names_in_first_name() -> None:
    t = table(
        {
            "First Name": ["Jane Marie", "John Paul", "Ana"],
            "Last Name": ["Doe", "Roe", "Lima"],
            "Company": ["Acme", "Beta", "Gamma"],
        }
    )
    assert mapping_warnings(t, suggest_mapping(t)) == []


def test_email_column_with_few_emails() -> None:
    t = table({"Email": ["jane@acme.com", "call me", "unknown", "-"], "Company": ["A"] * 4})
    warnings = mapping_warnings(t, {"email": "Email"})
    assert warnings == [
        '"Email" (mapped to Email): only 25% of the values look like email addresses.'
    ]


def test_linkedin_column_without_linkedin_values() -> None:
    t = table({"LinkedIn": ["Jane Doe", "see CRM"], "Email": ["a@b.co", "c@d.co"]})
    warnings = mapping_warnings(t, {"linkedin": "LinkedIn", "email": "Email"})
    assert warnings == [
        '"LinkedIn" (mapped to LinkedIn): none of the values look like LinkedIn profiles.'
    ]


def test_linkedin_slugs_are_fine_and_sales_navigator_links_are_not() -> None:
    good = table({"LinkedIn": ["jane-doe-1a2b", "jroe", "https://linkedin.com/in/ana"]})
    assert mapping_warnings(good, {"linkedin": "LinkedIn"}) == []
    sales = table({"LinkedIn": ["https://www.linkedin.com/sales/lead/ACwAAA1,NAME,x"] * 2})
    assert "Sales Navigator" in mapping_warnings(sales, {"linkedin": "LinkedIn"})[0]


def test_company_url_column_full_of_emails() -> None:
    t = table({"Website": ["jane@acme.com", "john@beta.io"], "Email": ["a@b.co", "c@d.co"]})
    warnings = mapping_warnings(t, {"company_url": "Website", "email": "Email"})
    assert warnings == [
        '"Website" (mapped to Company website): the values look like email addresses, '
        "not company websites."
    ]


def test_nothing_enrichable_is_mapped() -> None:
    t = table({"First Name": ["Jane"], "Last Name": ["Doe"], "Title": ["CEO"]})
    warnings = mapping_warnings(t, suggest_mapping(t))
    assert len(warnings) == 1 and ENRICH_WARNING in warnings[0]
    assert mapping_warnings(t, {}) == warnings
    with_company = table({"Name": ["Jane Doe"], "Company": ["Acme"]})
    assert mapping_warnings(with_company, suggest_mapping(with_company)) == []


def test_duplicate_ids_empty_columns_and_double_mapping() -> None:
    t = table({"ID": ["1", "2", "1"], "Email": ["a@b.co", "c@d.co", "e@f.co"], "Notes": [""] * 3})
    warnings = mapping_warnings(t, {"id": "ID", "email": "Email", "phone": "Notes"})
    assert warnings == [
        '"ID" (mapped to ID): some values repeat; rows with the same ID count as the same person.',
        '"Notes" (mapped to Phone): it is empty.',
    ]
    double = mapping_warnings(t, {"email": "Email", "linkedin": "Email"})
    assert '"Email" is mapped to both Email and LinkedIn.' in double
    missing = mapping_warnings(t, {"email": "Mail"})
    assert missing[0] == 'The column "Mail" (mapped to Email) is not in the file.'


# --- apply_mapping -------------------------------------------------------------------------------


def test_apply_mapping_returns_raw_strings_for_canonical_keys() -> None:
    t = table(
        {
            "Email": ["  ", "JANE@ACME.COM"],
            "LinkedIn": ["https://www.linkedin.com/in/jroe/", ""],
            "Website": ["https://www.Beta.io/about", "acme.com"],
            "First Name": ["John", "Jane"],
            "Last Name": ["Roe", "Doe"],
        }
    )
    records = apply_mapping(t, suggest_mapping(t))
    assert records[0] == {
        "id": "",
        "first_name": "John",
        "last_name": "Roe",
        "company_name": "",
        "company_url": "https://www.Beta.io/about",
        "linkedin": "https://www.linkedin.com/in/jroe/",
        "email": "  ",
    }
    assert all(list(record) == list(PERSON_KEYS) for record in records)


def test_apply_mapping_adds_phone_only_when_mapped() -> None:
    t = table({"Email": ["a@b.co"], "Mobile": ["+1 555 123 4567"]})
    assert "phone" not in apply_mapping(t, suggest_mapping(t))[0]
    records = apply_mapping(t, suggest_mapping(t, DIRECTORY_TARGETS))
    assert records[0]["phone"] == "+1 555 123 4567"


def test_apply_mapping_splits_full_name() -> None:
    t = table(
        {
            "Name": ["Jane van der Berg", "Smith, John", "Madonna", ""],
            "First": ["", "", "", "Ana"],
            "Company": ["Acme", "Beta", "Gamma", "Delta"],
        }
    )
    records = apply_mapping(t, {"full_name": "Name", "company_name": "Company"})
    names = [(r["first_name"], r["last_name"]) for r in records]
    assert names == [("Jane", "van der Berg"), ("John", "Smith"), ("Madonna", ""), ("", "")]
    records = apply_mapping(t, {"full_name": "Name", "first_name": "First"})
    assert [(r["first_name"], r["last_name"]) for r in records][3] == ("Ana", "")


def test_apply_mapping_unknown_header() -> None:
    with pytest.raises(InputError, match='"Mail" is not in the file'):
        apply_mapping(table({"Email": ["a@b.co"]}), {"email": "Mail"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jane van der Berg", ("Jane", "van der Berg")),
        ("Smith, John", ("John", "Smith")),
        ("Jane Doe", ("Jane", "Doe")),
        ("Mary Ann Smith", ("Mary Ann", "Smith")),
        ("John A. Smith", ("John", "Smith")),
        ("Dr. Jane Doe, PhD", ("Jane", "Doe")),
        ("John Smith Jr.", ("John", "Smith")),
        ('Robert "Bob" Jones', ("Robert", "Jones")),
        ("Jean de la Fontaine", ("Jean", "de la Fontaine")),
        ("Ludwig Van Beethoven", ("Ludwig", "Van Beethoven")),
        ("  Madonna  ", ("Madonna", "")),
        ("李 小龙", ("李", "小龙")),
        ("", ("", "")),
        ("---", ("", "")),
    ],
)
def test_split_full_name(name: str, expected: tuple[str, str]) -> None:
    assert split_full_name(name) == expected


# --- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "normalised"),
    [
        ("firstName", "first name"),
        ("Person Linkedin Url", "person linkedin url"),
        ("linkedInProfileUrl", "linkedin profile url"),
        ("E-Mail-Adresse", "email adresse"),
        ("Prénom", "prenom"),
        ("Company / Account", "company account"),
        ("li_url", "li url"),
        ("ZoomInfo Contact ID", "zoominfo contact id"),
        ("  # Employees ", "employees"),
    ],
)
def test_normalize_header(header: str, normalised: str) -> None:
    assert normalize_header(header) == normalised


def test_header_signature_is_stable() -> None:
    signature = header_signature(["Email", "First Name"])
    assert signature == hashlib.sha256(b"email\nfirst name").hexdigest()
    assert header_signature(["first_name", " EMAIL "]) == signature
    assert header_signature(("firstName", "E-mail")) == signature
    assert header_signature(["Email", "Last Name"]) != signature
    assert len(signature) == 64


# --- the mapping data file (phone_core/data/mapping.toml) ---------------------------------------

DATA_TEXT = (resources.files("phone_core") / "data" / "mapping.toml").read_text("utf-8")


def test_the_data_file_covers_every_field_and_is_packaged() -> None:
    spec = load_spec()
    assert set(spec.exact) == set(FIELDS) and set(spec.rules) == set(FIELDS)
    assert all(spec.exact[field] for field in FIELDS)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "data/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["phone_core"]


def test_every_spelling_alone_maps_to_its_own_field() -> None:
    for field, spellings in load_spec().exact.items():
        for name, score in spellings.items():
            if score < 0.35:  # deliberately too weak to decide alone
                continue
            mapping = suggest_mapping(Table(headers=[name], rows=[[""]]), DIRECTORY_TARGETS)
            assert mapped(mapping) == {field: name}, (name, field)


def with_spelling(field: str, spelling: str, score: str = "1.0") -> str:
    """The shipped data with one more exact spelling for ``field``."""
    anchor = f"[fields.{field}.rule]"
    assert DATA_TEXT.count(anchor) == 1
    extra = f'[[fields.{field}.exact]]\nscore = {score}\nnames = ["{spelling}"]\n\n'
    return DATA_TEXT.replace(anchor, extra + anchor)


def test_adding_a_spelling_to_the_data_changes_the_suggestion() -> None:
    t = table({"Rufnummer": ["+49 30 1234567", "+49 30 7654321"], "Nachname": ["Roth", "Kuhn"]})
    assert "phone" not in mapped(suggest_mapping(t, DIRECTORY_TARGETS))
    spec = load_spec(with_spelling("phone", "rufnummer"))
    assert mapped(suggest_mapping(t, DIRECTORY_TARGETS, spec=spec)) == {
        "phone": "Rufnummer",
        "last_name": "Nachname",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (with_spelling("email", "first name"), "claimed by first_name and email"),
        (with_spelling("email", "E-Mail Adresse"), "not normalised"),
        (with_spelling("email", "work mail", score="1.5"), "score"),
        (DATA_TEXT + '\n[fields.nickname]\nexact = [{score = 1.0, names = ["nick"]}]\n', "fields"),
        (DATA_TEXT.replace("[headers]\n", "[headers]\nstopwords = []\n"), "unknown keys"),
        (DATA_TEXT.replace("unless = [", "only_with = []\nunless = [", 1), "not both"),
        (DATA_TEXT.replace('noise = [\n  "apollo"', "noise = [\n  1", 1), "list of non-empty"),
        (DATA_TEXT.replace("company_words = [", "company_word = [", 1), "unknown keys"),
    ],
)
def test_a_data_file_that_breaks_the_schema_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_spec(text)
