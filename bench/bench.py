#!/usr/bin/env python3
"""mailward vs Postfix, side by side on loopback, one table. Started by bench/run (which builds first).

Peers, all children of this process and all stopped by PID at the end (also on failure):
  sink      bench/sink on 127.A.B.10:SINK (STARTTLS with a certificate from a throwaway CA)
  knot DNS  (tests/lab/mwlab.DnsServer) publishing MX records for sink.bench.test (-> .10) and
            dead.bench.test (-> .11, where nothing listens: the "already queued" backlog)
  mailward  build/release/src/cli/mailward serve, submission on 127.A.B.20
  Postfix   a private instance (postfix -c DIR, under /tmp), smtpd on 127.A.B.21 (relay) and a second
            port that puts every message on hold (accept-only figures)
  tarpit    a listening socket that never accepts: mailward's deliveries hang there during the
            accept-only phase, so nothing is delivered and the queue only grows
  store phase (--only store): one to three mailward nodes on 127.A.B.30+i, on SQLite or on one
            private PostgreSQL 15 (tests/support/pg_instance.py, fsync ON), relaying to the sink
Only loopback addresses are used. Every load is bounded in messages and seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "lab"))
from mwlab import DnsServer, TestCA  # noqa: E402
from mwlab.util import free_port  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "support"))
from pg_instance import PgInstance, pg_bin  # noqa: E402

# BENCH_MAILWARD: another build of mailward (a before/after comparison); default the Release build
MAILWARD = Path(os.environ.get("BENCH_MAILWARD", ROOT / "build" / "release" / "src" / "cli" / "mailward"))
LOADGEN = ROOT / "build" / "bench" / "loadgen"
SINK = ROOT / "build" / "bench" / "sink"
TICK = os.sysconf("SC_CLK_TCK")
SINK_DOMAIN = "sink.bench.test"
DEAD_DOMAIN = "dead.bench.test"
PIDFILE = os.environ.get("BENCH_PIDFILE")  # bench/run's trap stops whatever is listed here


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def note_pid(kind: str, value) -> None:
    if PIDFILE:
        with open(PIDFILE, "a") as f:
            f.write(f"{kind} {value}\n")


def wait_until(pred: Callable[[], object], timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


def listening(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---- /proc accounting -------------------------------------------------------------------------

def _stat(pid: int) -> Optional[list[str]]:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on


def cpu_seconds(pid: int, children: bool = False) -> float:
    f = _stat(pid)
    if not f:
        return 0.0
    t = int(f[11]) + int(f[12])  # utime, stime (fields 14, 15)
    if children:
        t += int(f[13]) + int(f[14])  # cutime, cstime: children already reaped
    return t / TICK


def tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            f = _stat(int(e))
            if f:
                kids.setdefault(int(f[1]), []).append(int(e))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Samples the summed VmRSS of each peer's process tree every 0.5 s while enabled; keeps the max."""

    def __init__(self, peers: dict[str, Callable[[], list[int]]]):
        super().__init__(daemon=True)
        self.peers = peers
        self.peak = {k: 0 for k in peers}
        self.enabled = False
        self.done = False

    def run(self) -> None:
        while not self.done:
            if self.enabled:
                for k, pids in self.peers.items():
                    try:
                        s = sum(status_kb(p, "VmRSS") for p in pids())
                    except Exception:  # a peer restarting between phases
                        s = 0
                    self.peak[k] = max(self.peak[k], s)
            time.sleep(0.5)


# ---- peers ------------------------------------------------------------------------------------

class Child:
    """A foreground child process, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, kind: str, cmd: list[str], out: Path, cwd: Optional[Path] = None):
        self.kind = kind
        self.out = out
        self.fh = open(out, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.fh, stderr=subprocess.STDOUT,
                                     cwd=cwd, start_new_session=True)
        note_pid(kind, self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.fh.close()


class Tarpit:
    """A listening socket that is never accepted from: connections complete and then hear nothing."""

    def __init__(self, addr: str, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(1024)

    def close(self) -> None:
        self.sock.close()


class Sink:
    def __init__(self, work: Path, addr: str, port: int, cert: Path, key: Path):
        self.stats_path = work / "sink-stats.json"
        self.addr, self.port = addr, port
        self.child = Child("sink", [str(SINK), "--listen", f"{addr}:{port}", "--cert", str(cert), "--key", str(key),
                                    "--stats", str(self.stats_path), "--stats-interval", "20"], work / "sink.out")
        wait_until(lambda: listening(addr, port) and self.stats_path.exists(), 10, "the sink to listen")

    def stats(self) -> dict:
        for _ in range(50):
            try:
                return json.loads(self.stats_path.read_text())
            except (OSError, ValueError):
                time.sleep(0.01)
        raise RuntimeError("cannot read the sink's stats file")

    def wait_messages(self, n: int, timeout: float) -> dict:
        return wait_until(lambda: (s := self.stats())["messages"] >= n and s, timeout,
                          f"{n} messages at the sink", step=0.02)

    def cpu(self) -> float:
        return cpu_seconds(self.child.pid)


class Mailward:
    name = "mailward"

    def __init__(self, work: Path, addr: str, port: int, common: dict, node: str = ""):
        self.work, self.addr, self.port, self.common, self.node = work, addr, port, common, node
        self.child: Optional[Child] = None
        self.n = 0

    def start(self, mode: str, delivery_port: int, store: str = "", per_destination: int = 0) -> None:
        """mode "accept": deliveries go to the tarpit (nothing leaves); "relay": to the sink.
        store: extra TOML ([store] etc.) for the store phase; per_destination: overrides the common one."""
        self.n += 1
        c = self.common
        d = self.work / f"mailward{self.node and '-' + self.node}-{self.n}-{mode}"
        d.mkdir(parents=True)
        per_dest = per_destination or (c['per_destination'] if mode == 'relay' else c['max_concurrency'])
        retry = '["1h"]'
        greeting = '"1h"' if mode == "accept" else '"5m"'
        cfg = f"""[server]
