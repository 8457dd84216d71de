"""Engine overhead: 1000 directory-only records, submit to both CSVs in S3."""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path

from bench.run import Row
from phone_core import bootstrap, credits, service
from phone_core.models import BatchCreate
from phone_core.settings import Settings
from phone_core.sources.directory import load_rows

N = 1000
REPEATS = 5


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), s3_port=_port(), lantern_enabled=False)
        rt = bootstrap.get_runtime(settings)
        try:
            load_rows(
                rt.db,
                [
                    {"linkedin": f"person-{i}", "phone": f"(212) 555-{i % 10000:04d}"}
                    for i in range(100_000)
                ],
                file_name="bench",
                loaded_by="bench",
            )
            with rt.db.begin() as conn:
                credits.grant(conn, "bench", 10**7)
            times = []
            for rep in range(REPEATS):
                # fresh identities each time so the cache does not serve them
                records = [{"linkedin": f"person-{rep * N + i}"} for i in range(N)]
                body = BatchCreate(records=records, entity_type="person", max_credits=N)
                start = time.perf_counter()
                acc = service.submit_batch(rt, "bench", body)
                key = rt.store.key_for(acc.run_id, "credits.csv")
                while not service.get_run(rt, "bench", acc.run_id).state.finished:
                    time.sleep(0.005)
                rt.store.get(key)  # the outputs are in S3
                times.append(time.perf_counter() - start)
        finally:
            bootstrap.shutdown()
    median = statistics.median(times)
    return [
        Row(
            "1000 directory-only records, submit to outputs in S3 (median of 5)",
            median,
            "s",
            "< 3 s",
            f"min {min(times):.2f} s, max {max(times):.2f} s; 100k-row directory",
        ),
        Row("engine throughput", N / median, "records/s", "", "same runs"),
    ]
