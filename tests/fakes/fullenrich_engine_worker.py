"""A whole run through the engine with FullEnrich as its only source, in a process of its
own (the kill -9 test): ``python -m tests.fakes.fullenrich_engine_worker DATA_DIR URL N``.

A memory runtime on the SQLite state DB under DATA_DIR: submits ``N`` test people,
prints the run id, then processes the run (polling the fake every 50 ms).
"""

from __future__ import annotations

import sys
from pathlib import Path

from phone_core.inline import InlineRunQueue, memory_runtime
from phone_core.runtime import Runtime
from phone_core.sources import fullenrich
from phone_core.sources.fullenrich import FullEnrichSource
from tests.conftest import make_settings
from tests.fakes.batches import fund, people, submit


def runtime(data_dir: Path, url: str) -> Runtime:
    rt = memory_runtime(make_settings(data_dir, waterfall=[]))
    config = fullenrich.VENDOR.config(
        "k", base_url=url, rate_per_sec=100.0, concurrency=2, timeout_sec=2.0
    )
    rt.sources = [FullEnrichSource(config, rt.db, poll_interval_sec=0.05, max_wait_sec=120.0)]
    return rt


def main(data_dir: str, url: str, n: int) -> None:
    rt = runtime(Path(data_dir), url)
    fund(rt)
    print(submit(rt, people(n)), flush=True)
    assert isinstance(rt.queue, InlineRunQueue)
    rt.queue.drain()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