hostname = "mailward.bench.test"
data_dir = "{d}/data"
log_level = "{c['log_level']}"

[submission]
listen = ["{self.addr}:{self.port}"]
cert = "{c['cert']}"
key = "{c['key']}"
max_connections = {c['max_connections']}
max_connections_per_ip = {c['max_connections']}

[dns]
servers = ["{c['dns']}"]
trust_anchor_file = "{c['anchor']}"

[delivery]
port = {delivery_port}
ca_file = "{c['ca']}"
retry_schedule = {retry}
max_concurrency = {c['max_concurrency']}
max_per_destination = {per_dest}
greeting_timeout = {greeting}
allow_loopback_mx = true

[policy.domains]
"{SINK_DOMAIN}" = "encrypt"
"{DEAD_DOMAIN}" = "encrypt"
""" + store
        (d / "mailward.toml").write_text(cfg)
        self.data = d / "data"
        self.child = Child("mailward", [str(MAILWARD), "serve", "-c", str(d / "mailward.toml")], d / "mailward.log", cwd=d)
        try:
            wait_until(lambda: listening(self.addr, self.port) or not self.child.alive(), 30, "mailward to listen")
        except RuntimeError:
            pass
        if not self.child.alive():
            raise RuntimeError(f"mailward did not start:\n{(d / 'mailward.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.child:
            self.child.stop()
            self.child = None

    def pids(self) -> list[int]:
        # serve and its children (key holder, portal, submission): the work is spread over them.
        return tree(self.child.pid) if self.child and self.child.alive() else []

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def rss_kb(self) -> int:
        return sum(status_kb(p, "VmRSS") for p in self.pids())

    def pss_kb(self) -> int:
        return sum(pss_kb(p) for p in self.pids())

    def hwm_kb(self) -> int:
        return sum(status_kb(p, "VmHWM") for p in self.pids())

    def db(self) -> Path:
        for p in sorted(self.data.rglob("*")):
            if p.is_file() and p.suffix in (".db", ".sqlite", ".sqlite3"):
                return p
        raise RuntimeError(f"no SQLite database under {self.data}")

    def unattempted(self, domain: str) -> int:
        con = sqlite3.connect(f"file:{self.db()}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute("SELECT count(*) FROM recipients WHERE domain = ? AND state = 'queued'"
                               " AND attempts = 0", (domain,)).fetchone()[0]
        finally:
            con.close()


POSTFIX_SERVICES = """\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    name = "Postfix"

    def __init__(self, work: Path, addr: str, port: int, hold_port: int, sink: str, dead: str, common: dict):
        self.dir = work / "postfix"
        self.etc, self.queue, self.data, self.logdir = (self.dir / s for s in ("etc", "spool", "data", "log"))
        for p in (self.dir, self.etc, self.queue, self.data, self.logdir):
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.addr, self.port, self.hold_port = addr, port, hold_port
        (self.etc / "transport").write_text(f"{SINK_DOMAIN}\tsmtp:[{sink.split(':')[0]}]:{sink.split(':')[1]}\n"
                                            f"{DEAD_DOMAIN}\tsmtp:[{dead.split(':')[0]}]:{dead.split(':')[1]}\n")
        conc = common["per_destination"]
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.logdir / "postfix.log",
            "maillog_file_prefixes": self.logdir,
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "local_recipient_maps": "",
            "alias_maps": "", "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "transport_maps": f"texthash:{self.etc}/transport",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            # in_flow_delay throttles accepts to the delivery rate; off, as mailward has no such throttle
            "in_flow_delay": "0",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_chain_files": f"{common['key']}, {common['cert']}",
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_CAfile": common["ca"],
            "smtp_tls_connection_reuse": "yes",
            "smtp_tls_session_cache_database": "btree:${data_directory}/smtp_scache",
            "smtp_connection_cache_destinations": "static:all",
            "smtp_connection_cache_on_demand": "yes",
            "default_destination_concurrency_limit": str(conc),
            "initial_destination_concurrency": str(conc),
            "default_process_limit": str(max(100, common["max_concurrency"])),
            "default_destination_recipient_limit": "50",
            "delay_warning_time": "0",
        }
        (self.etc / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        self.smtpd_limit = max(300, common["idle_postfix"] + 100)
        hold = "{smtpd_end_of_data_restrictions = check_client_access static:HOLD}"
        master = POSTFIX_SERVICES + (
            f"{addr}:{port} inet n - n - {self.smtpd_limit} smtpd\n"
            f"{addr}:{hold_port} inet n - n - {self.smtpd_limit} smtpd\n  -o {hold}\n")
        (self.etc / "master.cf").write_text(master)
        note_pid("postfix", self.etc)
        env = dict(os.environ, MAIL_CONFIG=str(self.etc))
        self.env = env
        cp = subprocess.run(["script", "-qec", f"postfix -c {self.etc} start", "/dev/null"], env=env,
                            capture_output=True, text=True, timeout=120)
        try:
            wait_until(lambda: listening(addr, port) and listening(addr, hold_port), 30, "postfix to listen")
        except RuntimeError:
            raise RuntimeError(f"postfix did not start: {cp.stdout}\n{self.log()[-3000:]}")

    def log(self) -> str:
        p = self.logdir / "postfix.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def master(self) -> Optional[int]:
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> list[int]:
        m = self.master()
        return tree(m) if m else []

    def cpu(self) -> float:
        m = self.master()
        if not m:
            return 0.0
        return sum(cpu_seconds(p, children=(p == m)) for p in tree(m))

    def rss_kb(self) -> int:
        return sum(status_kb(p, "VmRSS") for p in self.pids())

    def pss_kb(self) -> int:
        return sum(pss_kb(p) for p in self.pids())

    def queue_count(self, *queues: str) -> int:
        n = 0
        for q in queues:
            for _root, _dirs, files in os.walk(self.queue / q):
                n += len(files)
        return n

    def clear(self) -> None:
        subprocess.run(["postsuper", "-c", str(self.etc), "-d", "ALL"], env=self.env, capture_output=True, timeout=300)

    def stop(self) -> None:
        m = self.master()
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], env=self.env, capture_output=True, timeout=60)
        deadline = time.monotonic() + 20
        while m and Path(f"/proc/{m}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for p in (tree(m) if m and Path(f"/proc/{m}").exists() else []):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


# ---- load ---------------------------------------------------------------------------------------

def loadgen(server: str, out: Path, **kw) -> dict:
    args = [str(LOADGEN), "--server", server, "--json", str(out)]
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            args.append(flag)
        elif v not in (None, False):
            args += [flag, str(v)]
    t = float(kw.get("timeout", 300)) + 30
    cp = subprocess.run(args, capture_output=True, text=True, timeout=t)
    try:
        r = json.loads(out.read_text())
    except (OSError, ValueError):
        raise RuntimeError(f"loadgen gave no result: {cp.stderr}")
    r["exit"] = cp.returncode
    return r


class Bench:
    def __init__(self, a: argparse.Namespace, work: Path):
        self.a = a
        self.work = work
        self.results: dict[str, dict[str, list[float]]] = {"mailward": {}, "Postfix": {}}
        self.notes: list[str] = []
        self.seq = 0
        self.pss_peak: dict[str, int] = {}

    def record(self, who: str, metric: str, value: float) -> None:
        self.results[who].setdefault(metric, []).append(value)
        log(f"  {who:8s} {metric}: {value:.4g}")

    def out(self, tag: str) -> Path:
        self.seq += 1
        return self.work / f"loadgen-{self.seq:03d}-{tag}.json"

    # Accept-only: messages are stored durably and go nowhere.
    def accept(self, who, server: str) -> float:
        a = self.a
        cpu0 = who.cpu()
        r = loadgen(server, self.out(f"{who.name}-accept"), sessions=a.accept_sessions, messages=a.accept_messages,
                    size=4096, to=f"user@{SINK_DOMAIN}", timeout=300)
        cpu = who.cpu() - cpu0
        if r["exit"] != 0:
            raise RuntimeError(f"{who.name} accept run failed: {r}")
        self.record(who.name, "accept_rate", r["rate"])
        self.record(who.name, "accept_cpu_per_1000", cpu / r["sent"] * 1000)
        return r["rate"]

    def latency(self, who, server: str, peak: float) -> None:
        a = self.a
        rate = peak / 2
        n = max(200, int(rate * a.latency_seconds))
        r = loadgen(server, self.out(f"{who.name}-latency"), sessions=a.accept_sessions, messages=n, size=4096,
                    to=f"user@{SINK_DOMAIN}", rate=f"{rate:.1f}", timeout=max(60, a.latency_seconds * 4))
        if r["exit"] != 0:
            raise RuntimeError(f"{who.name} latency run failed: {r}")
        self.record(who.name, "lat_p50_ms", r["latency_ms"]["p50"])
        self.record(who.name, "lat_p99_ms", r["latency_ms"]["p99"])

    def e2e(self, who, server: str, sink: Sink, size: int, sessions: int, n: int, tag: str) -> float:
        s0 = sink.stats()
        cpu0, scpu0 = who.cpu(), sink.cpu()
        r = loadgen(server, self.out(f"{who.name}-{tag}"), sessions=sessions, messages=n, size=size,
                    to=f"user@{SINK_DOMAIN}", timeout=self.a.e2e_timeout)
        if r["sent"] != n:
            raise RuntimeError(f"{who.name} {tag}: only {r['sent']} of {n} accepted: {r}")
        s1 = sink.wait_messages(s0["messages"] + n, self.a.e2e_timeout)
        cpu, scpu = who.cpu() - cpu0, sink.cpu() - scpu0
        clear = s1["messages_by_tls"].get("none", 0) - s0["messages_by_tls"].get("none", 0)
        if clear:
            raise RuntimeError(f"{who.name} delivered {clear} messages without TLS (forced TLS broken)")
        protos = {k: v - s0["messages_by_tls"].get(k, 0) for k, v in s1["messages_by_tls"].items()}
        protos = {k: v for k, v in protos.items() if v}
        sess = s1["sessions"] - s0["sessions"]
        rate = n / (s1["last_message"] - r["start"])
        self.record(who.name, f"e2e_{tag}", rate)
        if tag == "4k_20":
            self.record(who.name, "e2e_4k_20_sink_sessions", sess)
        # PSS (shared pages divided among the processes sharing them) once per case, while every
        # delivery process of the case is still alive; the max over the cases is reported.
        self.pss_peak[who.name] = max(self.pss_peak.get(who.name, 0), who.pss_kb())
        if tag == "4k_20":
            self.record(who.name, "e2e_cpu_per_1000", cpu / n * 1000)
            self.record(who.name, "sink_cpu_per_1000", scpu / n * 1000)
            self.record(who.name, "sink_cpu_share", scpu / max(1e-9, s1["last_message"] - r["start"]))
        log(f"  {who.name:8s} {tag}: TLS {protos}, {sess} sink sessions for {n} messages")
        return rate

    def warm_up(self, who, server: str, sink: Sink, n: int) -> None:
        """A short relay run that is not recorded: the first messages through a fresh instance pay for
        process start-up, DNS, the first TLS handshakes and empty caches on both sides."""
        s0 = sink.stats()
        loadgen(server, self.out(f"{who.name}-warmup"), sessions=20, messages=n, size=4096,
                to=f"user@{SINK_DOMAIN}", timeout=self.a.e2e_timeout)
        sink.wait_messages(s0["messages"] + n, self.a.e2e_timeout)

    def idle(self, who, server: str, k: int) -> None:
        time.sleep(1)
        rss0, pss0 = who.rss_kb(), who.pss_kb()
        ready = self.work / f"idle-{who.name}.ready"
        out = self.out(f"{who.name}-idle")
        hold = max(10.0, k / 500 + 5)
        p = subprocess.Popen([str(LOADGEN), "--server", server, "--idle", str(k), "--hold", f"{hold:.0f}",
                              "--ready-file", str(ready), "--json", str(out), "--timeout", "300",
                              "--connect-parallel", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        note_pid("loadgen", p.pid)
        try:
            wait_until(lambda: ready.exists(), 300, f"{k} idle connections to {who.name}", step=0.2)
            time.sleep(2)
            rss1, pss1 = who.rss_kb(), who.pss_kb()
            est = json.loads(ready.read_text())["established"]
        finally:
            p.wait(timeout=hold + 120)
        if est < k:
            self.notes.append(f"{who.name}: only {est} of {k} idle connections established")
        self.record(who.name, "idle_conns", est)
        self.record(who.name, "idle_rss_per_conn_kb", (rss1 - rss0) / max(1, est))
        self.record(who.name, "idle_pss_per_conn_kb", (pss1 - pss0) / max(1, est))


# ---- store phase: SQLite or PostgreSQL, one to three nodes --------------------------------------

def psql(dsn: str, sql: str) -> str:
    cp = subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-F", "|", "-d", dsn, "-c", sql], capture_output=True,
                        text=True, timeout=60)
    if cp.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {cp.stderr.strip()}")
    return cp.stdout.strip()


class Postgres:
    """The store phase's private PostgreSQL 15 (tests/support/pg_instance.py) with fsync,
    full_page_writes and synchronous_commit ON, as shipped: a 250 costs a WAL flush to the disk."""

    name = "postgres"

    def __init__(self, statements: bool = False):
        settings = {"max_connections": "200", "shared_buffers": "128MB"}
        if statements:  # per-statement counts and times (contrib's pg_stat_statements; costs a little CPU)
            settings["shared_preload_libraries"] = "pg_stat_statements"
        self.statements = statements
        self.inst = PgInstance(durable=True, settings=settings)
        self.inst.start()
        note_pid("postgres", self.inst.pid)
        self.n = 0

    def reset_statements(self, dsn: str) -> None:
        if self.statements:
            psql(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            psql(dsn, "SELECT pg_stat_statements_reset()")

    def top_statements(self, dsn: str, n: int, messages: int) -> list[str]:
        """The row's statements that took the most server time: calls and ms per message, the SQL's head."""
        if not self.statements:
            return []
        rows = psql(dsn, "SELECT calls, round(total_exec_time::numeric, 1), regexp_replace(left(query, 90), '\\s+', ' ', 'g')"
                         " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname ="
                         f" current_database()) ORDER BY total_exec_time DESC LIMIT {n}")
        tot = psql(dsn, "SELECT sum(calls), round(sum(total_exec_time)::numeric, 1) FROM pg_stat_statements WHERE dbid ="
                        " (SELECT oid FROM pg_database WHERE datname = current_database())").split("|")
        out = [f"{int(tot[0]) / messages:6.2f} calls/msg {float(tot[1]) / messages:7.4f} ms/msg  (all statements)"]
        for line in rows.splitlines():
            calls, ms, q = line.split("|", 2)
            out.append(f"{int(calls) / messages:6.2f} calls/msg {float(ms) / messages:7.4f} ms/msg  {q}")
        return out

    def new_database(self) -> str:
        """A fresh database per row (the first node creates the schema); its DSN."""
        self.n += 1
        name = f"mwbench_{self.n}"
        psql(self.inst.dsn, f"CREATE DATABASE {name}")
        return self.inst.dsn.replace("dbname=postgres", f"dbname={name}")

    def figures(self, dsn: str) -> dict:
        """Cumulative counters: WAL position (bytes), commits of the database, WAL flushes. The counters
        of pg_stat_database / pg_stat_wal are published by a backend when it goes idle (at most once a
        second, else within 10 s) and when it exits: read them after the nodes stopped, or after a pause."""
        row = psql(dsn, "SELECT pg_current_wal_lsn() - '0/0',"
                        " (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
                        " wal_sync, wal_write, wal_records FROM pg_stat_wal").split("|")
        keys = ("wal_bytes", "commits", "wal_sync", "wal_write", "wal_records")
        return {k: float(v) for k, v in zip(keys, row)}

    def cpu(self) -> float:
        # the postmaster's tree (backends, walwriter, checkpointer) and the children it has reaped
        return sum(cpu_seconds(p, children=(p == self.inst.pid)) for p in tree(self.inst.pid))

    def stop(self) -> None:
        self.inst.stop()


def split(total: int, parts: int) -> list[int]:
    """total spread over parts as evenly as possible (20 over 3: 7, 7, 6)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def loadgen_many(servers: list[str], outs: list[Path], sessions: list[int], messages: list[int], timeout: float,
                 **kw) -> list[dict]:
    """One loadgen per server, all at once; their JSON results."""
    procs = []
    for srv, out, se, m in zip(servers, outs, sessions, messages):
        args = [str(LOADGEN), "--server", srv, "--json", str(out), "--sessions", str(se), "--messages", str(m),
                "--timeout", f"{timeout:.0f}"]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        note_pid("loadgen", p.pid)
        procs.append(p)
    results = []
    for p, out in zip(procs, outs):
        _, err = p.communicate(timeout=timeout + 30)
        try:
            r = json.loads(out.read_text())
        except (OSError, ValueError):
            raise RuntimeError(f"loadgen gave no result: {err}")
        r["exit"] = p.returncode
        results.append(r)
    return results


class StoreBench:
    """The store rows: the relay workload of the 4 KiB / 20 sessions row (loadgen -> mailward -> sink,
    forced TLS) on SQLite with one node and on one PostgreSQL with 1..3 nodes. Inbound sessions,
    messages and outbound slots to the sink (max_per_destination) are split over the nodes, so the
    work is the same in every row and the ratios show the store's cost and the coordination."""

    def __init__(self, a: argparse.Namespace, bench: "Bench", block: str, common: dict, sink: Sink,
                 pg: Optional[Postgres], stoppers: list, tarpit_port: int):
        self.a, self.bench, self.block, self.common, self.sink, self.pg = a, bench, block, common, sink, pg
        self.tarpit_port = tarpit_port  # --store-accept-only: the nodes' deliveries hang there
        self.results: dict[str, dict[str, list[float]]] = {}
        self.key = bench.work / "store-master.key"
        self.key.write_bytes(os.urandom(32))
        os.chmod(self.key, 0o600)
        self.nodes: list[Mailward] = []
        self.rows = 0
        self.statements: dict[str, list[str]] = {}  # row -> top statements (--pg-statements), every run
        stoppers.append(self.stop_nodes)

    def record(self, row: str, metric: str, value: float) -> None:
        self.results.setdefault(row, {}).setdefault(metric, []).append(value)
        log(f"  {row:12s} {metric}: {value:.4g}")

    def stop_nodes(self) -> None:
        for n in self.nodes:
            n.stop()

    def row(self, backend: str, count: int) -> None:
        a, tag = self.a, f"{backend}:{count}"
        self.rows += 1
        dsn = self.pg.new_database() if backend == "postgres" else ""
        self.nodes = []
        per_dest = split(a.per_destination, count)
        for i in range(count):
            addr = f"{self.block}.{30 + i}"
            port = free_port([addr])
            portal = free_port([addr])
            while portal == port:
                portal = free_port([addr])
            node = Mailward(self.bench.work, addr, port, self.common, node=f"{backend}{count}-{self.rows}-node{i + 1}")
            extra = f'\n[escrow]\nlisten = "{addr}:{portal}"\nmaster_key_file = "{self.key}"\n\n[sendmail]\nsocket = ""\n'
            if backend == "postgres":
                extra += f'\n[store]\nbackend = "postgres"\ndsn = "{dsn}"\nnode = "node{i + 1}"\n'
            self.nodes.append(node)
            if a.store_accept_only:  # the writer alone: nothing is delivered (the accept row's set-up)
                node.start("accept", self.tarpit_port, store=extra)
            else:
                node.start("relay", self.sink.port, store=extra, per_destination=per_dest[i])  # one after another
        servers = [f"{n.addr}:{n.port}" for n in self.nodes]
        sessions = split(a.store_sessions, count)
        try:
            s0 = self.sink.stats()
            loadgen_many(servers, [self.bench.out(f"{tag}-warmup-{i}") for i in range(count)], sessions,
                         split(a.warmup, count), a.e2e_timeout, size=4096, to=f"user@{SINK_DOMAIN}")
            if not a.store_accept_only:
                self.sink.wait_messages(s0["messages"] + a.warmup, a.e2e_timeout)
            if self.pg:
                time.sleep(11)  # the warm-up's statistics are published (see Postgres.figures)
            n = a.store_messages
            if dsn:
                self.pg.reset_statements(dsn)
            p0 = self.pg.figures(dsn) if dsn else None
            s0 = self.sink.stats()
            cpu0 = sum(x.cpu() for x in self.nodes)
            pcpu0 = self.pg.cpu() if dsn else 0.0
            rs = loadgen_many(servers, [self.bench.out(f"{tag}-run-{i}") for i in range(count)], sessions,
                              split(n, count), a.e2e_timeout, size=4096, to=f"user@{SINK_DOMAIN}")
            sent = sum(r["sent"] for r in rs)
            if sent != n or any(r["exit"] != 0 for r in rs):
                raise RuntimeError(f"store row {tag}: {sent} of {n} accepted: {rs}")
            s1 = s0 if a.store_accept_only else self.sink.wait_messages(s0["messages"] + n, a.e2e_timeout)
            cpu = sum(x.cpu() for x in self.nodes) - cpu0
            pcpu = self.pg.cpu() - pcpu0 if dsn else 0.0
        finally:
            self.stop_nodes()  # the nodes' backends exit and publish their statistics
        clear = s1["messages_by_tls"].get("none", 0) - s0["messages_by_tls"].get("none", 0)
        if clear:
            raise RuntimeError(f"store row {tag}: {clear} messages delivered without TLS")
        start = min(r["start"] for r in rs)
        accept_end = max(r["end"] for r in rs)
        took = accept_end - start if a.store_accept_only else s1["last_message"] - start
        self.record(tag, "accepted", n / (accept_end - start))
        if not a.store_accept_only:
            self.record(tag, "delivered", n / took)
        self.record(tag, "p99_ms", max(r["latency_ms"]["p99"] for r in rs))
        self.record(tag, "mw_cpu_per_1000", cpu / n * 1000)
        self.record(tag, "mw_cores", cpu / took)
        if dsn:
            time.sleep(0.5)
            p1 = self.pg.figures(dsn)
            d = {k: p1[k] - p0[k] for k in p0}
            self.record(tag, "pg_cpu_per_1000", pcpu / n * 1000)
            self.record(tag, "pg_cores", pcpu / took)
            self.record(tag, "commits_per_s", d["commits"] / took)
            self.record(tag, "commits_per_msg", d["commits"] / n)
            self.record(tag, "wal_bytes_per_msg", d["wal_bytes"] / n)
            self.record(tag, "msgs_per_wal_flush", n / max(1.0, d["wal_sync"]))
            for line in self.pg.top_statements(dsn, 12, n):
                self.statements.setdefault(tag, []).append(line)
                log(f"  {tag:12s} {line}")


def median(v: list[float]) -> float:
    return statistics.median(v) if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description="mailward vs Postfix benchmark (see bench/README.md)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions; the table shows medians (3)")
    ap.add_argument("--accept-messages", type=int, default=3000)
    ap.add_argument("--accept-sessions", type=int, default=50)
    ap.add_argument("--latency-seconds", type=float, default=5, help="length of the half-load latency run")
    ap.add_argument("--e2e-4k", type=int, default=2000, help="messages per 4 KiB end-to-end run")
    ap.add_argument("--e2e-100k", type=int, default=3000, help="messages per 100 KiB end-to-end run (enough for a steady state: a burst of a few hundred measures mostly the ramp-up)")
    ap.add_argument("--e2e-timeout", type=float, default=300)
    ap.add_argument("--warmup", type=int, default=500, help="unrecorded relay messages before the relay figures")
    ap.add_argument("--per-destination", type=int, default=20,
                    help="outbound sessions to the sink (mailward max_per_destination, Postfix"
                         " default_destination_concurrency_limit)")
    ap.add_argument("--max-concurrency", type=int, default=100)
    ap.add_argument("--queued", type=int, default=20000, help="backlog for the queued-vs-empty figure (0 = skip)")
    ap.add_argument("--idle", type=int, default=5000, help="idle inbound connections to mailward (0 = skip)")
    ap.add_argument("--idle-postfix", type=int, default=1000,
                    help="idle inbound connections to Postfix (each is one smtpd process)")
    ap.add_argument("--log-level", default="info", help="mailward log_level (info, as shipped)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--json", help="also write all raw figures here")
    ap.add_argument("--only", default="",
                    help="comma list of phases: accept,e2e,idle,queue,store (default all but store)")
    ap.add_argument("--store-rows", default="sqlite:1,postgres:1,postgres:2,postgres:3",
                    help="store phase: BACKEND:NODES rows, backend sqlite (1 node) or postgres (1-3 nodes)")
    ap.add_argument("--store-messages", type=int, default=4000, help="store phase: messages per row and run")
    ap.add_argument("--store-sessions", type=int, default=20,
                    help="store phase: inbound sessions, split over the nodes (outbound slots: --per-destination,"
                         " split too)")
    ap.add_argument("--store-accept-only", action="store_true",
                    help="store phase: deliveries hang in the tarpit; only accepting (the writer) is measured")
    ap.add_argument("--pg-statements", action="store_true",
                    help="store phase: load pg_stat_statements and log each row's costliest statements")
    a = ap.parse_args()
    phases = set(a.only.split(",")) if a.only else {"accept", "e2e", "idle", "queue"}
    store_rows = []
    for spec in a.store_rows.split(","):
        backend, _, count = spec.partition(":")
        if backend not in ("sqlite", "postgres") or not count.isdigit() or not 1 <= int(count) <= 3 or \
                (backend == "sqlite" and count != "1"):
            raise SystemExit(f"--store-rows: bad row {spec!r} (sqlite:1 or postgres:1..3)")
        store_rows.append((backend, int(count)))

    for b in (MAILWARD, LOADGEN, SINK):
        if not b.exists():
            raise SystemExit(f"{b} is missing: run bench/run (it builds)")
    if os.geteuid() != 0:
        raise SystemExit("bench/run needs root (Postfix runs as a private instance)")

    work = Path(tempfile.mkdtemp(prefix="mwbench-", dir=os.environ.get("BENCH_TMP", "/tmp")))
    os.chmod(work, 0o755)
    log(f"work directory {work}")
    A, B = random.randint(1, 250), random.randint(1, 250)
    block = f"127.{A}.{B}"
    sink_addr, dead_addr, mw_addr, pf_addr = f"{block}.10", f"{block}.11", f"{block}.20", f"{block}.21"
    sink_port = free_port([sink_addr, dead_addr])
    tarpit_port = free_port([sink_addr])
    mw_port = free_port([mw_addr])
    pf_port = free_port([pf_addr])
    pf_hold = free_port([pf_addr])
    while pf_hold == pf_port:
        pf_hold = free_port([pf_addr])

    stoppers: list[Callable[[], None]] = []
    bench = Bench(a, work)
    sampler = None
    store: Optional[StoreBench] = None

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        ca = TestCA(work / "ca", name="mailward bench CA")
        cert, key = ca.issue(f"mx.{SINK_DOMAIN}", [f"mx.{SINK_DOMAIN}", "mailward.bench.test", "postfix.bench.test"])
        for p in (cert, key):
            os.chmod(p, 0o644)
        dns = DnsServer(work)
        dns.add_zone("bench.test", [
            (SINK_DOMAIN + ".", "MX", f"10 mx.{SINK_DOMAIN}."),
            (f"mx.{SINK_DOMAIN}.", "A", sink_addr),
            (DEAD_DOMAIN + ".", "MX", f"10 mx.{DEAD_DOMAIN}."),
            (f"mx.{DEAD_DOMAIN}.", "A", dead_addr),
        ])
        dns.add_zone("anchor.test", [], signed=True)  # only so that the trust anchor file is not empty
        dns.start()
        note_pid("knotd", dns.pid)
        stoppers.append(dns.stop)
        common = {"cert": cert, "key": key, "ca": ca.cert_path, "dns": dns.server,
                  "anchor": dns.trust_anchor_file(), "log_level": a.log_level,
                  "max_connections": max(1000, a.idle + 100), "per_destination": a.per_destination,
                  "max_concurrency": a.max_concurrency, "idle_postfix": a.idle_postfix}

        sink = Sink(work, sink_addr, sink_port, cert, key)
        stoppers.append(sink.child.stop)
        tarpit = Tarpit(sink_addr, tarpit_port)
        stoppers.append(tarpit.close)
        mw = Mailward(work, mw_addr, mw_port, common)
        stoppers.append(mw.stop)
        pf = Postfix(work, pf_addr, pf_port, pf_hold, f"{sink_addr}:{sink_port}", f"{dead_addr}:{sink_port}", common)
        stoppers.append(pf.stop)
        mw_srv, pf_srv, pf_hold_srv = f"{mw_addr}:{mw_port}", f"{pf_addr}:{pf_port}", f"{pf_addr}:{pf_hold}"
        sampler = Sampler({"mailward": mw.pids, "Postfix": pf.pids})
        sampler.start()
        if "store" in phases:
            pg = None
            if any(b == "postgres" for b, _ in store_rows):
                pg = Postgres(statements=a.pg_statements)
                stoppers.append(pg.stop)
            store = StoreBench(a, bench, block, common, sink, pg, stoppers, tarpit_port)
        e2e_cases = [(4096, 20, a.e2e_4k, "4k_20"), (4096, 200, a.e2e_4k, "4k_200"),
                     (102400, 20, a.e2e_100k, "100k_20"), (102400, 200, a.e2e_100k, "100k_200")]

        for run in range(a.runs):
            order = [0, 1] if run % 2 == 0 else [1, 0]
            log(f"run {run + 1}/{a.runs}")
            if "accept" in phases:
                mw.start("accept", tarpit_port)
                peaks = {}
                for i in order:
                    who, srv = (mw, mw_srv) if i == 0 else (pf, pf_hold_srv)
                    peaks[who.name] = bench.accept(who, srv)
                for i in order:
                    who, srv = (mw, mw_srv) if i == 0 else (pf, pf_hold_srv)
                    bench.latency(who, srv, peaks[who.name])
                mw.stop()
                pf.clear()
            if "e2e" in phases:
                mw.start("relay", sink_port)
                sampler.peak = {k: 0 for k in sampler.peak}
                bench.pss_peak = {}
                sampler.enabled = True
                for i in order:
                    who, srv = (mw, mw_srv) if i == 0 else (pf, pf_srv)
                    bench.warm_up(who, srv, sink, a.warmup)
                for size, sessions, n, tag in e2e_cases:
                    for i in order:
                        who, srv = (mw, mw_srv) if i == 0 else (pf, pf_srv)
                        bench.e2e(who, srv, sink, size, sessions, n, tag)
                sampler.enabled = False
                time.sleep(0.3)
                bench.record("mailward", "peak_rss_mb", mw.hwm_kb() / 1024)
                bench.record("mailward", "peak_rss_sampled_mb", sampler.peak["mailward"] / 1024)
                bench.record("Postfix", "peak_rss_mb", sampler.peak["Postfix"] / 1024)
                bench.record("Postfix", "peak_rss_sampled_mb", sampler.peak["Postfix"] / 1024)
                for k, v in bench.pss_peak.items():
                    bench.record(k, "peak_pss_mb", v / 1024)
                mw.stop()
            if "store" in phases:
                k = run % len(store_rows)  # each run starts with another row: drift spreads over all
                for backend, count in store_rows[k:] + store_rows[:k]:
                    log(f"store row {backend}:{count}")
                    store.row(backend, count)

        if "idle" in phases and a.idle > 0:
            log("idle connections")
            mw.start("relay", sink_port)
            bench.idle(mw, mw_srv, a.idle)
            mw.stop()
            if a.idle_postfix > 0:
                bench.idle(pf, pf_srv, a.idle_postfix)

        if "queue" in phases and a.queued > 0:
            log(f"throughput with {a.queued} messages already queued")
            mw.start("relay", sink_port)
            pf.clear()
            for who, srv in ((mw, mw_srv), (pf, pf_srv)):
                bench.warm_up(who, srv, sink, a.warmup)
                before = bench.e2e(who, srv, sink, 4096, 20, 2 * a.e2e_4k, "q_empty")
                t0 = time.monotonic()
                r = loadgen(srv, bench.out(f"{who.name}-fill"), sessions=50, messages=a.queued, size=4096,
                            to=f"user@{DEAD_DOMAIN}", timeout=max(300, a.queued / 50))
                if r["sent"] != a.queued:
                    raise RuntimeError(f"{who.name}: backlog fill accepted {r['sent']} of {a.queued}: {r}")
                if who is mw:
                    wait_until(lambda: mw.unattempted(DEAD_DOMAIN) == 0, max(600, a.queued / 20),
                               "mailward to attempt the backlog once", step=1)
                    queued = a.queued
                else:
                    wait_until(lambda: pf.queue_count("incoming", "active", "maildrop") == 0,
                               max(600, a.queued / 20), "postfix to defer the backlog", step=1)
                    queued = pf.queue_count("deferred")
                log(f"  {who.name}: backlog of {queued} in place after {time.monotonic() - t0:.0f}s")
                after = bench.e2e(who, srv, sink, 4096, 20, 2 * a.e2e_4k, "q_full")
                bench.record(who.name, "queued_backlog", queued)
                bench.record(who.name, "queued_throughput_change_pct", (after - before) / before * 100)
            mw.stop()
            pf.clear()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping everything")
        return 130
    finally:
        if sampler:
            sampler.done = True
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                log(f"stop failed: {e}")
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")

    print_table(bench, a)
    if store is not None:
        print_store_table(store, a)
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "results": bench.results, "notes": bench.notes,
                                            "store": store.results if store else {},
                                            "store_statements": store.statements if store else {}}, indent=1))
    return 0


