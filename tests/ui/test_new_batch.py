"""New batch page: upload, mapping suggestions, pre-flight numbers, budget, submit."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

import pytest
from streamlit.testing.v1 import AppTest

from phone_core import service
from phone_core.records import identity_key, normalize
from phone_core.runtime import Runtime
from phone_core.sources.cache import remember
from tests.conftest import grant, wait_finished
from tests.ui.helpers import (
    COLUMN_PREFIX,
    DONT_USE,
    PREFLIGHT_HEADER,
    PREFLIGHT_ROWS,
    csv_bytes,
    mapping,
    messages,
    metrics,
    upload,
    use_as,
    workbook_bytes,
    xlsx_bytes,
)

NEW_BATCH = "app_pages/new_batch.py"
LAST_TIME = "Using the mapping you chose last time"


@pytest.fixture
def new_batch(app: Callable[..., AppTest]) -> Callable[[str], AppTest]:
    def open_page(user: str = "alice") -> AppTest:
        at = app(user).run()
        assert [t.value for t in at.title] == ["New batch"]
        return at

    return open_page


# Real-world exports: (file name, bytes, expected field -> column).
HEADER_SETS = {
    "hubspot": (
        "hubspot-contacts.csv",
        csv_bytes(
            ["Record ID", "First Name", "Last Name", "Email", "Company Name", "Website URL",
             "LinkedIn Profile URL", "Lifecycle Stage"],
            [["1001", "Jane", "Doe", "jane@acme.com", "Acme Inc", "https://www.acme.com",
              "https://www.linkedin.com/in/jane-doe-1", "lead"],
             ["1002", "John", "Roe", "john@globex.com", "Globex", "globex.com",
              "https://linkedin.com/in/john-roe", "customer"]],
        ),
        {"id": "Record ID", "first_name": "First Name", "last_name": "Last Name",
         "email": "Email", "company_name": "Company Name", "company_url": "Website URL",
         "linkedin": "LinkedIn Profile URL"},
    ),
    "apollo": (
        "apollo-export.csv",
        csv_bytes(
            ["First Name", "Last Name", "Title", "Company", "Email", "Email Status",
             "Person Linkedin Url", "Website", "Company Linkedin Url"],
            [["Jane", "Doe", "CEO", "Acme", "jane@acme.com", "Verified",
              "http://www.linkedin.com/in/janedoe", "http://www.acme.com",
              "http://www.linkedin.com/company/acme"]],
        ),
        {"first_name": "First Name", "last_name": "Last Name", "company_name": "Company",
         "email": "Email", "linkedin": "Person Linkedin Url", "company_url": "Website"},
    ),
    "french-crm-semicolon-latin1": (
        "prospects.csv",
        "Lead ID;Prénom;Nom;Société;Site web;E-mail\n"
        "00Q5e00000AbCdE;Jérôme;Lefèvre;Société Générale;societegenerale.fr;j.l@sg.fr\n"
        "00Q5e00000AbCdF;Zoé;Müller;Café Crème;cafe.fr;\n".encode("latin-1"),
        {"id": "Lead ID", "first_name": "Prénom", "last_name": "Nom",
         "company_name": "Société", "company_url": "Site web", "email": "E-mail"},
    ),
    "german-tab-utf16": (
        "kontakte.txt",
        "Vorname\tNachname\tFirma\tWebseite\tLinkedIn\n"
        "Jürgen\tSchmidt\tBäckerei GmbH\tbaeckerei.de\tjuergen-schmidt-42\n"
        "Anna\tBauer\tSiemens\tsiemens.com\t\n".encode("utf-16"),
        {"first_name": "Vorname", "last_name": "Nachname", "company_name": "Firma",
         "company_url": "Webseite", "linkedin": "LinkedIn"},
    ),
    "sales-navigator-pipe-bom": (
        "navigator.csv",
        codecs.BOM_UTF8
        + b"Full Name|Company|Company Domain|Profile URL\n"
        b"Jane Doe|Acme|acme.com|https://www.linkedin.com/in/jane-doe\n"
        b"John Smith|Globex|globex.com|https://www.linkedin.com/in/john-smith-9\n",
        {"full_name": "Full Name", "company_name": "Company", "company_url": "Company Domain",
         "linkedin": "Profile URL"},
    ),
    "excel": (
        "leads.xlsx",
        xlsx_bytes(
            ["Contact First Name", "Contact Last Name", "Account Name", "Work Email"],
            [["Jane", "Doe", "Acme", "jane@acme.com"], ["John", "Roe", "Globex", ""]],
        ),
        {"first_name": "Contact First Name", "last_name": "Contact Last Name",
         "company_name": "Account Name", "email": "Work Email"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HEADER_SETS))
def test_mapping_is_suggested_for_real_world_exports(
    rt: Runtime, new_batch: Callable[[str], AppTest], case: str
) -> None:
    grant(rt, "alice", 10)
    name, data, expected = HEADER_SETS[case]
    at = upload(new_batch("alice"), name, data)
    assert not at.exception
    assert messages(at, "error") == []
    assert mapping(at) == expected
    assert "Rows in the file" in metrics(at)  # went on to the pre-flight


def test_preflight_numbers(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    grant(rt, "alice", 100)
    bob = normalize(
        dict(
            zip(
                ["first_name", "last_name", "company_name", "company_url"],
                ["Bob", "Ray", "Globex", "globex.com"],
                strict=True,
            )
        )
    )
    with rt.db.begin() as conn:
        remember(conn, {identity_key(bob): ("+14155550100", "directory")})
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert not at.exception
    assert metrics(at) == {
        "Rows in the file": "10",
        "Can be enriched": "8",
        "Skipped (missing fields)": "2",
        "Duplicates in the file": "2",
        "Already known (free)": "1",
        "To look up": "5",
        "Expected cost": "2 credits",  # no history: each source's prior hit rate (30%)
        "Worst-case cost": "5 credits",
        "Your available credits": "100",
    }
    assert at.number_input(key="nb_max_credits").value == 5  # min(worst case, available)
    # The button counts what is looked up (and paid for), not the rows of the file.
    assert at.button(key="nb_submit").label == "Submit: look up 5 people (spend at most 5 credits)"
    assert not at.button(key="nb_submit").disabled
    captions = "\n".join(messages(at, "caption"))
    assert "2 rows will be skipped: missing fields" in captions


def test_max_credits_defaults_to_the_available_balance(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 3)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert at.number_input(key="nb_max_credits").value == 3
    assert any("below the worst case (6 credits)" in m for m in messages(at, "info"))


def test_no_credits_blocks_the_submit(new_batch: Callable[[str], AppTest]) -> None:
    at = upload(new_batch("carol"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert not at.exception
    assert messages(at, "error") == [
        "You have no credits available, so this batch cannot start. Ask an administrator "
        "to grant you credits."
    ]
    assert at.button(key="nb_submit").disabled
    assert at.number_input(key="nb_max_credits").value == 1


def test_more_than_available_is_explained(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    grant(rt, "alice", 4)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    at.number_input(key="nb_max_credits").set_value(50).run()
    assert messages(at, "warning") == [
        "You have 4 credits available: lower the maximum to 4 or less, or ask an "
        "administrator for more credits."
    ]
    assert at.button(key="nb_submit").disabled


def test_credits_gone_at_submit_time_gives_the_numbers(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 10)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    grant(rt, "alice", -8)  # an admin correction while the page is open
    at.button(key="nb_submit").click().run()
    assert not at.exception
    assert messages(at, "error") == [
        "Not enough credits: this needs 6 credits but only 2 are available. Lower the "
        "maximum credits, or ask an administrator for more credits."
    ]
    assert service.list_runs(rt, "alice") == []


def test_submit_creates_a_run_that_keeps_the_original_columns(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 100)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    at.text_input(key="nb_label").set_value("October leads")
    at.button(key="nb_submit").click().run()
    assert not at.exception
    runs = service.list_runs(rt, "alice")
    assert len(runs) == 1 and runs[0].label == "October leads"
    assert runs[0].max_credits == 6 and runs[0].counts.total == 10  # the worst case
    assert messages(at, "success")[0].startswith("Submitted as one batch.")
    assert messages(at, "code") == [runs[0].run_id]
    assert all(b.key != "nb_submit" for b in at.button)  # no second submit of the same file
    wait_finished(rt, "alice", runs[0].run_id)
    at.run()  # a rerun after the batch finished: the pre-flight is not shown again
    assert not [m for m in at.metric if m.label.startswith("Already known")]
    assert messages(at, "success")[0].startswith("Submitted as one batch.")
    outcomes = service.run_outcomes(rt, "alice", runs[0].run_id)
    assert outcomes[0].source_row == dict(zip(PREFLIGHT_HEADER, PREFLIGHT_ROWS[0], strict=True))


def test_large_files_become_several_runs(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    grant(rt, "alice", 5000)
    rows = [[f"First{i}", f"Last{i}", f"Company{i}", f"c{i}.example", ""] for i in range(1500)]
    at = upload(new_batch("alice"), "big.csv", csv_bytes(PREFLIGHT_HEADER, rows))
    info = messages(at, "info")
    assert any("sent as 2 runs of at most 1,000 rows" in m for m in info)
    at.button(key="nb_submit").click().run()
    assert messages(at, "success")[0].startswith("Submitted as one batch in 2 parts")
    runs = service.list_runs(rt, "alice")
    assert sorted(r.counts.total for r in runs) == [500, 1000]


def test_the_last_mapping_is_remembered_per_header_set(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 100)
    name, data, _ = HEADER_SETS["hubspot"]
    at = upload(new_batch("alice"), name, data)
    assert mapping(at)["id"] == "Record ID"
    use_as(at, "Record ID")  # "Don't use"
    at.button(key="nb_submit").click().run()
    assert not at.exception
    # Another day, the same export (columns in another order): the choice is back.
    reordered = csv_bytes(
        ["Email", "First Name", "Last Name", "Record ID", "Company Name", "Website URL",
         "LinkedIn Profile URL", "Lifecycle Stage"],
        [["jane@acme.com", "Jane", "Doe", "1001", "Acme", "acme.com", "", "lead"]],
    )  # fmt: skip
    at = upload(new_batch("alice"), "hubspot-again.csv", reordered)
    assert "id" not in mapping(at)
    assert mapping(at)["first_name"] == "First Name"
    assert LAST_TIME in "\n".join(messages(at, "caption"))
    # Editing the mapping: it is no longer "the one chosen last time".
    use_as(at, "Record ID", "id")
    assert mapping(at)["id"] == "Record ID"
    assert LAST_TIME not in "\n".join(messages(at, "caption"))
    # Someone else still gets the suggestion.
    grant(rt, "bob", 10)
    at = upload(new_batch("bob"), name, data)
    assert mapping(at)["id"] == "Record ID"
    assert LAST_TIME not in "\n".join(messages(at, "caption"))


def test_mapping_can_be_changed_and_warns(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    grant(rt, "alice", 100)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    use_as(at, "Email")
    assert metrics(at)["Can be enriched"] == "6"  # the two email-only rows are skipped now
    use_as(at, "Website", DONT_USE)
    use_as(at, "First Name", "company_url")  # names in a website column
    assert any('"First Name" \\(mapped to Company website' in w for w in messages(at, "warning"))
    for column in ("Company", "First Name"):
        at.selectbox(key=COLUMN_PREFIX + column).set_value(DONT_USE)
    at.run()
    assert "Rows in the file" not in metrics(at)
    assert any(w.startswith("Nothing to enrich yet") for w in messages(at, "warning"))


BAD_FILES = {
    "empty": ("empty.csv", b"", "The file is empty."),
    "header only": ("header.csv", b"First Name,Last Name,Company\n", "no data rows"),
    "binary": ("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a spreadsheet"),
    "no mappable column": (
        "numbers.csv",
        b"Stage,Owner,Amount\nlead,Sam,100\nwon,Kim,200\n",
        "None of the columns could be recognised",
    ),
    "legacy excel": ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, ".xls"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_gets_one_clear_message(
    rt: Runtime, new_batch: Callable[[str], AppTest], case: str
) -> None:
    grant(rt, "alice", 10)
    name, data, expected = BAD_FILES[case]
    at = upload(new_batch("alice"), name, data)
    assert not at.exception
    errors = messages(at, "error")
    assert len(errors) == 1 and expected in errors[0], errors
    assert "Traceback" not in errors[0]
    assert messages(at, "warning") == []
    assert "Rows in the file" not in metrics(at)


def test_a_too_large_file_names_the_limit(
    rt: Runtime, new_batch: Callable[[str], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt.settings, "upload_max_bytes", 1024 * 1024)
    rows = [["Jane", "Doe", "Acme", "acme.com", "x" * 100] for _ in range(12_000)]
    at = upload(new_batch("alice"), "huge.csv", csv_bytes(PREFLIGHT_HEADER, rows))
    errors = messages(at, "error")
    assert len(errors) == 1 and "the limit is 1 MB" in errors[0], errors


def test_an_unexpected_error_shows_no_stack_trace(
    rt: Runtime, new_batch: Callable[[str], AppTest], monkeypatch: pytest.MonkeyPatch
) -> None:
    from phone_core import ui_batches

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret@example.com boom")

    monkeypatch.setattr(ui_batches, "preflight", broken)
    grant(rt, "alice", 10)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert not at.exception
    errors = messages(at, "error")
    assert len(errors) == 1 and errors[0].startswith("Something went wrong on this page.")
    assert "boom" not in errors[0]


def test_the_uploader_states_the_real_limit(app: Callable[..., AppTest]) -> None:
    at = app("alice").run()
    uploader = at.get("file_uploader")[0]
    assert uploader.proto.max_upload_size_mb == 50  # PHONE_UPLOAD_MAX_BYTES, not 200


def test_a_free_batch_needs_no_credits(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    """Issue 10 defect 1: every row already known, and the user has 0 credits."""
    rows = [r for r in PREFLIGHT_ROWS if r[0] == "Bob"]  # Bob, and his duplicates
    bob = normalize({"first_name": "Bob", "last_name": "Ray", "company_url": "globex.com"})
    with rt.db.begin() as conn:
        remember(conn, {identity_key(bob): ("+14155550100", "directory")})
    at = upload(new_batch("alice"), "bob.csv", csv_bytes(PREFLIGHT_HEADER, rows))
    assert not at.exception
    assert messages(at, "error") == []  # no "cannot start" next to "costs nothing"
    assert any("costs nothing" in m for m in messages(at, "success"))
    submit = at.button(key="nb_submit")
    assert submit.label.endswith("(free: nothing to pay for)") and not submit.disabled
    assert at.number_input(key="nb_max_credits").value == 0
    submit.click().run()
    assert not at.exception
    (run,) = service.list_runs(rt, "alice")
    done = wait_finished(rt, "alice", run.run_id)
    assert done.credits_spent == 0 and done.counts.cached == 1


def test_a_cap_of_zero_is_explained(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    """Issue 10 defect 6: 0 as max credits for a batch that costs something."""
    grant(rt, "alice", 100)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    at.number_input(key="nb_max_credits").set_value(0).run()
    assert not at.exception
    assert any("at least 1 credit" in m for m in messages(at, "warning"))
    assert at.button(key="nb_submit").disabled
    assert at.button(key="nb_submit").label.endswith("(spend at most 0 credits)")


# --- issue 10: column-first mapping, sheets, header rows, plain texts ----------------------

CONTACTS = [
    ["First Name", "Last Name", "Company", "Email", "Owner"],
    ["Ann", "Lee", "Acme", "ann@acme.com", "Sam"],
    ["Bob", "Ray", "Globex", "", "Kim"],
]
CONTACTS_MAPPED = {
    "first_name": "First Name",
    "last_name": "Last Name",
    "company_name": "Company",
    "email": "Email",
}


def infos(at: AppTest) -> str:
    return "\n".join(messages(at, "info"))


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_title_rows_above_the_header_are_skipped_and_said(
    rt: Runtime, new_batch: Callable[[str], AppTest], kind: str
) -> None:
    grant(rt, "alice", 10)
    lines = [["Leads export"], ["Generated 2026-11-30"], ["Owner: Dana"], *CONTACTS]
    if kind == "csv":
        data = csv_bytes([lines[0][0]], [line for line in lines[1:3]])
        data += b"\n".join(",".join(row).encode() for row in CONTACTS) + b"\n"
    else:
        data = workbook_bytes({"Leads": lines})
    at = upload(new_batch("alice"), f"leads.{kind}", data)
    assert not at.exception
    assert "Column names found on row 4: the 3 rows above it (a title or notes) were " in infos(at)
    assert mapping(at) == CONTACTS_MAPPED
    assert "Rows in the file" in metrics(at) and metrics(at)["Rows in the file"] == "2"
    assert not any("Choose another sheet" in m for m in messages(at, "warning"))


def test_a_workbook_gets_a_sheet_picker_and_a_new_sheet_is_mapped_again(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 10)
    data = workbook_bytes(
        {
            "About": [["Exported from the CRM"], ["2026-11-30"]],
            "Contacts": CONTACTS,
            "Partners": [
                ["Full Name", "Organisation", "LinkedIn"],
                ["Dana Scully", "FBI", "https://www.linkedin.com/in/dana-scully"],
                ["Fox Mulder", "FBI", "https://www.linkedin.com/in/fox-mulder"],
            ],
            "Empty": [],
        }
    )
    at = upload(new_batch("alice"), "book.xlsx", data)
    assert not at.exception
    picker = at.selectbox(key="nb_sheet")
    assert picker.options == ["About", "Contacts", "Partners", "Empty"]
    assert picker.value == "Contacts"  # the first sheet holding a table
    assert mapping(at) == CONTACTS_MAPPED
    picker.set_value("Partners").run()
    assert not at.exception
    assert at.selectbox(key="nb_sheet").value == "Partners"
    assert mapping(at) == {
        "full_name": "Full Name",
        "company_name": "Organisation",
        "linkedin": "LinkedIn",
    }
    assert metrics(at)["Rows in the file"] == "2"
    assert not [s for s in at.selectbox if str(s.key).startswith(COLUMN_PREFIX + "First")]
    at.selectbox(key="nb_sheet").set_value("About").run()  # a note, not a list
    assert not at.exception
    assert messages(at, "error")[0].startswith("None of the columns could be recognised")
    at.selectbox(key="nb_sheet").set_value("Empty").run()  # nothing to read: back to the default
    assert not at.exception
    assert any('The sheet "Empty" could not be read' in w for w in messages(at, "warning"))
    assert at.selectbox(key="nb_sheet").value == "Contacts"
    assert mapping(at) == CONTACTS_MAPPED


def test_a_csv_has_no_sheet_picker(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert not at.exception
    assert not [s for s in at.selectbox if s.key == "nb_sheet"]


def test_generic_headers_are_mapped_by_their_contents(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 10)
    header = [f"Column {i}" for i in range(1, 6)]
    rows = [
        ["CEO", "Ann Lee", "Acme Corp", "acme.com", "ann@acme.com"],
        ["VP Sales", "Dr. Bob Ray", "Globex GmbH", "https://www.globex.de/", "bob@globex.de"],
        ["CTO", "Jane van der Berg", "Initech LLC", "initech.com", ""],
        ["Head of Marketing", "José García", "Stark Industries", "stark.es", "jose@stark.es"],
    ]
    at = upload(new_batch("alice"), "generic.csv", csv_bytes(header, rows))
    assert not at.exception
    assert mapping(at) == {
        "full_name": "Column 2",
        "company_name": "Column 3",
        "company_url": "Column 4",
        "email": "Column 5",
    }
    captions = "\n".join(messages(at, "caption"))
    assert 'Not used (kept in the enriched export): "Column 1".' in captions
    assert metrics(at)["Can be enriched"] == "4"


def test_a_field_chosen_for_two_columns_blocks_the_submit(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 100)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    assert at.button(key="nb_submit")
    use_as(at, "Last Name", "first_name")
    assert not at.exception
    assert messages(at, "error") == [
        'First name is chosen for 2 columns: "First Name" and "Last Name". A field can be '
        'used by one column only: set the others to "Don\'t use".'
    ]
    assert not [b for b in at.button if b.key == "nb_submit"]
    assert "Rows in the file" not in metrics(at)
    use_as(at, "Last Name", "last_name")  # fixed
    assert messages(at, "error") == []
    assert not at.button(key="nb_submit").disabled


def test_the_columns_table_shows_samples_marks_and_the_rule(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 10)
    at = upload(new_batch("alice"), "ten.csv", csv_bytes(PREFLIGHT_HEADER, PREFLIGHT_ROWS))
    markdown = [str(m.value) for m in at.markdown]
    captions = "\n".join(messages(at, "caption"))
    assert "Ann · Bob · Cat" in captions  # up to 3 different values of a column
    assert "dan@\u2060umbrella.com" in captions  # shown as text, not as a mailto: link
    assert markdown.count(":green[✓ sure]") == 5
    assert "A row can be looked up when it has LinkedIn, email, or first + last name" in captions
    assert "Not used" not in captions  # every column is used
    assert at.selectbox(key=COLUMN_PREFIX + "Email").format_func(DONT_USE) == "Don't use"
    # The steps: upload and columns done, review current.
    assert markdown[:3] == [
        ":green[:material/check_circle: 1. Upload]",
        ":green[:material/check_circle: 2. Columns]",
        "**:blue-background[3. Review & submit]**",
    ]


def test_a_wide_file_keeps_the_columns_it_does_not_use_folded(
    rt: Runtime, new_batch: Callable[[str], AppTest]
) -> None:
    grant(rt, "alice", 10)
    extra = [f"Custom field {i}" for i in range(1, 36)]
    rows = [[*row, *(["x"] * len(extra))] for row in PREFLIGHT_ROWS]
    at = upload(new_batch("alice"), "wide.csv", csv_bytes([*PREFLIGHT_HEADER, *extra], rows))
    assert not at.exception
    folded = [e for e in at.expander if e.label == "The other 35 columns of the file"]
    assert len(folded) == 1
    assert len([s for s in folded[0].selectbox if str(s.key).startswith(COLUMN_PREFIX)]) == 35
    assert "and 23 more." in "\n".join(messages(at, "caption"))
    assert at.button(key="nb_submit")


def test_texts_count_one_right(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    grant(rt, "alice", 1)
    rows = [["Ann", "Lee", "Acme", "acme.com", "ann@acme.com"], ["Eve", "Kim", "", "", ""]]
    at = upload(new_batch("alice"), "two.csv", csv_bytes(PREFLIGHT_HEADER, rows))
    assert not at.exception
    texts = "\n".join(
        messages(at, "caption") + messages(at, "markdown") + [at.button(key="nb_submit").label]
    )
    assert "1 row will be skipped" in texts
    assert "Submit: look up 1 person (spend at most 1 credit)" in texts
    assert "reserves **1 credit** of your 1 credit while" in texts
    at.number_input(key="nb_max_credits").set_value(5).run()
    assert messages(at, "warning") == [
        "You have 1 credit available: lower the maximum to 1 or less, or ask an "
        "administrator for more credits."
    ]
    everything = "\n".join(
        v
        for kind in ("markdown", "caption", "info", "warning", "error")
        for v in messages(at, kind)
    )
    assert not re.search(r"\b1 (credits|rows|columns|people)\b", everything)


def test_no_encoding_name_is_shown(rt: Runtime, new_batch: Callable[[str], AppTest]) -> None:
    data = codecs.BOM_UTF16_LE + "Name,Company\n".encode("utf-16-le") + b"\x00\xd8"  # broken
    at = upload(new_batch("alice"), "broken.csv", data)
    assert not at.exception
    (error,) = messages(at, "error")
    assert not re.search(r"utf|cp\d+|latin|ascii", error, re.I), error
