"""A stand-in for Cloud Storage's IAM in front of the emulator, which checks none: requests of
the denied kinds get the 403 Cloud Storage sends (tests/fixtures/wire/
gcs_403_objects_create_forbidden.json, its permission swapped for the one the kind needs),
every other request goes through to the emulator unchanged."""
from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.paths import FIXTURES

#: request kind -> (method, path pattern, the permission Cloud Storage checks for it)
KINDS = {
    "list": ("GET", re.compile(r"^/storage/v1/b/[^/]+/o$"), "storage.objects.list"),
    "write": ("POST", re.compile(r"^/upload/storage/v1/b/[^/]+/o$"), "storage.objects.create"),
    "read": ("GET", re.compile(r"^/download/storage/v1/b/[^/]+/o/.+"), "storage.objects.get"),
    "delete": ("DELETE", re.compile(r"^/storage/v1/b/[^/]+/o/.+"), "storage.objects.delete"),
}


def _forbidden(permission: str) -> bytes:
    body = (FIXTURES / "wire" / "gcs_403_objects_create_forbidden.json").read_text("utf-8")
    return json.dumps(json.loads(body.replace("storage.objects.create", permission))).encode()


class IamGate:
    """``with IamGate(emulator_url, deny={"write"}) as gate:`` then point STORAGE_EMULATOR_HOST at ``gate.url``."""

    def __init__(self, upstream: str, deny: set[str]) -> None:
        self.upstream = urlsplit(upstream)
        self.deny = deny
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                path = urlsplit(self.path).path
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                for kind in gate.deny:
                    method, pattern, permission = KINDS[kind]
                    if self.command == method and pattern.match(path):
                        data = _forbidden(permission)
                        self.send_response(403)
                        self.send_header("Content-Type", "application/json; charset=UTF-8")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                conn = http.client.HTTPConnection(gate.upstream.hostname, gate.upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> IamGate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
