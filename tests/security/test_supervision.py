"""Issue 9, item 16: children die with ``phone-enrich serve``; a restart replaces stale ones.

Found on the running product: after ``kill -9`` of the supervisor the Streamlit child
lived on holding its port, and the restart ran without a web app. Now every child (the
web app, the embedded S3 server) gets SIGTERM when its parent dies, from whichever
thread started it, and the supervisor records them in ``serve.pid``: the next one stops
any a dead supervisor left running before it starts its own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from phone_core.children import alive, start_time
from tests.conftest import free_port
from tests.core.test_durability import BIN

pytestmark = pytest.mark.integration


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of the live children of ``pid``."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            out[int(proc.name)] = cmdline
    return out


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


class Serve:
    """``phone-enrich serve`` on free ports, its own data dir, a log file per start."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.data_dir = tmp_path / "data"
        self.app_port, self.api_port, self.s3_port = free_port(), free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_")}
        self.env.update(
            {
                "PHONE_DATA_DIR": str(self.data_dir),
                "PHONE_APP_PORT": str(self.app_port),
                "PHONE_API_PORT": str(self.api_port),
                "PHONE_S3_PORT": str(self.s3_port),
                "PHONE_LANTERN_ENABLED": "false",
                "PHONE_WATERFALL": '["directory"]',
            }
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spawned: set[int] = set()

    def start(self, umask: int = -1) -> subprocess.Popen[bytes]:
        log = self.tmp / f"serve-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN), "serve"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                umask=umask,  # -1: the test's own
            )
        self.procs.append(proc)
        return proc

    def log(self) -> str:
        return (self.tmp / f"serve-{len(self.procs) - 1}.log").read_text()[-3000:]

    def wait_app(self, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited: {self.log()}"
            if _answers(self.app_port):
                self.spawned |= set(_children(proc.pid))
                return
            time.sleep(0.2)
        raise AssertionError(f"the web app did not answer: {self.log()}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for pid in self.spawned:  # whatever a failed assertion left behind
            if alive(pid, None):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    s = Serve(tmp_path)
    yield s
    s.stop()


def test_kill_9_of_serve_takes_its_children_and_a_restart_serves_again(serve: Serve) -> None:
    first = serve.start()
    serve.wait_app(first)
    children = _children(first.pid)
    assert any("streamlit" in c for c in children.values()), children
    assert any("serve s3" in c for c in children.values()), children

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    _wait(lambda: not any(alive(pid, None) for pid in children), 10, "the children to end")
    _wait(
        lambda: not any(_port_open(p) for p in (serve.app_port, serve.api_port, serve.s3_port)),
        10,
        "the ports to be free",
    )

    second = serve.start()
    serve.wait_app(second)
    assert set(_children(second.pid)).isdisjoint(children)


def test_a_restart_stops_a_stale_child_left_running(serve: Serve, tmp_path: Path) -> None:
    """As if the parent-death signal had failed: a stale 'web app' that ignores SIGTERM
    holds the app port, recorded by a supervisor that is gone."""
    stale = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import signal, socket, time
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                s = socket.socket()
                s.bind(("127.0.0.1", {serve.app_port}))
                s.listen()
                print("listening", flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    serve.spawned.add(stale.pid)
    assert stale.stdout is not None and stale.stdout.readline() == b"listening\n"
    serve.data_dir.mkdir()
    (serve.data_dir / "serve.pid").write_text(
        json.dumps(
            {
                "supervisor": 999999,
                "children": [{"name": "web app", "pid": stale.pid, "start": start_time(stale.pid)}],
            }
        )
    )
    proc = serve.start()
    serve.wait_app(proc)
    assert stale.wait(timeout=10) == -signal.SIGKILL
    stale.stdout.close()


def test_a_recycled_pid_in_the_record_is_left_alone(serve: Serve) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    serve.spawned.add(other.pid)
    serve.data_dir.mkdir()
    record = {"children": [{"name": "web app", "pid": other.pid, "start": 1}]}
    (serve.data_dir / "serve.pid").write_text(json.dumps(record))
    proc = serve.start()
    serve.wait_app(proc)
    assert other.poll() is None  # same pid, other start time: not ours to stop
    other.kill()
    other.wait(timeout=5)


def test_a_port_held_by_another_program_is_refused_plainly(serve: Serve) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", serve.app_port))
        holder.listen()
        proc = serve.start()
        assert proc.wait(timeout=60) == 1
    out = serve.log()
    assert f"port {serve.app_port} (web app, PHONE_APP_PORT) already in use" in out
    assert "Traceback" not in out
    assert not _port_open(serve.s3_port)  # nothing started


def test_s3_server_started_from_a_thread_that_ends_dies_with_its_process(tmp_path: Path) -> None:
    """The parent-death signal follows the thread that forked; children are forked from a
    thread that lives as long as the process (a Streamlit script thread would not)."""
    port = free_port()
    script = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        from phone_core.s3server import LocalS3Server
        from phone_core.settings import Settings

        server = LocalS3Server(Settings(data_dir=Path({str(tmp_path / "data")!r}), s3_port={port}))
        t = threading.Thread(target=server.start)
        t.start()
        t.join()
        print(server.process.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    rclone = 0
    try:
        assert proc.stdout is not None
        rclone = int(proc.stdout.readline())
        time.sleep(0.5)
        assert alive(rclone, None) and _port_open(port)  # the starting thread has ended
        proc.kill()
        proc.wait(timeout=10)
        _wait(lambda: not alive(rclone, None), 10, "the S3 server to end")
        _wait(lambda: not _port_open(port), 10, "the S3 port to be free")
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout:
            proc.stdout.close()
        if rclone and alive(rclone, None):  # what a failed assertion left behind
            os.kill(rclone, signal.SIGKILL)
