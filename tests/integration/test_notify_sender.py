"""Telling the sender (issue 14): delay notifications (RFC 3464 Action: delayed, once, after
[delivery] delay_warning_time), success notifications for NOTIFY=SUCCESS ("relayed" when the next
hop does not offer DSN; passed on to a next hop that does, RFC 3461 5.2.2), and protected originals
coming back as headers only. Real peers: the lab's knot DNS and Postfix MX listeners; the
notifications arrive in the lab's tls.example.test maildir (the sender's domain)."""
import os
import re
import smtplib
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LAB_SENDER, LabTestCase, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import standard_lab  # noqa: E402
from test_escrow import PortalClient, csrf_of, text_of  # noqa: E402


def submit_with(mw, rcpt, marker, rcpt_options=(), mail_options=()):
    """Submits one message (marker in subject and body) with RCPT parameters; returns its queue id."""
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        code, resp = s.mail(LAB_SENDER, ["ENVID=" + marker] + list(mail_options))
        assert code == 250, (code, resp)
        code, resp = s.rcpt(rcpt, list(rcpt_options))
        assert code == 250, (code, resp)
        code, resp = s.data(("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\nbody %s\r\n" %
                             (marker, LAB_SENDER, rcpt, marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


class NotifySenderTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        # nodsn.example.test: a Postfix listener that does not offer DSN in its EHLO.
        pair = lab.ca.issue("mx.nodsn.example.test")
        l = lab.mx.add_listener(40, tls="starttls", cert=pair, hostname="mx.nodsn.example.test",
                                options={"smtpd_discard_ehlo_keywords": "dsn"}, name="nodsn")
        lab.dns.add_zone("nodsn.example.test", [("@", "MX", "10 mx.nodsn.example.test."),
                                                ("mx", "A", l.address)])
        lab.mx.accept_domains(["nodsn.example.test"])
        lab.start()
        extra = lab.mailward_config()
        # Longer than the 2 s connection reuse: a retry opens a new connection (forced replies
        # apply from the next connection).
        extra["delivery"]["retry_schedule"] = ["3s"]
        extra["delivery"]["delay_warning_time"] = "5s"
        cls.mw = Mailward(cls.tmp.path, tls=False, extra=extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.lab.stop()
            cls.tmp.cleanup()

    def rcpt(self, qid):
        return self.mw.queue_show(qid)["recipients"][0]

    def notices(self, envid):
        """Notifications in the sender's maildir for the message submitted with ENVID envid."""
        return [m for m in self.lab.mx.messages("tls.example.test")
                if b"Original-Envelope-Id: " + envid.encode() in m]

    def test_delay_notification_once_then_nothing_more(self):
        rcpt = "carol-delay@tls.example.test"
        self.lab.mx.set_recipient_reply(rcpt, "450 4.2.0 mailbox busy, try later")
        try:
            marker = "delay-note-1"
            qid = submit_with(self.mw, rcpt, marker)
            got = wait_for(lambda: self.notices(marker), 60, "the delay notification")
            note = got[0]
            self.assertIn(b"Subject: Delayed Mail (still being retried)", note)
            self.assertIn(b"Action: delayed", note)
            self.assertIn(b"Status: 4.2.0", note)
            self.assertRegex(note, rb"Diagnostic-Code: smtp; 450 4\.2\.0 .*mailbox busy")
            self.assertIn(b"Will-Retry-Until: ", note)
            self.assertIn(b"Final-Recipient: rfc822; " + rcpt.encode(), note)
            # The default mode (tls-or-escrow) protects the original: its headers, never its body.
            self.assertIn(b"Content-Type: text/rfc822-headers", note)
            self.assertIn(b"Subject: " + marker.encode(), note)
            self.assertNotIn(b"body " + marker.encode(), note)
            self.assertEqual(self.rcpt(qid)["state"], "queued")
            # More attempts, no second notification.
            n = self.rcpt(qid)["attempts"]
            wait_for(lambda: self.rcpt(qid)["attempts"] >= n + 2, 60, "two more attempts")
            self.assertEqual(len(self.notices(marker)), 1)
        finally:
            self.lab.mx.set_recipient_reply(rcpt, None)
        wait_for(lambda: self.rcpt(qid)["state"] == "delivered", 60, "delivery")
        time.sleep(1)
        self.assertEqual(len(self.notices(marker)), 1)  # no success report: NOTIFY was not given

    def test_notify_failure_only_gets_no_delay_notification(self):
        rcpt = "dave-delay@tls.example.test"
        self.lab.mx.set_recipient_reply(rcpt, "450 4.2.0 mailbox busy, try later")
        try:
            marker = "delay-note-2"
            qid = submit_with(self.mw, rcpt, marker, rcpt_options=["NOTIFY=FAILURE"])
            # Past delay_warning_time (5 s), with attempts after it.
            wait_for(lambda: (r := self.rcpt(qid))["attempts"] >= 3 and r, 60, "three attempts")
            time.sleep(1)
            self.assertEqual(self.notices(marker), [])
        finally:
            self.lab.mx.set_recipient_reply(rcpt, None)

    def test_success_relayed_when_the_next_hop_offers_no_dsn(self):
        marker = "success-note-1"
        qid = submit_with(self.mw, "erin@nodsn.example.test", marker, rcpt_options=["NOTIFY=SUCCESS"])
        wait_for(lambda: self.rcpt(qid)["state"] == "delivered", 60, "delivery")
        note = wait_for(lambda: self.notices(marker), 60, "the success notification")[0]
        self.assertIn(b"Subject: Successful Mail Delivery Report", note)
        self.assertIn(b"Action: relayed", note)
        self.assertIn(b"Status: 2.0.0", note)
        self.assertIn(b"Remote-MTA: dns; mx.nodsn.example.test", note)
        self.assertNotIn(b"body " + marker.encode(), note)
        # The next hop saw no NOTIFY (it offered no DSN) and took the message.
        self.assertTrue([m for m in self.lab.mx.messages("nodsn.example.test") if marker.encode() in m])

    def test_success_is_left_to_a_next_hop_that_offers_dsn(self):
        # Postfix offers DSN: mailward passes NOTIFY=SUCCESS on and reports nothing itself; the
        # report that arrives is Postfix's own ("delivered"), not mailward's ("relayed").
        marker = "success-note-2"
        qid = submit_with(self.mw, "frank@tls.example.test", marker, rcpt_options=["NOTIFY=SUCCESS"])
        wait_for(lambda: self.rcpt(qid)["state"] == "delivered", 60, "delivery")
        note = wait_for(lambda: self.notices(marker), 60, "the next hop's success report")[0]
        self.assertIn(b"Action: delivered", note)
        self.assertNotIn(b"Action: relayed", note)
        self.assertNotRegex(note, rb"Reporting-MTA: dns; " + re.escape(self.mw.HOSTNAME.encode()) + rb"\r?\n")

    def test_escrowed_message_gets_a_notice_to_the_sender(self):
        # notls.example.test offers no STARTTLS: the default mode (tls-or-escrow) escrows, and
        # [escrow] notify_sender lists tls-or-escrow by default.
        marker = "escrow-note-1"
        rcpt = "hank@notls.example.test"
        qid = submit_with(self.mw, rcpt, marker)
        wait_for(lambda: self.rcpt(qid)["state"] == "escrowed", 90, "the seal")

        def notice():
            unfolded = [m.replace(b"\r\n ", b" ").replace(b"\n ", b" ")
                        for m in self.lab.mx.messages("tls.example.test")]
            return [m for m in unfolded
                    if b"Subject: Your message to " + rcpt.encode() + b" went through the secure portal" in m
                    and b"queue id " + qid.encode() in m]
        note = wait_for(notice, 60, "the notice to the sender")[0]
        self.assertIn(b"hank@notls.example.test", note)
        self.assertIn(b"queue id " + qid.encode(), note)
        self.assertRegex(note, rb"escrow id [0-9a-f]{16}")
        self.assertIn(b"Auto-Submitted: auto-generated", note)
        self.assertNotIn(marker.encode(), note)  # neither subject nor body
        # From the null sender: Postfix records it as Return-Path: <>.
        self.assertIn(b"Return-Path: <>", note)
        # Nothing of the message went to notls in the clear.
        self.assertEqual([m for m in self.lab.mx.messages("notls.example.test") if marker.encode() in m], [])

    def test_no_notification_when_nothing_asked(self):
        marker = "quiet-note-1"
        qid = submit_with(self.mw, "gina@nodsn.example.test", marker)
        wait_for(lambda: self.rcpt(qid)["state"] == "delivered", 60, "delivery")
        time.sleep(2)
        self.assertEqual(self.notices(marker), [])


class ReceiptsTest(LabTestCase):
    """Read and expiry receipts for an account that asks (`user add --receipts`): the recipient
    opens the escrowed message in the portal, and the sender's mailbox gets "Read: ..." once."""
    portal_cert = True
    submission_tls = True

    @classmethod
    def configure(cls, extra):
        extra["escrow"]["notify_sender"] = []  # only the receipt reaches the sender's maildir

    def test_read_receipt_after_the_recipient_opens_the_message(self):
        user, password = "alice@tls.example.test", "receipts-pass-1"
        self.mw.cli("user", "add", user, "--receipts", stdin=password + "\n")
        self.assertIn("receipts=yes", self.mw.cli("user", "list").stdout)
        rcpt = "ivy-receipt@notls.example.test"  # no STARTTLS: escrowed
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the submission port's own certificate
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.starttls(context=ctx)
            s.ehlo("app.example.org")
            s.login(user, password)
            s.mail(user)
            s.rcpt(rcpt)
            code, resp = s.data(("Subject: receipt-marker\r\nFrom: <%s>\r\nTo: <%s>\r\n"
                                 "Message-ID: <receipt-1@tls.example.test>\r\n\r\nbody receipt-marker\r\n"
                                 % (user, rcpt)).encode())
            self.assertEqual(code, 250, resp)
        qid = resp.decode().split("queued as ")[1].split()[0]
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "escrowed", 90, "the seal")
        notice = wait_for(lambda: [m for m in self.lab.mx.messages("notls.example.test")
                                   if rcpt.encode() in m and b"/m/" in m], 60, "the notice")[0]
        link = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notice).group(1).decode()

        def receipts():
            return [m for m in self.lab.mx.messages("tls.example.test")
                    if b"Read: your secure message to " + rcpt.encode() in m.replace(b"\n ", b" ")]
        time.sleep(2)
        self.assertEqual(receipts(), [], "not read yet")
        c = PortalClient(self.mw, self.ca_file)
        status, _, page = c.request("GET", link)
        self.assertEqual(status, 200)
        csrf = csrf_of(page)
        n = len(self.lab.mx.messages("notls.example.test"))
        self.assertEqual(c.form(link + "/code", {"csrf": csrf})[0], 200)
        msgs = self.lab.mx.wait_for_messages("notls.example.test", n + 1, timeout=60)
        code = re.search(r"one-time code is: (\d{6})", text_of(msgs[n])).group(1)
        self.assertEqual(c.form(link + "/login", {"csrf": csrf, "code": code})[0], 303)
        status, _, page = c.request("GET", "/read")
        self.assertEqual(status, 200)
        self.assertIn(b"receipt-marker", page)
        # The escrow sweep runs every minute.
        got = wait_for(receipts, 100, "the read receipt")
        self.assertEqual(len(got), 1)
        self.assertIn(b"<receipt-1@tls.example.test>", got[0])
        self.assertNotIn(b"receipt-marker", got[0])  # nothing of the subject or body
        self.assertIn(b"Return-Path: <>", got[0])


if __name__ == "__main__":
    unittest.main()
