"""A fault-injecting SMTP proxy for the soak (tests/soak/run): relays a loopback address to a lab
Postfix listener and, on command, misbehaves the way real MX hosts do (RFC 5321 4.2 reply codes):
refuses connections, answers 421 at the greeting, 451 at MAIL, at RCPT or after DATA's final dot,
or stops reading in the middle of the message content (then drops the connection).

    p = FaultProxy(("127.A.B.50", port), ("127.A.B.35", port), smtp=True).start()
    p.set_mode("rcpt451")      # new connections get the fault; "pass" ends it
    p.stop()

smtp=True parses the plaintext dialogue (the upstream must not offer STARTTLS): it hides PIPELINING
and CHUNKING from the EHLO reply, so the client waits for each reply and an injected one never
overtakes the server's. smtp=False relays bytes untouched (a TLS upstream): only "down", "greet421"
and "stall" (after STALL_AFTER bytes from the client, i.e. inside a large message) apply there.
Loopback addresses only; the lab's stdlib-only style."""
from __future__ import annotations

import ipaddress
import re
import socket
import threading

MODES = ("pass", "down", "greet421", "mail451", "rcpt451", "data451", "stall")
STALL_AFTER = 8 * 1024
_HIDE = re.compile(rb"^(250[- ])(PIPELINING|CHUNKING)(?=\s|$)", re.I)


def _loopback(address: str) -> None:
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"faultproxy: {address} is not a loopback address")


def _shut(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Conn:
    def __init__(self, proxy: "FaultProxy", client: socket.socket, mode: str):
        self.proxy, self.client, self.mode = proxy, client, mode
        self.upstream: socket.socket | None = None
        self.state = "cmd"        # "cmd" | "wait354" | "data"
        self.buf = b""
        self.sent = 0              # client bytes relayed
        self.lock = threading.Lock()

    def close(self) -> None:
        for s in (self.client, self.upstream):
            if s is not None:
                _shut(s)

    def to_client(self, data: bytes) -> None:
        try:
            self.client.sendall(data)
        except OSError:
            pass

    def stall_if_due(self) -> bool:
        """In stall mode, once STALL_AFTER bytes went through: stop reading until the fault ends,
        then drop the connection (returns True: the caller stops relaying)."""
        if self.mode != "stall" or self.sent < STALL_AFTER:
            return False
        self.proxy.stalls += 1
        self.proxy.unstalled.wait()
        return True

    def run(self) -> None:
        p = self.proxy
        try:
            if self.mode == "greet421":
                self.to_client(b"421 4.3.2 soak fault: service not available, closing channel\r\n")
                return
            try:
                self.upstream = socket.create_connection(p.upstream, timeout=10)
                self.upstream.settimeout(None)
            except OSError:
                return
            t = threading.Thread(target=self.pump_server, daemon=True)
            t.start()
            self.pump_client()
            t.join(30)
        finally:
            self.close()
            for s in (self.client, self.upstream):
                if s is not None:
                    s.close()
            p._done(self)

    # client -> server
    def pump_client(self) -> None:
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    return
                if not self.proxy.smtp:
                    self.upstream.sendall(data)
                    self.sent += len(data)
                    if self.stall_if_due():
                        return
                    continue
                self.buf += data
                while b"\n" in self.buf:
                    eol = self.buf.index(b"\n")
                    line, self.buf = self.buf[: eol + 1], self.buf[eol + 1:]
                    if not self.client_line(line):
                        return
        except OSError:
            return
        finally:
            if self.upstream is not None:
                try:
                    self.upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def client_line(self, line: bytes) -> bool:
        """One line from the client; False ends the connection."""
        if self.state == "data":
            if line.rstrip(b"\r\n") == b".":
                self.state = "cmd"
                if self.mode == "data451":
                    self.proxy.injected += 1
                    self.to_client(b"451 4.3.0 soak fault: message not accepted, try again later\r\n")
                    return False  # Postfix never sees the end: it discards the incomplete message
            self.upstream.sendall(line)
            self.sent += len(line)
            return not self.stall_if_due()
        verb = line.strip().split(b" ", 1)[0].upper()
        if (verb == b"MAIL" and self.mode == "mail451") or (verb == b"RCPT" and self.mode == "rcpt451"):
            self.proxy.injected += 1
            self.to_client(b"451 4.3.0 soak fault: temporary failure at " + verb + b"\r\n")
            return True
        if verb == b"DATA":
            with self.lock:
                self.state = "wait354"
        self.upstream.sendall(line)
        return True

    # server -> client
    def pump_server(self) -> None:
        buf = b""
        try:
            while True:
                data = self.upstream.recv(65536)
                if not data:
                    return
                if not self.proxy.smtp:
                    self.to_client(data)
                    continue
                buf += data
                while b"\n" in buf:
                    eol = buf.index(b"\n")
                    line, buf = buf[: eol + 1], buf[eol + 1:]
                    line = _HIDE.sub(lambda m: m.group(1) + b"X" * len(m.group(2)), line, count=1)
                    with self.lock:
                        if self.state == "wait354":
                            # set before the 354 reaches the client: its next bytes are content
                            self.state = "data" if line.startswith(b"354") else "cmd"
                    self.to_client(line)
        except OSError:
            return
        finally:
            _shut(self.client)


class FaultProxy:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], smtp: bool = True):
        _loopback(listen[0])
        _loopback(upstream[0])
        self.listen, self.upstream, self.smtp = listen, upstream, smtp
        self.mode = "pass"
        self.connections = 0
        self.injected = 0         # 4xx replies given by the proxy
        self.stalls = 0
        self.refused_windows = 0
        self.unstalled = threading.Event()
        self.unstalled.set()
        self._lock = threading.Lock()
        self._conns: set[_Conn] = set()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._accepter: threading.Thread | None = None

    def start(self) -> "FaultProxy":
        self._stop.clear()
        self._listen()
        return self

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET6 if ":" in self.listen[0] else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(self.listen)
        s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        self._accepter = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        self._accepter.start()

    def _unlisten(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            self._accepter.join(5)
            sock.close()

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self._stop.is_set() and self._sock is sock:
            try:
                c, _ = sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            with self._lock:
                conn = _Conn(self, c, self.mode)
                self._conns.add(conn)
                self.connections += 1
            threading.Thread(target=conn.run, daemon=True).start()

    def _done(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)

    def set_mode(self, mode: str) -> None:
        """New connections get mode; "down" closes the listening socket (connection refused);
        leaving "stall" lets stalled connections go (they are dropped, never resumed: a stalled
        message must not reach Postfix after mailward gave up on it)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "pass" and (not self.smtp and mode in ("mail451", "rcpt451", "data451")):
            raise ValueError(f"{mode} needs smtp=True (a plaintext upstream)")
        with self._lock:
            old, self.mode = self.mode, mode
        if mode == "stall":
            self.unstalled.clear()
        elif old == "stall":
            self.unstalled.set()
        if mode == "down" and old != "down":
            self.refused_windows += 1
            self._unlisten()
            with self._lock:
                conns = list(self._conns)
            for c in conns:
                c.close()
        elif old == "down" and mode != "down":
            self._listen()

    def stop(self) -> None:
        self._stop.set()
        self.unstalled.set()
        self._unlisten()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
