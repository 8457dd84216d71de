"""The contract with the admin side: ALL_VENDORS, VendorSpec, VendorConfig, probe."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from phone_core import db
from phone_core.sources.base import Source
from phone_core.sources.vendors import ALL_VENDORS, VendorConfig, VendorSpec, by_name, probe
from tests.core.vendor_helpers import config_for, run
from tests.fakes.vendor_base import FakeVendor
from tests.fakes.vendor_fullenrich import FakeFullEnrich
from tests.fakes.vendor_lusha import FakeLusha
from tests.fakes.vendor_prospeo import FakeProspeo

FAKES: dict[str, type[FakeVendor]] = {
    "prospeo": FakeProspeo,
    "lusha": FakeLusha,
    "fullenrich": FakeFullEnrich,
}


def test_three_vendors_cover_the_three_shapes() -> None:
    assert {s.shape for s in ALL_VENDORS} == {"single", "bulk", "async"}
    assert [s.name for s in ALL_VENDORS] == ["prospeo", "lusha", "fullenrich"]
    for spec in ALL_VENDORS:
        assert isinstance(spec, VendorSpec)
        assert spec.default_price.source == spec.name
        assert spec.docs_url.startswith("https://") and spec.default_base_url.startswith("https://")
        assert spec.default_rate_per_sec > 0 and spec.default_concurrency > 0
    assert [f.name for f in fields(VendorConfig)] == [
        "name",
        "base_url",
        "api_key",
        "price",
        "rate_per_sec",
        "concurrency",
        "timeout_sec",
        "region",
    ]
    with pytest.raises(FrozenInstanceError):
        ALL_VENDORS[0].name = "x"  # type: ignore[misc]
    assert by_name("lusha") is ALL_VENDORS[1]
    with pytest.raises(KeyError):
        by_name("nope")


@pytest.mark.parametrize("name", ["prospeo", "lusha", "fullenrich"])
def test_build_gives_a_source_and_probe_tests_the_key(name: str, tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    db.migrate(engine)
    spec = by_name(name)
    with FAKES[name](api_key="right") as fake:
        source = spec.build(config_for(spec, fake.url, api_key="right"), engine)
        assert isinstance(source, Source) and source.name == name
        source.close()
        assert run(probe(spec, config_for(spec, fake.url, api_key="right"), engine)) == ""
        assert run(probe(spec, config_for(spec, fake.url, api_key="wrong"), engine)) == (
            "the vendor refused the API key"
        )
        gone = config_for(spec, "http://127.0.0.1:9", api_key="right", timeout_sec=0.5)
        assert run(probe(spec, gone, engine)) == "the vendor could not be reached"
        # a test connection never looks a person up, so it costs nothing
        assert all(r.method in ("GET", "POST") and "person" not in r.path for r in fake.requests)
    engine.dispose()
