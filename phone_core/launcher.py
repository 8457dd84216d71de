"""`make run`: the whole product on one machine with the embedded defaults.

This process is the supervisor, the batch worker (DBOS) and the HTTP API; the web app
runs as a Streamlit child process that only submits (it finds this process holding the
worker lock). First start on a fresh data dir creates the admin account (password
printed once), seeds the demo directory, and grants the admin demo credits.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from phone_core import credits, db
from phone_core.bootstrap import get_runtime, shutdown
from phone_core.runtime import Runtime
from phone_core.settings import Settings

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
DEMO_CREDITS = 500


def seed_demo(rt: Runtime, admin: str = "admin") -> bool:
    """Load the generated demo directory and grant demo credits, once per data dir."""
    marker = rt.settings.data_dir / ".demo-seeded"
    if marker.exists():
        return False
    from phone_core.demo import DIRECTORY_HEADERS, directory_rows, population, to_csv
    from phone_core.ingest import load_directory_bytes

    with rt.db.connect() as conn:
        has_directory = conn.execute(sa.select(db.directory.c.id).limit(1)).first() is not None
    if not has_directory:
        data = to_csv(DIRECTORY_HEADERS, directory_rows(population(2000))).encode()
        load_directory_bytes(rt, data, "demo-directory.csv", loaded_by="demo seed")
    with rt.db.begin() as conn:
        credits.grant(conn, admin, DEMO_CREDITS, note="demo credits on first start")
    marker.write_text("seeded\n")
    return True


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


def serve(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from phone_core.users import ensure_admin

    settings.ensure_data_dir()
    password = ensure_admin(settings)
    rt = get_runtime(settings, worker=True)
    if not rt.is_worker:
        print("error: another `make run` is already running on this data dir", file=sys.stderr)
        return 1
    seeded = seed_demo(rt)
    app = subprocess.Popen(
        [
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
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
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
