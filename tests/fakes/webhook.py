"""A fake webhook receiver over real HTTP on 127.0.0.1 (Slack, Teams, Zapier, a CRM...).

Every POST is recorded (path, headers, raw body). The answer is picked per request:
``script(*answers)`` for the next requests, then ``default``; an answer is an HTTP
status (``200``, ``404``, ``500``...), ``"hang"`` (sleeps ``hang_sec`` before 200: longer
than the sender's timeout) or ``"redirect"`` (302 to ``/elsewhere``, which must not be
followed). Use as a context manager. Never imported by ``phone_core``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = int | str


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeWebhook


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = fake._arrive(Received(self.path, dict(self.headers.items()), body))
        try:
            if answer == "hang":
                time.sleep(fake.hang_sec)
                answer = 200
            if answer == "redirect":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = b'{"ok": true}' if answer == 200 else b'{"error": "no"}'
            self.send_response(int(answer))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the sender gave up (timeout)
            self.close_connection = True


class FakeWebhook:
    def __init__(self, default: Answer = 200, hang_sec: float = 2.0) -> None:
        self.default = default
        self.hang_sec = hang_sec
        self.received: list[Received] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def _arrive(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            return self._script.popleft() if self._script else self.default

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/batch"

    def start(self) -> FakeWebhook:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeWebhook:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