ROWS = [
    ("accept_rate", "durable accepts/s, no delivery (4 KiB, {accept_sessions} sessions)", True),
    ("lat_p50_ms", "accept latency p50 at half of own peak (ms)", False),
    ("lat_p99_ms", "accept latency p99 at half of own peak (ms)", False),
    ("e2e_4k_20", "relayed msgs/s, forced TLS, 4 KiB, 20 sessions", True),
    ("e2e_4k_200", "relayed msgs/s, forced TLS, 4 KiB, 200 sessions", True),
    ("e2e_100k_20", "relayed msgs/s, forced TLS, 100 KiB, 20 sessions", True),
    ("e2e_100k_200", "relayed msgs/s, forced TLS, 100 KiB, 200 sessions", True),
    ("e2e_4k_20_sink_sessions", "new TLS sessions at the sink, 4 KiB/20 run", False),
    ("accept_cpu_per_1000", "CPU s per 1000 msgs, accept only", False),
    ("e2e_cpu_per_1000", "CPU s per 1000 msgs, accept + relay (4 KiB, 20 s.)", False),
    ("sink_cpu_per_1000", "sink CPU s per 1000 msgs (4 KiB, 20 s.)", False),
    ("sink_cpu_share", "sink CPU, share of one core (4 KiB, 20 s.)", False),
    ("peak_rss_mb", "peak RSS during relay runs, sum of processes (MiB)", False),
    ("peak_pss_mb", "peak PSS during relay runs, sum of processes (MiB)", False),
    ("idle_rss_per_conn_kb", "RSS per idle inbound connection (KiB)", False),
    ("idle_pss_per_conn_kb", "PSS per idle inbound connection (KiB)", False),
    ("idle_conns", "idle connections measured", None),
    ("q_empty", "relayed msgs/s, empty queue (4 KiB, 20 s.)", True),
    ("q_full", "relayed msgs/s, with backlog queued", True),
    ("queued_backlog", "backlog (messages queued, deferred)", None),
    ("queued_throughput_change_pct", "throughput change with backlog (%)", None),
]


