"""The Sources page (admin, issue 12): configure a vendor (key never shown again),
test its connection, read its figures, apply the suggested order. The app runs on a
memory runtime (SQLite + in-memory store) installed as this process's runtime."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from phone_core import bootstrap, credits, db, source_stats, users, vendor_config
from phone_core.inline import memory_runtime
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import free_port
from tests.fakes.upstream import FakeUpstream
from tests.ui.conftest import TIMEOUT, sign_in
from tests.ui.helpers import (
    APP,
    PREFLIGHT_HEADER,
    ROOT,
    csv_bytes,
    messages,
    metrics,
    upload,
)

KEY = "secret-key-123"


@pytest.fixture
def mem_app(tmp_path: Path) -> Iterator[tuple[Runtime, Callable[..., AppTest]]]:
    yield from _install(tmp_path)


def _install(tmp_path: Path, **env: object) -> Iterator[tuple[Runtime, Callable[..., AppTest]]]:
    bootstrap.shutdown()
    base: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "s3_port": free_port(),
        "sources_refresh_sec": 0.0,
        "vendor_keys": {},
        "vendor_values": {},
        "lantern_read_timeout_sec": 5.0,
        "lantern_max_attempts": 1,
    }
    rt = memory_runtime(Settings(**{**base, **env}))
    sys._phone_core_runtime = rt  # what bootstrap.get_runtime returns
    users.ensure_admin(rt.db)

    def make(user: str, role: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        sign_in(at, user, role)
        at.run()
        at.switch_page("app_pages/sources.py").run()
        assert not at.exception
        return at

    try:
        yield rt, make
    finally:
        bootstrap.shutdown()


def _texts(at: AppTest) -> str:
    parts = [
        str(e.value)
        for kind in ("markdown", "caption", "success", "error", "info")
        for e in at.get(kind)
    ]
    parts += [str(t.value) for t in at.text_input]
    return "\n".join(parts)


def test_configure_test_and_measure_a_vendor(
    mem_app: tuple[Runtime, Callable[..., AppTest]],
) -> None:
    rt, make = mem_app
    with FakeUpstream(api_key=KEY) as fake:
        at = make("admin", "admin")
        assert any(
            c.startswith("Reference directory: in the waterfall") for c in messages(at, "caption")
        )
        table = at.dataframe[0].value
        row = table[table["Name"] == "lantern"].iloc[0]
        assert row["API key"] == "not set" and row["Status"] == "On, not used: no base URL"

        at.text_input(key="src_url_lantern").set_value(fake.url)
        at.text_input(key="src_key_lantern").set_value(KEY)
        at.number_input(key="src_found_lantern").set_value(2)
        at.button(key="src_save").click().run()
        assert not at.exception
        assert any(
            m.startswith("Saved Lantern-compatible upstream") for m in messages(at, "success")
        )
        table = at.dataframe[0].value
        row = table[table["Name"] == "lantern"].iloc[0]
        assert row["API key"] == "set" and row["Status"] == "On"
        assert KEY not in _texts(at)  # never shown again, not even in the field
        with rt.db.connect() as conn:
            stored = conn.execute(sa.select(db.vendor_settings.c.api_key)).scalar_one()
        assert KEY not in stored

        at.button(key="src_test").click().run()
        assert any(m.startswith("Connected") for m in messages(at, "success")), messages(
            at, "error"
        )
        assert len(fake.requests) == 1

        at.text_input(key="src_key_lantern").set_value("wrong-key")
        at.button(key="src_save").click().run()
        at.button(key="src_test").click().run()
        shown = [m.replace("\\", "") for m in messages(at, "error")]  # markdown-escaped
        assert shown == ["The vendor refused the API key (HTTP 401/403): check the key."]

    with rt.db.begin() as conn:
        source_stats.record(conn, "r1", [source_stats.Call("lantern", "found", "", 2, 150)] * 3)
    at.run()
    stats = at.dataframe[1].value  # the adapters, the figures, the suggested order
    lantern = stats[stats["Source"] == "lantern"].iloc[0]
    assert lantern["Lookups"] == 3 and lantern["Phones found"] == 3
    assert lantern["Hit rate"] == "100.0%" and lantern["Latency p50 (ms)"] == 150
    at.button(key="src_apply").click().run()
    assert "Order applied: lantern." in messages(at, "success")
    with rt.db.connect() as conn:
        assert next(v.name for v in vendor_config.views(conn, rt.settings)) == "lantern"


def test_the_sources_page_is_for_admins_only(
    mem_app: tuple[Runtime, Callable[..., AppTest]],
) -> None:
    at = AppTest.from_file(str(ROOT / "app_pages/sources.py"), default_timeout=TIMEOUT)
    sign_in(at, "bob", "user").run()
    assert not at.exception
    assert messages(at, "error") == ["This page is for administrators only."]
    assert len(at.dataframe) == 0 and len(at.title) == 0


def test_a_new_batch_chooses_its_sources(
    mem_app: tuple[Runtime, Callable[..., AppTest]],
) -> None:
    rt, _ = mem_app
    with rt.db.begin() as conn:
        vendor_config.save(
            conn, rt.settings, "lantern", by="admin", base_url="http://127.0.0.1:9",
            api_key=KEY, found_cost=4,
        )  # fmt: skip
        credits.grant(conn, "alice", 100)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    sign_in(at, "alice", "user").run()
    rows = [[f"First{i}", f"Last{i}", "Acme", "acme.example", ""] for i in range(3)]
    at = upload(at, "three.csv", csv_bytes(PREFLIGHT_HEADER, rows))
    picker = at.multiselect(key="nb_sources")
    assert picker.value == ["directory", "lantern"]  # the admin's waterfall by default
    assert metrics(at)["Worst-case cost"] == "12 credits"  # 3 rows x 4 (lantern's price)
    picker.set_value(["directory"]).run()
    assert metrics(at)["Worst-case cost"] == "3 credits"
    at.multiselect(key="nb_sources").set_value([]).run()
    assert "Choose at least one source for this batch." in messages(at, "error")
    assert at.button(key="nb_submit").disabled
    at.multiselect(key="nb_sources").set_value(["directory"]).run()
    at.button(key="nb_submit").click().run()
    assert not at.exception
    with rt.db.connect() as conn:
        stored = conn.execute(sa.select(db.runs.c.sources)).scalars().all()
    assert stored == [["directory"]]


def test_values_from_the_environment_are_locked_and_not_stored(tmp_path: Path) -> None:
    for rt, make in _install(tmp_path, lantern_found_cost=7, lantern_base_url="http://127.0.0.1:9"):
        at = make("admin", "admin")
        found = at.number_input(key="src_found_lantern")
        assert found.value == 7 and found.disabled
        assert at.text_input(key="src_url_lantern").disabled
        assert not at.number_input(key="src_conc_lantern").disabled
        at.number_input(key="src_conc_lantern").set_value(3)
        at.button(key="src_save").click().run()
        assert not at.exception
        with rt.db.connect() as conn:
            row = conn.execute(sa.select(db.vendor_settings)).one()
        assert row.concurrency == 3 and row.found_cost is None and row.base_url == ""
        table = at.dataframe[0].value
        assert "found_cost" in table[table["Name"] == "lantern"].iloc[0]["From the environment"]
