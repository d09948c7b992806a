"""DKIM end to end (RFC 6376): keys made by `mailward dkim keygen` at test time,
their TXT records published by the lab's DNS (knot); mailward signs at delivery and the lab's Postfix
stores what it received. A verifier no one here wrote - Python's dkimpy (/usr/bin/python3, its DNS
lookups sent to the lab's DNS only) - verifies: relayed mail of a configured domain (rsa-sha256; ed25519-sha256
is refused, see docs/design.md "DKIM"), a DSN and an escrow notice mailward writes itself (signed for its own domain, whose entry has
sign_relayed = false, so relayed mail from that domain is not signed). Mail from an unconfigured
domain carries no signature; a tampered copy of a signed message fails (so the check can fail).
opendkim-testmsg is not used: it resolves keys through the system resolver on port 53 only and
cannot be pointed at the lab's DNS (see docs/testing.md "DKIM")."""
import os
import re
import smtplib
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import MAILWARD, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import standard_lab  # noqa: E402

RSA_DOMAIN = "signer.example.test"
OWN_DOMAIN = Mailward.HOSTNAME  # relay.example.test: DSNs come From MAILER-DAEMON@ it
RCPT_DOMAIN = "tls.example.test"

# dkimpy under Debian's python3 (python3-dkim), DNS from the lab server named on the command line only.
VERIFY = r'''
import sys, dkim, dns.message, dns.query, dns.rdatatype
host, port = sys.argv[1], int(sys.argv[2])
def lab_txt(name, timeout=5):
    q = dns.message.make_query(name.decode() if isinstance(name, bytes) else name, dns.rdatatype.TXT)
    r = dns.query.udp(q, host, port=port, timeout=timeout)
    for rrset in r.answer:
        for rd in rrset:
            if rd.rdtype == dns.rdatatype.TXT:
                return b"".join(rd.strings)
    return None
msg = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
print("pass" if dkim.verify(msg, dnsfunc=lab_txt) else "fail")
'''


