"""The service lifecycle of `mailward serve` (docs/operations.md "Reload and shutdown"): sd_notify
readiness (a Python AF_UNIX datagram socket as NOTIFY_SOCKET), SIGHUP reloading the configuration,
the static policy and the submission certificate under a steady stream of submissions (no client
sees an error, every acknowledged message reaches the lab's Postfix MX), a bad file refused in one
line, and SIGTERM draining: sessions finish their transaction and then get 421 4.3.2, deliveries to
a stalling MX (a small Python SMTP server) finish or are abandoned at [server] shutdown_timeout,
exit 0, and after a restart everything acknowledged is delivered (counted at the MX)."""
import json
import os
import re
import select
import signal
import smtplib
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

import harness  # noqa: E402
from harness import LAB_SENDER, Mailward, RawClient, TempDir, TestCA, wait_for  # noqa: E402
from mwlab import standard_lab  # noqa: E402


class NotifySocket:
    """NOTIFY_SOCKET for a test: every datagram received, with the time it came."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # serve sends from [server] user once it dropped root (as systemd's socket allows)
        self.sock.settimeout(0.2)
        self.messages = []  # (time, {key: value})
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.time(), fields))

    def find(self, key, value=None, after=0.0):
        with self.lock:
            for t, f in self.messages:
                if t >= after and key in f and (value is None or f[key] == value):
                    return t, f
        return None

    def close(self):
        self.done = True
        self.thread.join(timeout=5)
        self.sock.close()


def serve_env(**extra):
    env = dict(os.environ)
    env.update(extra)
    return env


def start_with_env(mw, env, wait=True):
    """Starts mw like Mailward.start, with env (NOTIFY_SOCKET); wait=False returns at once."""
    mw.logf = open(mw.log_path, "ab")
    mw.proc = subprocess.Popen([harness.MAILWARD, "serve", "-c", mw.config], stdout=mw.logf, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    if wait and not harness.wait_port("127.0.0.1", mw.port, 60, mw.proc):
        raise RuntimeError("mailward did not start:\n" + mw.log())
    return mw


def rewrite_config(mw, replace):
    """Edits mw's config file: replace is a list of (old, new) text pairs, each must match."""
    with open(mw.config) as f:
        text = f.read()
    for old, new in replace:
        assert old in text, (old, text)
        text = text.replace(old, new)
    with open(mw.config, "w") as f:
        f.write(text)


