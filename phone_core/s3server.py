"""The embedded S3 server: ``rclone serve s3`` on 127.0.0.1 for one data dir.

Keys are generated once into the data dir (mode 0600) and data kept under
``data_dir/s3``. Whoever needs it first (app, API, CLI) starts it if nothing answers on
the port, and stops it on exit. Only this module knows about the process.

The keys reach rclone through its environment (``RCLONE_AUTH_KEY``), never its command
line: any local account can read a command line (``ps``), only this account the
environment. rclone runs with umask 077 (its objects are 0600 in 0700 directories) and
dies with the process that started it (see ``children.spawn``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from phone_core.children import spawn
from phone_core.errors import StorageError
from phone_core.settings import PRIVATE_FILE, Settings, private_dir

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
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)  # private before the first byte, whatever was there
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(keys))
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


def rclone_env(creds: S3Credentials) -> dict[str, str]:
    """rclone's environment: ours without any inherited ``RCLONE_*`` setting, plus the
    key pair (CSV-quoted: the pair holds a comma)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_AUTH_KEY"] = f'"{creds.access_key},{creds.secret_key}"'
    return env


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
        private_dir(self.settings.s3_dir)
        log_path = self.settings.data_dir / "s3.log"
        log_fd = os.open(
            log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE
        )
        os.fchmod(log_fd, PRIVATE_FILE)
        with os.fdopen(log_fd, "ab") as log_file:
            self.process = spawn(
                [
                    rclone_binary(),
                    "serve",
                    "s3",
                    str(self.settings.s3_dir),
                    "--addr",
                    f"127.0.0.1:{self.settings.s3_port}",
                    "--config",
                    "/dev/null",
                ],
                env=rclone_env(creds),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
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
