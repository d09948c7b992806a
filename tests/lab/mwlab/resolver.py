"""A private validating unbound on loopback, configured the way mailward configures libunbound: every
query forwarded to the lab DNS, `local-zone: "test." nodefault`, the lab's trust anchor file and no root
anchor. Tests (and the lab's selftest) ask it to see what mailward's resolver will see: AD set for
secure answers, no AD for insecure ones, SERVFAIL for bogus ones (with the reason in its log).
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterable, Optional

from . import dnswire
from .util import LabError, free_port, run, spawn, stop_pid, tail, wait_until


class ValidatingResolver:
    """unbound -d on 127.0.0.1:<free port> forwarding to `servers` ("IP:PORT" strings)."""

    def __init__(self, tmpdir: Path | str, servers: Iterable[str], trust_anchor_file: Optional[Path | str]):
        self.dir = Path(tmpdir) / f"unbound-{free_port()}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.servers = list(servers)
        self.trust_anchor_file = trust_anchor_file
        self.port = free_port(udp=True)
        self.conf = self.dir / "unbound.conf"
        self.log_path = self.dir / "unbound.log"
        self._proc: Optional[subprocess.Popen] = None

    def _write_conf(self) -> None:
        fwd = "".join(f"    forward-addr: {s.rsplit(':', 1)[0]}@{s.rsplit(':', 1)[1]}\n" for s in self.servers)
        ta = f'    trust-anchor-file: "{self.trust_anchor_file}"\n' if self.trust_anchor_file else ""
        self.conf.write_text(f"""\
server:
    interface: 127.0.0.1@{self.port}
    port: {self.port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{self.dir}"
    pidfile: "{self.dir / 'unbound.pid'}"
    logfile: "{self.log_path}"
    use-syslog: no
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    module-config: "validator iterator"
    local-zone: "test." nodefault
    msg-cache-size: 1m
    rrset-cache-size: 1m
    num-threads: 1
{ta}remote-control:
    control-enable: no
forward-zone:
    name: "."
{fwd}""")

    def start(self, timeout: float = 15) -> None:
        self._write_conf()
        run(["unbound-checkconf", str(self.conf)], what="unbound-checkconf")
        self._proc = spawn(["unbound", "-d", "-c", str(self.conf)], self.dir / "stderr")

        def up() -> bool:
            if self._proc.poll() is not None:
                raise LabError(f"unbound exited ({self._proc.returncode}):\n{self.log()}")
            try:
                dnswire.query("127.0.0.1", self.port, "localhost.", "A", timeout=0.3)
                return True
            except OSError:
                return False
        try:
            wait_until(up, timeout, f"unbound on 127.0.0.1:{self.port}", on_timeout=self.log)
        except LabError:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc is not None:
            stop_pid(self._proc.pid)
            self._proc.wait(timeout=5)
            self._proc = None

    def log(self) -> str:
        return tail(self.log_path, 200) + "\n" + tail(self.dir / "stderr", 50)

    def query(self, name: str, qtype: str, timeout: float = 5.0) -> dnswire.Response:
        """A recursive query with the DO bit: .ad tells secure, .rcode SERVFAIL tells bogus."""
        return dnswire.query("127.0.0.1", self.port, name, qtype, dnssec=True, timeout=timeout)

    def __enter__(self) -> "ValidatingResolver":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
