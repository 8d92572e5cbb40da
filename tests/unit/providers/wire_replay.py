"""Replaying recorded provider answers over real HTTP (a local ``http.server`` thread).

The corpus in ``tests/fixtures/wire/`` holds response bodies exactly as the services sent
them; ``WireServer`` sends one back, byte for byte, with the status and headers a test
names, so the real client (httpx, the provider, the classifier) reads them off a socket.
"""
from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class WireServer:
    """Answers every POST with ``self.reply``; GET /files/img.png is an image download."""

    def __init__(self) -> None:
        self.reply = Reply(500, b"")
        self.requests: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                """No access log on the test's stderr."""

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                server.requests.append(self.rfile.read(length))
                reply = server.reply
                body = reply.body.replace(b"{BASE}", server.base_url.encode())
                self.send_response(reply.status)
                self.send_header("content-type", reply.headers.get("content-type", "application/json"))
                for name, value in reply.headers.items():
                    if name != "content-type":
                        self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", str(len(PNG_1X1)))
                self.end_headers()
                self.wfile.write(PNG_1X1)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WireServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
