"""The FullEnrich adapter in a process of its own, for the kill -9 test.

``python -m tests.fakes.fullenrich_worker DB_URL BASE_URL RUN_ID N``: looks up the first
``N`` test people for run ``RUN_ID`` (polling every 50 ms) and prints the results as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys

from phone_core import db
from phone_core.sources import fullenrich
from phone_core.sources.base import current_run_id
from phone_core.sources.fullenrich import FullEnrichSource
from tests.fakes.vendor_base import lookups


def main(db_url: str, base_url: str, run_id: str, n: int) -> None:
    engine = db.make_engine(db_url)
    config = fullenrich.VENDOR.config(
        "k", base_url=base_url, rate_per_sec=100.0, concurrency=2, timeout_sec=2.0
    )
    src = FullEnrichSource(config, engine, poll_interval_sec=0.05, max_wait_sec=120.0)

    async def go() -> None:
        current_run_id.set(run_id)
        results = await src.lookup_many(lookups(n))
        print(json.dumps([[r.status.value, r.phone] for r in results]), flush=True)
        await src.http.aclose()

    asyncio.run(go())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