def keygen(tmp, domain, selector, algorithm):
    out = os.path.join(tmp, "%s.%s.key" % (selector, domain))
    p = subprocess.run([MAILWARD, "dkim", "keygen", domain, selector, "--algorithm", algorithm, "--out", out],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = next(l for l in p.stdout.splitlines() if "._domainkey." in l)
    strings = re.findall(r'"([^"]*)"', line)
    return out, strings, p.stdout


def submit(mw, sender, author, rcpt, marker):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        s.mail(sender)
        s.rcpt(rcpt)
        code, resp = s.data(("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@app.example.org>\r\n\r\n"
                             "body %s\r\nsecond line\r\n" % (author, rcpt, marker, marker, marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


class DkimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        keys = os.path.join(cls.tmp.path, "keys")
        os.makedirs(keys)
        cls.rsa_key, rsa_txt, cls.keygen_out = keygen(keys, RSA_DOMAIN, "mw2026", "rsa-sha256")
        cls.own_key, own_txt, _ = keygen(keys, OWN_DOMAIN, "bounce", "rsa-sha256")
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        txt = lambda strings: " ".join('"%s"' % s for s in strings)  # noqa: E731
        lab.dns.add_zone(RSA_DOMAIN, [("mw2026._domainkey", "TXT", txt(rsa_txt))])
        lab.dns.add_zone(OWN_DOMAIN, [("bounce._domainkey", "TXT", txt(own_txt))])
        lab.start()
        extra = lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["3s"]
        mw_dir = os.path.join(cls.tmp.path, "mw")
        os.makedirs(mw_dir)
        cls.mw = Mailward(mw_dir, tls=False, extra=extra)
        with open(cls.mw.config, "a") as f:
            for domain, sel, key, alg, relayed in [(RSA_DOMAIN, "mw2026", cls.rsa_key, "rsa-sha256", True),
                                                   (OWN_DOMAIN, "bounce", cls.own_key, "rsa-sha256", False)]:
                f.write('\n[[dkim]]\ndomain = "%s"\nselector = "%s"\nkey_file = "%s"\nalgorithm = "%s"\n'
                        'sign_relayed = %s\n' % (domain, sel, key, alg, "true" if relayed else "false"))
        try:
            cls.mw.start()
        except BaseException:
            lab.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            try:
                cls.lab.stop()
            finally:
                cls.tmp.cleanup()

    def verify(self, message):
        host, _, port = self.lab.dns.server.rpartition(":")
        p = subprocess.run(["/usr/bin/python3", "-c", VERIFY, host, port], input=message, capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().strip()

    def received(self, marker, domain=RCPT_DOMAIN):
        def found():
            return [m for m in self.lab.mx.messages(domain) if marker.encode() in m]
        return wait_for(found, timeout=60, what="a message with %s at %s" % (marker, domain))[0]

    def signatures(self, message):
        return re.findall(rb"(?im)^DKIM-Signature:.*(?:\r?\n[ \t].*)*", message)

    def test_keygen_prints_record_and_entry(self):
        self.assertIn('mw2026._domainkey.%s. IN TXT "v=DKIM1; k=rsa; p=' % RSA_DOMAIN, self.keygen_out)
        self.assertIn('[[dkim]]\ndomain = "%s"\nselector = "mw2026"' % RSA_DOMAIN, self.keygen_out)
        self.assertEqual(os.stat(self.rsa_key).st_mode & 0o777, 0o600)
        # Never over an existing file; a bad domain is one clear line.
        p = subprocess.run([MAILWARD, "dkim", "keygen", RSA_DOMAIN, "mw2026", "--out", self.rsa_key],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("exists already", p.stderr)
        p = subprocess.run([MAILWARD, "dkim", "keygen", "bad domain", "s1", "--out", self.rsa_key + ".x"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)
        self.assertIn("is not a domain name", p.stderr)
        self.assertFalse(os.path.exists(self.rsa_key + ".x"))
        p = subprocess.run([MAILWARD, "dkim", "keygen", RSA_DOMAIN, "s2", "--algorithm", "ed25519-sha256", "--out",
                            self.rsa_key + ".ed"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("ed25519-sha256 is not offered", p.stderr)
        self.assertFalse(os.path.exists(self.rsa_key + ".ed"))

    def test_config_check_reports_the_key_file(self):
        import json
        out = json.loads(self.mw.cli("config", "check", "--json", check=False).stdout)
        found = [f for f in out["findings"] if "dkim.key_file " + self.rsa_key in f["message"]]
        self.assertTrue(found, out["findings"])
        self.assertIn("mode 0600", found[0]["message"])

    def test_relayed_mail_verifies_and_tampering_fails(self):
        for domain, alg, marker in [(RSA_DOMAIN, b"a=rsa-sha256", "dkim-rsa-1")]:
            with self.subTest(domain=domain):
                submit(self.mw, "app@" + domain, "app@" + domain, "bob@" + RCPT_DOMAIN, marker)
                msg = self.received(marker)
                sigs = self.signatures(msg)
                self.assertEqual(len(sigs), 1, msg)
                self.assertIn(b"d=" + domain.encode(), sigs[0])
                self.assertIn(alg, sigs[0])
                self.assertEqual(self.verify(msg), "pass", msg.decode(errors="replace"))
                self.assertEqual(self.verify(msg.replace(b"second line", b"second LINE")), "fail")
                self.assertEqual(self.verify(msg.replace(marker.encode(), b"changed", 1)), "fail")
        self.assertIn("DKIM signed (d=%s" % RSA_DOMAIN, self.mw.log())

    def test_unconfigured_domain_is_not_signed(self):
        submit(self.mw, "alice@" + RCPT_DOMAIN, "alice@" + RCPT_DOMAIN, "bob@" + RCPT_DOMAIN, "dkim-none-1")
        msg = self.received("dkim-none-1")
        self.assertEqual(self.signatures(msg), [], msg)
        self.assertEqual(self.verify(msg), "fail")

    def test_own_mail_signed_but_not_relayed_mail_of_that_domain(self):
        # Relayed mail From: the own domain, whose entry has sign_relayed = false: not signed.
        submit(self.mw, "app@" + OWN_DOMAIN, "app@" + OWN_DOMAIN, "bob@" + RCPT_DOMAIN, "dkim-own-relayed")
        relayed = self.received("dkim-own-relayed")
        self.assertEqual(self.signatures(relayed), [], relayed)
        # A DSN mailward writes (null MX: permanent failure) to alice@tls.example.test: signed, verifies.
        submit(self.mw, "alice@" + RCPT_DOMAIN, "alice@" + RCPT_DOMAIN, "x@nullmx.example.test", "dkim-dsn-1")
        dsn = self.received("dkim-dsn-1")
        self.assertIn(b"MAILER-DAEMON@" + OWN_DOMAIN.encode(), dsn)
        sigs = self.signatures(dsn)
        self.assertEqual(len(sigs), 1, dsn)
        self.assertIn(b"d=" + OWN_DOMAIN.encode(), sigs[0])
        self.assertEqual(self.verify(dsn), "pass", dsn.decode(errors="replace"))

    def test_escrow_notice_is_signed_as_own_mail(self):
        # To a domain without STARTTLS under the default mode (tls-or-escrow): escrowed; the notice to
        # the recipient comes From the original author (the own domain, sign_relayed = false) and is
        # mailward's own mail, so it is signed.
        before = len(self.lab.mx.messages("notls.example.test"))
        qid = submit(self.mw, "app@" + OWN_DOMAIN, "app@" + OWN_DOMAIN, "carol@notls.example.test", "dkim-esc-1")
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "escrowed", 60, "escrow")
        notice = self.lab.mx.wait_for_messages("notls.example.test", before + 1, timeout=60)[before]
        self.assertIn(b"/m/", notice)
        sigs = self.signatures(notice)
        self.assertEqual(len(sigs), 1, notice)
        self.assertIn(b"d=" + OWN_DOMAIN.encode(), sigs[0])
        self.assertEqual(self.verify(notice), "pass", notice.decode(errors="replace"))


if __name__ == "__main__":
    unittest.main()