def print_table(bench: Bench, a: argparse.Namespace) -> None:
    res = bench.results
    if not res["mailward"] and not res["Postfix"]:
        return
    lines = [f"mailward vs Postfix {postfix_version()} - medians of {a.runs} run(s); ratio = mailward/Postfix"
             " (throughput: higher is better for mailward; cost/latency: lower is better)", ""]
    lines.append(f"| {'metric':56s} | {'mailward':>10s} | {'Postfix':>10s} | {'ratio':>7s} |")
    lines.append(f"|{'-' * 58}|{'-' * 12}|{'-' * 12}|{'-' * 9}|")
    for key, label, kind in ROWS:
        key = "e2e_" + key if key.startswith("q_") else key
        mwv = res["mailward"].get(key, [])
        pfv = res["Postfix"].get(key, [])
        if not mwv and not pfv:
            continue
        m, p = median(mwv), median(pfv)
        ratio = f"{m / p:.2f}" if mwv and pfv and p and kind is not None else "-"
        fmt = lambda v: "-" if v != v else (f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}")  # noqa: E731
        lines.append(f"| {label.format(**vars(a)):56s} | {fmt(m):>10s} | {fmt(p):>10s} | {ratio:>7s} |")
    for n in bench.notes:
        lines.append(f"note: {n}")
    print("\n".join(lines))


