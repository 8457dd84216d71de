"""Start and stop the real web app (``streamlit run app.py``) for browser tests and benches."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The headless Chromium of the browser tests and the page benches.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# Installed before the app loads: counts the app's script runs (each move of the root's
# data-test-script-state into "running") and notes whether the sign-in form ever appeared.
RENDER_WATCH = """
window.__phone = {runs: 0, form: false};
new MutationObserver((records) => {
  const mine = records.filter((r) => r.attributeName === 'data-test-script-state');
  mine.forEach((r, i) => {
    const next = i + 1 < mine.length ? mine[i + 1].oldValue
      : r.target.getAttribute('data-test-script-state');
    if (next === 'running' && r.oldValue !== 'running') window.__phone.runs += 1;
  });
  if (document.querySelector('input[aria-label="Username"]')) window.__phone.form = true;
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeOldValue: true, attributeFilter: ['data-test-script-state']});
"""


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not start: {log.read_text()[-3000:]}")


def start_app(data_dir: Path, port: int, s3_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PHONE_DATA_DIR": str(data_dir),
        "PHONE_S3_PORT": str(s3_port),
        "PHONE_WATERFALL": '["directory"]',
    }
    env.pop("PHONE_LANTERN_BASE_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--server.headless", "true",
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def stop_app(proc: subprocess.Popen[bytes], s3_port: int) -> None:
    """SIGTERM lets the app stop its own S3 server (atexit); then make sure both are gone."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    deadline = time.monotonic() + 10
    while _port_open(s3_port) and time.monotonic() < deadline:
        time.sleep(0.2)


# Module scope: Playwright's sync API keeps an event loop running in this thread while it
# is open, which must not leak into later test modules.
