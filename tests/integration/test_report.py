"""`mailward report` ("Who supports TLS?") over real deliveries into the lab: two messages to a domain
with a CA certificate (verify), one to a DANE domain, one to a domain without STARTTLS under
tls-or-escrow (escrowed; its notice goes there in plaintext). `report --json` counts what happened;
`report --html FILE` is opened in headless Chromium (Debian's /usr/bin/chromium, playwright-core,
tests/browser/report_check.mjs): the title, one bar per day, one segment per non-zero count, the
domain names, a domain name with HTML metacharacters (put into the delivery log by the test: the lab
cannot take such a recipient) shown as text, and no request besides the file. Bad input: --since not
a duration, an unwritable --html path, an unreadable delivery log: one stderr line, non-zero exit.
The same tests run on both store backends: SQLite (ReportTest) and PostgreSQL (ReportPostgresTest,
a private PostgreSQL 15 from tests/support/pg_instance.py)."""
import datetime
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from harness import LabTestCase, submit, wait_for  # noqa: E402
from pg_instance import PgInstance  # noqa: E402

BROWSER_DIR = os.path.join(os.path.dirname(__file__), "..", "browser")
OUT_DIR = os.path.join(os.environ.get("MAILWARD_TEST_OUT", "/tmp/mailward-test-output"), "report")
HOSTILE = "<img src=x onerror=alert(1)>.example"


