"""Issue 9, item 6: the data dir is 0700 and every file in it 0600, whatever the umask.

A full batch through the console script (credits, directory load, submit --wait,
download) runs with umask 000 inherited from the test; then every directory under the
data dir must be 0700 and every regular file 0600: the state DB and its -wal/-shm files,
the DBOS system DB, the S3 objects rclone wrote, the keys, s3.log, the lock files.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from phone_core.settings import Settings
from tests.conftest import free_port
from tests.core.test_durability import BIN, _env, _stop_s3
from tests.security.test_supervision import Serve

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _cli_umask0(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        umask=0,  # the loosest umask a user could have
    )


def loose_modes(root: Path) -> list[str]:
    """Every directory not 0700 and every regular file not 0600 under ``root`` (itself too)."""
    bad: list[str] = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        want = 0o700 if stat.S_ISDIR(mode) else 0o600 if stat.S_ISREG(mode) else None
        if want is not None and stat.S_IMODE(mode) != want:  # sockets, links: not data
            bad.append(f"{path.relative_to(root.parent)} {oct(stat.S_IMODE(mode))}")
    return bad


def test_full_batch_under_umask_000_leaves_only_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _env(data_dir, free_port(), PHONE_LANTERN_ENABLED="false")
    try:
        assert _cli_umask0(env, "credits", "grant", "ann", "300").returncode == 0
        loaded = _cli_umask0(env, "directory", "load", str(ROOT / "examples" / "directory.csv"))
        assert loaded.returncode == 0, loaded.stderr
        out = _cli_umask0(
            env,
            "submit",
            str(ROOT / "examples" / "leads.csv"),
            "--user",
            "ann",
            "--max-credits",
            "300",
            "--wait",
        )
        assert out.returncode == 0, out.stderr
        final = json.loads(out.stdout.splitlines()[-1])
        assert final["state"] == "completed"
        got = _cli_umask0(env, "download", final["run_id"], "--out", str(tmp_path / "out"))
        assert got.returncode == 0, got.stderr
    finally:
        _stop_s3(data_dir)
    names = {p.name for p in data_dir.rglob("*")}
    # the run really wrote what must be protected
    assert {"state.sqlite", "dbos.sqlite", "s3-keys.json", "s3.log"} <= names
    assert {"results.csv", "credits.csv"} <= names  # S3 objects written by rclone
    assert any(n.startswith("executor-") for n in names)
    assert loose_modes(data_dir) == []


def test_serve_and_its_web_app_under_umask_000_leave_only_private_files(tmp_path: Path) -> None:
    """The supervisor, the web app child and rclone: credentials file, lock files, pidfile."""
    serve = Serve(tmp_path)
    try:
        proc = serve.start(umask=0)
        serve.wait_app(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        serve.stop()
    names = {p.name for p in serve.data_dir.rglob("*")}
    assert {"serve.pid", "state.sqlite", "dbos.sqlite", "s3.log"} <= names  # users: in the DB
    assert loose_modes(serve.data_dir) == []


def test_an_existing_loose_data_dir_is_tightened(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    keys = data_dir / "s3-keys.json"
    keys.write_text("{}")
    keys.chmod(0o644)
    state = data_dir / "state.sqlite"
    state.write_bytes(b"")
    state.chmod(0o666)
    settings = Settings(data_dir=data_dir)
    old = os.umask(0)
    try:
        settings.ensure_data_dir()
    finally:
        os.umask(old)
    assert loose_modes(data_dir) == []
    # the SQLite files exist before any driver creates them, private from the start
    assert (data_dir / "dbos.sqlite").is_file()


def test_a_new_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "deep" / "data"
    old = os.umask(0)
    try:
        Settings(data_dir=data_dir).ensure_data_dir()
    finally:
        os.umask(old)
    assert loose_modes(data_dir) == []
