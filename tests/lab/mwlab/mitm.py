"""The lab's attacker in the middle: a TCP proxy on a loopback address that relays SMTP to an upstream
MX (a lab Postfix listener) and can downgrade STARTTLS, as stripping devices seen in the wild do.

    mitm = Mitm(("127.A.B.40", port), ("127.A.B.30", port)).start()
    mitm.set_mode("strip")         # or "passthrough", "reply454"; cuts open connections
    assert b"secret" not in mitm.cleartext_from_client()
    mitm.stop()

Modes (each connection keeps the mode it was accepted in):
- passthrough: plain byte relay; after STARTTLS and its 220 the TLS bytes are relayed untouched.
- strip: every "250-STARTTLS" / "250 STARTTLS" line of the server's replies becomes "250-XXXXXXXA"
  (same length); a STARTTLS sent anyway is answered "502 5.5.1 Unrecognized command" by the proxy.
- reply454: STARTTLS is answered "454 4.7.0 TLS not available due to temporary reason" by the proxy.
Every byte the client sends before TLS starts is kept (per connection), so a test can prove that a
message body never crossed the wire in the clear. Trusts nothing it relays; loopback addresses only.
"""
from __future__ import annotations

import collections
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Optional

from .util import LabError, require_loopback

MODES = ("passthrough", "strip", "reply454")
REPLY_502 = b"502 5.5.1 Unrecognized command\r\n"
REPLY_454 = b"454 4.7.0 TLS not available due to temporary reason\r\n"
_STARTTLS_LINE = re.compile(rb"^(250[- ])(STARTTLS)(?=\s|$)", re.I)
_MAX_LINE = 1 << 20  # a "line" longer than this is relayed as is (no SMTP peer sends one)


@dataclass
class MitmConnection:
    """One client connection through the proxy."""
    number: int
    mode: str
    peer: str
    cleartext: bytearray = field(default_factory=bytearray)  # client -> server, before TLS
    tls: bool = False             # STARTTLS answered 220: the rest is TLS (relayed untouched)
    events: list[str] = field(default_factory=list)
    closed: bool = False


class _Session:
    """Relays one connection: two pump threads, a tiny SMTP command/reply tracker for the plaintext
    phase (which reply answers which command, where DATA starts and ends)."""

    def __init__(self, proxy: "Mitm", client: socket.socket, upstream: socket.socket, info: MitmConnection):
        self.proxy, self.client, self.upstream, self.info = proxy, client, upstream, info
        self.lock = threading.Lock()
        # Replies still expected from upstream, in order: "greeting", "EHLO", "STARTTLS", "DATA", ...
        # An ("inject", bytes) entry is a reply the proxy itself gives once everything before it is answered.
        self.expected: collections.deque = collections.deque(["greeting"])
        self.client_state = "cmd"    # "cmd" | "data" (message content until <CRLF>.<CRLF>)
        self.client_buf = b""
        self.server_buf = b""

    def event(self, text: str) -> None:
        self.info.events.append(text)

    # -- client -> upstream ---------------------------------------------------------------------

    def pump_client(self) -> None:
        try:
            while True:
                data = self.client.recv(65536)
                if not data:
                    break
                with self.lock:
                    if self.info.tls:
                        out = data
                    else:
                        self.info.cleartext += data
                        out = self._client_lines(data)
                if out:
                    self.upstream.sendall(out)
        except OSError:
            pass
        finally:
            _shutdown(self.upstream, socket.SHUT_WR)

    def _client_lines(self, data: bytes) -> bytes:
        """Called with the lock held: splits the client's plaintext into lines, tracks commands,
        intercepts STARTTLS in strip/reply454 mode; returns what goes upstream."""
        self.client_buf += data
        out = bytearray()
        while True:
            eol = self.client_buf.find(b"\n")
            if eol < 0:
                if len(self.client_buf) > _MAX_LINE:
                    out += self.client_buf
                    self.client_buf = b""
                break
            line, self.client_buf = self.client_buf[: eol + 1], self.client_buf[eol + 1:]
            if self.client_state == "data":
                out += line
                if line.rstrip(b"\r\n") == b".":
                    self.client_state = "cmd"
                    self.expected.append("DATA-END")
                continue
            verb = line.strip().split(b" ", 1)[0].upper().decode("ascii", "replace")
            if verb == "STARTTLS" and self.info.mode != "passthrough":
                reply = REPLY_502 if self.info.mode == "strip" else REPLY_454
                self.event(f"answered STARTTLS itself: {reply.decode().strip()}")
                if self.expected:
                    self.expected.append(("inject", reply))
                else:
                    self._send_client(reply)
                continue
            if verb == "DATA":
                self.client_state = "data"  # the client sends content only after 354 (see _reply)
            self.expected.append(verb or "?")
            out += line
        return bytes(out)

    # -- upstream -> client ---------------------------------------------------------------------

    def pump_server(self) -> None:
        try:
            while True:
                data = self.upstream.recv(65536)
                if not data:
                    break
                with self.lock:
                    if self.info.tls:
                        self._send_client(data)
                    else:
                        self._server_lines(data)
        except OSError:
            pass
        finally:
            _shutdown(self.client, socket.SHUT_WR)

    def _server_lines(self, data: bytes) -> None:
        self.server_buf += data
        while not self.info.tls:
            eol = self.server_buf.find(b"\n")
            if eol < 0:
                if len(self.server_buf) > _MAX_LINE:
                    self._send_client(self.server_buf)
                    self.server_buf = b""
                return
            line, self.server_buf = self.server_buf[: eol + 1], self.server_buf[eol + 1:]
            if self.info.mode == "strip" and _STARTTLS_LINE.match(line):
                line = _STARTTLS_LINE.sub(lambda m: m.group(1) + b"XXXXXXXA", line, count=1)
                self.event("stripped STARTTLS from the EHLO reply")
            final = len(line.rstrip(b"\r\n")) == 3 or line[3:4] == b" "
            if final:
                self._reply(line)
            self._send_client(line)
            if final:
                self._flush_injected()
        if self.server_buf:  # after the 220 to STARTTLS: TLS bytes (none are expected this early)
            self._send_client(self.server_buf)
            self.server_buf = b""

    def _reply(self, line: bytes) -> None:
        """A final reply line from upstream: which command it answers, and what follows from it."""
        cmd = self.expected.popleft() if self.expected else "?"
        code = line[:3]
        if cmd == "DATA" and code != b"354":
            self.client_state = "cmd"  # refused: no content follows
        if cmd == "STARTTLS":
            if code == b"220":
                self.info.tls = True  # set before the 220 reaches the client: its next bytes are TLS
                self.event("STARTTLS accepted by the server: relaying TLS")
            else:
                self.event(f"STARTTLS refused by the server: {line.decode(errors='replace').strip()}")

    def _flush_injected(self) -> None:
        while self.expected and isinstance(self.expected[0], tuple):
            self._send_client(self.expected.popleft()[1])

    def _send_client(self, data: bytes) -> None:
        try:
            self.client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.info.closed = True
        for s in (self.client, self.upstream):
            _shutdown(s, socket.SHUT_RDWR)

    def run(self) -> None:
        t = threading.Thread(target=self.pump_server, name=f"mitm-s{self.info.number}", daemon=True)
        t.start()
        self.pump_client()
        t.join()
        for s in (self.client, self.upstream):
            s.close()
        self.info.closed = True
        self.proxy._done(self)


