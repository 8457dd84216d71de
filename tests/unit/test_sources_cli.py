"""``phone-enrich sources list|stats|order|apply-suggested`` (issue 12), in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from phone_core import cli, db, source_stats
from phone_core.settings import get_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    data = tmp_path / "data"
    monkeypatch.setenv("PHONE_DATA_DIR", str(data))
    monkeypatch.setenv("PHONE_LANTERN_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PHONE_LANTERN_API_KEY", "very-secret-abc")
    monkeypatch.setenv("PHONE_LANTERN_FOUND_COST", "2")
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


def _lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert cli.main(list(argv)) == 0
    out = capsys.readouterr().out
    assert "very-secret-abc" not in out
    return [json.loads(line) for line in out.splitlines()]


def test_sources_list_and_stats(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listed = {line["source"]: line for line in _lines(capsys, "sources", "list")}
    assert next(iter(listed)) == "directory" and listed["directory"]["waterfall_position"] == 1
    lantern = listed["lantern"]
    assert lantern["enabled"] is True and lantern["key_set"] is True
    assert lantern["price"] == {"lookup": 0, "found": 2, "failed": 0}
    assert lantern["waterfall_position"] == 2
    assert {"base_url", "api_key", "found_cost"} <= set(lantern["from_env"])  # type: ignore[arg-type]

    engine = db.make_engine(get_settings().state_db_url)
    with engine.begin() as conn:
        source_stats.record(
            conn,
            "run-1",
            [
                source_stats.Call("lantern", "found", "", 2, 120),
                source_stats.Call("lantern", "not_found", "no_match", 0, 80),
                source_stats.Call("lantern", "error", "upstream_timeout", 0, 900),
            ],
        )
    engine.dispose()
    *lines, last = _lines(capsys, "sources", "stats")
    stats = {line["source"]: line for line in lines}
    assert stats["lantern"]["lookups"] == 3 and stats["lantern"]["found"] == 1
    assert stats["lantern"]["errors_by_kind"] == {"upstream_timeout": 1}
    assert stats["lantern"]["latency_p50_ms"] == 120 and stats["lantern"]["latency_p95_ms"] == 900
    assert stats["directory"]["lookups"] == 0
    assert [s["source"] for s in last["suggested_order"]] == ["lantern"]  # type: ignore[index]
    assert _lines(capsys, "sources", "apply-suggested") == [{"order": ["lantern"]}]
    assert cli.main(["sources", "order", "nope"]) == 1
    assert "unknown source(s): nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: usage and the reason, no traceback
        cli.main(["sources", "stats", "--start", "2026-13-01"])
    assert "expected a date as YYYY-MM-DD" in capsys.readouterr().err
