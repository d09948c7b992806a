"""TLS-RPT (RFC 8460) end to end: a real `mailward serve` with [tlsrpt] enabled delivers into the
lab, whose DNS publishes `_smtp._tls` TXT records for two domains: rpt-mail.example.test (an
MTA-STS enforce policy, rua=mailto: a mailbox at the lab's Postfix) and rpt-https.example.test
(static level verify; its first MX presents a certificate for another name, its second, another
host than rpt-mail's (a pooled session is not a new negotiation and is not counted), a good one;
rua=https: the lab's HTTPS receiver, certificate from the lab CA), and a third domain with a record
whose mail goes through a [[delivery.routes]] next hop (not its MX: not reported). After the deliveries,
`mailward tlsrpt send --now --today` sends both reports: the mail's headers and media type are
RFC 8460 section 5.3's, its DKIM signature verifies with dkimpy (a verifier no one here wrote), both
gunzipped JSON reports validate against tlsrpt_schema.json (written from section 4.4) with
python3-jsonschema, and the counts and result types match what was delivered and what failed. A
second run sends nothing new."""
import email
import email.policy
import gzip
import json
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import MAILWARD, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import PolicyServer, free_port, standard_lab  # noqa: E402
from test_dkim import VERIFY, keygen  # noqa: E402

OWN_DOMAIN = Mailward.HOSTNAME  # relay.example.test: the report mails come From postmaster@ it
MAIL_DOMAIN = "rpt-mail.example.test"
HTTPS_DOMAIN = "rpt-https.example.test"
ROUTED_DOMAIN = "rpt-routed.example.test"  # publishes a record, but goes through a [[delivery.routes]] hop
REPORT_BOX = "tlsrpt@tls.example.test"
SCHEMA = os.path.join(os.path.dirname(__file__), "tlsrpt_schema.json")

VALIDATE = r'''
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validate(json.loads(sys.stdin.read()), schema)
print("valid")
'''