class ReportTest(LabTestCase):
    portal_cert = True  # escrow's set-up, as test_escrow's

    @classmethod
    def configure(cls, extra):
        # The counts below are of these four messages and the escrow notice: no notice to the
        # sender about the escrow (it would be one more delivery at verify, at a time of its own).
        extra.setdefault("escrow", {})["notify_sender"] = []

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        mw = cls.mw
        cls.qids = {}
        for n, rcpt in enumerate(("a@tls.example.test", "b@tls.example.test", "c@dane.example.test",
                                  "d@notls.example.test")):
            cls.qids[rcpt] = submit(mw, rcpt, "report-%d" % n)
        # Delivered, delivered, delivered, escrowed - and the escrow notice delivered too.
        for rcpt, qid in cls.qids.items():
            want = "escrowed" if rcpt.endswith("@notls.example.test") else "delivered"
            wait_for(lambda: mw.queue_show(qid)["recipients"][0]["state"] == want, 90,
                     "%s %s" % (rcpt, want))
        wait_for(lambda: any(l["result"] == "delivered" and l["recipient"].endswith("@notls.example.test")
                             for l in mw.delivery_log()), 90, "the escrow notice delivered")

    def report_json(self, *args):
        return json.loads(self.mw.cli("report", "--json", *args).stdout)

    def assertOneLineError(self, p, text):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn(text, lines[0])

    def test_json_counts_match_the_deliveries(self):
        r = self.report_json("--since", "1d")
        self.assertEqual(r["since"], "1d")
        log = self.mw.delivery_log()
        notices = [l for l in log if l["result"] == "delivered" and l["recipient"].endswith("@notls.example.test")]
        self.assertEqual(len(notices), 1, notices)
        self.assertEqual(r["messages"]["by_level"], {"none": 1, "may": 0, "encrypt": 0, "verify": 2, "dane": 1})
        self.assertEqual(r["messages"]["delivered"], 4)
        self.assertEqual(r["messages"]["escrowed"], 1)
        self.assertEqual(r["domains"]["total"], 3)
        self.assertEqual(r["domains"]["by_level"], {"none": 1, "may": 0, "encrypt": 0, "verify": 1, "dane": 1})
        rows = {d["domain"]: d for d in r["domains"]["rows"]}
        self.assertEqual(rows["tls.example.test"]["weakest"], "verify")
        self.assertEqual(rows["dane.example.test"]["weakest"], "dane")
        self.assertEqual(rows["notls.example.test"]["weakest"], "none")
        self.assertEqual(rows["notls.example.test"]["escrowed"], 1)
        self.assertEqual(r["escrow"]["sealed"], 1)
        self.assertEqual(r["escrow"]["active"], 1)
        self.assertEqual(r["escrow"]["read"], 0)
        self.assertEqual(r["escrow"]["read_rate"], 0.0)
        self.assertEqual(r["top_escrow_domains"], [{"domain": "notls.example.test", "escrowed": 1}])
        # The first-contact probes taught mailward the levels: learned in the period.
        learned = {c["domain"]: c for c in r["learned"]["changes"]}
        self.assertEqual(learned["tls.example.test"]["level"], "verify")
        self.assertEqual(learned["dane.example.test"]["level"], "dane")
        self.assertEqual(learned["tls.example.test"]["change"], "learned")
        self.assertEqual(r["log"]["lines"], len(log))
        self.assertEqual(r["log"]["skipped"], 0)
        # Every day of the period has a bucket; today's holds the deliveries.
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        days = {d["date"]: d for d in r["days"]}
        self.assertIn(today, days)
        self.assertEqual(days[today]["domains"], {"none": 1, "may": 0, "encrypt": 0, "verify": 1, "dane": 1})
        self.assertEqual(sum(d["delivered"]["verify"] for d in r["days"]), 2)
        self.assertEqual(sum(d["escrowed"] for d in r["days"]), 1)
        # The text summary says the same.
        text = self.mw.cli("report", "--since", "1d").stdout
        self.assertIn("messages: 4 delivered (none 1, may 0, encrypt 0, verify 2, dane 1), 1 escrowed", text)
        self.assertIn("notls.example.test", text)

    def test_html_in_chromium(self):
        self.assertTrue(os.path.exists("/usr/bin/chromium"), "scripts/setup installs chromium")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")),
                        "scripts/setup installs playwright-core (npm ci in tests/browser)")
        # A recipient domain with HTML metacharacters, as a line of the delivery log (lines are
        # appended whole, as serve writes them).
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with open(os.path.join(self.mw.data_dir, "delivery.log"), "a") as f:
            f.write(json.dumps({"time": now, "queue_id": "INJECTED", "recipient": "x@" + HOSTILE,
                                "mx": "mx.x", "result": "delivered", "tls": None}) + "\n")
        try:
            r = self.report_json("--since", "3d")
            html = os.path.join(self.tmp.path, "report.html")
            p = self.mw.cli("report", "--since", "3d", "--html", html)
            self.assertIn("report written to", p.stdout)
        finally:
            self.drop_injected()
        node = subprocess.run(["node", os.path.join(BROWSER_DIR, "report_check.mjs"), html, OUT_DIR],
                              cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120)
        self.assertEqual(node.returncode, 0, node.stderr[-4000:])
        b = json.loads(node.stdout)["result"]
        self.assertEqual(b["title"], "Who supports TLS? mailward report")
        self.assertEqual(b["heading"], "Who supports TLS?")
        # One bar per day of the period, one segment per non-zero (day, level or escrowed) count.
        self.assertEqual(b["dayBars"], len(r["days"]))
        want = sorted([d["date"], lvl, n] for d in r["days"] for lvl, n in d["delivered"].items() if n)
        want += [[d["date"], "escrowed", d["escrowed"]] for d in r["days"] if d["escrowed"]]
        self.assertEqual(sorted(b["daySegmentParts"]), sorted(want))
        self.assertEqual(b["daySegments"], 4)  # today: none, verify, dane, escrowed
        self.assertEqual(sorted(b["domainShare"]), [["dane", 1], ["none", 2], ["verify", 1]])
        for domain in ("tls.example.test", "dane.example.test", "notls.example.test", HOSTILE):
            self.assertIn(domain, b["bodyText"])
        self.assertIn("notls.example.test", b["topEscrow"])
        # The hostile name is text, not markup: nothing injected, nothing ran, nothing loaded.
        self.assertIn(HOSTILE, b["domainsTable"])
        self.assertEqual(b["images"], 0)
        self.assertEqual(b["scripts"], 0)
        self.assertEqual(b["dialogs"], [])
        self.assertEqual(b["blocked"], [], "the page asked for something besides itself")
        self.assertEqual(b["requests"], ["file://" + os.path.abspath(html)])
        self.assertGreater(b["svgBox"]["width"], 100)
        self.assertGreater(os.path.getsize(b["screenshot"]), 1000)

    def drop_injected(self):
        path = os.path.join(self.mw.data_dir, "delivery.log")
        with open(path) as f:
            keep = [l for l in f if "INJECTED" not in l]
        with open(path, "w") as f:
            f.writelines(keep)

    def test_bad_input(self):
        self.assertOneLineError(self.mw.cli("report", "--since", "soon", check=False), "not a duration")
        self.assertOneLineError(self.mw.cli("report", "--since", "-3d", check=False), "")
        self.assertOneLineError(self.mw.cli("report", "--since", "400d", check=False), "366d")
        self.assertOneLineError(self.mw.cli("report", "--html", "/nonexistent-dir/r.html", check=False),
                                "cannot write the report to /nonexistent-dir/r.html")
        self.assertOneLineError(self.mw.cli("report", "--html", "/proc/r.html", check=False),
                                "cannot write the report to /proc/r.html")
        self.assertOneLineError(self.mw.cli("report", "--html", self.tmp.path, check=False), "is a directory")
        self.assertOneLineError(self.mw.cli("report", "--json", "--html", "/tmp/x.html", check=False), "excludes")
        # An unreadable delivery log (here a directory where the file should be, with its own config).
        data = os.path.join(self.tmp.path, "bad-data")
        os.makedirs(os.path.join(data, "delivery.log"))
        conf = os.path.join(self.tmp.path, "bad.toml")
        with open(conf, "w") as f:
            f.write('[server]\ndata_dir = "%s"\n' % data)
        p = subprocess.run([os.environ.get("MAILWARD_BIN", "mailward"), "report", "-c", conf],
                           capture_output=True, text=True, timeout=60)
        self.assertOneLineError(p, "cannot read the delivery log")


class ReportPostgresTest(ReportTest):
    """The same deliveries and checks with [store] backend = "postgres"."""

    @classmethod
    def setUpClass(cls):
        cls.pg = PgInstance()
        cls.pg.start()
        try:
            super().setUpClass()
        except BaseException:
            cls.pg.stop()
            raise

    @classmethod
    def configure(cls, extra):
        super().configure(extra)
        extra["store"] = {"backend": "postgres", "dsn": cls.pg.dsn}

    def test_the_store_is_postgres(self):
        with open(self.mw.config) as f:
            self.assertIn('backend = "postgres"', f.read())
        self.assertFalse(os.path.exists(os.path.join(self.mw.data_dir, "mailward.db")))

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.pg.stop()


if __name__ == "__main__":
    unittest.main()
