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
        cls.lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        # legacy.example.test: an MX that still accepts TLS 1.0 and 1.1 (OpenSSL security level 0).
        lab = cls.lab
        legacy = lab.mx.add_listener(40, tls="starttls", cert=lab.ca.issue("mx.legacy.example.test"),
                                     hostname="mx.legacy.example.test", name="legacy",
                                     tls_protocols=">=TLSv1",
                                     options={"tls_medium_cipherlist": "DEFAULT:@SECLEVEL=0"})
        lab.dns.add_zone("legacy.example.test", [("@", "MX", "10 mx.legacy.example.test."),
                                                 ("mx", "A", legacy.address)])
        # modern.example.test: an MX that accepts TLS 1.2 and 1.3 only (Postfix's default accepts 1.0).
        modern = lab.mx.add_listener(41, tls="starttls", cert=lab.ca.issue("mx.modern.example.test"),
                                     hostname="mx.modern.example.test", name="modern",
                                     tls_protocols=">=TLSv1.2")
        lab.dns.add_zone("modern.example.test", [("@", "MX", "10 mx.modern.example.test."),
                                                 ("mx", "A", modern.address)])
        lab.mx.accept_domains(["legacy.example.test", "modern.example.test"])
        lab.start()
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

    def test_legacy_protocols_are_reported_not_rated(self):
        p, rep = self.check("legacy.example.test")
        h = rep["hosts"][0]
        self.assertEqual(h["legacy_protocols"], ["TLSv1", "TLSv1.1"], json.dumps(h, indent=1))
        self.assertEqual(h["level"], "verify", "a reported weakness, not a lower level")
        self.assertEqual(h["tls"]["protocol"], "TLSv1.3")
        p, rep = self.check("modern.example.test")
        self.assertEqual(rep["hosts"][0]["legacy_protocols"], [], "an MX limited to TLS 1.2+ refuses 1.0 and 1.1")
        self.assertEqual(rep["hosts"][0]["level"], "verify")
        p, rep = self.check("notls.example.test")
        self.assertIsNone(rep["hosts"][0]["legacy_protocols"], "not probed without STARTTLS")
        p, _ = self.check("legacy.example.test", json_out=False)
        self.assertIn("still accepts TLSv1 TLSv1.1", p.stdout)

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