STORE_COLS = [
    ("accepted", "accepted msgs/s"),
    ("delivered", "delivered msgs/s"),
    ("p99_ms", "p99 submit ms"),
    ("mw_cpu_per_1000", "mailward CPU s/1000"),
    ("mw_cores", "mailward cores"),
    ("pg_cpu_per_1000", "postgres CPU s/1000"),
    ("pg_cores", "postgres cores"),
    ("commits_per_s", "commits/s"),
    ("commits_per_msg", "commits/msg"),
    ("wal_bytes_per_msg", "WAL bytes/msg"),
    ("msgs_per_wal_flush", "msgs/WAL flush"),
]


def print_store_table(store: StoreBench, a: argparse.Namespace) -> None:
    """One line per row and figure: median (min-max) of the runs; ratio = median / the first row's."""
    res = store.results
    if not res:
        return
    fmt = lambda v: f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"  # noqa: E731
    rows = [r for r in (f"{b}:{n}" for b, n in (x.split(":") for x in a.store_rows.split(","))) if r in res]
    lines = ["", f"store rows: 4 KiB relay to the sink, {a.store_sessions} inbound sessions and {a.per_destination}"
             f" outbound slots split over the nodes, {a.store_messages} messages; PostgreSQL 15 with fsync on;"
             f" medians of {a.runs} run(s) (min-max)", ""]
    lines.append("| figure | " + " | ".join(rows) + " |")
    lines.append("|---|" + "---|" * len(rows))
    for key, label in STORE_COLS:
        cells = []
        for r in rows:
            v = res[r].get(key, [])
            cells.append(f"{fmt(median(v))} ({fmt(min(v))}-{fmt(max(v))})" if v else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    print("\n".join(lines))


def postfix_version() -> str:
    try:
        return subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
