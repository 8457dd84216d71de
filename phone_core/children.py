"""Child processes that die with this one, and the record a supervisor keeps of them.

``spawn`` starts a child with a private umask and, on Linux, the parent-death signal
(``PR_SET_PDEATHSIG``): even after ``kill -9`` of this process the child gets SIGTERM.
The kernel sends that signal when the *thread* that forked the child ends, so a child is
always forked from a thread that lives as long as the process: the main thread, or else
one long-lived spawner thread (a Streamlit script thread or a short-lived DBOS launch
thread would otherwise take the child with it when it ends).

``ChildRecord`` is the supervisor's pidfile (``serve.pid`` under the data dir), held
under an ``flock`` while the supervisor lives: the next supervisor on the same data dir
terminates whatever children of a dead one are still alive before it starts its own. A
pid is only signalled when its start time matches the record (a reused pid is left
alone).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from phone_core.settings import PRIVATE_FILE, PRIVATE_UMASK

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved here: the child between fork and exec only calls it."""
    try:
        fn: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None
    return fn


_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # pragma: no cover - runs in the child before exec
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before the line above
            os._exit(1)

    return preexec


class _Spawner:
    """One daemon thread, alive until the process ends, that forks children for the
    threads that may end before their children should."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # a forked copy: the thread was not copied
                self._jobs, self._thread, self._pid = queue.Queue(), None, os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, args=(self._jobs,), name="phone-child-spawner", daemon=True
                )
                self._thread.start()
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._jobs.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    @staticmethod
    def _loop(jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]]) -> None:
        while True:
            fn, reply = jobs.get()
            try:
                reply.put((True, fn()))
            except BaseException as exc:  # handed to the caller's thread
                reply.put((False, exc))


_SPAWNER = _Spawner()


def spawn(args: list[str], **popen_kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` for a child that dies with this process and creates only
    private files (umask 077)."""

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            args,
            umask=PRIVATE_UMASK,
            preexec_fn=_die_with_parent(os.getpid()),
            **popen_kwargs,
        )

    if threading.current_thread() is threading.main_thread():
        return start()
    proc: subprocess.Popen[bytes] = _SPAWNER.run(start)
    return proc


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 of the line, the 20th after comm


def alive(pid: int, started: int | None) -> bool:
    now = start_time(pid)
    if now is None:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z" and (started is None or now == started)


def terminate(pid: int, started: int | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; only the process that started at ``started``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive(pid, started):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid, started):
                return
            time.sleep(0.05)
    log.warning("process %s did not end after SIGKILL", pid)


class ChildRecord:
    """The supervisor's pidfile: locked while it lives, read by the next one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when a live supervisor holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _read(self) -> list[dict[str, Any]]:
        assert self._fd is not None
        os.lseek(self._fd, 0, os.SEEK_SET)
        raw = b""
        while chunk := os.read(self._fd, 65536):
            raw += chunk
        try:
            children = json.loads(raw or b"{}").get("children", [])
        except (ValueError, AttributeError):
            return []
        return [c for c in children if isinstance(c, dict) and isinstance(c.get("pid"), int)]

    def reap_stale(self) -> list[str]:
        """Terminate the still-running children of the previous supervisor; their names."""
        reaped = []
        for child in self._read():
            pid, started = child["pid"], child.get("start")
            if pid != os.getpid() and started is not None and alive(pid, started):
                log.warning(
                    "stopping a stale %s (pid %s) left by a dead supervisor", child.get("name"), pid
                )
                terminate(pid, started)
                reaped.append(str(child.get("name")))
        self.write({})
        return reaped

    def write(self, children: dict[str, int]) -> None:
        """Record this supervisor's children (name -> pid)."""
        assert self._fd is not None
        body = {
            "supervisor": os.getpid(),
            "children": [
                {"name": name, "pid": pid, "start": start_time(pid)}
                for name, pid in children.items()
            ],
        }
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, json.dumps(body).encode())

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.write({})
            os.close(self._fd)
            self._fd = None