class Mitm:
    """A STARTTLS-stripping proxy in this process: start(), stop(), set_mode(), cleartext_from_client(),
    connections (count), address/port/endpoint, log()."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], mode: str = "passthrough",
                 timeout: float = 10):
        self.address = require_loopback(listen[0].strip("[]"))
        self.port = int(listen[1])
        self.upstream = (require_loopback(upstream[0].strip("[]")), int(upstream[1]))
        self.timeout = timeout
        self._check_mode(mode)
        self.mode = mode
        self._lock = threading.Lock()
        self._conns: list[MitmConnection] = []
        self._sessions: set[_Session] = set()
        self._threads: list[threading.Thread] = []
        self._sock: Optional[socket.socket] = None
        self._accepter: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def connections(self) -> int:
        """How many client connections the proxy has accepted so far."""
        with self._lock:
            return len(self._conns)

    @staticmethod
    def _check_mode(mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")

    # -- running --------------------------------------------------------------------------------

    def start(self) -> "Mitm":
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.address, self.port))
        except OSError as e:
            s.close()
            raise LabError(f"mitm: cannot listen on {self.endpoint}: {e}") from None
        s.listen(64)
        s.settimeout(0.2)
        self._sock = s
        self._stopping.clear()
        self._accepter = threading.Thread(target=self._accept_loop, name=f"mitm-{self.endpoint}", daemon=True)
        self._accepter.start()
        return self

    def stop(self) -> None:
        """Stops listening, cuts every open connection and waits for the relay threads; safe twice."""
        self._stopping.set()
        if self._accepter:
            self._accepter.join(5)
            self._accepter = None
        if self._sock:
            self._sock.close()
            self._sock = None
        self.cut()
        for t in list(self._threads):
            t.join(5)

    def __enter__(self) -> "Mitm":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_mode(self, mode: str, cut: bool = True) -> None:
        """Switches the mode for the next connections; with cut (the default) open connections are
        closed, so a connection pooled by the client before the switch cannot hide the change."""
        self._check_mode(mode)
        with self._lock:
            self.mode = mode
        if cut:
            self.cut()

    def cut(self) -> None:
        """Closes every open connection (both sides)."""
        with self._lock:
            sessions = list(self._sessions)
        for s in sessions:
            s.close()

    # -- what it saw ----------------------------------------------------------------------------

    def cleartext_from_client(self, since: int = 0) -> bytes:
        """Every byte clients sent before TLS, on connections number `since` and later (0: all)."""
        with self._lock:
            return b"".join(bytes(c.cleartext) for c in self._conns[since:])

    def connection_log(self) -> list[MitmConnection]:
        with self._lock:
            return list(self._conns)

    def log(self) -> str:
        """One line per connection and event, for humans and failure messages."""
        lines = []
        for c in self.connection_log():
            lines.append(f"mitm {self.endpoint} conn {c.number} from {c.peer} mode={c.mode} "
                         f"cleartext={len(c.cleartext)}B tls={'yes' if c.tls else 'no'}")
            lines.extend(f"    {e}" for e in c.events)
        return "\n".join(lines)

    # -- internals ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                info = MitmConnection(len(self._conns), self.mode, f"{peer[0]}:{peer[1]}")
                self._conns.append(info)
            try:
                upstream = socket.create_connection(self.upstream, timeout=self.timeout)
                upstream.settimeout(None)
            except OSError as e:
                info.events.append(f"upstream {self.upstream[0]}:{self.upstream[1]} unreachable: {e}")
                info.closed = True
                client.close()
                continue
            session = _Session(self, client, upstream, info)
            t = threading.Thread(target=session.run, name=f"mitm-c{info.number}", daemon=True)
            with self._lock:
                self._sessions.add(session)
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def _done(self, session: _Session) -> None:
        with self._lock:
            self._sessions.discard(session)


def _shutdown(s: socket.socket, how: int) -> None:
    try:
        s.shutdown(how)
    except OSError:
        pass
