"""The durable worker (DBOS, embedded S3) follows the Sources configuration without a
restart (issue 12): a vendor enabled on the page is used by the next batch, a disabled
one is not, and every call is measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from phone_core import bootstrap, service, source_stats, vendor_config
from phone_core.runtime import Runtime
from phone_core.settings import Settings
from tests.conftest import free_port
from tests.fakes.batches import USER, fund, people, submit, wait_finished
from tests.fakes.upstream import FakeUpstream

pytestmark = pytest.mark.integration  # DBOS worker and the embedded S3 server


@pytest.fixture
def worker_rt(tmp_path: Path) -> Iterator[Runtime]:
    bootstrap.shutdown()
    settings = Settings(
        data_dir=tmp_path / "data",
        s3_port=free_port(),
        sources_refresh_sec=0.0,
        vendor_keys={},
        vendor_values={},
        lantern_read_timeout_sec=5.0,
    )
    yield bootstrap.get_runtime(settings)
    bootstrap.shutdown()


def test_the_worker_follows_the_sources_page(worker_rt: Runtime) -> None:
    rt = worker_rt
    assert rt.is_worker
    fund(rt)
    with FakeUpstream(api_key="worker-key") as fake:
        first = wait_finished(rt, submit(rt, people(3, "a")))
        assert first.counts.found == 0 and fake.requests == []
        with rt.db.begin() as conn:
            vendor_config.save(
                conn, rt.settings, "lantern", by="admin", base_url=fake.url, api_key="worker-key"
            )
        second = wait_finished(rt, submit(rt, people(3, "b")))
        assert second.counts.found == 3 and len(fake.requests) == 3
        with rt.db.begin() as conn:
            vendor_config.save(conn, rt.settings, "lantern", by="admin", enabled=False)
        third = wait_finished(rt, submit(rt, people(3, "c")))
        assert third.counts.found == 0 and len(fake.requests) == 3
    with rt.db.connect() as conn:
        measured = {s.source: s for s in source_stats.stats(conn)}
    assert measured["lantern"].lookups == 3 and measured["lantern"].found == 3
    assert measured["directory"].lookups == 9
    assert service.get_run(rt, USER, second.run_id).credits_spent == 3
