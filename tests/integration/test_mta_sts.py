"""MTA-STS (RFC 8461) end to end: the lab's DNS serves _mta-sts TXT records and mta-sts.<domain>
addresses, a lab HTTPS server (certificate from the lab CA) serves the policies, mailward fetches
them through its own resolver and decide() enforces them: enforce with a matching MX -> delivered at
verify over TLS; enforce whose mx patterns match no MX -> never delivered (held); testing mode ->
reported only; an unchanged policy id -> no refetch; a policy served with the wrong media type, by
a redirect, over 64 KiB or with a certificate from an untrusted CA -> ignored (no policy), and the
reasons say so; a policy whose max_age ran out is fetched again and the new one applies; a fetched
enforce policy survives a restart of mailward while the policy host is gone."""
import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import Mailward, TempDir, wait_for  # noqa: E402
from mwlab import PolicyServer, free_port, received_tls, standard_lab  # noqa: E402

SENDER = "alice@tls.example.test"
DOMAINS = ["sts-ok.example.test", "sts-bad.example.test", "sts-testing.example.test", "sts-type.example.test",
           "sts-redirect.example.test", "sts-big.example.test", "sts-expiry.example.test",
           "sts-persist.example.test"]
UNTRUSTED = "sts-untrusted.example.test"  # its policy host's certificate is self-signed


