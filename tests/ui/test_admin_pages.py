"""Admin pages (credits, users, reference data) and the API keys page."""

from __future__ import annotations

from collections.abc import Callable

from streamlit.testing.v1 import AppTest

from phone_core import service, ui_admin, ui_api, users
from phone_core.runtime import Runtime
from tests.conftest import grant, wait_finished
from tests.ui.conftest import ensure_user
from tests.ui.helpers import csv_bytes, messages, metrics, upload


def open_page(app: Callable[..., AppTest], script: str, user: str, role: str) -> AppTest:
    at = app(user, role).run()
    at.switch_page(script).run()
    assert not at.exception
    return at


def button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


# --- credits ----------------------------------------------------------------------------


def test_grant_credits_and_set_a_monthly_limit(rt: Runtime, app: Callable[..., AppTest]) -> None:
    ensure_user(rt, "alice", name="Alice")
    at = open_page(app, "app_pages/credits.py", "admin", "admin")
    assert [t.value for t in at.title] == ["Credits"]
    at.selectbox(key="credits_grant_user").set_value("alice")
    at.number_input(key="credits_grant_amount").set_value(250)
    at.text_input(key="credits_grant_note").set_value("Q4 budget")
    button(at, "Grant").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert messages(at, "success") == ["Granted 250 credits to alice: 250 available."]
    balances = at.dataframe[0].value.set_index("User")
    assert balances.loc["alice", "Balance"] == 250 and balances.loc["alice", "Available"] == 250
    assert ui_admin.grants("alice")[0]["note"] == "Q4 budget"
    grants_table = next(d.value for d in at.dataframe if "Note" in d.value.columns)
    assert grants_table.columns.tolist() == ["User", "Credits", "Note", "When (UTC)"]

    at.selectbox(key="credits_limit_user").set_value("alice")
    at.number_input(key="credits_limit_value").set_value(100)
    button(at, "Save limit").click().run()  # type: ignore[attr-defined]
    assert messages(at, "success") == ["Monthly limit of alice: 100."]
    assert ui_api.credit_summary("alice").available == 100
    balances = at.dataframe[0].value.set_index("User")
    assert balances.loc["alice", "Monthly limit"] == "100"


def test_the_credits_page_states_the_cache_scope(
    make_runtime: Callable[..., Runtime], app: Callable[..., AppTest]
) -> None:
    at = open_page(app, "app_pages/credits.py", "admin", "admin")
    assert any("shared by the organisation" in m for m in messages(at, "info"))
    make_runtime(cache_scope="user")
    at = open_page(app, "app_pages/credits.py", "admin", "admin")
    assert any("per user (PHONE_CACHE_SCOPE=user)" in m for m in messages(at, "info"))


def test_usage_by_user_day_and_run(rt: Runtime, app: Callable[..., AppTest]) -> None:
    from tests.ui.test_runs import load_directory, submit

    grant(rt, "alice", 100)
    load_directory(rt)
    run_id = submit(rt, "alice")
    wait_finished(rt, "alice", run_id)
    at = open_page(app, "app_pages/credits.py", "admin", "admin")
    assert metrics(at)["Credits spent in the period"] == "5"
    by_run = at.dataframe[-1].value
    assert list(by_run["Run id"]) == [run_id] and list(by_run["Credits"]) == [5]
    assert list(by_run["Batch"]) == ["ten.csv"]  # named, not a bare id
    assert len(at.get("vega_lite_chart")) == 2  # by user, by day
    picker = at.selectbox(key="credits_csv_run")
    assert picker.value == run_id and picker.options[0].startswith("ten.csv · ")
    assert [b.label for b in at.get("download_button")] == ["Download credits.csv"]


# --- users ------------------------------------------------------------------------------


def test_add_users_and_reset_a_password(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, "app_pages/users.py", "admin", "admin")
    assert list(at.dataframe[0].value["Username"]) == ["admin"]

    at.text_input(key="users_new_username").set_value("Carol")
    at.text_input(key="users_new_name").set_value("Carol Jones")
    at.text_input(key="users_new_email").set_value("carol@example.com")
    at.text_input(key="users_new_password").set_value("carol-password-1")
    button(at, "Add user").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert messages(at, "success") == ["User carol added with the password you chose."]
    assert messages(at, "code") == []  # a chosen password is never shown back
    assert users.verify(rt.db, "carol", "carol-password-1")

    at.text_input(key="users_new_username").set_value("dave")
    at.text_input(key="users_new_name").set_value("Dave")
    at.selectbox(key="users_new_role").set_value("admin")
    button(at, "Add user").click().run()  # type: ignore[attr-defined]
    generated = messages(at, "code")
    assert len(generated) == 1 and users.verify(rt.db, "dave", generated[0])
    assert {u.username: u.role for u in ui_admin.list_users()}["dave"] == "admin"
    at.run()
    assert messages(at, "code") == []  # shown once

    at.selectbox(key="users_pick").set_value("carol").run()
    at.button(key="users_reset").click().run()
    assert messages(at, "code") == []  # not yet: an explicit confirmation first
    assert users.verify(rt.db, "carol", "carol-password-1")
    assert any("Reset the password of carol?" in w for w in messages(at, "warning"))
    at.button(key="users_confirm_yes").click().run()
    new_password = messages(at, "code")
    assert len(new_password) == 1 and users.verify(rt.db, "carol", new_password[0])
    assert not users.verify(rt.db, "carol", "carol-password-1")


