#!/usr/bin/python3
"""PostgreSQL failover under load: nothing acknowledged is lost (issue 15). On loopback only, in one
temp dir: 1 etcd, 2 Patroni nodes managing 2 PostgreSQL 15 instances (synchronous replication, fsync
on), the lab (knot DNS, Postfix MX) and 2 `mailward serve` nodes whose dsn lists both PostgreSQL
ports (target_session_attrs=read-write). SMTP clients submit continuously; the primary's Patroni and
postgres are killed with -9 mid-load; the load goes on through the failover. Checks: every 250 is in
the MX's maildir, no client ever saw a 5xx. --async runs the same without synchronous replication.
Run by tests/ha/run; every process is stopped by its PID at the end (also on failure or Ctrl-C).
"""
import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Mailward, free_port  # noqa: E402
from mwlab.scenario import standard_lab  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
DOMAIN = "tls.example.test"  # the lab's MX with STARTTLS and a CA certificate
SENDER = "app@tls.example.test"
SUBJECT = re.compile(rb"^Subject: (ha-[0-9a-z-]+)\r?$", re.M)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def http_json(url, timeout=2):
    """(status, parsed body or None); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


def wait(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise RuntimeError("timed out after %ds waiting for %s" % (timeout, what))


def descendants(pids):
    """pids and every process below them (read from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = set(), [p for p in pids if p]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(children.get(p, []))
    return out


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class Etcd:
    """One etcd v3.4 member (Debian's etcd-server) on loopback, its data in the temp dir."""

    def __init__(self, root):
        self.dir = os.path.join(root, "etcd")
        os.makedirs(self.dir)
        self.client_port, self.peer_port = free_port(), free_port()
        self.proc = None

    def start(self):
        c, p = "http://127.0.0.1:%d" % self.client_port, "http://127.0.0.1:%d" % self.peer_port
        self.logf = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "ha", "--data-dir", os.path.join(self.dir, "data"), "--listen-client-urls", c,
             "--advertise-client-urls", c, "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
             "--initial-cluster", "ha=" + p, "--initial-cluster-state", "new"],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait(lambda: http_json(c + "/health")[0] == 200, 30, "etcd healthy")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class PatroniNode:
    """One Patroni (run as the `postgres` user when root: postgres refuses root) managing one
    PostgreSQL 15 in the temp dir. The DCS is etcd through Patroni's etcd3 module: Debian's
    patroni 3.0.2 speaks etcd's v3 API over its JSON gateway (/v3 on etcd 3.4), so etcd needs no
    --enable-v2."""

    def __init__(self, root, name, etcd, sync, post_bootstrap):
        self.name = name
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.pg_port, self.rest_port = free_port(), free_port()
        self.data = os.path.join(self.dir, "data")
        self.proc = None
        self.killed = False
        # ttl/loop_wait/retry_timeout 10/2/3: the leader key expires 10 s after the primary's Patroni
        # dies, so the replica is promoted within seconds (loop_wait + 2 * retry_timeout <= ttl).
        # synchronous_mode: a COMMIT returns only once the standby has flushed it (synchronous_commit on
        # = remote flush), and Patroni promotes only the synchronous standby. Not strict: strict mode
        # would refuse every write once the one standby is gone (here: after the failover, with the old
        # primary dead), which is an outage, not more durability - a COMMIT acknowledged while the
        # standby is attached is on both nodes either way, and the test waits for a synchronous
        # standby before the load starts.
        cfg = {
            "scope": "mailward-ha",
            "name": name,
            "restapi": {"listen": "127.0.0.1:%d" % self.rest_port, "connect_address": "127.0.0.1:%d" % self.rest_port},
            "etcd3": {"hosts": ["127.0.0.1:%d" % etcd.client_port]},
            "bootstrap": {
                "dcs": {
                    "ttl": 10, "loop_wait": 2, "retry_timeout": 3, "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": sync, "synchronous_mode_strict": False,
                    "postgresql": {
                        "use_pg_rewind": False, "use_slots": True,
                        "parameters": {
                            "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
                            "wal_level": "replica", "hot_standby": "on", "max_wal_senders": 5,
                            "max_replication_slots": 5, "wal_keep_size": "128MB", "max_connections": 100,
                            "shared_buffers": "32MB",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                "pg_hba": ["local all all trust", "host all all 127.0.0.1/32 trust",
                           "host replication replicator 127.0.0.1/32 trust"],
                "post_bootstrap": post_bootstrap,
            },
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.pg_port, "connect_address": "127.0.0.1:%d" % self.pg_port,
                "data_dir": self.data, "bin_dir": PG_BIN, "pgpass": os.path.join(self.dir, "pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "unused"},
                                   "replication": {"username": "replicator", "password": "unused"}},
                "parameters": {"unix_socket_directories": self.dir},
                # The replica is made with pg_basebackup: an immediate checkpoint, not a spread one
                # (minutes at the default checkpoint_timeout).
                "basebackup": [{"checkpoint": "fast"}],
                "pg_hba": ["local all all trust", "host all all 127.0.0.1/32 trust",
                           "host replication replicator 127.0.0.1/32 trust"],
            },
        }
        self.config = os.path.join(self.dir, "patroni.yml")
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML

    def start(self):
        self.logf = open(os.path.join(self.dir, "patroni.log"), "ab")
        kw = {}
        if os.geteuid() == 0:
            kw = {"user": "postgres", "group": "postgres", "extra_groups": []}
        env = dict(os.environ, HOME=self.dir)
        self.proc = subprocess.Popen(["patroni", self.config], stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, cwd=self.dir, **kw)

    def rest(self, path):
        return http_json("http://127.0.0.1:%d%s" % (self.rest_port, path))

    def is_primary(self):
        return not self.killed and self.rest("/primary")[0] == 200

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def pids(self):
        return descendants([self.proc.pid if self.proc else None, self.postmaster_pid()])

    def kill9(self):
        """Every process of this node at once: Patroni, the postmaster and its children."""
        pids = self.pids()  # (reading /proc takes a while: the kill's time is taken after it)
        for p in pids:
            kill_pid(p)
        self.killed_at = time.time()
        self.killed = True
        if self.proc:
            self.proc.wait()
        return pids

    def stop(self):
        pm = self.postmaster_pid()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # Patroni stops its postgres on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        for p in descendants([self.proc.pid if self.proc else None, pm]):
            kill_pid(p)
        if self.proc and self.proc.poll() is None:
            self.proc.wait()


def psql(port, sql, db="postgres", user="postgres"):
    p = subprocess.run([PG_BIN + "/psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                        "-c", sql], capture_output=True, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else None


class Load:
    """Clients submitting small messages, one SMTP session each, continuously; every reply recorded."""

    def __init__(self, nodes, clients):
        self.nodes, self.clients = nodes, clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []  # (time of the reply, marker, outcome, code, text, time the session began)
        self.threads = []

    def one(self, t, i):
        node = self.nodes[(t + i) % len(self.nodes)]
        marker = "ha-%d-%d-%s" % (t, i, secrets.token_hex(4))
        rcpt = "u%d@%s" % (t, DOMAIN)
        body = ("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\nmarker %s\r\n" % (marker, SENDER, rcpt, marker)).encode()
        outcome, code, text = "error", 0, ""
        began = time.time()
        try:
            with smtplib.SMTP("127.0.0.1", node.port, timeout=30) as s:
                for step in (lambda: s.ehlo("load.example.org"), lambda: s.mail(SENDER), lambda: s.rcpt(rcpt)):
                    code, resp = step()
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, resp)
                code, resp = s.data(body)  # raises only when DATA itself is refused: the final reply is returned
                if code != 250:
                    raise smtplib.SMTPResponseException(code, resp)
                outcome, text = "250", resp.decode(errors="replace")
        except smtplib.SMTPResponseException as e:
            code, text = e.smtp_code, (e.smtp_error or b"").decode(errors="replace") if isinstance(
                e.smtp_error, bytes) else str(e.smtp_error)
            outcome = "4xx" if 400 <= code < 500 else "5xx" if 500 <= code < 600 else "error"
        except (OSError, smtplib.SMTPException) as e:
            outcome, text = "error", "%s: %s" % (type(e).__name__, e)
        with self.lock:
            self.records.append((time.time(), marker, outcome, code, text, began))
        return outcome

    def run(self, t):
        i = 0
        while not self.stop.is_set():
            if self.one(t, i) != "250":
                time.sleep(0.1)  # as a client would, briefly, before trying again
            i += 1

    def start(self):
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True) for t in range(self.clients)]
        for th in self.threads:
            th.start()

    def finish(self):
        self.stop.set()
        for th in self.threads:
            th.join(60)

    def count(self, outcome):
        with self.lock:
            return sum(r[2] == outcome for r in self.records)


def delivered_counts(lab):
    counts = {}
    for m in lab.mx.messages(DOMAIN):
        hit = SUBJECT.search(m)
        if hit:
            k = hit.group(1).decode()
            counts[k] = counts.get(k, 0) + 1
    return counts


def keep_logs(root, dest):
    """Copies every log of the run (mailward, Patroni, postgres, etcd) to dest before the temp dir goes."""
    os.makedirs(dest, exist_ok=True)
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".log") or (os.path.basename(d) == "log" and "pg" in d):
                rel = os.path.relpath(os.path.join(d, f), root).replace(os.sep, "_")
                try:
                    shutil.copy(os.path.join(d, f), os.path.join(dest, rel))
                except OSError:
                    pass


