"""The web app's upload path in a process of its own (run by bench_big_upload): what the
Upload page calls through ``phone_core.ui_batches``, in order: read the file (its bytes, as
the page hands them over), the initial mapping, the pre-flight, then submit
with a cap. Prints one JSON line: the timings, the batch's run ids and this process's
peak RSS. Settings come from the environment (PHONE_*), as the web app's do.

Standalone on purpose (no ``bench`` imports): it runs with the checkout under test.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from phone_core import bootstrap, ui_batches


def main(path: str, user: str, max_credits: int) -> None:
    start = time.perf_counter()
    file = Path(path)
    parsed = ui_batches.read_upload(file.name, file.read_bytes)  # as the page: the bytes, once
    read_at = time.perf_counter()
    mapping, _ = ui_batches.initial_mapping(user, parsed)
    pf = ui_batches.preflight(user, parsed, mapping, "bench")
    preflight_at = time.perf_counter()
    accepted = ui_batches.submit_upload(user, parsed, mapping, max_credits, "big upload")
    submitted_at = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "read_s": read_at - start,
                "preflight_s": preflight_at - read_at,
                "submit_s": submitted_at - preflight_at,
                "rows": pf.rows,
                "run_ids": [a.run_id for a in accepted],
                "peak_rss_mb": peak_mb,
            }
        )
    )
    bootstrap.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