def test_adding_an_existing_user_is_refused(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, "app_pages/users.py", "admin", "admin")
    at.text_input(key="users_new_username").set_value("admin")
    at.text_input(key="users_new_name").set_value("Someone")
    button(at, "Add user").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert messages(at, "error") == ["The user admin already exists"]
    # What was typed stays, to be corrected (the form does not wipe itself on an error).
    assert at.text_input(key="users_new_username").value == "admin"
    assert at.text_input(key="users_new_name").value == "Someone"
    assert at.dataframe[0].value.columns.tolist()[:2] == ["Username", "Name"]


def test_a_refused_password_keeps_the_form_and_a_success_clears_it(
    rt: Runtime, app: Callable[..., AppTest]
) -> None:
    at = open_page(app, "app_pages/users.py", "admin", "admin")
    at.text_input(key="users_new_username").set_value("erin")
    at.text_input(key="users_new_name").set_value("Erin Stone")
    at.text_input(key="users_new_password").set_value("short")
    button(at, "Add user").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert len(messages(at, "error")) == 1
    assert at.text_input(key="users_new_username").value == "erin"
    assert at.text_input(key="users_new_name").value == "Erin Stone"
    assert "erin" not in {u.username for u in ui_admin.list_users()}
    at.text_input(key="users_new_password").set_value("erin-password-1")
    button(at, "Add user").click().run()  # type: ignore[attr-defined]
    assert messages(at, "success") == ["User erin added with the password you chose."]
    assert at.text_input(key="users_new_username").value == ""  # ready for the next one
    roles = dict(zip(at.dataframe[0].value["Username"], at.dataframe[0].value["Role"], strict=True))
    assert roles == {"admin": "Admin", "erin": "User"}


# --- reference data ---------------------------------------------------------------------


def test_load_a_directory(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, "app_pages/reference_data.py", "admin", "admin")
    assert metrics(at)["Contacts in the directory"] == "0"
    data = csv_bytes(
        ["First Name", "Last Name", "Company", "Mobile Phone", "LinkedIn"],
        [
            ["Ann", "Lee", "Acme", "+1 415 555 0100", "https://www.linkedin.com/in/ann-lee"],
            ["Bob", "Ray", "Globex", "(212) 555-0101", ""],
            ["No", "Phone", "Initech", "", ""],
        ],
    )
    at = upload(at, "crm.csv", data, key="ref_upload")
    assert at.selectbox(key="ref_map_phone").value == "Mobile Phone"
    assert at.button(key="ref_load").disabled  # the replace needs a tick first
    at.checkbox(key="ref_confirm").check().run()
    at.button(key="ref_load").click().run()
    assert not at.exception
    assert messages(at, "success") == ["Loaded 2 contacts from 3 rows of crm.csv."]
    assert metrics(at)["Contacts in the directory"] == "2"
    assert len(at.get("button")) == 0 or not any(b.key == "ref_load" for b in at.button)
    assert any("This file is loaded" in m for m in messages(at, "info"))  # no second load
    assert ui_admin.directory_stats()["contacts"] == 2


def test_a_directory_needs_a_phone_column(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, "app_pages/reference_data.py", "admin", "admin")
    data = csv_bytes(["First Name", "Last Name", "Company"], [["Ann", "Lee", "Acme"]])
    at = upload(at, "nophone.csv", data, key="ref_upload")
    assert messages(at, "error") == [
        "Map the column that holds the phone numbers: a directory needs one."
    ]
    assert all(b.key != "ref_load" for b in at.button)


# --- API keys ---------------------------------------------------------------------------


def test_create_list_and_revoke_api_keys(rt: Runtime, app: Callable[..., AppTest]) -> None:
    at = open_page(app, "app_pages/api_keys.py", "alice", "user")
    assert messages(at, "info") == ["You have no API keys yet."]
    at.text_input(key="keys_label").set_value("CRM sync")
    button(at, "Create key").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    shown = messages(at, "code")
    assert len(shown) == 1 and shown[0].startswith("pe_")
    assert any("Copy it now" in s for s in messages(at, "success"))
    table = at.dataframe[0].value
    assert list(table["Label"]) == ["CRM sync"] and list(table["Status"]) == ["active"]
    at.run()
    assert messages(at, "code") == []  # shown once only

    other = open_page(app, "app_pages/api_keys.py", "bob", "user")
    assert messages(other, "info") == ["You have no API keys yet."]

    at.button(key="keys_revoke").click().run()
    assert not at.exception
    assert at.dataframe[0].value.iloc[0]["Status"].startswith("revoked")
    assert all(b.key != "keys_revoke" for b in at.button)
    assert service.list_runs(rt, "alice") == []
