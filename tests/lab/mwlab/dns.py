"""Authoritative test DNS for the lab: knotd on 127.0.0.1:<free port> serving unsigned zones and zones
pre-signed with ldns-keygen + ldns-signzone (ECDSAP256SHA256, NSEC), each signed zone its own island
of trust. trust_anchor_file() lists the DS of every signed zone, in zone-file format as unbound's
trust-anchor-file / libunbound's ub_ctx_add_ta_file read it.

Zones can be made bogus on purpose ("signature", "signature:TYPE", "expired", "anchor", "stripped"), and BlackHoleDns is
a loopback port that swallows queries without answering (DNS timeout tests).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from . import dnswire
from .util import LabError, free_port, require_loopback, run, spawn, stop_pid, tail, wait_until

RecordSpec = Union[str, Sequence[tuple[str, str, str]]]

BOGUS_KINDS = ("signature", "expired", "anchor", "stripped")


@dataclass
class Zone:
    name: str                 # fully qualified, lower case, with trailing dot
    records: RecordSpec
    signed: bool
    bogus: Optional[str]
    ttl: int
    serial: int = 0
    ksk: Optional[str] = None  # key file base names (K<name>+013+<id>) in the zone's key dir
    zsk: Optional[str] = None
    ds: list[str] = field(default_factory=list)  # DS lines that go into the trust anchor file


class DnsServer:
    """knotd serving the zones added with add_zone(); start()/stop() by PID, `port` chosen at init."""

    def __init__(self, tmpdir: Path | str, address: str = "127.0.0.1", port: Optional[int] = None):
        self.address = require_loopback(address)
        self.dir = Path(tmpdir) / "dns"
        for sub in ("zones", "keys", "db", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.port = port or free_port([self.address], udp=True)
        self.zones: dict[str, Zone] = {}
        self.conf = self.dir / "knot.conf"
        self.log_path = self.dir / "knot.log"
        self._proc: Optional[subprocess.Popen] = None
        self._serial = int(time.time())

    # -- zones --------------------------------------------------------------------------------

    def add_zone(self, name: str, records: RecordSpec = (), signed: bool = False,
                 bogus: Optional[str] = None, ttl: int = 60) -> Zone:
        """Adds (or replaces) a zone. records: (owner, type, rdata) tuples - owner "@", relative or
        absolute with a trailing dot - or zone-file text relative to the zone's $ORIGIN. SOA, NS and an
        A record for ns.<zone> (127.0.0.1) are added unless given.

        bogus (implies signed): "signature" - every RRSIG except the DNSKEY set's is corrupted;
        "signature:TYPE" (e.g. "signature:AAAA") - only the RRSIGs covering TYPE are corrupted, so
        that type's answers are bogus and every other answer of the zone stays secure;
        "expired" - signatures expired three days ago; "anchor" - the trust anchor file holds the DS of an
        unrelated key; "stripped" - the zone is served unsigned while its DS is in the anchor file.
        If the server runs, the zone is loaded at once (reload).
        """
        if bogus is not None and bogus not in BOGUS_KINDS and not re.fullmatch(r"signature:[A-Z0-9]+", bogus):
            raise ValueError(f"bogus must be one of {BOGUS_KINDS}, got {bogus!r}")
        fq = name.lower().rstrip(".") + "."
        zone = Zone(fq, records, signed or bogus is not None, bogus, ttl)
        old = self.zones.get(fq)
        if old and old.signed and zone.signed:  # keep the keys, so anchors handed out stay valid
            zone.ksk, zone.zsk, zone.ds = old.ksk, old.zsk, old.ds
        self.zones[fq] = zone
        self._build(zone)
        if self.running:
            self._write_conf()
            self._knotc("reload")
            self._wait_zones([zone])
        return zone

    def set_records(self, name: str, records: RecordSpec) -> Zone:
        """Replaces the records of an existing zone (same signing, same keys), reloading it if running."""
        z = self.zones[name.lower().rstrip(".") + "."]
        return self.add_zone(z.name, records, signed=z.signed, bogus=z.bogus, ttl=z.ttl)

    def trust_anchor_file(self, kind: str = "DS") -> Path:
        """Writes and returns a file with the DS (kind="DS") or KSK DNSKEY (kind="DNSKEY") records of
        every signed zone; zones not in it resolve as insecure. An empty file if nothing is signed."""
        lines = []
        for z in self.zones.values():
            if not z.signed:
                continue
            if kind == "DS":
                lines += z.ds
            elif kind == "DNSKEY":
                key = self._keydir(z) / f"{z.ksk}.key"
                if z.bogus == "anchor":
                    key = self._keydir(z) / f"{self._other_key(z)}.key"
                lines += [l for l in key.read_text().splitlines() if "DNSKEY" in l]
            else:
                raise ValueError("kind must be DS or DNSKEY")
        path = self.dir / f"trust-anchors.{kind.lower()}"
        path.write_text("\n".join(lines) + "\n")
        return path

    # -- process ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc else None

    @property
    def server(self) -> str:
        """"127.0.0.1:PORT" as mailward's [dns] servers wants it."""
        return f"{self.address}:{self.port}"

    def start(self, timeout: float = 20) -> None:
        """Starts knotd in the foreground (a child of this process) and waits until every zone answers."""
        if self.running:
            return
        self._write_conf()
        run(["knotc", "-c", str(self.conf), "conf-check"], what="knotc conf-check")
        self._proc = spawn(["knotd", "-c", str(self.conf)], self.dir / "knotd.out")
        try:
            self._wait_zones(list(self.zones.values()), timeout)
        except LabError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops knotd by PID (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is not None:
            stop_pid(self._proc.pid)
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None

    def freeze(self) -> None:
        """SIGSTOPs knotd: queries now time out instead of being refused, until thaw()."""
        if self.running:
            os.kill(self._proc.pid, signal.SIGSTOP)
            # The signal is asynchronous: a knotd thread busy on another CPU could still answer a
            # query sent right after kill(). Wait until every thread shows as stopped ("T").
            deadline = time.time() + 5
            while time.time() < deadline:
                states = []
                for tid in os.listdir("/proc/%d/task" % self._proc.pid):
                    with open("/proc/%d/task/%s/stat" % (self._proc.pid, tid)) as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                if all(st in ("T", "t") for st in states):
                    return
                time.sleep(0.01)

    def thaw(self) -> None:
        if self.running:
            os.kill(self._proc.pid, signal.SIGCONT)

    def log(self) -> str:
        """knotd's log so far."""
        return "\n".join(tail(p, 10_000) for p in (self.log_path, self.dir / "knotd.out") if p.exists())

    def query(self, name: str, qtype: str, **kw) -> dnswire.Response:
        """One query straight to this server (no validation): dnswire.Response."""
        return dnswire.query(self.address, self.port, name, qtype, **kw)

    def __enter__(self) -> "DnsServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _keydir(self, z: Zone) -> Path:
        return self.dir / "keys" / z.name.rstrip(".")

    def _zone_text(self, z: Zone) -> str:
        self._serial += 1
        z.serial = self._serial
        body = z.records if isinstance(z.records, str) else "\n".join(
            f"{o}\t{t.upper()}\t{r}" for o, t, r in z.records)
        has = lambda t: re.search(rf"(?im)^\S*\s+(\d+\s+)?(IN\s+)?{t}\s", body) is not None
        head = [f"$ORIGIN {z.name}", f"$TTL {z.ttl}"]
        if not has("SOA"):
            head.append(f"@\tSOA\tns.{z.name} hostmaster.{z.name} {z.serial} 3600 600 86400 {z.ttl}")
        if not has("NS"):
            head.append(f"@\tNS\tns.{z.name}")
            if not re.search(r"(?im)^ns\s", body):
                head.append("ns\tA\t127.0.0.1")
        return "\n".join(head) + "\n" + body + "\n"

    def _keygen(self, z: Zone, ksk: bool) -> str:
        cmd = ["ldns-keygen", "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [z.name]
        return run(cmd, cwd=self._keydir(z), what=f"ldns-keygen {z.name}").stdout.strip()

    def _other_key(self, z: Zone) -> str:
        marker = self._keydir(z) / "unrelated-ksk"
        if not marker.exists():
            marker.write_text(self._keygen(z, ksk=True))
        return marker.read_text().strip()

    def _build(self, z: Zone) -> None:
        """Writes the zone file knot serves: plain, or signed (and maybe broken) with the zone's keys."""
        text = self._zone_text(z)
        served = self.dir / "zones" / f"{z.name.rstrip('.')}.zone"
        if not z.signed or z.bogus == "stripped":
            served.write_text(text)
        if not z.signed:
            return
        kd = self._keydir(z)
        kd.mkdir(parents=True, exist_ok=True)
        if z.ksk is None:
            z.ksk, z.zsk = self._keygen(z, True), self._keygen(z, False)
        anchor_key = self._other_key(z) if z.bogus == "anchor" else z.ksk
        ds = run(["ldns-key2ds", "-n", "-2", f"{anchor_key}.key"], cwd=kd, what="ldns-key2ds").stdout
        z.ds = [l for l in ds.splitlines() if "\tDS\t" in l or " DS " in l]
        if z.bogus == "stripped":
            return
        unsigned = kd / "unsigned.zone"
        unsigned.write_text(text)
        now = int(time.time())
        # Expired three days ago: validators allow a clock skew of up to a day (unbound's
        # val-sig-skew-max), so a signature that expired exactly a day ago was still accepted when
        # the query came in the second the zone was signed.
        incep, expire = (now - 30 * 86400, now - 3 * 86400) if z.bogus == "expired" else \
            (now - 3600, now + 30 * 86400)
        run(["ldns-signzone", "-o", z.name, "-i", str(incep), "-e", str(expire), "-f", str(served),
             str(unsigned), z.ksk, z.zsk], cwd=kd, what=f"ldns-signzone {z.name}")
        if z.bogus == "signature":
            served.write_text(_corrupt_signatures(served.read_text()))
        elif z.bogus and z.bogus.startswith("signature:"):
            served.write_text(_corrupt_signatures(served.read_text(), only=z.bogus.split(":", 1)[1]))

    def _write_conf(self) -> None:
        d = self.dir
        zones = "".join(f"  - domain: {n}\n    file: {d / 'zones' / (n.rstrip('.') + '.zone')}\n"
                        for n in self.zones)
        self.conf.write_text(f"""\
server:
    rundir: {d / 'run'}
    pidfile: {d / 'run' / 'knot.pid'}
    listen: {self.address}@{self.port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: {self.log_path}
    any: info
database:
    storage: {d / 'db'}
control:
    listen: knot.sock  # relative to rundir: keeps the socket path short
template:
  - id: default
    storage: {d / 'zones'}
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{zones if zones else '  []'}
""")

    def _knotc(self, *args: str) -> None:
        run(["knotc", "-c", str(self.conf), *args], what=f"knotc {' '.join(args)}")

    def _wait_zones(self, zones: list[Zone], timeout: float = 20) -> None:
        def ready() -> bool:
            if not self.running:
                raise LabError(f"knotd exited (code {self._proc.returncode if self._proc else '?'}); "
                               f"log:\n{self.log()[-4000:]}")
            for z in zones:
                try:
                    r = self.query(z.name, "SOA", rd=False, timeout=0.5)
                except (OSError, ValueError):
                    return False
                if r.rcode != "NOERROR" or not r.aa or r.texts("SOA") != [str(z.serial)]:
                    return False
            return True
        wait_until(ready, timeout, f"knotd on {self.server} to serve {[z.name for z in zones]}",
                   on_timeout=lambda: "knot log:\n" + self.log()[-4000:])


def _corrupt_signatures(text: str, only: Optional[str] = None) -> str:
    """Flips one base64 character in every RRSIG that does not cover DNSKEY (stays valid base64);
    with only, in the RRSIGs covering that type alone."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) > 12 and f[3] == "RRSIG" and f[4] != "DNSKEY" and (only is None or f[4] == only):
            sig = f[-1]
            i = len(sig) // 2
            f[-1] = sig[:i] + ("B" if sig[i] != "B" else "C") + sig[i + 1:]
            line = "\t".join(f)
        out.append(line)
    return "\n".join(out) + "\n"


class BlackHoleDns:
    """A loopback UDP+TCP port that accepts queries and never answers: resolvers time out on it."""

    def __init__(self, address: str = "127.0.0.1", port: Optional[int] = None):
        self.address = require_loopback(address)
        self.port = port or free_port([address], udp=True)
        self._socks: list[socket.socket] = []

    @property
    def server(self) -> str:
        return f"{self.address}:{self.port}"

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        u = socket.socket(family, socket.SOCK_DGRAM)
        u.bind((self.address, self.port))
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((self.address, self.port))
        t.listen(64)
        self._socks = [u, t]

    def stop(self) -> None:
        for s in self._socks:
            s.close()
        self._socks = []

    def __enter__(self) -> "BlackHoleDns":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
