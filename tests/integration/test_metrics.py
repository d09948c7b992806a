"""The Prometheus endpoint ([metrics] listen, docs/operations.md "Metrics") while mail flows: a
scrape passes `promtool check metrics`; counters made in the submission process (a child of
serve) show at serve's endpoint and in data_dir/metrics.prom; a delivery moves the deliveries
counter and its histograms; a refused AUTH and a refused relay count as rejections. Bad input (a
malformed request, other paths and methods, a slowloris, too many connections) gets a clear status
or a close, never a hang."""
import http.client
import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, free_port, submit, wait_for  # noqa: E402

PASSWORD = "s3cret-passw0rd"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse(text):
    """{(name, frozenset of label pairs): value} of a scrape."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(samples, name, **labels):
    """The sum of name's samples whose labels include labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


class MetricsTest(LabTestCase):
    submission_tls = True

    @classmethod
    def configure(cls, extra):
        cls.metrics_port = free_port()
        extra["metrics"] = {"listen": "127.0.0.1:%d" % cls.metrics_port}
        # 127.0.0.1 relays without AUTH (submit()); 127.0.0.2 must authenticate.
        extra.setdefault("submission", {})["trusted_networks"] = ["127.0.0.1/32"]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.mw.add_user("alice@example.org", PASSWORD)
            wait_for(lambda: cls.try_scrape(), 30, "the metrics endpoint")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def try_scrape(cls):
        try:
            return cls.get("/metrics")
        except OSError:
            return None

    @classmethod
    def get(cls, path, method="GET", source="127.0.0.1"):
        c = http.client.HTTPConnection("127.0.0.1", cls.metrics_port, timeout=15, source_address=(source, 0))
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode()
        finally:
            c.close()

    def scrape(self):
        status, headers, body = self.get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"), headers)
        return body

    def raw(self, data, source="127.0.0.1", wait=15):
        """Sends data on a new connection; returns what came back until the server closed it."""
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(wait)
        s.connect(("127.0.0.1", self.metrics_port))
        try:
            if data:
                s.sendall(data)
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got
                got += chunk
        finally:
            s.close()

    def test_scrape_passes_promtool_while_mail_flows(self):
        qids = [submit(self.mw, "flow%d@tls.example.test" % i, "metrics-flow-%d" % i) for i in range(3)]
        body = self.scrape()  # while those are being delivered
        for text in (body, None):
            if text is None:
                wait_for(lambda: all(self.mw.queue_show(q)["recipients"][0]["state"] == "delivered" for q in qids),
                         60, "the deliveries")
                text = self.scrape()
            p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr + "\n" + text)
        for family in ("mailward_queue_recipients", "mailward_queue_messages", "mailward_deliveries_total",
                       "mailward_delivery_delay_seconds", "mailward_tls_handshake_seconds",
                       "mailward_submission_connections_total", "mailward_submission_messages_total"):
            self.assertIn("# TYPE %s " % family, text)

    def test_a_submission_and_its_delivery_move_the_counters(self):
        before = parse(self.scrape())
        qid = submit(self.mw, "bob@tls.example.test", "metrics-delivery")
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 60, "the delivery")
        after = wait_for(lambda: (a := parse(self.scrape())) and
                         total(a, "mailward_deliveries_total", result="sent") >
                         total(before, "mailward_deliveries_total", result="sent") and a, 30, "the deliveries counter")

        def grew(name, **labels):
            return total(after, name, **labels) - total(before, name, **labels)

        # Counted in the submission process, shown at serve's endpoint.
        self.assertGreaterEqual(grew("mailward_submission_connections_total", listener="submission"), 1)
        self.assertGreaterEqual(grew("mailward_submission_messages_total"), 1)
        # Counted by delivery: the outcome, its delay histogram and the STARTTLS handshake's.
        self.assertGreaterEqual(grew("mailward_deliveries_total", result="sent"), 1)
        self.assertGreaterEqual(grew("mailward_delivery_delay_seconds_count", result="sent"), 1)
        self.assertGreaterEqual(grew("mailward_delivery_delay_seconds_bucket", result="sent", le="+Inf"), 1)
        self.assertGreater(total(after, "mailward_tls_handshake_seconds_count", result="ok"), 0)
        self.assertGreaterEqual(grew("mailward_delivery_attempts_total", result="delivered"), 1)
        self.assertIn(("mailward_queue_recipients", frozenset({("state", "queued")})), after)

    def test_refused_auth_and_relay_count_as_rejections(self):
        before = parse(self.scrape())
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", self.mw.tls_port, context=ctx, timeout=60) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login("alice@example.org", "wrong-password")
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60, source_address=("127.0.0.2", 0)) as s:
            s.ehlo("untrusted.example.org")
            code, _ = s.mail("spammer@example.org")
            self.assertEqual(code, 530)
        after = wait_for(lambda: (a := parse(self.scrape())) and
                         total(a, "mailward_submission_rejections_total", reason="auth_required") >
                         total(before, "mailward_submission_rejections_total", reason="auth_required") and a, 30,
                         "the rejection counter")
        def grew(reason):
            return (total(after, "mailward_submission_rejections_total", reason=reason) -
                    total(before, "mailward_submission_rejections_total", reason=reason))

        self.assertGreaterEqual(grew("auth_failed"), 1)  # smtplib tries PLAIN, then LOGIN
        self.assertLessEqual(grew("auth_failed"), 2)
        self.assertEqual(grew("auth_required"), 1)
        self.assertGreaterEqual(total(after, "mailward_submission_connections_total", listener="implicit_tls") -
                                total(before, "mailward_submission_connections_total", listener="implicit_tls"), 1)

    def test_the_file_holds_the_same_registry(self):
        submit(self.mw, "file@tls.example.test", "metrics-file")
        path = os.path.join(self.mw.data_dir, "metrics.prom")
        text = wait_for(lambda: os.path.exists(path) and
                        "mailward_submission_connections_total{" in (t := open(path).read()) and t, 15,
                        "the children's counters in metrics.prom")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for old in ("metrics-submission.prom", "metrics-portal.prom"):
            self.assertFalse(os.path.exists(os.path.join(self.mw.data_dir, old)))

    def test_other_paths_methods_and_malformed_requests(self):
        status, _, _ = self.get("/")
        self.assertEqual(status, 404)
        status, _, _ = self.get("/metrics/x")
        self.assertEqual(status, 404)
        status, headers, _ = self.get("/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("allow"), "GET, HEAD")
        status, _, _ = self.get("/metrics", method="DELETE")
        self.assertEqual(status, 405)
        status, headers, body = self.get("/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        started = time.time()
        got = self.raw(b"THIS IS NOT HTTP\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 400 "), got[:200])
        got = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        self.assertTrue(got.startswith(b"HTTP/1.1 431 "), got[:200])
        self.assertLess(time.time() - started, 10)

    def test_slowloris_is_closed(self):
        started = time.time()
        s = socket.create_connection(("127.0.0.1", self.metrics_port), timeout=20)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes its header
            for _ in range(3):
                time.sleep(1)
                s.sendall(b"X-Drip: 1\r\n")
            self.assertEqual(s.recv(1024), b"")  # closed by the server, not by our timeout
        finally:
            s.close()
        self.assertLess(time.time() - started, 15)

    def test_too_many_connections_are_refused_and_others_still_served(self):
        idle = []
        try:
            for _ in range(8):  # the per-address limit, held open without a request
                s = socket.socket()
                s.bind(("127.0.0.5", 0))
                s.connect(("127.0.0.1", self.metrics_port))
                idle.append(s)
            time.sleep(0.3)
            got = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", source="127.0.0.5", wait=10)
            self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 429 "), got[:200])
            # Another address is served meanwhile.
            status, _, body = self.get("/metrics", source="127.0.0.6")
            self.assertEqual(status, 200)
            self.assertIn("mailward_metrics_dropped_total 0", body)
        finally:
            for s in idle:
                s.close()
        wait_for(lambda: self.get("/metrics", source="127.0.0.5")[0] == 200, 15, "the address to be served again")


if __name__ == "__main__":
    unittest.main()
