"""A small HTTP forward proxy, run as its own process by the proxy tests.

``python -m tests.e2e.forward_proxy LOGFILE`` prints its port, then forwards absolute-form
requests (``GET http://host:port/path``) and tunnels ``CONNECT host:port``; every request is
logged as ``METHOD host:port path`` (no headers, no bodies) so a test can tell which client
went through it.
"""
from __future__ import annotations

import http.client
import select
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "te", "upgrade"}
_lock = threading.Lock()
LOG_PATH = ""


def _log(line: str) -> None:
    with _lock, open(LOG_PATH, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _forward(self) -> None:
        parts = urlsplit(self.path)
        if not parts.hostname:
            self.send_error(400, "absolute URI required")
            return
        port = parts.port or 80
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        _log(f"{self.command} {parts.hostname}:{port} {parts.path}")
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        upstream = http.client.HTTPConnection(parts.hostname, port, timeout=120)
        try:
            upstream.request(self.command, path or "/", body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        except OSError:
            self.send_error(502, "upstream unreachable")
            return
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        _log(f"CONNECT {host}:{port} -")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except OSError:
            self.send_error(502, "upstream unreachable")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 60)
                if not readable:
                    break
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        finally:
            upstream.close()
            self.close_connection = True


def main() -> None:
    global LOG_PATH
    LOG_PATH = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
