"""The sources API (issue 12): ``POST /v1/enrich/phone`` in the Lantern-compatible wire
format (two installs chained: B's lantern source points at A), ``GET /v1/sources/stats``
for admins, and a batch's ``sources`` choice refused with a 422 when unusable.

Both installs are memory runtimes (SQLite + in-memory store) served by real uvicorn on
127.0.0.1 where HTTP matters; the engine and credit rules are the real ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from phone_core import credits, db, service, users
from phone_core.api.app import create_app
from phone_core.inline import memory_runtime
from phone_core.models import BatchCreate, PersonRecord
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from phone_core.sources.directory import load_rows
from tests.api.conftest import ServerThread, TestClient, auth, new_key
from tests.conftest import drain, free_port

PHONE = "+12125550123"


def _settings(data: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data,
        "s3_port": free_port(),
        "api_rate_per_minute": 100_000,
        "sources_refresh_sec": 0.0,
        "vendor_keys": {},
        "vendor_values": {},
        "lantern_read_timeout_sec": 5.0,
        "lantern_backoff_base_sec": 0.01,
        "lantern_backoff_max_sec": 0.05,
    }
    return Settings(**{**base, **over})


@pytest.fixture
def install_a(tmp_path: Path) -> Iterator[Runtime]:
    """An install whose directory knows one person (linkedin ``jsmith``)."""
    rt = memory_runtime(_settings(tmp_path / "a", waterfall=["directory"]))
    load_rows(
        rt.db,
        [{"linkedin": "jsmith", "phone": "(212) 555-0123"}],
        file_name="d.csv",
        loaded_by="test",
    )
    yield rt
    rt.close()


def _balance(rt: Runtime, user: str) -> int:
    with rt.db.connect() as conn:
        return credits.summarize(conn, user).balance


def test_enrich_phone_cache_waterfall_and_credits(install_a: Runtime) -> None:
    key = new_key(install_a, "alice")
    with install_a.db.begin() as conn:
        credits.grant(conn, "alice", 10)
    with TestClient(create_app(install_a), raise_server_exceptions=False) as c:
        r = c.post(
            "/v1/enrich/phone", json={"record_id": "r1", "linkedin_id": "jsmith"}, headers=auth(key)
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["phone_number"] == PHONE and body["status"] == "found"
        assert body["source"] == "directory" and body["cached"] is False
        assert body["credits_consumed"] == 1 and body["record_id"] == "r1"
        again = c.post("/v1/enrich/phone", json={"linkedin_id": "jsmith"}, headers=auth(key))
        assert again.json()["cached"] is True and again.json()["credits_consumed"] == 0
        miss = c.post("/v1/enrich/phone", json={"email": "nobody@example.com"}, headers=auth(key))
        assert miss.status_code == 200
        assert miss.json()["phone_number"] is None and miss.json()["status"] == "not_found"
        bad = c.post("/v1/enrich/phone", json={"first_name": "Ann"}, headers=auth(key))
        assert bad.status_code == 400 and "not enough to look up" in bad.json()["details"]
        assert c.post("/v1/enrich/phone", json={"email": "x@example.com"}).status_code == 401
        broke = new_key(install_a, "bob")
        poor = c.post("/v1/enrich/phone", json={"email": "y@example.com"}, headers=auth(broke))
        assert poor.status_code == 402 and poor.json()["credits_required"] == 1
    assert _balance(install_a, "alice") == 9  # one phone found, the cache hit free
    with install_a.db.connect() as conn:
        calls = conn.execute(
            sa.select(db.source_calls.c.source, db.source_calls.c.status, db.source_calls.c.run_id)
        ).all()
    assert sorted(calls) == [("directory", "found", None), ("directory", "not_found", None)]


def test_two_installs_chained_b_uses_a_as_its_upstream(install_a: Runtime, tmp_path: Path) -> None:
    key_a = new_key(install_a, "b-install")
    with install_a.db.begin() as conn:
        credits.grant(conn, "b-install", 100)
    with ServerThread(create_app(install_a)) as server:
        rt_b = memory_runtime(
            _settings(
                tmp_path / "b",
                waterfall=["lantern"],
                lantern_base_url=server.base_url,
                lantern_api_key=key_a,
                lantern_found_cost=2,
            )
        )
        try:
            with rt_b.db.begin() as conn:
                credits.grant(conn, "carol", 50)
            req = BatchCreate(
                records=[
                    PersonRecord(id="1", linkedin="https://linkedin.com/in/jsmith/"),
                    PersonRecord(id="2", email="unknown@example.com"),
                ],
                entity_type="person",
                max_credits=20,
            )
            run_id = service.submit_batch(rt_b, "carol", req).run_id
            drain(rt_b)
            outcomes = {o.person.id: o for o in service.run_outcomes(rt_b, "carol", run_id)}
            run = service.get_run(rt_b, "carol", run_id)
        finally:
            rt_b.close()
    assert outcomes["1"].phone == PHONE and outcomes["1"].source == "lantern"
    assert outcomes["2"].status.value == "not_found" and not outcomes["2"].phone
    assert run.credits_spent == 2  # B's price for its upstream
    assert _balance(install_a, "b-install") == 99  # A charged its own directory price
    with install_a.db.connect() as conn:
        a_calls = conn.execute(sa.select(sa.func.count()).select_from(db.source_calls)).scalar()
    assert a_calls == 2  # A looked both up once each


def test_sources_stats_for_admins_only(install_a: Runtime) -> None:
    with install_a.db.begin() as conn:
        users.add(conn, "boss", "Boss", role="admin")
        credits.grant(conn, "boss", 5)
    admin_key = new_key(install_a, "boss")
    user_key = new_key(install_a, "dave")
    with TestClient(create_app(install_a), raise_server_exceptions=False) as c:
        c.post("/v1/enrich/phone", json={"linkedin_id": "jsmith"}, headers=auth(admin_key))
        c.post("/v1/enrich/phone", json={"email": "n@example.com"}, headers=auth(admin_key))
        denied = c.get("/v1/sources/stats", headers=auth(user_key))
        assert denied.status_code == 403 and denied.json()["error"] == "admin only"
        r = c.get("/v1/sources/stats", headers=auth(admin_key))
        assert r.status_code == 200, r.text
        stats = {s["source"]: s for s in r.json()["sources"]}
        bad = c.get(
            "/v1/sources/stats?start_date=2026-02-01&end_date=2026-01-01", headers=auth(admin_key)
        )
        assert bad.status_code == 400
    d = stats["directory"]
    assert d["lookups"] == 2 and d["found"] == 1 and d["hit_rate"] == 0.5
    assert d["credits"] == 1 and d["cost_per_found"] == 1.0
    assert d["latency_p50_ms"] is not None and d["errors_by_kind"] == {}
    assert "lantern" in stats and stats["lantern"]["lookups"] == 0
    assert isinstance(r.json()["suggested_order"], list)


def test_a_batch_naming_an_unusable_source_gets_a_422(install_a: Runtime) -> None:
    key = new_key(install_a, "erin")
    with install_a.db.begin() as conn:
        credits.grant(conn, "erin", 10)
    body = {"records": [{"linkedin": "jsmith"}], "entity_type": "person", "max_credits": 5}
    with TestClient(create_app(install_a), raise_server_exceptions=False) as c:
        for sources, words in (
            (["nope"], "unknown source 'nope'"),
            (["lantern"], "'lantern' is not enabled on this install"),
        ):
            r = c.post("/v1/agents/phone", json={**body, "sources": sources}, headers=auth(key))
            assert r.status_code == 422, r.text
            item = r.json()["detail"][0]
            assert item["loc"] == ["body", "sources"] and words in item["msg"]
            assert "directory" in item["msg"]  # says what can be chosen
        ok = c.post("/v1/agents/phone", json={**body, "sources": ["directory"]}, headers=auth(key))
        assert ok.status_code == 202
    drain(install_a)
    run = service.get_run(install_a, "erin", ok.json()["run_id"])
    assert run.counts.found == 1
