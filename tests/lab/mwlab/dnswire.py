"""A minimal DNS client for the lab's own readiness checks and tests: builds one query, sends it over
UDP (or TCP) to a loopback server and parses the header flags and answer records (RFC 1035 4.1).

It trusts nothing it receives beyond bounds checks; it is not a resolver and does not validate DNSSEC.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field

from .util import require_loopback

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "DS": 43,
         "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "TLSA": 52}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


@dataclass
class Record:
    name: str
    type: str
    ttl: int
    rdata: bytes
    text: str = ""  # a readable rendering for A, AAAA, MX, CNAME, NS, TXT, SOA (serial), TLSA


@dataclass
class Response:
    rcode: str
    aa: bool
    ad: bool
    tc: bool
    answers: list[Record] = field(default_factory=list)

    def texts(self, rtype: str) -> list[str]:
        """Readable rdata of the answer records of one type."""
        return [r.text for r in self.answers if r.type == rtype]


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels, end, jumps = [], None, 0
    while True:
        if off >= len(msg):
            raise ValueError("truncated name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 50:
                raise ValueError("compression loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    return ".".join(labels) + ".", (end if end is not None else off)


def _render(msg: bytes, rtype: str, start: int, rdata: bytes) -> str:
    try:
        if rtype == "A":
            return str(ipaddress.IPv4Address(rdata))
        if rtype == "AAAA":
            return str(ipaddress.IPv6Address(rdata))
        if rtype in ("CNAME", "NS"):
            return _read_name(msg, start)[0]
        if rtype == "MX":
            return f"{struct.unpack('!H', rdata[:2])[0]} {_read_name(msg, start + 2)[0]}"
        if rtype == "SOA":
            _, o = _read_name(msg, start)
            _, o = _read_name(msg, o)
            return str(struct.unpack("!I", msg[o:o + 4])[0])
        if rtype == "TXT":
            parts, i = [], 0
            while i < len(rdata):
                parts.append(rdata[i + 1:i + 1 + rdata[i]].decode("utf-8", "replace"))
                i += 1 + rdata[i]
            return "".join(parts)
        if rtype == "TLSA":
            return f"{rdata[0]} {rdata[1]} {rdata[2]} {rdata[3:].hex()}"
    except (ValueError, IndexError, struct.error):
        return ""
    return rdata.hex()


def parse(msg: bytes) -> Response:
    """Parses a DNS response's header and answer section."""
    if len(msg) < 12:
        raise ValueError("short DNS message")
    _id, flags, qd, an, _ns, _ar = struct.unpack("!6H", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    answers = []
    for _ in range(an):
        name, off = _read_name(msg, off)
        rtype_n, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        rtype = TYPE_NAMES.get(rtype_n, f"TYPE{rtype_n}")
        answers.append(Record(name, rtype, ttl, rdata, _render(msg, rtype, off, rdata)))
        off += rdlen
    return Response(RCODES.get(flags & 0xF, str(flags & 0xF)), bool(flags & 0x0400),
                    bool(flags & 0x0020), bool(flags & 0x0200), answers)


def build_query(name: str, qtype: str, *, rd: bool = True, dnssec: bool = False) -> bytes:
    """One query message with a random ID; dnssec sets the DO bit in an EDNS0 OPT record."""
    flags = 0x0100 if rd else 0
    header = struct.pack("!6H", int.from_bytes(os.urandom(2), "big"), flags, 1, 0, 0, 1)
    question = _encode_name(name) + struct.pack("!HH", TYPES[qtype.upper()], 1)
    opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0x8000 if dnssec else 0, 0)
    return header + question + opt


def query(server: str, port: int, name: str, qtype: str, *, rd: bool = True, dnssec: bool = False,
          timeout: float = 2.0, tcp: bool = False) -> Response:
    """Sends one query to a loopback server and returns the parsed response (socket.timeout on none)."""
    require_loopback(server)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    q = build_query(name, qtype, rd=rd, dnssec=dnssec)
    if tcp:
        with socket.create_connection((server, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    raise ValueError("connection closed")
                buf += chunk
            return parse(buf[2:2 + struct.unpack("!H", buf[:2])[0]])
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, port))
        while True:
            data, _ = s.recvfrom(65535)
            if data[:2] == q[:2]:
                return parse(data)