def scenario(args, root):
    sync = not args.async_
    started = []  # everything to stop, in reverse order
    try:
        etcd = Etcd(root)
        started.append(etcd.stop)
        etcd.start()
        log("etcd on 127.0.0.1:%d" % etcd.client_port)

        pgroot = os.path.join(root, "pg")
        os.makedirs(pgroot)
        post = os.path.join(pgroot, "post_bootstrap.sh")
        with open(post, "w") as f:
            # Patroni runs it once, on the node that initialised the cluster, with a superuser URL.
            f.write('#!/bin/sh\nset -e\n%s/psql -X -q -d "$1" -c "CREATE ROLE mailward LOGIN" '
                    '-c "CREATE DATABASE mailward OWNER mailward"\n' % PG_BIN)
        os.chmod(post, 0o755)
        nodes = [PatroniNode(pgroot, n, etcd, sync, post) for n in ("pg1", "pg2")]
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for d, _, files in os.walk(pgroot):
                os.chown(d, pw.pw_uid, pw.pw_gid)
                for f in files:
                    os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
        for n in nodes:
            started.append(n.stop)
        nodes[0].start()
        wait(nodes[0].is_primary, 60, "pg1 primary (bootstrap)")
        nodes[1].start()
        want = "sync" if sync else "async"

        def replica_ready():
            st = psql(nodes[0].pg_port, "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'")
            return st == want
        wait(replica_ready, 90, "pg2 streaming as a %s standby" % want)
        wait(lambda: psql(nodes[0].pg_port, "SELECT 1", db="mailward", user="mailward") == "1", 30, "database mailward")
        log("Patroni: pg1 primary on :%d, pg2 %s standby on :%d (synchronous_mode %s)"
            % (nodes[0].pg_port, want, nodes[1].pg_port, str(sync).lower()))

        lab = standard_lab(os.path.join(root, "lab"))
        started.append(lab.stop)
        master_key = os.path.join(root, "master.key")
        with open(master_key, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.chmod(master_key, 0o600)
        dsn = ("host=127.0.0.1,127.0.0.1 port=%d,%d target_session_attrs=read-write connect_timeout=3"
               " dbname=mailward user=mailward" % (nodes[0].pg_port, nodes[1].pg_port))
        mws = []
        for i in range(args.mailward_nodes):
            d = os.path.join(root, "mw%d" % (i + 1))
            os.makedirs(d)
            extra = lab.mailward_config()
            extra["delivery"]["retry_schedule"] = ["2s"]
            extra["dns"]["timeout"] = "3s"
            crt, key = lab.ca.issue(Mailward.PORTAL_HOST)
            extra["escrow"] = {"cert": str(crt), "key": str(key), "master_key_file": master_key}
            extra["store"] = {"backend": "postgres", "dsn": dsn, "node": "mw%d" % (i + 1),
                              "lease_time": args.lease_time}
            mw = Mailward(d, tls=False, extra=extra)
            started.append(mw.stop)
            mws.append(mw)
            mw.start()
        log("%d mailward node(s); dsn: %s" % (len(mws), dsn))

        load = Load(mws, args.clients)
        started.append(load.finish)
        load.start()
        wait(lambda: load.count("250") >= 20, 60, "the first acknowledged messages")
        primary = next(n for n in nodes if n.is_primary())
        other = next(n for n in nodes if n is not primary)
        time.sleep(max(0.0, args.before - args.stall_replication))
        if args.stall_replication > 0:
            # A standby that lags at the moment of the crash (a slow disk or network): the primary's
            # WAL senders stop sending for a while, then the primary dies. Synchronous: COMMITs wait
            # for the standby, so nothing is acknowledged meanwhile. Asynchronous: they do not wait.
            senders = psql(primary.pg_port, "SELECT pid FROM pg_stat_replication") or ""
            for pid in senders.split():
                kill_pid(int(pid), signal.SIGSTOP)
            log("replication to %s stalled (SIGSTOP to WAL sender %s) for %.1f s before the kill; %d acknowledged"
                % (other.name, ", ".join(senders.split()), args.stall_replication, load.count("250")))
            time.sleep(args.stall_replication)
        acked_before = load.count("250")
        pids = primary.kill9()
        t_kill = primary.killed_at
        log("killed %s (-9): %d process(es), Patroni and postgres; %d acknowledged so far"
            % (primary.name, len(pids), acked_before))
        try:
            wait(other.is_primary, 90, "%s promoted" % other.name)
            log("%s is primary %.1f s after the kill" % (other.name, time.time() - t_kill))
        except RuntimeError as e:
            log(str(e))
        wait_after = time.time() + 90
        while time.time() < wait_after:
            with load.lock:
                if any(r[5] > t_kill and r[2] == "250" for r in load.records):
                    break
            time.sleep(0.2)
        time.sleep(args.after)
        load.finish()
        log("load stopped")

        records = list(load.records)
        acked = {r[1] for r in records if r[2] == "250"}
        deadline = time.time() + args.deliver_timeout
        while time.time() < deadline:
            got = delivered_counts(lab)
            if all(m in got for m in acked):
                break
            time.sleep(1)
        time.sleep(3)  # late copies (duplicates) still in flight
        got = delivered_counts(lab)
        # Failover time: the last 250 before the kill to the first 250 of a session begun after it (a
        # 250 read just after the kill may be for a COMMIT the old primary finished before it).
        before = [r[0] for r in records if r[2] == "250" and r[0] <= t_kill]
        after = [r[0] for r in records if r[2] == "250" and r[5] > t_kill]
        lost = sorted(m for m in acked if m not in got)
        dups = {m: n for m, n in got.items() if n > 1}
        unacked_delivered = [m for m in got if m not in acked]
        fives = [r for r in records if r[2] == "5xx"]
        fo = (min(after) - max(before)) if before and after else None
        summary = {
            "mode": "async" if args.async_ else "sync", "stall_replication_s": args.stall_replication,
            "sessions": len(records), "acked": len(acked), "4xx": sum(r[2] == "4xx" for r in records),
            "5xx": len(fives), "errors": sum(r[2] == "error" for r in records), "delivered": len(got),
            "lost": len(lost), "duplicates": len(dups), "delivered_not_acked": len(unacked_delivered),
            "acked_after_kill": len(after),
            "failover_s": None if fo is None else round(fo, 1),
        }
        print("RESULT " + json.dumps(summary), flush=True)
        codes = {}
        for r in records:
            if r[2] in ("4xx", "5xx", "error"):
                k = "%s %s" % (r[3] or "", r[4][:60])
                codes[k] = codes.get(k, 0) + 1
        for k, n in sorted(codes.items(), key=lambda kv: -kv[1])[:8]:
            log("  %5d x %s" % (n, k))
        ok = True
        if lost:
            log("LOST %d acknowledged message(s): %s" % (len(lost), ", ".join(lost[:20])))
            ok = False
        if fives:
            log("clients saw %d 5xx repl(ies): %s" % (len(fives), fives[:5]))
            ok = False
        if not after:
            log("no message was acknowledged after the kill: no failover seen")
            ok = False
        return ok
    finally:
        if args.keep_logs:
            keep_logs(root, args.keep_logs)
        for stop in reversed(started):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest too
                log("stop: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--async", dest="async_", action="store_true",
                    help="asynchronous replication (a control: acknowledged messages may be lost)")
    ap.add_argument("--clients", type=int, default=6, help="concurrent SMTP clients (default 6)")
    ap.add_argument("--mailward-nodes", type=int, default=2, choices=(1, 2))
    ap.add_argument("--before", type=float, default=8, help="seconds of load before the kill (default 8)")
    ap.add_argument("--after", type=float, default=15,
                    help="seconds of load after the first 250 past the kill (default 15)")
    ap.add_argument("--stall-replication", type=float, default=0, metavar="S",
                    help="stop the primary's WAL sender S seconds before the kill (a lagging standby)")
    ap.add_argument("--lease-time", default="30s",
                    help="[store] lease_time of the mailward nodes (default 30s: outlasts the failover)")
    ap.add_argument("--deliver-timeout", type=float, default=120)
    ap.add_argument("--keep-logs", metavar="DIR", help="copy mailward's and Patroni's logs there")
    args = ap.parse_args()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    # Ctrl-C, kill and a closed terminal all end in the cleanup (SIGINT explicitly: a shell starting
    # this in the background would leave it ignored).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_term)
    root = tempfile.mkdtemp(prefix="mailward-ha-")
    os.chmod(root, 0o711)  # the postgres user reaches its own subdir
    t0 = time.time()
    try:
        ok = scenario(args, root)
    except KeyboardInterrupt:
        log("interrupted: everything stopped")
        return 130
    except RuntimeError as e:
        log("FAILED: %s" % e)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    log("%s in %.0f s" % ("PASS: nothing acknowledged was lost" if ok else "FAIL", time.time() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