def submit(mw, rcpt, marker):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        s.mail(SENDER)
        s.rcpt(rcpt)
        code, resp = s.data(("Subject: %s\r\n\r\nbody %s\r\n" % (marker, marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


class MtaStsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        https_addr = "%s.77" % lab.block
        port = free_port([https_addr])
        cert, key = lab.ca.issue("mta-sts.sts-ok.example.test", ["mta-sts." + d for d in DOMAINS])
        cls.https = PolicyServer(https_addr, port, cert, key)
        cls.https.set_policy("sts-ok.example.test", "enforce", ["mx.tls.example.test"])
        cls.https.set_policy("sts-bad.example.test", "enforce", ["mx.elsewhere.example.test"])
        cls.https.set_policy("sts-testing.example.test", "testing", ["mx.elsewhere.example.test"])
        cls.https.set_policy("sts-type.example.test", "enforce", ["mx.elsewhere.example.test"],
                             content_type="text/html")
        # Answers that must all be ignored (each would hold the mail if it were taken as a policy).
        cls.https.set_response("sts-redirect.example.test", 302, "text/plain", "moved\n",
                               {"Location": "https://mta-sts.sts-bad.example.test:%d/.well-known/mta-sts.txt" % port})
        big = "version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n" + "mx: mx.elsewhere.example.test\r\n" * 3000
        cls.https.set_response("sts-big.example.test", 200, "text/plain", big)
        cls.https.set_policy("sts-expiry.example.test", "enforce", ["mx.tls.example.test"], max_age=3)
        cls.https.set_policy("sts-persist.example.test", "enforce", ["mx.elsewhere.example.test"])
        untrusted_addr = "%s.78" % lab.block
        cert2, key2 = lab.ca.self_signed("mta-sts." + UNTRUSTED)
        cls.untrusted = PolicyServer(untrusted_addr, port, cert2, key2)
        cls.untrusted.set_policy(UNTRUSTED, "enforce", ["mx.elsewhere.example.test"])
        for d in DOMAINS + [UNTRUSTED]:
            lab.dns.add_zone(d, [("@", "MX", "10 mx.tls.example.test."),
                                 ("_mta-sts", "TXT", '"v=STSv1; id=20261128a;"'),
                                 ("mta-sts", "A", untrusted_addr if d == UNTRUSTED else https_addr)])
        lab.mx.accept_domains(DOMAINS + [UNTRUSTED])
        lab.start()
        cls.https.start()
        cls.untrusted.start()
        extra = lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["3s"]
        extra["policy"] = {"mta_sts_port": port}
        cls.mw = Mailward(cls.tmp.path, tls=False, extra=extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.https.stop()
            cls.untrusted.stop()
            cls.lab.stop()
            cls.tmp.cleanup()

    def state(self, qid):
        return self.mw.queue_show(qid)["recipients"][0]

    def reasons(self, qid):
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertTrue(lines, "no delivery log line for %s" % qid)
        return lines[-1]

    def test_enforce_with_matching_mx_delivers_at_verify(self):
        before = self.https.count("sts-ok.example.test")  # `mailward check` fetches too (its own cache)
        qid = submit(self.mw, "bob@sts-ok.example.test", "sts-ok-1")
        wait_for(lambda: self.state(qid)["state"] == "delivered", what="delivery")
        line = self.reasons(qid)
        self.assertEqual(line["required_level"], "verify")
        self.assertTrue(any("MTA-STS enforce" in r for r in line["level_reasons"]), line)
        self.assertTrue(any(r.startswith("mta-sts: enforce") for r in line["level_reasons"]), line)
        msgs = [m for m in self.lab.mx.wait_for_messages("sts-ok.example.test") if b"sts-ok-1" in m]
        self.assertEqual(len(msgs), 1)
        self.assertIsNotNone(received_tls(msgs[0]))
        # A second message: the TXT id is unchanged and the policy fresh: no second fetch.
        fetched = self.https.count("sts-ok.example.test")
        self.assertEqual(fetched, before + 1)
        qid2 = submit(self.mw, "bob@sts-ok.example.test", "sts-ok-2")
        wait_for(lambda: self.state(qid2)["state"] == "delivered", what="second delivery")
        self.assertEqual(self.https.count("sts-ok.example.test"), fetched)
        self.assertTrue(any("cached" in r for r in self.reasons(qid2)["level_reasons"]), self.reasons(qid2))

    def test_enforce_without_matching_mx_is_never_delivered(self):
        qid = submit(self.mw, "bob@sts-bad.example.test", "sts-bad-1")
        r = wait_for(lambda: (s := self.state(qid))["attempts"] >= 1 and s, what="an attempt")
        self.assertEqual(r["state"], "queued")
        self.assertIn("no MX host of sts-bad.example.test may be used", r["last_error"])
        line = self.reasons(qid)
        self.assertTrue(any("MTA-STS enforce" in x for x in line["level_reasons"]), line)
        time.sleep(1)
        self.assertEqual([m for m in self.lab.mx.messages("sts-bad.example.test") if b"sts-bad-1" in m], [])

    def test_testing_mode_only_reports(self):
        qid = submit(self.mw, "bob@sts-testing.example.test", "sts-testing-1")
        wait_for(lambda: self.state(qid)["state"] == "delivered", what="delivery")
        line = self.reasons(qid)
        # Delivered although the policy's mx patterns match no MX host: testing is not enforced.
        self.assertTrue(any("MTA-STS testing" in x for x in line["level_reasons"]), line)
        self.assertFalse(any("MTA-STS enforce" in x for x in line["level_reasons"]), line)

    def test_policy_with_wrong_media_type_is_ignored(self):
        qid = submit(self.mw, "bob@sts-type.example.test", "sts-type-1")
        wait_for(lambda: self.state(qid)["state"] == "delivered", what="delivery")
        line = self.reasons(qid)
        self.assertTrue(any(x.startswith("mta-sts:") and "fail" in x for x in line["level_reasons"]), line)
        self.assertFalse(any("MTA-STS enforce" in x for x in line["level_reasons"]), line)
        self.assertGreaterEqual(self.https.count("sts-type.example.test"), 1)

    def test_redirect_oversize_and_untrusted_policies_are_ignored(self):
        cases = [("sts-redirect.example.test", "redirect", self.https),
                 ("sts-big.example.test", "larger than", self.https),
                 (UNTRUSTED, "certificate", self.untrusted)]
        for domain, why, server in cases:
            with self.subTest(domain=domain):
                qid = submit(self.mw, "bob@" + domain, "ignored-" + domain)
                wait_for(lambda: self.state(qid)["state"] == "delivered", what="delivery to " + domain)
                line = self.reasons(qid)
                self.assertFalse(any("MTA-STS enforce" in x for x in line["level_reasons"]), line)
                sts = [x for x in line["level_reasons"] if x.startswith("mta-sts:")]
                self.assertTrue(sts and "fetch failed" in sts[0] and why in sts[0], line)
                if server is self.https:  # (the untrusted one is never reached past the handshake)
                    self.assertGreaterEqual(server.count(domain), 1, "the policy host was asked")

    def test_expired_policy_is_fetched_again_and_the_new_one_applies(self):
        domain = "sts-expiry.example.test"
        qid = submit(self.mw, "bob@" + domain, "expiry-1")
        wait_for(lambda: self.state(qid)["state"] == "delivered", what="delivery under the first policy")
        first = self.https.count(domain)
        self.assertGreaterEqual(first, 1)
        # The policy host now names another MX; the TXT id stays the same. Once max_age (3 s) has
        # passed, mailward must fetch again and hold the mail.
        self.https.set_policy(domain, "enforce", ["mx.elsewhere.example.test"], max_age=3)
        time.sleep(4)
        qid2 = submit(self.mw, "bob@" + domain, "expiry-2")
        r = wait_for(lambda: (s := self.state(qid2))["attempts"] >= 1 and s, what="an attempt")
        self.assertEqual(r["state"], "queued")
        self.assertIn("no MX host of %s may be used" % domain, r["last_error"])
        self.assertGreater(self.https.count(domain), first, "fetched again after max_age")
        self.assertTrue(any("fetched" in x for x in self.reasons(qid2)["level_reasons"] if x.startswith("mta-sts:")))

    def test_enforce_policy_survives_a_restart_while_the_policy_host_is_gone(self):
        domain = "sts-persist.example.test"
        qid = submit(self.mw, "bob@" + domain, "persist-1")
        r = wait_for(lambda: (s := self.state(qid))["attempts"] >= 1 and s, what="an attempt")
        self.assertIn("no MX host of %s may be used" % domain, r["last_error"])
        fetched = self.https.count(domain)
        self.mw.stop()
        self.https.set_response(domain, 404, "text/plain", "gone\n")  # the policy host forgot it
        self.mw.start()
        # The policy is in the store (shared by every node on it), not in a file of its own.
        self.assertFalse(os.path.exists(os.path.join(self.mw.data_dir, "mta-sts-cache.json")))
        qid2 = submit(self.mw, "bob@" + domain, "persist-2")
        r = wait_for(lambda: (s := self.state(qid2))["attempts"] >= 1 and s, what="an attempt after restart")
        self.assertEqual(r["state"], "queued")
        self.assertIn("no MX host of %s may be used" % domain, r["last_error"])
        sts = [x for x in self.reasons(qid2)["level_reasons"] if x.startswith("mta-sts:")]
        self.assertTrue(sts and "enforce" in sts[0] and "cached" in sts[0], sts)
        self.assertEqual(self.https.count(domain), fetched, "the persisted policy was used, nothing fetched")
        time.sleep(1)
        self.assertEqual([m for m in self.lab.mx.messages(domain) if b"persist-" in m], [])

    def test_check_reports_the_policy_and_which_mx_hosts_match(self):
        import json
        ok = self.mw.cli("check", "sts-ok.example.test", "--json", check=False)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        sts = json.loads(ok.stdout)["mta_sts"]
        self.assertEqual(sts["mode"], "enforce")
        self.assertEqual(sts["mx"], ["mx.tls.example.test"])
        self.assertEqual(sts["mx_hosts_matching"], {"mx.tls.example.test": True})
        bad = json.loads(self.mw.cli("check", "sts-bad.example.test", "--json", check=False).stdout)["mta_sts"]
        self.assertEqual(bad["mx_hosts_matching"], {"mx.tls.example.test": False})
        table = self.mw.cli("check", "sts-bad.example.test", check=False).stdout
        self.assertIn("mta-sts: enforce", table)
        self.assertIn("mx.tls.example.test: matches NO mx pattern of the policy", table)


if __name__ == "__main__":
    unittest.main()