def peer_cert_der(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class ReloadUnderLoadTest(unittest.TestCase):
    """SIGHUP and sd_notify with the standard lab (knot DNS, Postfix MX)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.lab = standard_lab(os.path.join(cls.tmp.path, "lab"))

    @classmethod
    def tearDownClass(cls):
        try:
            cls.lab.stop()
        finally:
            cls.tmp.cleanup()

    def setUp(self):
        self.dir = os.path.join(self.tmp.path, self.id().rsplit(".", 1)[1])
        os.makedirs(self.dir)
        self.ca = TestCA(self.dir)
        extra = self.lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["2s"]
        # A static policy line the reload changes (the harness writes [policy.domains] as its own section).
        extra["policy.domains"] = {"wrongname.example.test": "verify"}
        self.mw = Mailward(self.dir, ca=self.ca, tls=True, extra=extra)
        self.notify = None

    def tearDown(self):
        try:
            self.mw.stop()
        finally:
            if self.notify:
                self.notify.close()

    def test_reload_under_load_loses_nothing_and_applies(self):
        self.mw.start()
        new_crt, new_key = self.ca.issue("reloaded", ["DNS:" + Mailward.HOSTNAME, "IP:127.0.0.1"])
        os.chmod(new_key, 0o644)  # readable by [server] user: serve reloads after dropping root
        with open(self.mw.config) as f:
            old_crt = re.search(r'cert = "([^"]+)"', f.read()).group(1)
        self.assertEqual(peer_cert_der(self.mw.tls_port), der_of(old_crt))

        # An implicit-TLS session opened before the reload keeps its connection (and certificate).
        ctx = ssl.create_default_context(cafile=self.ca.cert)
        open_tls = smtplib.SMTP_SSL("127.0.0.1", self.mw.tls_port, timeout=30, context=ctx)
        open_tls.ehlo("open.example.org")
        self.assertEqual(open_tls.sock.getpeercert(binary_form=True), der_of(old_crt))

        acked = []  # (qid, marker, submitted after the reload was done)
        errors = []
        stop = threading.Event()
        reloaded = threading.Event()
        lock = threading.Lock()

        def one(s, tag):
            marker = "RELOAD-%s-%s" % (tag, uuid.uuid4().hex[:10])
            after = reloaded.is_set()
            s.mail(LAB_SENDER)
            code, resp = s.rcpt("bob@tls.example.test")
            if code != 250:
                raise AssertionError("RCPT %d %r" % (code, resp))
            code, resp = s.data(("Subject: %s\r\nFrom: <%s>\r\nTo: <bob@tls.example.test>\r\n\r\nbody %s\r\n" %
                                 (marker, LAB_SENDER, marker)).encode())
            if code != 250:
                raise AssertionError("DATA %d %r" % (code, resp))
            with lock:
                acked.append((resp.decode().split("queued as ")[1].split()[0], marker, after))

        def steady(tag):  # one connection, many messages: it must survive the reload
            try:
                with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=30) as s:
                    s.ehlo("steady.example.org")
                    while not stop.is_set():
                        one(s, tag)
                        time.sleep(0.05)
            except Exception as e:  # noqa: BLE001 - every failure is the test's finding
                errors.append("%s: %r" % (tag, e))

        def churn(tag):  # a new connection per message: some connect while the reload runs
            try:
                while not stop.is_set():
                    with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=30) as s:
                        s.ehlo("churn.example.org")
                        one(s, tag)
                    time.sleep(0.05)
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %r" % (tag, e))

        threads = [threading.Thread(target=steady, args=("s%d" % i,)) for i in range(4)]
        threads += [threading.Thread(target=churn, args=("c%d" % i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        rewrite_config(self.mw, [(old_crt, new_crt), (old_crt.replace(".crt", ".key"), new_key),
                                 ('"wrongname.example.test" = "verify"',
                                  '"wrongname.example.test" = "verify"\n"tls.example.test" = "verify"')])
        log_before = len(self.mw.log())
        t0 = time.time()
        os.kill(self.mw.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: done" in self.mw.log()[log_before:], 30, "the reload to finish")
        reload_s = time.time() - t0
        reloaded.set()
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        self.assertEqual(errors, [], "clients saw errors during the reload")
        self.assertTrue(self.mw.proc.poll() is None, "serve ended:\n" + self.mw.log())
        after = [a for a in acked if a[2]]
        self.assertGreater(len(acked) - len(after), 10, "too few messages before the reload")
        self.assertGreater(len(after), 10, "too few messages after the reload")

        # The open TLS session goes on with its certificate; a new one gets the new certificate.
        open_tls.mail(LAB_SENDER)
        open_tls.rcpt("bob@tls.example.test")
        marker = "RELOAD-open-" + uuid.uuid4().hex[:8]
        code, _ = open_tls.data(("Subject: %s\r\nFrom: <%s>\r\n\r\nbody\r\n" % (marker, LAB_SENDER)).encode())
        self.assertEqual(code, 250)
        open_tls.quit()
        self.assertEqual(peer_cert_der(self.mw.tls_port), der_of(new_crt))

        # Every acknowledged message reaches the MX; those after the reload under the new static policy.
        def delivered():
            got = b"".join(self.lab.mx.messages("tls.example.test"))
            return all(m.encode() in got for _, m, _ in acked) and marker.encode() in got
        wait_for(delivered, 180, "every acknowledged message at the MX")
        log = {e.get("queue_id"): e for e in self.mw.delivery_log() if e.get("result") == "delivered"}
        for qid, m, is_after in after:
            self.assertIn(qid, log, m)
            self.assertIn("static policy: verify", " ".join(log[qid].get("level_reasons", [])), log[qid])
        warns = [l for l in self.mw.log().splitlines() if "reload" in l and ("error" in l or "refused" in l)]
        self.assertEqual(warns, [])
        print("\nreload under load: %d messages (%d after), reload took %.0f ms (serve's log: %s)" %
              (len(acked), len(after), reload_s * 1000,
               re.findall(r"reload: done in \d+ ms", self.mw.log())), file=sys.stderr)

    def test_bad_config_is_refused_in_one_line(self):
        self.mw.start()
        with open(self.mw.config) as f:
            good = f.read()
        # Line numbers count from the file's start: the bad value goes on a known line.
        bad = good + "\n[store]\ncommit_interval = \"soon\"\n"
        bad_line = bad.count("\n", 0, bad.index("commit_interval")) + 1
        with open(self.mw.config, "w") as f:
            f.write(bad)
        log_before = len(self.mw.log())
        os.kill(self.mw.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload refused" in self.mw.log()[log_before:], 30, "the refusal")
        time.sleep(1.0)  # nothing else follows (the children are not told)
        new_lines = self.mw.log()[log_before:].splitlines()
        refused = [l for l in new_lines if "reload refused" in l or " error " in l]
        self.assertEqual(len(refused), 1, new_lines)
        self.assertIn("mailward.toml:%d" % bad_line, refused[0])
        self.assertIn("store.commit_interval", refused[0])
        # The old configuration is in force: the service goes on, the static policy unchanged.
        self.assertTrue(self.mw.proc.poll() is None)
        qid = harness.submit(self.mw, "bob@wrongname.example.test", "BADRELOAD-" + uuid.uuid4().hex[:8])
        entry = wait_for(lambda: [e for e in self.mw.delivery_log() if e.get("queue_id") == qid], 60,
                         "an attempt to wrongname.example.test")[0]
        self.assertIn("static policy: verify", " ".join(entry.get("level_reasons", [])), entry)
        # A restart-only key changed: one warning naming it, the rest applies.
        with open(self.mw.config, "w") as f:
            f.write(good.replace('log_level = "debug"', 'log_level = "debug"\nuser = "somebody-else"'))
        log_before = len(self.mw.log())
        os.kill(self.mw.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: done" in self.mw.log()[log_before:], 30, "the reload")
        warn = [l for l in self.mw.log()[log_before:].splitlines() if "need a restart" in l]
        self.assertEqual(len(warn), 1, self.mw.log()[log_before:])
        self.assertIn("server.user", warn[0])

    def test_unreadable_key_keeps_the_old_certificate(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: serve reloads as [server] user, which cannot read a root-only key")
        self.mw.start()
        with open(self.mw.config) as f:
            old_crt = re.search(r'cert = "([^"]+)"', f.read()).group(1)
        new_crt, new_key = self.ca.issue("rootonly", ["DNS:" + Mailward.HOSTNAME, "IP:127.0.0.1"])
        os.chmod(new_key, 0o600)  # root's alone
        rewrite_config(self.mw, [(old_crt, new_crt), (old_crt.replace(".crt", ".key"), new_key)])
        log_before = len(self.mw.log())
        os.kill(self.mw.proc.pid, signal.SIGHUP)
        wait_for(lambda: "reload: done" in self.mw.log()[log_before:], 30, "the reload")
        said = [l for l in self.mw.log()[log_before:].splitlines() if "certificate not reloaded" in l]
        # One line from each process that serves this certificate (the portal has no [escrow] cert here).
        self.assertEqual(sorted(re.search(r"\[(mailward-\w+)\]", l).group(1) for l in said),
                         ["mailward-portal", "mailward-smtp"], said)
        for line in said:
            self.assertIn(new_key, line)
        self.assertEqual(peer_cert_der(self.mw.tls_port), der_of(old_crt))
        self.assertTrue(harness.submit(self.mw, "bob@tls.example.test", "ROOTKEY-" + uuid.uuid4().hex[:8]))

    def test_sd_notify_ready_after_listening_reload_and_stopping(self):
        path = os.path.join(self.dir, "notify.sock")
        self.notify = NotifySocket(path)
        start_with_env(self.mw, serve_env(NOTIFY_SOCKET=path), wait=False)
        ready = wait_for(lambda: self.notify.find("READY", "1"), 60, "READY=1")
        # At READY=1 every listener accepts connections: submission, implicit TLS, portal.
        for port in (self.mw.port, self.mw.tls_port, int(self.mw.portal_listen.rsplit(":", 1)[1])):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        self.assertEqual(ready[1].get("MAINPID"), str(self.mw.proc.pid))
        self.assertIn("serving", ready[1].get("STATUS", ""))
        self.assertIn("ready: every listener listens", self.mw.log())

        t = time.time()
        os.kill(self.mw.proc.pid, signal.SIGHUP)
        reloading = wait_for(lambda: self.notify.find("RELOADING", "1", after=t), 30, "RELOADING=1")
        again = wait_for(lambda: self.notify.find("READY", "1", after=reloading[0]), 30, "READY=1 after the reload")
        self.assertIn("MONOTONIC_USEC", reloading[1])
        self.assertGreaterEqual(again[0], reloading[0])

        t = time.time()
        self.mw.proc.send_signal(signal.SIGTERM)
        rc = self.mw.proc.wait(timeout=60)
        self.assertEqual(rc, 0, self.mw.log())
        self.assertIsNotNone(self.notify.find("STOPPING", "1", after=t))


class StallingMx(socketserver.ThreadingTCPServer):
    """A plain SMTP server (no STARTTLS) that answers the end of DATA after `stall` seconds and
    counts the markers it accepted (each reply 250 after the stall)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr):
        self.stall = 0.0
        self.accepted = []  # markers, in order
        self.in_data = 0  # messages whose DATA ended and wait for the reply
        self.lock = threading.Lock()
        super().__init__(addr, StallingHandler)


