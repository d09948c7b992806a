"""A small HTTPS server for the lab: serves MTA-STS policies (RFC 8461) at
https://mta-sts.<domain>/.well-known/mta-sts.txt, chosen by the Host header, with a certificate
from the lab's test CA (or any other: an untrusted one for tests). Policies and raw answers
(redirects, oversized bodies) can be changed while it runs; requests are counted per host.
POST bodies are recorded (host, path, content type, body) and answered 200: a TLS-RPT (RFC 8460
section 5.2) report receiver. It runs in a thread of the test process and stops with stop()."""
from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Optional


class PolicyServer:
    def __init__(self, address: str, port: int, cert: Path | str, key: Path | str):
        if not address.startswith("127."):
            raise ValueError("lab servers listen on loopback only")
        self.address, self.port = address, port
        # host -> (status, content type, body, extra headers)
        self.policies: dict[str, tuple[int, str, str, dict[str, str]]] = {}
        self.requests: dict[str, int] = {}
        self.posts: list[tuple[str, str, str, bytes]] = []  # host, path, content type, body
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                with server._lock:
                    server.requests[host] = server.requests.get(host, 0) + 1
                    entry = server.policies.get(host) if self.path == "/.well-known/mta-sts.txt" else None
                status, ctype, body, headers = entry or (404, "text/plain", "not found\n", {})
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20))
                with server._lock:
                    server.posts.append((host, self.path, self.headers.get("Content-Type") or "", body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer((address, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: Optional[threading.Thread] = None

    def set_policy(self, domain: str, mode: str, mx: list[str], max_age: int = 86400,
                   status: int = 200, content_type: str = "text/plain") -> None:
        body = "version: STSv1\r\nmode: %s\r\n%smax_age: %d\r\n" % (
            mode, "".join("mx: %s\r\n" % m for m in mx), max_age)
        self.set_response(domain, status, content_type, body)

    def set_response(self, domain: str, status: int, content_type: str, body: str,
                     headers: Optional[dict[str, str]] = None) -> None:
        """Any answer for domain's policy URL: a redirect, an oversized body, a 404."""
        with self._lock:
            self.policies["mta-sts." + domain] = (status, content_type, body, dict(headers or {}))

    def count(self, domain: str) -> int:
        with self._lock:
            return self.requests.get("mta-sts." + domain, 0)

    def received_posts(self) -> list[tuple[str, str, str, bytes]]:
        with self._lock:
            return list(self.posts)

    def start(self) -> "PolicyServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=10)
