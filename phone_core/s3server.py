"""The embedded S3 server: ``rclone serve s3`` on 127.0.0.1 for one data dir.

Keys are generated once into the data dir (mode 0600) and data kept under
``data_dir/s3``. Whoever needs it first (app, API, CLI) starts it if nothing answers on
the port, and stops it on exit. Only this module knows about the process.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from phone_core.errors import StorageError
from phone_core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class S3Credentials:
    endpoint_url: str | None
    access_key: str | None
    secret_key: str | None


def _keys_file(settings: Settings) -> Path:
    return settings.data_dir / "s3-keys.json"


def embedded_credentials(settings: Settings) -> S3Credentials:
    """Read (or create once, mode 0600) the generated keys of the embedded S3 server."""
    path = _keys_file(settings)
    if not path.exists():
        settings.ensure_data_dir()
        keys = {
            "access_key": "PE" + secrets.token_hex(9).upper(),
            "secret_key": secrets.token_urlsafe(30),
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(keys))
        tmp.chmod(0o600)
        tmp.replace(path)
    keys = json.loads(path.read_text())
    return S3Credentials(
        endpoint_url=f"http://127.0.0.1:{settings.s3_port}",
        access_key=keys["access_key"],
        secret_key=keys["secret_key"],
    )


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rclone_binary() -> str:
    beside = Path(sys.executable).parent / "rclone"
    found = str(beside) if beside.exists() else shutil.which("rclone")
    if not found:
        raise StorageError("the rclone binary is missing: reinstall with `make install`")
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM when the thread that started it goes away."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalS3Server:
    """The embedded ``rclone serve s3`` process for one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> bool:
        """Start unless something already serves the port; True when this call started it."""
        if _port_open(self.settings.s3_port):
            return False
        creds = embedded_credentials(self.settings)
        self.settings.s3_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.settings.data_dir / "s3.log"
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [
                    rclone_binary(),
                    "serve",
                    "s3",
                    str(self.settings.s3_dir),
                    "--addr",
                    f"127.0.0.1:{self.settings.s3_port}",
                    "--auth-key",
                    f"{creds.access_key},{creds.secret_key}",
                    "--config",
                    "/dev/null",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # Tie the server's life to this process even on kill -9, but only from the
                # main thread: the signal follows the starting thread, not the process.
                preexec_fn=(
                    _die_with_parent
                    if threading.current_thread() is threading.main_thread()
                    else None
                ),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StorageError(f"the local S3 server exited; see {log_path}")
            if _port_open(self.settings.s3_port):
                atexit.register(self.stop)
                log.info("local S3 server started on port %s", self.settings.s3_port)
                return True
            time.sleep(0.05)
        self.stop()
        raise StorageError("the local S3 server did not start in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
