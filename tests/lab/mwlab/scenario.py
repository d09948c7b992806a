"""The standard lab scenario: one test CA, one knot DNS and one private Postfix MX whose listeners give
each recipient domain below a known behaviour. Integration tests and scripts/lab share it.

    lab = standard_lab(tmpdir)      # started; lab.stop() (or `with standard_lab(...) as lab:`)
    lab.mailward_config()           # {"dns": {...}, "delivery": {...}} for mailward's TOML
    lab.domains["dane.example.test"].mx[0].address
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .ca import TestCA
from .dns import DnsServer
from .postfix import Listener, PostfixMx
from .util import LabError, free_port, pick_block


@dataclass
class MxHost:
    preference: int
    host: str                      # "mx.tls.example.test"
    address: str                   # "127.A.B.10" (or "::1")
    listener: Optional[Listener]   # the Postfix listener behind it
    tls: str                       # "starttls" | "none"
    cert: str                      # "ca" | "self-signed" | "wrong-name" | "" (no TLS)


@dataclass
class LabDomain:
    name: str
    behaviour: str                 # one line for humans
    mx: list[MxHost] = field(default_factory=list)
    signed: bool = False
    bogus: Optional[str] = None
    tlsa: list[str] = field(default_factory=list)  # TLSA rdata published for each MX host

    @property
    def accepts_mail(self) -> bool:
        return bool(self.mx)


class StandardLab:
    """The running standard scenario; see standard_lab()."""

    def __init__(self, tmpdir: Path | str):
        self.tmpdir = Path(tmpdir)
        self.ca = TestCA(self.tmpdir / "ca")
        self.block = pick_block()
        self.port = free_port([f"{self.block}.10", "::1"])
        self.mx = PostfixMx(self.tmpdir, port=self.port, block=self.block)
        self.dns = DnsServer(self.tmpdir)
        self.domains: dict[str, LabDomain] = {}
        self._build()

    # -- the scenario -------------------------------------------------------------------------

    def _listener(self, n: Optional[int | str], host: str, cert: str) -> MxHost:
        if cert == "":
            l = self.mx.add_listener(n, tls="none", hostname=host, name=host.split(".")[1])
            return MxHost(10, host, l.address, l, "none", "")
        if cert == "ca":
            pair = self.ca.issue(host)
        elif cert == "self-signed":
            pair = self.ca.self_signed(host)
        elif cert == "wrong-name":
            pair = self.ca.issue("other.example.test")
        else:
            raise ValueError(cert)
        l = self.mx.add_listener(n, tls="starttls", cert=pair, hostname=host,
                                 name=host.replace(".example.test", "").replace(".", "_"))
        return MxHost(10, host, l.address, l, "starttls", cert)

    def _domain(self, name: str, behaviour: str, hosts: list[MxHost], signed: bool = False,
                bogus: Optional[str] = None, tlsa: Optional[list[str]] = None) -> None:
        records = []
        for i, h in enumerate(hosts):
            h.preference = 10 * (i + 1)
            rel = h.host[: -len(name) - 1]
            records.append(("@", "MX", f"{h.preference} {h.host}."))
            records.append((rel, "AAAA" if ":" in h.address else "A", h.address))
            for t in tlsa or []:
                # RFC 7672 names TLSA by port 25; mailward talks to [delivery] port in the lab, so both.
                for p in sorted({25, self.port}):
                    records.append((f"_{p}._tcp.{rel}", "TLSA", t))
        self.dns.add_zone(name, records, signed=signed, bogus=bogus)
        self.domains[name] = LabDomain(name, behaviour, hosts, signed or bogus is not None, bogus,
                                       list(tlsa or []))

    def _build(self) -> None:
        d = self._domain
        self.dns.add_zone("test", [])  # unsigned parent: NXDOMAIN for every other name under .test
        d("tls.example.test", "one MX, STARTTLS, certificate from the test CA naming the MX",
          [self._listener(10, "mx.tls.example.test", "ca")])
        d("notls.example.test", "one MX that does not offer STARTTLS",
          [self._listener(11, "mx.notls.example.test", "")])
        d("selfsigned.example.test", "one MX, STARTTLS with a self-signed certificate",
          [self._listener(12, "mx.selfsigned.example.test", "self-signed")])
        d("wrongname.example.test", "one MX, STARTTLS, CA certificate for other.example.test",
          [self._listener(13, "mx.wrongname.example.test", "wrong-name")])
        d("mixed.example.test", "MX 10 with STARTTLS (CA cert), MX 20 without STARTTLS",
          [self._listener(14, "mx1.mixed.example.test", "ca"),
           self._listener(15, "mx2.mixed.example.test", "")])
        dane = self._listener(16, "mx.dane.example.test", "ca")
        d("dane.example.test", "DNSSEC-signed, TLSA 3 1 1 matching the MX certificate",
          [dane], signed=True, tlsa=[f"3 1 1 {self.ca.spki_sha256(dane.listener.cert[0])}"])
        danebad = self._listener(17, "mx.danebad.example.test", "ca")
        unrelated = self.ca.issue("unrelated.example.test")[0]
        d("danebad.example.test", "DNSSEC-signed, TLSA 3 1 1 matching NO certificate the MX has",
          [danebad], signed=True, tlsa=[f"3 1 1 {self.ca.spki_sha256(unrelated)}"])
        bogus = self._listener(18, "mx.bogus.example.test", "ca")
        d("bogus.example.test", "signed, but every answer's RRSIG is broken: DNSSEC bogus (SERVFAIL)",
          [bogus], bogus="signature")
        v6 = self._listener("::1", "mx.v6.example.test", "ca")
        d("v6.example.test", "one MX with only an AAAA record (::1), STARTTLS, CA certificate", [v6])
        self.dns.add_zone("nullmx.example.test", [("@", "MX", "0 .")])
        self.domains["nullmx.example.test"] = LabDomain(
            "nullmx.example.test", "null MX (MX 0 .): accepts no mail (RFC 7505)")
        self.mx.accept_domains([n for n, dom in self.domains.items() if dom.accepts_mail])

    # -- running ------------------------------------------------------------------------------

    def start(self) -> "StandardLab":
        try:
            self.dns.start()
            self.mx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops Postfix and knotd (by PID); safe to call twice."""
        errors = []
        for peer in (self.mx, self.dns):
            try:
                peer.stop()
            except LabError as e:
                errors.append(str(e))
        if errors:
            raise LabError("; ".join(errors))

    def __enter__(self) -> "StandardLab":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- for mailward -------------------------------------------------------------------------

    def trust_anchor_file(self) -> Path:
        return self.dns.trust_anchor_file()

    def mailward_config(self) -> dict:
        """The [dns] and [delivery] settings mailward needs to deliver into this lab."""
        return {
            "dns": {"servers": [self.dns.server], "trust_anchor_file": str(self.trust_anchor_file())},
            # Every lab MX listens on 127.A.B.x: loopback, which mailward refuses unless allowed.
            "delivery": {"port": self.port, "ca_file": str(self.ca.cert_path), "allow_loopback_mx": True},
        }

    def mailward_toml(self) -> str:
        """mailward_config() as TOML text."""
        c = self.mailward_config()
        return (f'[dns]\nservers = ["{c["dns"]["servers"][0]}"]\n'
                f'trust_anchor_file = "{c["dns"]["trust_anchor_file"]}"\n\n'
                f'[delivery]\nport = {c["delivery"]["port"]}\n'
                f'ca_file = "{c["delivery"]["ca_file"]}"\n'
                f'allow_loopback_mx = true\n')

    def describe(self) -> str:
        """A table of the domains, their MX hosts, addresses and behaviours."""
        rows = []
        for dom in self.domains.values():
            rows.append(f"{dom.name:26} {dom.behaviour}")
            for h in dom.mx:
                rows.append(f"{'':26}   MX {h.preference:<3} {h.host:28} {h.address}:{self.port}")
        return "\n".join(rows)


def standard_lab(tmpdir: Path | str, start: bool = True) -> StandardLab:
    """Builds the standard scenario in tmpdir (under /tmp) and, unless start=False, starts it.
    With start=False, add zones or listeners first, then call .start()."""
    lab = StandardLab(tmpdir)
    return lab.start() if start else lab
