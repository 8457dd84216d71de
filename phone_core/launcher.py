"""`make run`: the whole product on one machine with the embedded defaults.

This process is the supervisor, the batch worker (DBOS) and the HTTP API; the web app
runs as a Streamlit child process that only submits (it finds this process holding the
worker lock). First start on a fresh data dir creates the admin account (password
printed once). With ``PHONE_DEMO_SEED`` on (``make run`` turns it on) and an empty
install, it also loads the demo directory and grants the admin demo credits; never on a
data dir that holds anything.

Children (the web app, the embedded S3 server) die with this process, even on
``kill -9`` (``children.spawn``), and are recorded in ``serve.pid``: a restart stops any
that a dead supervisor left running before it starts its own, and refuses with a plain
message when another program holds the web app's or the API's port.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from phone_core import credits, db
from phone_core.bootstrap import get_runtime, shutdown
from phone_core.children import ChildRecord, spawn
from phone_core.runtime import Runtime
from phone_core.settings import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
DEMO_CREDITS = 500


# An install holding a row in any of these is not empty: the demo seed leaves it alone.
_INSTALL_TABLES = (
    db.runs,
    db.ledger,
    db.accounts,
    db.persons,
    db.directory,
    db.directory_loads,
    db.api_keys,
)


def install_is_empty(rt: Runtime) -> bool:
    """No runs, no credits granted, no directory, no people, no API keys."""
    with rt.db.connect() as conn:
        return all(
            conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is None
            for t in _INSTALL_TABLES
        )


def seed_demo(rt: Runtime, admin: str = "admin") -> bool:
    """Load the generated demo directory and grant demo credits: only when the
    ``demo_seed`` setting is on (``make run``) and the install is empty."""
    if not rt.settings.demo_seed or not install_is_empty(rt):
        return False
    from phone_core.demo import DIRECTORY_HEADERS, directory_rows, population, to_csv
    from phone_core.directory_upload import load_bytes

    data = to_csv(DIRECTORY_HEADERS, directory_rows(population(2000))).encode()
    load_bytes(rt, data, "demo-directory.csv", loaded_by="demo seed")
    with rt.db.begin() as conn:
        credits.grant(conn, admin, DEMO_CREDITS, note="demo credits on first start")
    return True


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _banner(settings: Settings, password: str | None, seeded: bool) -> None:
    lines = [
        "",
        f"  Web app:  http://127.0.0.1:{settings.app_port}",
        f"  HTTP API: http://{settings.api_host}:{settings.api_port}/docs",
        f"  Data dir: {settings.data_dir.resolve()}",
    ]
    if password:
        lines += [
            "",
            "  First start: an admin account was created. Sign in with",
            "    username: admin",
            f"    password: {password}",
            "  This password is shown only now; an admin can reset passwords in the app.",
        ]
    if seeded:
        lines += [
            f"  Demo: a generated reference directory is loaded and admin has {DEMO_CREDITS}"
            " credits;",
            f"  try it with {ROOT / 'examples' / 'leads.csv'}",
        ]
    print("\n".join(lines) + "\n", flush=True)


def web_command(settings: Settings) -> list[str]:
    """The Streamlit command line of the web app on ``settings.app_port``."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.port",
        str(settings.app_port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]


def serve_web(settings: Settings) -> int:
    """`phone-enrich web`: the web app alone, for scale-out (several, each on its own port,
    behind a load balancer with sticky sessions). It submits to the shared queue; it runs
    batches only when ``PHONE_RUNS_BATCHES`` allows and no other process here does."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings.ensure_data_dir()
    if _port_open("127.0.0.1", settings.app_port):
        print(f"error: port {settings.app_port} (web app) is already in use", file=sys.stderr)
        return 1
    app = spawn(web_command(settings), cwd=ROOT, stdin=subprocess.DEVNULL)
    print(f"web app on http://127.0.0.1:{settings.app_port}", file=sys.stderr)
    try:
        return app.wait()
    except KeyboardInterrupt:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
        return 0


def serve(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings.ensure_data_dir()
    record = ChildRecord(settings.data_dir / "serve.pid")
    if not record.acquire():
        print("error: `phone-enrich serve` is already running on this data dir", file=sys.stderr)
        return 1
    try:
        return _supervise(settings, record)
    finally:
        record.release()


def _supervise(settings: Settings, record: ChildRecord) -> int:
    from phone_core.users import ensure_admin

    record.reap_stale()  # children a killed supervisor left behind (before their ports)
    busy = [
        f"port {port} ({what}, {var})"
        for what, var, host, port in (
            ("web app", "PHONE_APP_PORT", "127.0.0.1", settings.app_port),
            ("HTTP API", "PHONE_API_PORT", settings.api_host, settings.api_port),
        )
        if _port_open(host, port)
    ]
    if busy:
        print(
            f"error: {' and '.join(busy)} already in use by another program;"
            " stop it or choose another port",
            file=sys.stderr,
        )
        return 1
    password = ensure_admin(settings)
    rt = get_runtime(settings, worker=True)
    if not rt.is_worker:
        print(
            "error: another process is the batch worker on this data dir"
            " (a `phone-enrich worker`?); stop it first",
            file=sys.stderr,
        )
        return 1
    seeded = seed_demo(rt)
    app = spawn(web_command(settings), cwd=ROOT, stdin=subprocess.DEVNULL)
    children = {"web app": app.pid}
    if rt.s3_server and rt.s3_server.process:
        children["S3 server"] = rt.s3_server.process.pid
    record.write(children)
    _banner(settings, password, seeded)
    try:
        from phone_core.api.app import serve as serve_api

        serve_api(settings)  # blocks until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
        shutdown()
        time.sleep(0.1)
    return 0
