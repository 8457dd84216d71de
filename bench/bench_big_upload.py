"""A big upload end to end (issue 11, item 6): a 100,000-row lead file (100 runs of 1000
under one budget) from upload to the last output, with the time and the peak RSS of each
process role.

Topology (``bench.topology``): PostgreSQL, one embedded S3, one ``phone-enrich worker``,
one ``phone-enrich api``, and the web app's upload path (``bench/upload_client.py``: what
the Upload page calls through ``ui_api``) in a process of its own. A 10,000-row directory
matches 10% of the leads, so credits are really charged. While the worker processes the
upload, API_POSTS requests of 1000 records go to the API (the API role's memory under
load; the worker processes those runs too, after the upload's).

"Last output" is the batch's merged results.csv in S3 (written when its last run ends,
after every run's own files). Afterwards the counts and credits are reconciled: every row
in a run, every run finished, the ledger's charges equal to the runs' spend and to the
phones found, nothing left held.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench import topology
from bench.bench_api import _body
from bench.run import Row
from bench.topology import Install, install, pg_url
from phone_core import credits, db, keys, storage, users
from phone_core.demo import to_csv

ROWS = int(os.environ.get("BENCH_BIG_ROWS", "100000"))
API_POSTS = int(os.environ.get("BENCH_BIG_API_POSTS", "20"))
DIRECTORY_EVERY = 10  # one lead in 10 is in the directory
USER = "bigbench"
CLIENT = Path(__file__).with_name("upload_client.py")


def _files(tmp: Path) -> tuple[Path, Path]:
    leads, directory = tmp / "leads.csv", tmp / "directory.csv"
    rows = [
        [
            f"First{i}",
            f"Last{i}",
            f"Company {i % 997}",
            f"https://www.co{i % 997}.example.com",
            f"https://www.linkedin.com/in/lead-{i}/",
            f"note {i}",
        ]
        for i in range(ROWS)
    ]
    header = ["First Name", "Last Name", "Company", "Website", "LinkedIn", "Notes"]
    leads.write_text(to_csv(header, rows))
    matches = [[f"lead-{i}", f"(415) 555-{i % 10000:04d}"] for i in range(0, ROWS, DIRECTORY_EVERY)]
    directory.write_text(to_csv(["linkedin", "phone"], matches))
    return leads, directory


def _prepare(inst: Install) -> str:
    engine = db.make_engine(inst.state_url)
    db.migrate(engine)
    with engine.begin() as conn:
        credits.grant(conn, USER, 2 * ROWS + 1000 * API_POSTS)
        users.add(conn, USER, "Big bench")
        key = keys.create(conn, USER, "bench")[1]
    engine.dispose()
    return key


def _post_api(base: str, key: str, done: list[float]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        for i in range(API_POSTS):
            r = client.post("/v1/agents/phone", json=_body(1000, f"api{i}"))
            if r.status_code != 202:
                raise RuntimeError(f"POST returned {r.status_code}")
    done.append(time.monotonic())


def _wait_last_output(inst: Install, run_ids: list[str], roles: list[topology.Role]) -> float:
    engine = sa.create_engine(inst.state_url)
    store = storage.S3ObjectStore(inst.settings())
    runs = db.runs
    batch_id = None
    deadline = time.monotonic() + 3600
    try:
        while time.monotonic() < deadline:
            for role in roles:
                role.sample()
            with engine.connect() as conn:
                states = conn.execute(
                    sa.select(runs.c.state, runs.c.batch_id).where(runs.c.run_id.in_(run_ids))
                ).all()
            finished = {"completed", "credit_limit_reached", "failed", "cancelled"}
            if len(states) == len(run_ids) and all(s in finished for s, _ in states):
                batch_id = states[0][1]
                try:
                    store.get(storage.batch_key(store, batch_id, 1, "results.csv"))
                    return time.monotonic()
                except Exception:
                    pass
            time.sleep(0.5)
        raise RuntimeError("the upload did not finish in an hour")
    finally:
        engine.dispose()


def _reconcile(inst: Install, run_ids: list[str]) -> dict[str, int]:
    engine = sa.create_engine(inst.state_url)
    r, rr, led = db.runs, db.run_records, db.ledger
    try:
        with engine.connect() as conn:
            records = conn.execute(
                sa.select(sa.func.count()).select_from(rr).where(rr.c.run_id.in_(run_ids))
            ).scalar_one()
            pending = conn.execute(
                sa.select(sa.func.count())
                .select_from(rr)
                .where(rr.c.run_id.in_(run_ids), rr.c.status.is_(None))
            ).scalar_one()
            found = conn.execute(
                sa.select(sa.func.count())
                .select_from(rr)
                .where(rr.c.run_id.in_(run_ids), rr.c.status == "found")
            ).scalar_one()
            spent = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(r.c.spent), 0)).where(
                    r.c.run_id.in_(run_ids)
                )
            ).scalar_one()
            charged = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(led.c.amount), 0)).where(
                    led.c.kind == "charge", led.c.run_id.in_(run_ids)
                )
            ).scalar_one()
            summary = credits.summarize(conn, USER)
    finally:
        engine.dispose()
    return {
        "records": int(records),
        "pending": int(pending),
        "found": int(found),
        "spent": int(spent),
        "charged": int(charged),
        "held": summary.held,
    }


def measure() -> dict[str, float | str]:
    pg = pg_url()
    if pg is None:
        raise RuntimeError("no PostgreSQL")
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp_name:
        tmp = Path(tmp_name)
        leads, directory = _files(tmp)
        with install(pg, tmp, "big") as inst:
            key = _prepare(inst)
            inst.cli("directory", "load", str(directory))
            worker = inst.start_worker("w0")
            api, base = inst.start_api(1)
            env = {**inst.env, "PHONE_DATA_DIR": str(tmp / "webapp")}
            start = time.monotonic()
            done = subprocess.run(
                [*topology.CMD[:1], str(CLIENT), str(leads), USER, str(2 * ROWS)],
                env=env,
                cwd=tmp,
                check=True,
                capture_output=True,
            )
            submitted = time.monotonic()
            web = json.loads(done.stdout.decode().strip().splitlines()[-1])
            api_done: list[float] = []
            poster = threading.Thread(target=_post_api, args=(base, key, api_done))
            poster.start()
            last = _wait_last_output(inst, web["run_ids"], [worker, api])
            poster.join()
            checks = _reconcile(inst, web["run_ids"])
            return {
                **{k: v for k, v in web.items() if k != "run_ids"},
                "runs": len(web["run_ids"]),
                "upload_to_submitted_s": submitted - start,
                "upload_to_last_output_s": last - start,
                "worker_rss_mb": worker.peak_rss_mb(),
                "worker_cpu_s": worker.cpu_seconds(),
                "api_rss_mb": api.peak_rss_mb(),
                **checks,
            }


def run() -> list[Row]:
    if pg_url() is None:
        return [Row("big upload", 0, "", "", "skipped: no PostgreSQL reachable")]
    return topology.with_baseline(measure, _rows)


def _rows(m: dict[str, float | str], tag: str) -> list[Row]:
    ok = (
        m["records"] == ROWS
        and m["pending"] == 0
        and m["charged"] == m["spent"] == m["found"]
        and m["held"] == 0
    )
    recon = (
        f"{m['runs']} runs, {m['records']:,} records, {m['found']:,} found, "
        f"{m['charged']:,} credits charged = runs' spend {m['spent']:,}, held after {m['held']}: "
        + ("reconciled" if ok else "NOT RECONCILED")
    )
    topo = "1 worker + 1 API process + the upload in its own process; PostgreSQL, embedded S3"
    rows = int(m["records"])
    out = [
        Row(
            f"{ROWS:,} rows: upload to last output",
            float(m["upload_to_last_output_s"]),
            "s",
            "",
            recon,
        ),
        Row(
            "upload to runs queued (read, map, pre-flight, submit)",
            float(m["upload_to_submitted_s"]),
            "s",
            "",
            f"read {m['read_s']:.1f} s, pre-flight {m['preflight_s']:.1f} s, "
            f"submit {m['submit_s']:.1f} s; process start included",
        ),
        Row(
            "end to end throughput",
            rows / float(m["upload_to_last_output_s"]),
            "records/s",
            "",
            topo,
        ),
        Row(
            "peak RSS: web app upload process",
            float(m["peak_rss_mb"]),
            "MB",
            "",
            "interpreter and imports included",
        ),
        Row(
            "peak RSS: worker",
            float(m["worker_rss_mb"]),
            "MB",
            "",
            f"worker CPU {m['worker_cpu_s']:.0f} s",
        ),
        Row(
            "peak RSS: API process",
            float(m["api_rss_mb"]),
            "MB",
            "",
            f"{API_POSTS} POSTs of 1000 records during the upload's processing",
        ),
    ]
    return [Row(r.name + tag, r.value, r.unit, r.target, r.note) for r in out]


if __name__ == "__main__":
    for row in run():
        print(f"{row.name}: {row.value:.1f} {row.unit} {row.note}")
