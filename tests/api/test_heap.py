"""The API's p99: a full garbage collection walked every object the process built to start
(some 230,000 in an API process, 150-170 ms measured) inside whichever request triggered
it. The process runtime moves them out of the collector's sight once it is built
(``bootstrap.settle_heap``); the latency figures are in BENCHMARKS.md (bench_api)."""

from __future__ import annotations

import gc

from phone_core import bootstrap
from phone_core.runtime import Runtime


def test_the_startup_heap_is_frozen_once_the_runtime_is_built(api_rt: Runtime) -> None:
    assert bootstrap.current() is api_rt
    frozen = gc.get_freeze_count()
    assert frozen > 50_000  # modules, the app, the runtime
    bootstrap.settle_heap()  # once per process: a second call freezes nothing more
    assert gc.get_freeze_count() == frozen
