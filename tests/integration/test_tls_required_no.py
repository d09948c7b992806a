"""TLS-Required: No (RFC 8689 section 5) is honoured only from a sender given the right (issue 11,
item 1): a real `mailward serve` (sender mode tls-only) delivers into the lab's Postfix MX of
notls.example.test, which offers no STARTTLS. Proofs come from the peer: Postfix's maildir and its
Received header (no TLS), and from mailward's queue, delivery log and `queue show`.

- an account without --allow-tls-optional and an unauthenticated trusted-network client: the
  header is ignored, the message is never sent in the clear (bounced 5.7.4), the reasons say why;
- an account given the right: delivered in plaintext as the header asks;
- an active admin override is a floor the header cannot go below;
- `queue show` says whether the header is honoured or ignored, and why.
"""
import os
import smtplib
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, wait_for  # noqa: E402
from mwlab.postfix import received_tls  # noqa: E402

NOTLS = "notls.example.test"
BOGUS = "bogus.example.test"  # DNSSEC bogus: the route fails temporarily, the message stays queued
SENDER = "alice@tls.example.test"


class TlsRequiredNoTest(LabTestCase):
    submission_tls = True  # AUTH is offered inside TLS only

    @classmethod
    def configure(cls, extra):
        extra["delivery"]["retry_schedule"] = ["1h"]
        extra["dns"]["timeout"] = "3s"
        extra["policy"] = {"default_mode": "tls-only"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.mw.add_user("bob@example.com", "bob-secret-1")
            cls.mw.cli("user", "set", "bob@example.com", "--allow-tls-optional", "--sender", SENDER)
            cls.mw.add_user("eve@example.com", "eve-secret-1")
            cls.mw.cli("user", "set", "eve@example.com", "--sender", SENDER)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.n = 0

    def send(self, domain, user=None, password=None, header=True):
        """Submits one message with a unique marker; returns (queue id, marker)."""
        type(self).n += 1
        marker = "tlsreqno-%d-%d" % (os.getpid(), self.n)
        rcpt = "someone@" + domain
        head = "TLS-Required: No\r\n" if header else ""
        data = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s\r\nbody %s\r\n" %
                (SENDER, rcpt, marker, head, marker)).encode()
        if user:
            with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
                s.starttls(context=ssl._create_unverified_context())
                s.login(user, password)
                s.mail(SENDER)
                self.assertEqual(s.rcpt(rcpt)[0], 250)
                code, resp = s.data(data)
        else:
            with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
                s.ehlo("app.example.org")
                s.mail(SENDER)
                self.assertEqual(s.rcpt(rcpt)[0], 250)
                code, resp = s.data(data)
        self.assertEqual(code, 250, resp)
        return resp.decode().split("queued as ")[1].split()[0], marker

    def arrived(self, marker):
        return [m for m in self.lab.mx.messages(NOTLS) if marker.encode() in m]

    def settled(self, qid):
        """The recipient after mailward has dealt with it (not queued any more)."""
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] != "queued", 60,
                 "message %s settled" % qid)
        return self.mw.queue_show(qid)["recipients"][0]

    def reasons(self, qid):
        return [r for line in self.mw.delivery_log() if line.get("queue_id") == qid
                for r in line.get("level_reasons", [])]

    def assert_refused(self, qid, marker, why):
        rcpt = self.settled(qid)
        self.assertEqual(rcpt["state"], "failed", rcpt)
        self.assertIn("do not support TLS", rcpt["last_error"])
        statuses = [l["status"] for l in self.mw.delivery_log() if l.get("queue_id") == qid]
        self.assertIn("5.7.4", statuses)
        time.sleep(1)  # a plaintext delivery would have reached the maildir by now
        self.assertEqual(self.arrived(marker), [], "sent in the clear although the header was ignored")
        reasons = self.reasons(qid)
        self.assertTrue(any("TLS-Required: No ignored: " in r and why in r for r in reasons), reasons)

    def test_account_without_the_right_is_ignored(self):
        qid, marker = self.send(NOTLS, "eve@example.com", "eve-secret-1")
        self.assert_refused(qid, marker, "account eve@example.com may not use it")

    def test_trusted_network_client_is_ignored_by_default(self):
        qid, marker = self.send(NOTLS)
        self.assert_refused(qid, marker, "unauthenticated trusted-network clients may not use it")

    def test_account_with_the_right_goes_plaintext_but_not_below_an_override(self):
        qid, marker = self.send(NOTLS, "bob@example.com", "bob-secret-1")
        self.assertEqual(self.settled(qid)["state"], "delivered")
        msgs = wait_for(lambda: self.arrived(marker), 20, "plaintext delivery")
        self.assertEqual(len(msgs), 1)
        self.assertIsNone(received_tls(msgs[0]), "expected a plaintext delivery")
        self.assertTrue(any("account bob@example.com was given --allow-tls-optional" in r
                            for r in self.reasons(qid)))

        # An administrator's override is a floor the header cannot lower.
        self.mw.cli("policy", "set", NOTLS, "encrypt", "--reason", "partner must use TLS")
        try:
            qid, marker = self.send(NOTLS, "bob@example.com", "bob-secret-1")
            wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["attempts"] >= 1 or
                     self.mw.queue_show(qid)["recipients"][0]["state"] != "queued", 60, "an attempt")
            time.sleep(1)
            self.assertEqual(self.arrived(marker), [], "the header went below the admin override")
            self.assertNotEqual(self.mw.queue_show(qid)["recipients"][0]["state"], "delivered")
            self.assertTrue(any("lowered only to the admin's floor encrypt" in r
                                for r in self.reasons(qid)), self.reasons(qid))
        finally:
            self.mw.cli("policy", "clear", NOTLS)

    def test_queue_show_says_honoured_or_ignored(self):
        eve, _ = self.send(BOGUS, "eve@example.com", "eve-secret-1")
        bob, _ = self.send(BOGUS, "bob@example.com", "bob-secret-1")
        plain, _ = self.send(BOGUS, "bob@example.com", "bob-secret-1", header=False)
        e = self.mw.queue_show(eve)["tls_required_no"]
        self.assertFalse(e["honoured"])
        self.assertIn("account eve@example.com may not use it", e["why"])
        b = self.mw.queue_show(bob)["tls_required_no"]
        self.assertTrue(b["honoured"])
        self.assertIn("--allow-tls-optional", b["why"])
        self.assertIsNone(self.mw.queue_show(plain)["tls_required_no"])
        text = self.mw.cli("queue", "show", eve).stdout
        self.assertIn("TLS-Required: No ignored: account eve@example.com may not use it", text)

        # Taking the right back counts for messages already queued.
        self.mw.cli("user", "set", "bob@example.com", "--no-allow-tls-optional")
        try:
            self.assertFalse(self.mw.queue_show(bob)["tls_required_no"]["honoured"])
        finally:
            self.mw.cli("user", "set", "bob@example.com", "--allow-tls-optional")

    def test_policy_simulate_says_why(self):
        import json
        out = json.loads(self.mw.cli("policy", "simulate", "--tls-required-no", "--user",
                                     "eve@example.com", "--json").stdout)
        self.assertFalse(out["tls_required_no"]["allowed"])
        self.assertIn("may not use it", out["tls_required_no"]["why"])
        out = json.loads(self.mw.cli("policy", "simulate", "--tls-required-no", "--user",
                                     "bob@example.com", "--json").stdout)
        self.assertTrue(out["tls_required_no"]["allowed"])
        bad = self.mw.cli("policy", "simulate", "--user", "nobody@example.com", check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("no user 'nobody@example.com'", bad.stderr)


if __name__ == "__main__":
    unittest.main()
