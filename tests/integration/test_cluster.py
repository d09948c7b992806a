"""Several mailward nodes on one PostgreSQL: the store shared by nodes is real, not a claim. A private
PostgreSQL 15 (tests/support/pg_instance.py) and the lab (knot DNS, Postfix MX, the STARTTLS-stripping
MITM, a stalling proxy) on loopback; every node is a whole `mailward serve` with its own data dir and
ports and the same [store] dsn.

- A domain learned through node A is forced on node B's first delivery to it (A stopped, B alone):
  under a stripping MITM B holds the message, and nothing crosses the MITM in cleartext.
- Node A killed (-9) while its transfers hang in DATA: B and C take its messages over once the
  leases expire and deliver every one exactly once (A's transfers never ended).
- Node A killed under load while delivering: everything A acknowledged is delivered by the others;
  duplicates only from the crash window (after the final dot, before the outcome is recorded), counted.
- A message escrowed through node A is read through node C's portal (code mail, sign-in, body).
- An MTA-STS policy fetched by node A is enforced by node B while the TXT record is gone and the
  policy host answers 404 (as an attacker on B's path would make it): B holds the message, fetches
  nothing, and its reasons name A's policy.
"""
import json
import os
import re
import secrets
import signal
import smtplib
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lab"))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
sys.path.insert(0, os.path.join(HERE, "..", "soak"))

from faultproxy import FaultProxy  # noqa: E402
from harness import Mailward, TempDir, wait_for  # noqa: E402
from mwlab import PolicyServer, free_port  # noqa: E402
from mwlab.postfix import received_tls  # noqa: E402
from mwlab.scenarios import (SENDER, Delivered, Held, Learned, LogHas, NotInCleartext, Retry,  # noqa: E402
                             Scenario, SetMitm, Send, ForcedTlsLab, run_scenario)
from pg_instance import PgInstance, pg_bin  # noqa: E402
from test_escrow import PortalClient, csrf_of, text_of  # noqa: E402

STALL = "stall.example.test"  # MX behind a FaultProxy (raw bytes) in front of a STARTTLS Postfix
LEASE = "4s"                  # [store] lease_time of every node: a dead node's messages move soon
NODES = ("node-a", "node-b", "node-c")
STS = "sts-shared.example.test"  # MTA-STS enforce, mx pattern matching none of its MX hosts
STS_ID = "20261207a"


def psql(dsn, sql):
    p = subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-d", dsn, "-c", sql], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql %r: %s" % (sql, p.stderr))
    return p.stdout.strip()


class Cluster:
    """Nodes sharing one database, looking like one Mailward to the scenario steps (they use the
    current node: .use(i))."""

    def __init__(self, workdir, extra, dsn, master_key, names=NODES):
        self.nodes = []
        for name in names:
            d = os.path.join(workdir, name)
            os.makedirs(d, exist_ok=True)
            cfg = json.loads(json.dumps(extra))
            cfg["store"] = {"backend": "postgres", "dsn": dsn, "node": name, "lease_time": LEASE}
            cfg.setdefault("escrow", {})["master_key_file"] = master_key
            self.nodes.append(Mailward(d, tls=False, extra=cfg))
        self.current = self.nodes[0]

    def use(self, i):
        self.current = self.nodes[i]
        return self.current

    def __getattr__(self, name):  # port, cli, queue_show, log, delivery_log of the current node
        return getattr(self.current, name)

    def stop(self):
        errors = []
        for n in self.nodes:
            try:
                n.stop()
            except AssertionError as e:  # a sanitizer report: after stopping the others
                errors.append(str(e))
        if errors:
            raise AssertionError("\n".join(errors))


class UseNode:
    """Scenario step: the following steps talk to node i (starting it first when it is down)."""

    def __init__(self, i):
        self.i = i

    def run(self, r):
        node = r.mw.use(self.i)
        if node.proc is None:
            node.start()
        r.steps.append("now on %s" % NODES[self.i])