def submit(mw, rcpt, marker):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        s.mail("app@" + OWN_DOMAIN)
        s.rcpt(rcpt)
        code, resp = s.data(("From: <app@%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nbody %s\r\n"
                             % (OWN_DOMAIN, rcpt, marker, marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


class TlsRptTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        keys = os.path.join(cls.tmp.path, "keys")
        os.makedirs(keys)
        own_key, own_txt, _ = keygen(keys, OWN_DOMAIN, "rpt", "rsa-sha256")
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        https_addr = "%s.79" % lab.block
        cls.https_port = free_port([https_addr])
        cert, key = lab.ca.issue("reports." + HTTPS_DOMAIN, ["reports." + HTTPS_DOMAIN, "mta-sts." + MAIL_DOMAIN])
        cls.https = PolicyServer(https_addr, cls.https_port, cert, key)
        cls.https.set_policy(MAIL_DOMAIN, "enforce", ["mx.tls.example.test"])
        txt = " ".join('"%s"' % s for s in own_txt)
        lab.dns.add_zone(OWN_DOMAIN, [("rpt._domainkey", "TXT", txt)])
        lab.dns.add_zone(MAIL_DOMAIN, [("@", "MX", "10 mx.tls.example.test."),
                                       ("_mta-sts", "TXT", '"v=STSv1; id=2026rpt1;"'),
                                       ("mta-sts", "A", https_addr),
                                       ("_smtp._tls", "TXT", '"v=TLSRPTv1; rua=mailto:%s"' % REPORT_BOX)])
        cls.rua = "https://reports.%s:%d/tlsrpt" % (HTTPS_DOMAIN, cls.https_port)
        lab.dns.add_zone(HTTPS_DOMAIN, [("@", "MX", "10 mx.wrongname.example.test."),
                                        ("@", "MX", "20 mx1.mixed.example.test."),
                                        ("reports", "A", https_addr),
                                        ("_smtp._tls", "TXT", '"v=TLSRPTv1; rua=%s"' % cls.rua)])
        lab.dns.add_zone(ROUTED_DOMAIN, [("@", "MX", "10 mx.notls.example.test."),
                                         ("_smtp._tls", "TXT", '"v=TLSRPTv1; rua=%s"' % cls.rua)])
        lab.mx.accept_domains([MAIL_DOMAIN, HTTPS_DOMAIN, ROUTED_DOMAIN])
        lab.start()
        cls.https.start()
        extra = lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["3s"]
        extra["delivery"]["routes"] = [{"name": "hop", "domains": [ROUTED_DOMAIN],
                                        "next_hop": "[mx.v6.example.test]:%d" % lab.port}]
        extra["policy"] = {"mta_sts_port": cls.https_port, "default_mode": "opportunistic"}
        extra["policy.domains"] = {HTTPS_DOMAIN: "verify"}
        extra["tlsrpt"] = {"enabled": True, "organization": "Example Relay Org"}
        mw_dir = os.path.join(cls.tmp.path, "mw")
        os.makedirs(mw_dir)
        cls.mw = Mailward(mw_dir, tls=False, extra=extra)
        with open(cls.mw.config, "a") as f:
            f.write('\n[[dkim]]\ndomain = "%s"\nselector = "rpt"\nkey_file = "%s"\nsign_relayed = false\n'
                    % (OWN_DOMAIN, own_key))
        try:
            cls.mw.start()
        except BaseException:
            cls.https.stop()
            lab.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            try:
                cls.https.stop()
                cls.lab.stop()
            finally:
                cls.tmp.cleanup()

    def validate(self, text):
        p = subprocess.run(["/usr/bin/python3", "-c", VALIDATE, SCHEMA], input=text, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr + "\n" + text)
        self.assertEqual(p.stdout.strip(), "valid")

    def dkim_verify(self, message):
        host, _, port = self.lab.dns.server.rpartition(":")
        p = subprocess.run(["/usr/bin/python3", "-c", VERIFY, host, port], input=message, capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().strip()

    def test_reports_by_mail_and_https(self):
        submit(self.mw, "bob@" + MAIL_DOMAIN, "rpt-m1")
        submit(self.mw, "bob@" + HTTPS_DOMAIN, "rpt-h1")
        submit(self.mw, "bob@" + ROUTED_DOMAIN, "rpt-r1")
        for domain, marker in [(MAIL_DOMAIN, b"rpt-m1"), (HTTPS_DOMAIN, b"rpt-h1"), (ROUTED_DOMAIN, b"rpt-r1")]:
            wait_for(lambda: [m for m in self.lab.mx.messages(domain) if marker in m], 60,
                     "delivery to %s" % domain)
        time.sleep(1)  # the recorder writes on its own thread
        attempts = self.mw.delivery_log()
        wrong = [a for a in attempts if a["mx"] == "mx.wrongname.example.test"]
        self.assertTrue(wrong, attempts)  # the failure the report must show happened
        self.assertEqual(wrong[0]["result"], "deferred-tls-policy", wrong[0])

        before = len(self.lab.mx.messages("tls.example.test"))
        p = self.mw.cli("tlsrpt", "send", "--now", "--today", check=False)
        out = p.stdout
        self.assertEqual(p.returncode, 0, out + p.stderr)
        self.assertIn("%s: sent to mailto:%s (queue id " % (MAIL_DOMAIN, REPORT_BOX), out)
        self.assertIn("%s: sent to %s" % (HTTPS_DOMAIN, self.rua), out)
        # Delivered through a route's next hop, which is not the domain's MX: nothing recorded.
        self.assertNotIn(ROUTED_DOMAIN, out)

        # https: one POST of application/tlsrpt+gzip.
        posts = [x for x in self.https.received_posts() if x[1] == "/tlsrpt"]
        self.assertEqual(len(posts), 1, posts)
        host, _, ctype, body = posts[0]
        self.assertEqual(host, "reports." + HTTPS_DOMAIN)
        self.assertEqual(ctype, "application/tlsrpt+gzip")
        text = gzip.decompress(body).decode()
        self.validate(text)
        rep = json.loads(text)
        self.assertEqual(rep["organization-name"], "Example Relay Org")
        self.assertEqual(rep["contact-info"], "postmaster@" + OWN_DOMAIN)
        pol = [x for x in rep["policies"] if x["policy"]["policy-domain"] == HTTPS_DOMAIN]
        self.assertEqual(len(pol), 1, rep)
        self.assertEqual(pol[0]["policy"]["policy-type"], "no-policy-found")
        self.assertEqual(pol[0]["summary"], {"total-successful-session-count": 1, "total-failure-session-count": 1})
        detail = pol[0]["failure-details"][0]
        self.assertEqual(detail["result-type"], "certificate-host-mismatch")
        self.assertEqual(detail["receiving-mx-hostname"], "mx.wrongname.example.test")
        self.assertEqual(detail["receiving-ip"], wrong[0]["address"])
        self.assertTrue(detail["sending-mta-ip"].startswith("127."), detail)
        self.assertEqual(detail["failed-session-count"], 1)

        # mailto: a DKIM-signed multipart/report in the lab's mailbox.
        msgs = self.lab.mx.wait_for_messages("tls.example.test", before + 1, timeout=60)
        raw = next(m for m in msgs[before:] if b"TLS-Report-Domain: " + MAIL_DOMAIN.encode() in m)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        rid = re.search(r"Report-ID: <([^>]+)>", str(msg["Subject"])).group(1)
        self.assertEqual(str(msg["Subject"]),
                         "Report Domain: %s Submitter: %s Report-ID: <%s>" % (MAIL_DOMAIN, OWN_DOMAIN, rid))
        self.assertEqual(str(msg["TLS-Report-Submitter"]), OWN_DOMAIN)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "tlsrpt")
        parts = [x for x in msg.iter_parts() if x.get_content_type() == "application/tlsrpt+gzip"]
        self.assertEqual(len(parts), 1)
        fname = parts[0].get_filename()
        self.assertRegex(fname, r"^%s!%s!\d+!\d+!.+\.json\.gz$" % (re.escape(OWN_DOMAIN), re.escape(MAIL_DOMAIN)))
        begin, end = map(int, fname.split("!")[2:4])
        self.assertEqual(end - begin, 86400)
        self.assertIn(b"DKIM-Signature:", raw)
        self.assertEqual(self.dkim_verify(raw), "pass", raw.decode(errors="replace"))
        text = gzip.decompress(parts[0].get_content()).decode()
        self.validate(text)
        rep = json.loads(text)
        self.assertEqual(rep["report-id"], rid)
        pol = rep["policies"]
        self.assertEqual(len(pol), 1, rep)
        self.assertEqual(pol[0]["policy"]["policy-type"], "sts")
        self.assertEqual(pol[0]["policy"]["mx-host"], ["mx.tls.example.test"])
        self.assertIn("mode: enforce", pol[0]["policy"]["policy-string"])
        self.assertEqual(pol[0]["summary"], {"total-successful-session-count": 1, "total-failure-session-count": 0})
        self.assertNotIn("failure-details", pol[0])

        # A second run sends nothing new: no POST, no mail.
        p = self.mw.cli("tlsrpt", "send", "--now", "--today")
        self.assertIn("%s: already sent" % MAIL_DOMAIN, p.stdout)
        self.assertIn("%s: already sent" % HTTPS_DOMAIN, p.stdout)
        self.assertNotIn("sent to", p.stdout)
        time.sleep(5)
        self.assertEqual(len([x for x in self.https.received_posts() if x[1] == "/tlsrpt"]), 1)
        self.assertEqual(len([m for m in self.lab.mx.messages("tls.example.test")
                              if b"TLS-Report-Domain: " + MAIL_DOMAIN.encode() in m]), 1)

    def test_cli_refuses_bad_input(self):
        for args, want in [(["tlsrpt", "send"], "--now is required"),
                           (["tlsrpt", "send", "--now", "--day", "2026-02-30"], "is not a date")]:
            p = self.mw.cli(*args, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(want, p.stderr)
            self.assertEqual(p.stderr.count("\n"), 1, p.stderr)


if __name__ == "__main__":
    unittest.main()
