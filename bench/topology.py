"""A scaled-out install for the benches: fresh PostgreSQL databases (state + DBOS), one
embedded S3 server, and the product's processes started by role in their own process
groups (``phone-enrich api --workers N``, ``phone-enrich worker``), with CPU time and
peak RSS read per role from /proc.

Needs PostgreSQL: PHONE_TEST_POSTGRES_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/
postgres if it answers (``pg_url`` returns None otherwise and the bench is skipped).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import sqlalchemy as sa

from phone_core.s3server import LocalS3Server, embedded_credentials
from phone_core.settings import Settings

# The product's command; BENCH_TREE=<a checkout> runs that checkout's code instead (to
# measure a before and an after side by side with one virtualenv).
CMD = [sys.executable, "-m", "phone_core.cli"]
TREE = os.environ.get("BENCH_TREE", "")
# BENCH_BASELINE=<a checkout of an earlier commit>: the process benches measure it too, just
# before the code under test, and report both (rows marked "[baseline]").
BASELINE = os.environ.get("BENCH_BASELINE", "")


def baseline_label() -> str:
    done = subprocess.run(
        ["git", "-C", BASELINE, "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f" [baseline {done.stdout.strip() or BASELINE}]"


def with_baseline(measure: Callable[[], T], rows: Callable[[T, str], list[Any]]) -> list[Any]:
    """``rows(measure(), "")``, preceded by the baseline's rows when BENCH_BASELINE is set
    (measured first, with the same bench code, the product's processes from that checkout)."""
    global TREE
    out: list[Any] = []
    if BASELINE:
        saved, TREE = TREE, BASELINE
        try:
            out += rows(measure(), baseline_label())
        finally:
            TREE = saved
    return out + rows(measure(), "")


DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url() -> str | None:
    url = os.environ.get("PHONE_TEST_POSTGRES_URL") or DEFAULT_PG
    try:
        engine = sa.create_engine(url)
        with engine.connect():
            pass
        engine.dispose()
        return url
    except Exception:
        return None


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields[2]: pgrp (after state, ppid)
            out.append(int(entry))
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Role:
    """One role's process group (a supervisor and its children)."""

    name: str
    proc: subprocess.Popen[bytes]
    _cpu_seen: dict[int, float] = field(default_factory=dict)
    _peak: dict[int, float] = field(default_factory=dict)

    def sample(self) -> None:
        """Record CPU time and peak RSS of every live member (call now and then, and
        before stopping: a process that has exited can no longer be read)."""
        for pid in _group_members(self.proc.pid):
            self._cpu_seen[pid] = max(self._cpu_seen.get(pid, 0.0), _cpu_seconds(pid))
            self._peak[pid] = max(self._peak.get(pid, 0.0), _peak_rss_mb(pid))

    def cpu_seconds(self) -> float:
        self.sample()
        return sum(self._cpu_seen.values())

    def peak_rss_mb(self) -> float:
        """The largest peak RSS of any one process of the role."""
        self.sample()
        return max(self._peak.values(), default=0.0)

    def stop(self) -> None:
        self.sample()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Install:
    """Fresh databases on ``pg`` and an S3 server under ``tmp``; ``env`` for processes."""

    def __init__(self, pg: str, tmp: Path, tag: str) -> None:
        self.tmp = tmp
        self.admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        self.names = [
            f"phone_{tag}_{uuid.uuid4().hex[:8]}",
            f"phone_{tag}_{uuid.uuid4().hex[:8]}_d",
        ]
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        base = sa.engine.make_url(pg)
        self.state_url = base.set(database=self.names[0]).render_as_string(hide_password=False)
        dbos = base.set(drivername="postgresql", database=self.names[1])
        self.dbos_url = dbos.render_as_string(hide_password=False)
        self.s3 = LocalS3Server(Settings(data_dir=tmp / "s3", s3_port=free_port()))
        self.s3.start()
        creds = embedded_credentials(self.s3.settings)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
        self.env |= {
            "PHONE_DATABASE_URL": self.state_url,
            "PHONE_DBOS_DATABASE_URL": self.dbos_url,
            "PHONE_S3_ENDPOINT_URL": str(creds.endpoint_url),
            "PHONE_S3_ACCESS_KEY": str(creds.access_key),
            "PHONE_S3_SECRET_KEY": str(creds.secret_key),
            "PHONE_LANTERN_ENABLED": "false",
            "PHONE_RUNS_BATCHES": "false",  # only `phone-enrich worker` runs batches
            "PHONE_DATA_DIR": str(tmp / "client"),
        }
        if TREE:
            self.env["PYTHONPATH"] = TREE
        self.roles: list[Role] = []

    def settings(self) -> Settings:
        """Settings as the processes read them (for in-process calls of the bench)."""
        creds = embedded_credentials(self.s3.settings)
        return Settings(
            data_dir=self.tmp / "bench",
            database_url=self.state_url,
            dbos_database_url=self.dbos_url,
            s3_endpoint_url=creds.endpoint_url,
            s3_access_key=creds.access_key,
            s3_secret_key=creds.secret_key,
            lantern_enabled=False,
            runs_batches=False,
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*CMD, *args], env=self.env, cwd=self.tmp, check=True, capture_output=True
        )
        return done.stdout.decode()

    def start(self, name: str, *args: str, **env: str) -> Role:
        proc = subprocess.Popen(
            [*CMD, *args],
            env={**self.env, **env},
            cwd=self.tmp,  # not this checkout: `-m` puts the working directory first
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: measured and stopped as one
        )
        role = Role(name, proc)
        self.roles.append(role)
        return role

    def start_api(self, workers: int) -> tuple[Role, str]:
        port = free_port()
        role = self.start(
            "api",
            "api",
            "--workers",
            str(workers),
            PHONE_API_PORT=str(port),
            PHONE_API_RATE_PER_MINUTE=str(10**9),
            PHONE_DATA_DIR=str(self.tmp / "api"),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if role.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        # every uvicorn worker has its runtime up once each answered: warm them all
        for _ in range(4 * workers):
            httpx.get(f"{base}/openapi.json", timeout=10)
        return role, base

    def start_worker(self, executor_id: str) -> Role:
        return self.start(
            f"worker {executor_id}",
            "worker",
            "--executor-id",
            executor_id,
            PHONE_DATA_DIR=str(self.tmp / f"worker-{executor_id}"),
        )

    def close(self) -> None:
        for role in self.roles:
            role.stop()
        self.s3.stop()
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@contextmanager
def install(pg: str, tmp: Path, tag: str) -> Iterator[Install]:
    inst = Install(pg, tmp, tag)
    try:
        yield inst
    finally:
        inst.close()