class StopNode:
    def __init__(self, i):
        self.i = i

    def run(self, r):
        r.mw.nodes[self.i].stop()
        r.steps.append("%s stopped" % NODES[self.i])


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.flab = ForcedTlsLab(os.path.join(cls.tmp.path, "lab"))
        lab, mx = cls.flab.lab, cls.flab.lab.mx
        host = "mx." + STALL
        up = mx.add_listener(37, tls="starttls", cert=lab.ca.issue(host), hostname=host, name="stall")
        cls.proxy = FaultProxy((mx.address(47), lab.port), (up.address, up.port), smtp=False)
        lab.dns.add_zone(STALL, [("@", "MX", "10 %s." % host), ("mx", "A", mx.address(47))])
        mx.accept_domains([STALL])
        https_addr = "%s.77" % lab.block
        cls.sts_port = free_port([https_addr])
        cert, key = lab.ca.issue("mta-sts." + STS)
        cls.https = PolicyServer(https_addr, cls.sts_port, cert, key)
        cls.https.set_policy(STS, "enforce", ["mx.elsewhere.example.test"])
        cls.sts_records = [("@", "MX", "10 mx.tls.example.test."), ("mta-sts", "A", https_addr)]
        lab.dns.add_zone(STS, cls.sts_records + [("_mta-sts", "TXT", '"v=STSv1; id=%s;"' % STS_ID)])
        mx.accept_domains([STS])
        cls.pg = PgInstance()
        try:
            cls.flab.start()
            cls.proxy.start()
            cls.https.start()
            cls.pg.start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.master_key = os.path.join(cls.tmp.path, "master.key")
        with open(cls.master_key, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.chmod(cls.master_key, 0o600)

    @classmethod
    def tearDownClass(cls):
        for stop in (cls.proxy.stop, cls.https.stop, cls.flab.stop, cls.pg.stop, cls.tmp.cleanup):
            try:
                stop()
            except Exception as e:  # noqa: BLE001 - stop the rest too
                print("teardown:", e, file=sys.stderr)

    def database(self):
        """A fresh database of the test's own on the shared server; its DSN."""
        name = "mw_" + secrets.token_hex(6)
        psql(self.pg.dsn, "CREATE DATABASE %s" % name)
        return self.pg.dsn.replace("dbname=postgres", "dbname=" + name)

    def extra(self, mode="tls-or-escrow"):
        extra = self.flab.lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["2s"]
        extra["dns"]["timeout"] = "3s"
        extra["policy"] = {"default_mode": mode, "mta_sts_port": self.sts_port}
        crt, key = self.flab.lab.ca.issue(Mailward.PORTAL_HOST)
        extra["escrow"] = {"cert": str(crt), "key": str(key)}
        return extra

    def cluster(self, name, mode="tls-or-escrow"):
        dsn = self.database()
        c = Cluster(os.path.join(self.tmp.path, name), self.extra(mode), dsn, self.master_key)
        c.dsn = dsn
        self.addCleanup(c.stop)
        return c

    def arrived(self, domain, marker):
        return [m for m in self.flab.lab.mx.messages(domain) if marker.encode() in m]

    # -- a domain learned on one node is forced on every node ----------------------------------------

    def test_a_domain_learned_on_node_a_is_forced_on_node_b(self):
        sc = Scenario("cluster", "learned-elsewhere", "learned via node A, forced on node B's first delivery",
                      "strip.example.test", "tls-or-escrow", [
                          UseNode(0), SetMitm("passthrough"), Send("m1"),
                          Delivered("m1", tls=True, via="mx.strip.example.test"), Learned("encrypt"),
                          StopNode(0), UseNode(1), Learned("encrypt"),
                          SetMitm("strip"), Send("m2"), Held("m2"), NotInCleartext("m2"),
                          LogHas("possible STARTTLS downgrade attack"),
                          SetMitm("passthrough"), Retry("m2"), Delivered("m2", tls=True, via="mx.strip.example.test"),
                      ])
        dsn = self.database()

        def start(workdir, extra):
            c = Cluster(workdir, extra, dsn, self.master_key, names=NODES[:2])
            c.nodes[0].start()
            return c
        run = run_scenario(sc, self.flab, start, os.path.join(self.tmp.path, "learned"))
        self.assertTrue(run.checks, "the scenario checked nothing")
        self.assertEqual([c for c in run.checks if not c.ok], [], "\n" + run.explanation)
        # m2 was never handled by node A: it was stopped before m2 was submitted.
        m2 = run.sent["m2"].qid
        self.assertNotIn(m2, run.mw.nodes[0].log())
        self.assertTrue(any(l.get("queue_id") == m2 for l in run.mw.nodes[1].delivery_log()))

    # -- an MTA-STS policy fetched on one node is enforced on every node ---------------------------

    def test_an_mta_sts_policy_fetched_on_node_a_is_enforced_on_node_b(self):
        def first_attempt(node, qid):
            return wait_for(lambda: (r := node.queue_show(qid)["recipients"][0])["attempts"] >= 1 and r, 60,
                            "a first attempt of %s" % qid)

        c = self.cluster("sts")
        a, b = c.nodes[0], c.nodes[1]
        a.start()
        b.start()  # up before A fetches: B's cache starts without the policy
        wait_for(lambda: "mailward serving as" in b.log(), 30, "node B past its start (its cache loaded)")
        # B's delivery process is paused while A handles its message (else A's NOTIFY could wake B
        # to take it and fetch the policy itself); its cache stays as it was.
        os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            qa = self.submit(a, "x@" + STS, "sts-a-" + secrets.token_hex(3))
            r = first_attempt(a, qa)
        finally:
            os.kill(b.proc.pid, signal.SIGCONT)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("no MX host of %s may be used" % STS, r["last_error"])
        self.assertTrue(any(l.get("queue_id") == qa for l in a.delivery_log()))
        fetched = self.https.count(STS)
        self.assertEqual(fetched, 1)
        a.stop()  # B alone from here: the message below is B's to deliver, whatever wakes whom
        # The attacker on B's path: no TXT record, the policy host answers 404. Without A's policy,
        # B would deliver to mx.tls.example.test (valid TLS, so nothing else would stop it).
        self.flab.lab.dns.set_records(STS, self.sts_records)
        self.https.set_response(STS, 404, "text/plain", "gone\n")
        qb = self.submit(b, "y@" + STS, "sts-b-" + secrets.token_hex(3))
        r = first_attempt(b, qb)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("no MX host of %s may be used" % STS, r["last_error"])
        lines = [l for l in b.delivery_log() if l.get("queue_id") == qb]
        self.assertTrue(lines, b.log()[-3000:])
        sts = [x for x in lines[-1]["level_reasons"] if x.startswith("mta-sts:")]
        self.assertTrue(sts and sts[0].startswith("mta-sts: enforce (id %s, cached" % STS_ID), sts)
        self.assertEqual(self.https.count(STS), fetched, "B fetched nothing: the policy came from the store")
        time.sleep(1)
        self.assertEqual(self.flab.lab.mx.messages(STS), [], "nothing delivered against the policy")

    # -- a dead node's leases are taken over ---------------------------------------------------------

    def submit(self, node, rcpt, marker, size=2048):
        filler = ("x" * 76 + "\r\n") * (size // 78 + 1)
        with smtplib.SMTP("127.0.0.1", node.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.mail(SENDER)
            code, resp = s.rcpt(rcpt)
            self.assertEqual(code, 250, resp)
            code, resp = s.data(("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\nbody %s\r\n%s"
                                 % (marker, SENDER, rcpt, marker, filler)).encode())
        self.assertEqual(code, 250, resp)
        return resp.decode().split("queued as ")[1].split()[0]

    def test_node_killed_mid_transfer_its_messages_are_delivered_by_the_others(self):
        c = self.cluster("takeover")
        a, b, cc = c.nodes
        a.start()
        self.proxy.set_mode("stall")
        try:
            markers = ["stall-%d-%s" % (i, secrets.token_hex(4)) for i in range(6)]
            stalls0 = self.proxy.stalls
            # Large enough that no read of the proxy holds a whole message: each transfer hangs in DATA.
            for m in markers:
                self.submit(a, "x@" + STALL, m, size=400 * 1024)
            wait_for(lambda: self.proxy.stalls - stalls0 >= 3, 60, "node A's transfers stalled in DATA")
            # A renews its leases while the transfers hang (lease_time 4s): after 6 s the messages
            # not delivered are still A's, none expired under a live node.
            time.sleep(6)
            waiting = [m for m in markers if not self.arrived(STALL, m)]
            self.assertGreaterEqual(len(waiting), 3)
            live = psql(c.dsn, "SELECT count(*) FROM messages WHERE lease_owner = 'node-a'"
                               " AND lease_until > (extract(epoch from now()) * 1000)::bigint")
            self.assertEqual(int(live), len(waiting), a.log()[-3000:])
            a.kill9()
        finally:
            self.proxy.set_mode("pass")
        b.start()
        cc.start()
        for m in markers:
            wait_for(lambda: self.arrived(STALL, m), 90, "%s delivered by node B or C" % m)
        time.sleep(2)
        copies = {m: len(self.arrived(STALL, m)) for m in markers}
        self.assertEqual(set(copies.values()), {1}, copies)
        for m in markers:
            self.assertIsNotNone(received_tls(self.arrived(STALL, m)[0]), "delivered without TLS")
        # Taken over: the messages A held were leased a second time, by B or C, and completed.
        rows = psql(c.dsn, "SELECT lease_generation, coalesce(lease_owner, '') FROM messages m WHERE"
                           " EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.domain = '%s')"
                           % STALL).splitlines()
        self.assertEqual(len(rows), len(markers), rows)
        self.assertTrue(all(r.split("|")[1] == "" for r in rows), rows)
        self.assertGreaterEqual(sum(int(r.split("|")[0]) >= 2 for r in rows), len(waiting), rows)
        by = [l for n in (b, cc) for l in n.delivery_log() if l.get("result") == "delivered"]
        self.assertGreaterEqual(len(by), len(waiting))

    def test_node_killed_under_load_loses_nothing(self):
        c = self.cluster("load")
        for n in c.nodes:
            n.start()
        a = c.nodes[0]
        domain = "tls.example.test"
        acked, lock = {}, threading.Lock()
        killed = threading.Event()
        per_thread, threads_n = 25, 8

        def client(t):
            for i in range(per_thread):
                marker = "load-%d-%d-%s" % (t, i, secrets.token_hex(3))
                node = c.nodes[1 + t % 2] if killed.is_set() else a
                try:
                    qid = self.submit(node, "u%d@%s" % (t, domain), marker)
                except (OSError, smtplib.SMTPException, AssertionError):
                    continue  # refused or cut by the kill: not acknowledged, not counted
                with lock:
                    acked[marker] = qid

        ths = [threading.Thread(target=client, args=(t,)) for t in range(threads_n)]
        for t in ths:
            t.start()
        wait_for(lambda: len(acked) >= threads_n * per_thread // 2, 120, "half the load acknowledged")
        a.kill9()
        killed.set()
        for t in ths:
            t.join(timeout=300)
        self.assertGreater(len(acked), threads_n * per_thread // 2)

        def missing():
            got = self.flab.lab.mx.messages(domain)
            return [m for m in acked if not any(m.encode() in x for x in got)]
        wait_for(lambda: not missing(), 120, "every acknowledged message delivered")
        time.sleep(3)
        got = self.flab.lab.mx.messages(domain)
        dups = {m: n for m in acked if (n := sum(m.encode() in x for x in got)) > 1}
        # The crash window: only the deliveries A had in flight to the domain (at most
        # max_per_destination, 10) can arrive twice, each at most twice.
        print("\ncluster load: %d acknowledged, %d delivered, %d duplicate(s) from the crash window"
              % (len(acked), len(acked), len(dups)), file=sys.stderr)
        self.assertLessEqual(len(dups), 10, dups)  # [delivery] max_per_destination
        self.assertTrue(all(n == 2 for n in dups.values()), dups)
        pending = psql(c.dsn, "SELECT count(*) FROM recipients WHERE state IN ('queued', 'awaiting_escrow')")
        self.assertEqual(pending, "0")

    # -- any node's portal serves any escrowed message -----------------------------------------------

    def test_a_message_escrowed_via_node_a_is_read_on_node_c(self):
        c = self.cluster("portal")
        a, _b, cc = c.nodes
        a.start()
        cc.start()
        rcpt = "bob@notls.example.test"  # no STARTTLS: escrow (tls-or-escrow)
        marker = "escrowed-" + secrets.token_hex(5)
        before = len(self.flab.lab.mx.messages("notls.example.test"))
        qid = self.submit(a, rcpt, marker)
        wait_for(lambda: a.queue_show(qid)["recipients"][0]["state"] == "escrowed", 60, "sealed")
        notices = self.flab.lab.mx.wait_for_messages("notls.example.test", before + 1, timeout=60)
        m = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notices[before])
        self.assertIsNotNone(m, notices[before][:2000])
        link = m.group(1).decode()
        client = PortalClient(cc, str(self.flab.lab.ca.cert_path))
        status, _, page = client.request("GET", link)
        self.assertEqual(status, 200, page[:500])
        n = len(self.flab.lab.mx.messages("notls.example.test"))
        status, _, _ = client.form(link + "/code", {"csrf": csrf_of(page)})
        self.assertEqual(status, 200)
        msgs = self.flab.lab.mx.wait_for_messages("notls.example.test", n + 1, timeout=60)
        code = re.search(r"one-time code is: (\d{6})", text_of(msgs[n])).group(1)
        status, headers, _ = client.form(link + "/login", {"csrf": csrf_of(page), "code": code})
        self.assertEqual((status, headers.get("Location")), (303, "/read"))
        status, _, page = client.request("GET", "/read")
        self.assertEqual(status, 200)
        self.assertIn(marker.encode(), page)
        # Both nodes' sealers saw the message: one sealed it, the other (if it raced) stood aside
        # without an error; exactly one notice and one escrow record exist.
        for node in (a, cc):
            self.assertNotIn("escrow: cannot seal", node.log())
            self.assertNotIn("to seal it:", node.log())
        self.assertEqual(psql(c.dsn, "SELECT count(*) FROM escrow_messages"), "1")


if __name__ == "__main__":
    unittest.main()
