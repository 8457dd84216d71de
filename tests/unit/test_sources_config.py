"""Vendor sources configured in the app (issue 12): keys encrypted at rest, environment
over the Sources page, the worker's waterfall following the configuration without a
restart, a batch choosing its sources, and what each source did measured per lookup."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import db, secretbox, service, source_stats, vendor_config
from phone_core.credits import Price
from phone_core.errors import InputError
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import drain, free_port
from tests.fakes.batches import USER, fund, people
from tests.fakes.upstream import FakeUpstream

FAST = {
    "lantern_connect_timeout_sec": 2.0,
    "lantern_read_timeout_sec": 5.0,
    "lantern_backoff_base_sec": 0.01,
    "lantern_backoff_max_sec": 0.05,
    "lantern_max_attempts": 2,
    "sources_refresh_sec": 0.0,
    "vendor_keys": {},
    "vendor_values": {},
}


def _settings(tmp: Path, **over: Any) -> Settings:
    # no ``waterfall`` here: PHONE_WATERFALL unset, so the Sources page decides
    return Settings(data_dir=tmp / "data", s3_port=free_port(), **{**FAST, **over})


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream(api_key="secret-key-123") as server:
        yield server


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Runtime]:
    rt = memory_runtime(_settings(tmp_path))
    yield rt
    rt.close()


def _configure(rt: Runtime, **values: Any) -> None:
    with rt.db.begin() as conn:
        vendor_config.save(conn, rt.settings, "lantern", by="admin", **values)


def _submit(rt: Runtime, rows: list[dict[str, str]], sources: list[str] | None = None) -> str:
    req = BatchCreate(
        records=[PersonRecord(**r) for r in rows],
        entity_type="person",
        max_credits=10_000,
        sources=sources,
    )
    return service.submit_batch(rt, USER, req).run_id


def test_the_key_is_encrypted_at_rest_and_never_shown(mem: Runtime, fake: FakeUpstream) -> None:
    _configure(mem, base_url=fake.url, api_key="secret-key-123")
    with mem.db.connect() as conn:
        stored = conn.execute(sa.select(db.vendor_settings.c.api_key)).scalar_one()
        view = next(v for v in vendor_config.views(conn, mem.settings) if v.name == "lantern")
    assert "secret-key-123" not in stored and stored  # a Fernet token, not the key
    assert secretbox.decrypt(mem.settings, stored) == "secret-key-123"
    assert view.key_set and view.usable and "secret-key-123" not in repr(view)
    key_file = mem.settings.data_dir / secretbox.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # saving without a key keeps the stored one; clear_key removes it
    _configure(mem, rate_per_sec=20.0)
    with mem.db.connect() as conn:
        assert conn.execute(sa.select(db.vendor_settings.c.api_key)).scalar_one() == stored


def test_a_token_made_with_another_key_reads_as_no_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    token = secretbox.encrypt(settings, "abc")
    other = _settings(tmp_path, secrets_key=secretbox.Fernet.generate_key().decode())
    assert secretbox.decrypt(other, token) is None
    with pytest.raises(InputError, match="Fernet key"):
        secretbox.encrypt(_settings(tmp_path, secrets_key="not-a-key"), "abc")


def test_environment_wins_over_the_page_and_says_so(tmp_path: Path, fake: FakeUpstream) -> None:
    env = _settings(
        tmp_path,
        lantern_base_url=fake.url,
        lantern_found_cost=3,
        vendor_keys={"lantern": "secret-key-123"},
    )
    rt = memory_runtime(env)
    try:
        _configure(rt, base_url="http://127.0.0.1:9/nowhere", found_cost=1, concurrency=7)
        with rt.db.connect() as conn:
            view = next(v for v in vendor_config.views(conn, rt.settings) if v.name == "lantern")
        assert view.base_url == fake.url and view.price.found_cost == 3
        assert view.concurrency == 7  # not set in the environment: the page's value
        assert {"base_url", "found_cost", "api_key"} <= view.from_env
        assert "concurrency" not in view.from_env
    finally:
        rt.close()


def test_vendor_env_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHONE_VENDOR_LANTERN_API_KEY", "from-env")
    monkeypatch.setenv("PHONE_VENDOR_LANTERN_FOUND_COST", "4")
    monkeypatch.setenv("PHONE_VENDOR_SOME_VENDOR_RATE_PER_SEC", "2.5")
    s = Settings(data_dir=tmp_path)
    assert s.vendor_keys["lantern"].get_secret_value() == "from-env"
    assert "from-env" not in repr(s)
    assert s.vendor_values == {
        "lantern": {"found_cost": "4"},
        "some_vendor": {"rate_per_sec": "2.5"},
    }


def test_the_worker_follows_the_configuration_without_restart(
    mem: Runtime, fake: FakeUpstream
) -> None:
    fund(mem)
    assert [s.name for s in mem.current_sources()] == ["directory"]  # no base URL yet
    _configure(mem, base_url=fake.url, api_key="secret-key-123", enabled=True)
    run_a = _submit(mem, people(3, "a"))
    drain(mem)
    assert service.get_run(mem, USER, run_a).counts.found == 3
    assert len(fake.requests) == 3
    _configure(mem, enabled=False)
    run_b = _submit(mem, people(3, "b"))
    drain(mem)
    assert service.get_run(mem, USER, run_b).counts.found == 0
    assert len(fake.requests) == 3  # the disabled vendor was not called
    with mem.db.connect() as conn:
        rows = conn.execute(sa.select(db.runs.c.run_id, db.runs.c.sources)).all()
    assert dict(rows) == {run_a: ["directory", "lantern"], run_b: ["directory"]}


def test_a_changed_key_rebuilds_the_source(mem: Runtime, fake: FakeUpstream) -> None:
    fund(mem)
    _configure(mem, base_url=fake.url, api_key="wrong", enabled=True)
    first = mem.current_sources()[-1]
    run_a = _submit(mem, people(2, "a"))
    drain(mem)
    assert service.get_run(mem, USER, run_a).counts.error == 2  # 401: upstream_auth
    _configure(mem, api_key="secret-key-123")
    assert mem.current_sources()[-1] is not first
    run_b = _submit(mem, people(2, "b"))
    drain(mem)
    assert service.get_run(mem, USER, run_b).counts.found == 2


def test_a_batch_uses_only_the_sources_it_chose(mem: Runtime, fake: FakeUpstream) -> None:
    fund(mem)
    _configure(mem, base_url=fake.url, api_key="secret-key-123", enabled=True, found_cost=5)
    rows = people(4, "c")
    full = service.preflight(mem, USER, rows)
    only_dir = service.preflight(mem, USER, rows, sources=["directory"])
    assert full.per_record_worst_case == 5 and only_dir.per_record_worst_case == 1
    assert only_dir.worst_case_credits == 4 and full.worst_case_credits == 20
    assert set(only_dir.hit_rates) == {"directory"}
    run_id = _submit(mem, rows, sources=["directory"])
    drain(mem)
    assert fake.requests == [] and service.get_run(mem, USER, run_id).counts.not_found == 4
    with pytest.raises(InputError, match="unknown source 'nope'"):
        _submit(mem, rows, sources=["nope"])
    _configure(mem, enabled=False)
    with pytest.raises(InputError, match="'lantern' is not enabled"):
        service.preflight(mem, USER, rows, sources=["lantern"])


def test_each_lookup_is_measured_per_source(mem: Runtime, fake: FakeUpstream) -> None:
    fund(mem)
    _configure(mem, base_url=fake.url, api_key="secret-key-123", enabled=True, found_cost=2)
    rows = people(6, "m")
    fake.mix = {}
    fake.script("ok", "ok", "not_found", "ok", "401")
    _submit(mem, rows[:5])
    drain(mem)
    with mem.db.connect() as conn:
        got = {s.source: s for s in source_stats.stats(conn, names=["directory", "lantern"])}
    lantern, directory = got["lantern"], got["directory"]
    assert directory.lookups == 5 and directory.found == 0
    assert lantern.lookups == 5 and lantern.found == 3 and lantern.not_found == 1
    assert lantern.errors_by_kind == {"upstream_auth": 1}
    assert lantern.credits == 6 and lantern.cost_per_found == 2.0
    assert lantern.hit_rate == pytest.approx(0.6)
    assert lantern.latency_p50_ms is not None and lantern.latency_p95_ms is not None
    assert lantern.latency_p50_ms <= lantern.latency_p95_ms


def test_suggested_order_is_cost_per_phone_with_a_prior() -> None:
    cheap_poor = Price("a", 0, 1, 0)  # 1 credit a phone, finds 10%
    dear_good = Price("b", 0, 3, 0)  # 3 credits a phone, finds 60%
    new = Price("c", 1, 1, 0)  # no history: 30% prior -> (1 + 0.3) / 0.3 = 4.33
    measured = [
        source_stats.SourceStats("a", lookups=1000, found=100),
        source_stats.SourceStats("b", lookups=1000, found=600),
    ]
    order = source_stats.suggested_order([new, dear_good, cheap_poor], measured)
    assert [s.source for s in order] == ["a", "b", "c"]
    assert order[0].cost_per_found == pytest.approx(1.0)
    assert order[2].hit_rate == pytest.approx(0.3) and order[2].cost_per_found == pytest.approx(
        1.3 / 0.3
    )
    # a lookup price makes a low hit rate dear: 1 + 0.1 * 1 per record / 0.1 = 11 a phone
    order = source_stats.suggested_order([Price("a", 1, 1, 0), dear_good], measured)
    assert [s.source for s in order] == ["b", "a"]


def test_an_unknown_name_in_the_waterfall_setting_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown source in PHONE_WATERFALL: nope"):
        memory_runtime(_settings(tmp_path, waterfall=["directory", "nope"]))


def test_phone_waterfall_wins_over_the_page(tmp_path: Path, fake: FakeUpstream) -> None:
    rt = memory_runtime(_settings(tmp_path, waterfall=["directory"]))
    try:
        _configure(rt, base_url=fake.url, api_key="secret-key-123", enabled=True)
        assert [s.name for s in rt.current_sources()] == ["directory"]
        with rt.db.connect() as conn:
            view = next(v for v in vendor_config.views(conn, rt.settings) if v.name == "lantern")
        assert not view.enabled and "enabled" in view.from_env
    finally:
        rt.close()
    rt = memory_runtime(_settings(tmp_path, waterfall=["lantern", "directory"]))
    try:
        assert [s.name for s in rt.current_sources()] == ["lantern", "directory"]
    finally:
        rt.close()


def test_a_process_rereads_the_configuration_after_the_refresh_interval(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    rt = memory_runtime(_settings(tmp_path, sources_refresh_sec=3600.0))
    try:
        _configure(rt, base_url=fake.url, api_key="secret-key-123", enabled=True)
        assert [s.name for s in rt.current_sources()] == ["directory"]  # read an hour ago
        assert rt.registry is not None
        rt.registry.refresh(force=True)  # what the interval running out does
        assert [s.name for s in rt.current_sources()] == ["directory", "lantern"]
    finally:
        rt.close()


def test_test_connection_says_what_is_wrong(mem: Runtime, fake: FakeUpstream) -> None:
    from phone_core import source_check

    with pytest.raises(InputError, match="no base URL; save it first"):
        source_check.test_connection(mem.settings, mem.db, "lantern")
    _configure(mem, base_url=fake.url, api_key="secret-key-123")
    worked, message = source_check.test_connection(mem.settings, mem.db, "lantern")
    assert worked and message.startswith("Connected") and len(fake.requests) == 1
    _configure(mem, base_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    worked, message = source_check.test_connection(mem.settings, mem.db, "lantern")
    assert not worked and message == "Could not connect to the vendor: check the base URL."
    fake.default_fault = "402"
    _configure(mem, base_url=fake.url)
    worked, message = source_check.test_connection(mem.settings, mem.db, "lantern")
    assert not worked and "no credits left" in message