class StallingHandler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        w = self.wfile.write
        try:
            w(b"220 slow.example.test ESMTP stalling\r\n")
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    w(b"250-slow.example.test\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    w(b"354 go ahead\r\n")
                    body = b""
                    while True:
                        l2 = self.rfile.readline()
                        if not l2 or l2 == b".\r\n":
                            break
                        body += l2
                    if not l2:
                        return
                    with srv.lock:
                        srv.in_data += 1
                    # Stalls; a client that hangs up meanwhile delivered nothing (not counted).
                    end = time.time() + srv.stall
                    gone = False
                    while time.time() < end and not gone:
                        ready, _, _ = select.select([self.connection], [], [], 0.05)
                        gone = bool(ready) and self.connection.recv(1, socket.MSG_PEEK) == b""
                    with srv.lock:
                        srv.in_data -= 1
                    if gone:
                        return
                    m = re.search(rb"DRAIN-[0-9a-f]+", body)
                    w(b"250 2.0.0 accepted\r\n")
                    with srv.lock:
                        srv.accepted.append(m.group(0).decode() if m else "?")
                elif verb == b"QUIT":
                    w(b"221 bye\r\n")
                    return
                else:
                    w(b"250 ok\r\n")
        except OSError:
            return


class DrainTest(unittest.TestCase):
    """SIGTERM: deliveries to a stalling MX, and submission sessions, drained up to the bound."""

    BOUND = 3

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        # slow.example.test: MX on an address of its own at the lab's delivery port, served by StallingMx.
        cls.mx = None
        for last in range(10, 250):
            addr = "127.0.77.%d" % last
            try:
                cls.mx = StallingMx((addr, lab.port))
                break
            except OSError:
                continue
        assert cls.mx is not None, "no free address for the stalling MX"
        threading.Thread(target=cls.mx.serve_forever, daemon=True).start()
        lab.dns.add_zone("slow.example.test", [("@", "MX", "10 mx.slow.example.test."),
                                               ("mx", "A", cls.mx.server_address[0])])
        lab.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mx.shutdown()
            cls.mx.server_close()
            cls.lab.stop()
        finally:
            cls.tmp.cleanup()

    def setUp(self):
        self.dir = os.path.join(self.tmp.path, self.id().rsplit(".", 1)[1])
        os.makedirs(self.dir)
        extra = self.lab.mailward_config()
        extra["server"] = {"shutdown_timeout": "%ds" % self.BOUND}
        # The stalling MX has no STARTTLS: plaintext is this test's sender mode.
        extra["policy"] = {"default_mode": "opportunistic"}
        extra["delivery"]["retry_schedule"] = ["1s"]
        self.mw = Mailward(self.dir, tls=False, extra=extra)

    def tearDown(self):
        self.mw.stop()

    def test_sigterm_drains_deliveries_and_loses_nothing(self):
        mx = self.mx
        mx.stall = 30.0  # longer than the bound: abandoned at it
        self.mw.start()
        markers = ["DRAIN-%s" % uuid.uuid4().hex[:12] for _ in range(4)]
        for i, m in enumerate(markers):
            harness.submit(self.mw, "r%d@slow.example.test" % i, m)
        wait_for(lambda: mx.in_data >= 4, 60, "4 deliveries stalled at the MX")
        t0 = time.time()
        self.mw.proc.send_signal(signal.SIGTERM)
        rc = self.mw.proc.wait(timeout=60)
        drain_s = time.time() - t0
        log = self.mw.log()
        self.assertEqual(rc, 0, log[-3000:])
        self.assertLess(drain_s, self.BOUND + 5, "exit took %.1f s (bound %d s)" % (drain_s, self.BOUND))
        self.assertGreaterEqual(drain_s, self.BOUND - 0.5, "the deliveries were not given the bound")
        self.assertIn("abandoned", log)
        self.assertFalse(set(markers) & set(mx.accepted), "a stalled delivery was counted")
        self.mw.stop()

        # Restarted, with a quick MX: every acknowledged message is delivered (counted at the MX).
        mx.stall = 0.0
        wait_for(lambda: mx.in_data == 0, 60, "the stalled connections to end")
        self.mw.start()
        wait_for(lambda: set(markers) <= set(mx.accepted), 60, "the 4 messages at the MX after the restart")
        print("\ndrain with 4 stalled deliveries: exit after %.2f s (bound %d s)" % (drain_s, self.BOUND),
              file=sys.stderr)

    def test_sigterm_lets_finishing_deliveries_end(self):
        mx = self.mx
        mx.stall = 1.0  # inside the bound: finished during the drain
        before = len(mx.accepted)
        self.mw.start()
        for i in range(3):
            harness.submit(self.mw, "q%d@slow.example.test" % i, "DRAIN-%s" % uuid.uuid4().hex[:12])
        wait_for(lambda: mx.in_data >= 3, 60, "3 deliveries at the MX")
        t0 = time.time()
        self.mw.proc.send_signal(signal.SIGTERM)
        rc = self.mw.proc.wait(timeout=60)
        drain_s = time.time() - t0
        self.assertEqual(rc, 0, self.mw.log()[-3000:])
        self.assertEqual(len(mx.accepted) - before, 3, "the deliveries in flight were not let finish")
        self.assertLess(drain_s, self.BOUND, "the drain waited longer than its deliveries")
        self.assertNotIn("abandoned", self.mw.log())
        print("\ndrain with 3 deliveries of 1 s: exit after %.2f s" % drain_s, file=sys.stderr)

    def test_sigterm_sessions_finish_their_transaction_then_421(self):
        self.mw.start()
        idle = RawClient(self.mw.port)
        self.assertEqual(idle.read_reply()[0], 220)
        self.assertEqual(idle.cmd("EHLO idle.example.org")[0], 250)
        busy = RawClient(self.mw.port)
        self.assertEqual(busy.read_reply()[0], 220)
        self.assertEqual(busy.cmd("EHLO busy.example.org")[0], 250)
        self.assertEqual(busy.cmd("MAIL FROM:<%s>" % LAB_SENDER)[0], 250)
        self.mw.proc.send_signal(signal.SIGTERM)
        # The idle session is told at once.
        code, text = idle.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.3.2", " ".join(text))
        # New connections are refused (the listener is closed).
        wait_for(lambda: not harness.wait_port("127.0.0.1", self.mw.port, 0.2), 10, "the listener to close")
        # The session in a transaction finishes it; its next command gets 421 4.3.2.
        self.assertEqual(busy.cmd("RCPT TO:<z@slow.example.test>")[0], 250)
        self.assertEqual(busy.cmd("DATA")[0], 354)
        marker = "DRAIN-%s" % uuid.uuid4().hex[:12]
        code, text = busy.cmd("Subject: %s\r\nFrom: <%s>\r\n\r\nbody\r\n." % (marker, LAB_SENDER))
        self.assertEqual(code, 250, text)
        qid = " ".join(text).split("queued as ")[1].split()[0]
        code, text = busy.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("4.3.2", " ".join(text))
        self.assertEqual(self.mw.proc.wait(timeout=30), 0, self.mw.log()[-3000:])
        # The message acknowledged during the drain is queued for the next start.
        self.assertIn("z@slow.example.test", json.dumps(self.mw.queue_show(qid)))


if __name__ == "__main__":
    unittest.main()
