"""`mailward check DOMAIN` against the lab: every MX address probed, the verdict is the strongest level
all hosts meet with the weakest named, JSON for programs and exit codes for scripts
(0 TLS-capable, 4 not, 1 probe failed)."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

import harness  # noqa: E402
from harness import Mailward, TempDir  # noqa: E402
from mwlab import standard_lab  # noqa: E402


class CheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.lab = standard_lab(os.path.join(cls.tmp.path, "lab"))
        cls.mw = Mailward(cls.tmp.path, tls=False, extra=cls.lab.mailward_config())  # config only, not started

    @classmethod
    def tearDownClass(cls):
        cls.lab.stop()
        cls.tmp.cleanup()

    def check(self, domain, json_out=True):
        args = [harness.MAILWARD, "check", domain, "-c", self.mw.config] + (["--json"] if json_out else [])
        p = subprocess.run(args, capture_output=True, text=True, timeout=120)
        return p, (json.loads(p.stdout) if json_out and p.stdout.strip() else None)

    def test_verdicts(self):
        cases = [
            # domain, exit code, verdict, weakest host
            ("tls.example.test", 0, "verify", "mx.tls.example.test"),
            ("selfsigned.example.test", 0, "encrypt", "mx.selfsigned.example.test"),
            ("wrongname.example.test", 0, "encrypt", "mx.wrongname.example.test"),
            ("notls.example.test", 4, "may", "mx.notls.example.test"),
            ("mixed.example.test", 4, "may", "mx2.mixed.example.test"),
            ("dane.example.test", 0, "dane", "mx.dane.example.test"),
            ("danebad.example.test", 0, "encrypt", "mx.danebad.example.test"),
            ("v6.example.test", 0, "verify", "mx.v6.example.test"),
        ]
        for domain, code, verdict, weakest in cases:
            with self.subTest(domain=domain):
                p, rep = self.check(domain)
                self.assertEqual(p.returncode, code, p.stdout + p.stderr)
                self.assertEqual(rep["verdict"], verdict, json.dumps(rep, indent=1))
                self.assertTrue(rep["weakest"].startswith(weakest), rep["weakest"])

    def test_every_mx_address_is_probed(self):
        p, rep = self.check("mixed.example.test")
        by_host = {h["host"]: h for h in rep["hosts"]}
        self.assertEqual(set(by_host), {"mx1.mixed.example.test", "mx2.mixed.example.test"})
        self.assertTrue(by_host["mx1.mixed.example.test"]["starttls"])
        self.assertEqual(by_host["mx1.mixed.example.test"]["level"], "verify")
        self.assertEqual(by_host["mx1.mixed.example.test"]["tls"]["protocol"], "TLSv1.3")
        self.assertEqual(len(by_host["mx1.mixed.example.test"]["tls"]["spki_sha256"]), 64)
        self.assertFalse(by_host["mx2.mixed.example.test"]["starttls"])
        self.assertIsNone(by_host["mx2.mixed.example.test"]["tls"])

    def test_dane_facts(self):
        p, rep = self.check("danebad.example.test")
        h = rep["hosts"][0]
        self.assertTrue(rep["mx_secure"])
        self.assertTrue(h["tlsa"]["secure"])
        self.assertFalse(h["tlsa"]["matched"])
        self.assertIn("TLSA", h["why_not_higher"])

    def test_table_for_people(self):
        p, _ = self.check("mixed.example.test", json_out=False)
        self.assertEqual(p.returncode, 4)
        self.assertIn("mixed.example.test: verdict may (NOT TLS-capable", p.stdout)
        self.assertIn("mx2.mixed.example.test", p.stdout)
        self.assertIn("STARTTLS not offered", p.stdout)

    def test_failures(self):
        for domain, needle in [("nullmx.example.test", "null MX"), ("nosuch.example.test", "NXDOMAIN"),
                               ("bogus.example.test", "DNS")]:
            with self.subTest(domain=domain):
                p, _ = self.check(domain, json_out=False)
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                self.assertIn(needle, p.stderr)


if __name__ == "__main__":
    unittest.main()
