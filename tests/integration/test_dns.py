"""mailward's libunbound resolver (dns_probe, env DNS_PROBE_BIN) against a real authoritative DNS: the
lab's knotd on loopback with DNSSEC-signed and unsigned zones and its exported trust anchors
(tests/lab/mwlab). Secure, insecure and bogus (broken signature, expired, wrong anchor, stripped)
answers; NXDOMAIN and NODATA; MX lists with the null MX (RFC 7505), TLSA, TXT, AAAA ::1; special-use
names (.test, localhost., invalid.) sent to the configured server; timeouts against a server that
never answers; the root anchor alone failing every answer; a bad anchor file stopping startup."""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import TempDir  # noqa: E402
from mwlab import BlackHoleDns, DnsServer  # noqa: E402

PROBE = os.environ.get("DNS_PROBE_BIN", "dns_probe")

SPKI = "8bd1da95272f7fa4ffb24137fc0ed03aae67e5c4d8b3c50734e1050a7920b922"


def probe(*pairs, server=None, anchor=None, timeout_ms=5000, threads=1, expect_setup_error=False):
    """Runs dns_probe on (name, type) pairs; returns its JSON list (or the setup error object)."""
    args = [PROBE, "--timeout", str(timeout_ms), "--threads", str(threads)]
    for s in ([server] if isinstance(server, str) else server or []):
        args += ["--server", s]
    if anchor is not None:
        args += ["--anchor", str(anchor)]
    for name, rtype in pairs:
        args += [name, rtype]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if expect_setup_error:
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        return json.loads(p.stdout), p.stderr
    assert p.returncode == 0, f"dns_probe exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    out = json.loads(p.stdout)
    assert len(out) == len(pairs), out
    return out


class DnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        dns = cls.dns = DnsServer(cls.tmp.path)
        dns.add_zone("test", [("@", "TXT", '"the test zone"')])  # the lab's unsigned parent of all
        dns.add_zone("signed.example.test", [
            ("@", "MX", "10 mx1.signed.example.test."),
            ("@", "MX", "20 MX2.Signed.Example.Test."),  # case must not survive
            ("mx1", "A", "127.0.0.21"),
            ("mx1", "AAAA", "::1"),
            ("_25._tcp.mx1", "TLSA", f"3 1 1 {SPKI}"),
            ("@", "TXT", '"v=spf1" " -all"'),
            ("_mta-sts", "TXT", '"v=STSv1; id=20240101"'),
        ], signed=True)
        dns.add_zone("plain.example.test", [
            ("@", "MX", "10 mx.plain.example.test."),
            ("mx", "A", "127.0.0.22"),
            ("mx", "A", "127.0.0.23"),
            ("v6", "AAAA", "::1"),
            ("nullmx", "MX", "0 ."),
            ("_25._tcp.mx", "TLSA", "2 0 1 " + "ab" * 32),
            ("multi", "TXT", '"first"'),
            ("multi", "TXT", '"sec" "ond"'),
        ])
        dns.add_zone("nullmx.example.test", [("@", "MX", "0 ."), ("@", "A", "127.0.0.24")], signed=True)
        for kind in ("signature", "expired", "anchor", "stripped"):
            dns.add_zone(f"{kind}.bogus.example.test", [("@", "MX", f"10 mx.{kind}.bogus.example.test."),
                                                        ("mx", "A", "127.0.0.25")], bogus=kind)
        # Special-use names (RFC 6761): libunbound would answer these itself unless told otherwise.
        dns.add_zone("localhost", [("@", "A", "127.0.0.26")])
        dns.add_zone("invalid", [("x", "A", "127.0.0.27")])
        dns.start()
        cls.ds = dns.trust_anchor_file("DS")
        cls.dnskey = dns.trust_anchor_file("DNSKEY")

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.tmp.cleanup()

    def q(self, *pairs, **kw):
        kw.setdefault("server", self.dns.server)
        kw.setdefault("anchor", self.ds)
        return probe(*pairs, **kw)

    def assertAnswer(self, r, security, records=None, nodata=False):
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["security"], security, r)
        self.assertEqual(r["nodata"], nodata, r)
        if records is not None:
            self.assertEqual(r["records"], records, r)

    def assertError(self, r, error, temporary=True):
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"], error, r)
        self.assertEqual(r["temporary"], temporary, r)

    def test_secure_answers_from_a_signed_zone(self):
        mx, a, aaaa, tlsa, txt, sts = self.q(
            ("signed.example.test", "MX"), ("mx1.signed.example.test", "A"), ("mx1.signed.example.test", "AAAA"),
            ("_25._tcp.mx1.signed.example.test", "TLSA"), ("signed.example.test", "TXT"),
            ("_mta-sts.signed.example.test", "TXT"))
        self.assertAnswer(mx, "secure")
        self.assertEqual(sorted((m["preference"], m["exchange"]) for m in mx["records"]),
                         [(10, "mx1.signed.example.test"), (20, "mx2.signed.example.test")])
        self.assertAnswer(a, "secure", ["127.0.0.21"])
        self.assertAnswer(aaaa, "secure", ["::1"])
        self.assertAnswer(tlsa, "secure", [{"usage": 3, "selector": 1, "matching_type": 1, "data": SPKI}])
        self.assertAnswer(txt, "secure", ["v=spf1 -all"])
        self.assertAnswer(sts, "secure", ["v=STSv1; id=20240101"])

    def test_dnskey_anchor_validates_as_well(self):
        [mx] = self.q(("signed.example.test", "MX"), anchor=self.dnskey)
        self.assertAnswer(mx, "secure")

    def test_insecure_answers_from_an_unsigned_zone(self):
        mx, a, tlsa, txt, nullmx = self.q(
            ("plain.example.test", "MX"), ("mx.plain.example.test", "A"), ("_25._tcp.mx.plain.example.test", "TLSA"),
            ("multi.plain.example.test", "TXT"), ("nullmx.plain.example.test", "MX"))
        self.assertAnswer(mx, "insecure", [{"preference": 10, "exchange": "mx.plain.example.test"}])
        self.assertAnswer(a, "insecure")
        self.assertEqual(sorted(a["records"]), ["127.0.0.22", "127.0.0.23"])
        self.assertAnswer(tlsa, "insecure", [{"usage": 2, "selector": 0, "matching_type": 1, "data": "ab" * 32}])
        self.assertAnswer(txt, "insecure")
        self.assertEqual(sorted(txt["records"]), ["first", "second"])  # strings of one RR concatenated
        self.assertAnswer(nullmx, "insecure", [{"preference": 0, "exchange": ""}])

    def test_null_mx_in_a_signed_zone(self):
        [mx] = self.q(("nullmx.example.test", "MX"))
        self.assertAnswer(mx, "secure", [{"preference": 0, "exchange": ""}])

    def test_bogus_zones_are_errors_not_answers(self):
        kinds = ("signature", "expired", "anchor", "stripped")
        results = self.q(*[(f"{k}.bogus.example.test", "MX") for k in kinds],
                         *[(f"mx.{k}.bogus.example.test", "A") for k in kinds])
        for r in results:
            self.assertError(r, "bogus")

    def test_nxdomain_and_nodata(self):
        nx_plain, nx_signed, nodata_plain, nodata_signed, nx_tlsa = self.q(
            ("nope.plain.example.test", "A"), ("nope.signed.example.test", "MX"), ("v6.plain.example.test", "A"),
            ("mx1.signed.example.test", "TXT"), ("_25._tcp.mx.signed.example.test", "TLSA"))
        self.assertError(nx_plain, "nxdomain", temporary=False)
        self.assertError(nx_signed, "nxdomain", temporary=False)
        self.assertAnswer(nodata_plain, "insecure", [], nodata=True)
        self.assertAnswer(nodata_signed, "secure", [], nodata=True)  # NSEC proves the type absent
        self.assertError(nx_tlsa, "nxdomain", temporary=False)

    def test_special_use_names_go_to_the_configured_server(self):
        test_txt, localhost, invalid, aaaa = self.q(
            ("test", "TXT"), ("localhost", "A"), ("x.invalid", "A"), ("v6.plain.example.test", "AAAA"))
        self.assertAnswer(test_txt, "insecure", ["the test zone"])
        self.assertAnswer(localhost, "insecure", ["127.0.0.26"])  # not libunbound's own 127.0.0.1
        self.assertAnswer(invalid, "insecure", ["127.0.0.27"])
        self.assertAnswer(aaaa, "insecure", ["::1"])

    def test_anchor_file_without_signed_zones_makes_everything_insecure(self):
        empty = os.path.join(self.tmp.path, "empty-anchors")
        with open(empty, "w") as f:
            f.write("\n")
        mx, bogus = self.q(("signed.example.test", "MX"), ("signature.bogus.example.test", "MX"), anchor=empty)
        self.assertAnswer(mx, "insecure")
        self.assertAnswer(bogus, "insecure")  # broken signatures under no anchor are not checked

    def test_root_anchor_without_a_reachable_root_fails_every_answer(self):
        signed, plain = self.q(("signed.example.test", "MX"), ("plain.example.test", "MX"), anchor="")
        for r in (signed, plain):
            self.assertFalse(r["ok"], r)
            self.assertIn(r["error"], ("bogus", "servfail"), r)
            self.assertTrue(r["temporary"], r)

    def test_bad_anchor_file_stops_startup(self):
        missing, _ = probe(("signed.example.test", "MX"), server=self.dns.server,
                           anchor=os.path.join(self.tmp.path, "no-such-file"), expect_setup_error=True)
        self.assertIn("no-such-file", missing["setup_error"])
        self.assertIn("No such file", missing["setup_error"])
        garbage = os.path.join(self.tmp.path, "garbage-anchors")
        with open(garbage, "w") as f:
            f.write("this is not a zone file\n")
        bad, stderr = probe(("signed.example.test", "MX"), server=self.dns.server, anchor=garbage,
                            expect_setup_error=True)
        self.assertIn("garbage-anchors", bad["setup_error"])
        self.assertIn("garbage-anchors", stderr)  # libunbound's own reason (line and column)

    def test_many_queries_at_once_on_several_threads(self):
        pairs = []
        for _ in range(15):
            pairs += [("signed.example.test", "MX"), ("mx.plain.example.test", "A"), ("nope.plain.example.test", "A"),
                      ("signature.bogus.example.test", "MX")]
        results = self.q(*pairs, threads=4)
        for i in range(0, len(results), 4):
            self.assertAnswer(results[i], "secure")
            self.assertAnswer(results[i + 1], "insecure")
            self.assertError(results[i + 2], "nxdomain", temporary=False)
            self.assertError(results[i + 3], "bogus")

    def test_server_that_never_answers_times_out_within_the_deadline(self):
        with BlackHoleDns() as hole:
            start = time.monotonic()
            results = probe(("a.example.test", "A"), ("example.test", "MX"), ("_25._tcp.x.test", "TLSA"),
                            server=hole.server, anchor=self.ds, timeout_ms=1500, threads=2)
            wall = time.monotonic() - start
        for r in results:
            self.assertError(r, "timeout")
            self.assertGreaterEqual(r["elapsed_ms"], 1400, r)
            self.assertLess(r["elapsed_ms"], 2500, r)
        self.assertLess(wall, 10, "the probe did not exit soon after the deadline")

    def test_second_server_is_used_when_the_first_never_answers(self):
        with BlackHoleDns() as hole:
            results = probe(*[("mx.plain.example.test", "A")] * 3, server=[hole.server, self.dns.server],
                            anchor=self.ds, timeout_ms=8000)
        for r in results:
            self.assertAnswer(r, "insecure")

    def test_frozen_server_times_out_and_recovers(self):
        self.dns.freeze()
        try:
            [r] = self.q(("frozen.plain.example.test", "A"), timeout_ms=1000)
        finally:
            self.dns.thaw()
        self.assertError(r, "timeout")
        [again] = self.q(("mx.plain.example.test", "A"))
        self.assertAnswer(again, "insecure")


if __name__ == "__main__":
    unittest.main()
