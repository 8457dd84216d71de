"""The HTTP side of the fake upstream: one thread per connection, HTTP/1.1 keep-alive."""

from __future__ import annotations

import json
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from tests.fakes.upstream import PATH, Call

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeUpstream


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    fake: FakeUpstream


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        rid = str(body.get("record_id", ""))
        call = fake._arrive(rid, body)
        try:
            if self.path != PATH:
                self._json(call, 404, {"error": "not found"})
            elif self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                self._json(call, 401, {"error": "invalid api key"})
            else:
                self._serve(fake, call)
        except OSError:  # the client went away (timeouts, size limits)
            self.close_connection = True
        finally:
            fake._leave(call)

    def _serve(self, fake: FakeUpstream, call: Call) -> None:
        fault = call.fault
        if fault == "timeout":
            time.sleep(fake.hang_sec)
            self._json(call, 200, {"phone_number": None})
            return
        if fake.latency > 0:
            time.sleep(fake.latency)
        if fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == "429":
            payload: dict[str, Any] = {"error": "rate limited"}
            headers = {"Retry-After": str(fake.retry_after)}
            if not fake.retry_after_header:
                payload["retry_after"] = fake.retry_after
            self._json(call, 429, payload, headers)
        elif fault in ("500", "503", "400", "401", "402", "403"):
            self._json(call, int(fault), {"error": f"fake {fault}"})
        elif fault == "bad_json":
            self._send(call, 200, b'{"phone_number": "+1212', "application/json")
        elif fault == "wrong_type":
            self._send(call, 200, b"<html>maintenance</html>", "text/html")
        elif fault in ("huge", "huge_chunked"):
            self._huge(call, fake.huge_bytes, chunked=fault == "huge_chunked")
        elif fault == "invalid_phone":
            self._json(call, 200, {"phone_number": "12345", "credits_consumed": 1})
        else:
            phone = None if fault == "not_found" else fake.phone_for(call.record_id)
            self._json(call, 200, fake.payload(phone, call.record_id))

    def _json(
        self, call: Call, status: int, payload: object, headers: dict[str, str] | None = None
    ) -> None:
        self._send(call, status, json.dumps(payload).encode(), "application/json", headers)

    def _send(
        self,
        call: Call,
        status: int,
        data: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        call.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _huge(self, call: Call, size: int, *, chunked: bool) -> None:
        call.status = 200
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        piece = b'{"pad": "' + b"x" * 16000
        sent = 0
        self.close_connection = True
        while sent < size:
            part = piece[: size - sent]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            sent += len(part)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
