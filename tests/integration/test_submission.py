"""Submission server with real clients on loopback: swaks and Python smtplib over STARTTLS with AUTH
and over implicit TLS, pipelining, the relay rules, AUTH before TLS, and STARTTLS command injection.
A test CA is made at test time; every message that gets 250 must be in the queue byte for byte."""
import json
import smtplib
import ssl
import subprocess
import unittest

from harness import Mailward, RawClient, TempDir, TestCA

PASSWORD = "s3cret-passw0rd"


class SubmissionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.ca = TestCA(cls.tmp.path)
        # 127.0.0.1 is NOT trusted here: relaying needs AUTH. 127.0.0.2 is trusted.
        cls.mw = Mailward(cls.tmp.path, ca=cls.ca, trusted=["127.0.0.2/32"])
        cls.mw.add_user("alice@example.org", PASSWORD)
        cls.mw.start()

    @classmethod
    def tearDownClass(cls):
        cls.mw.stop()
        cls.tmp.cleanup()

    def queued_body(self, qid):
        p = subprocess.run([self.mw_bin(), "queue", "show", qid, "--body", "-c", self.mw.config],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def mw_bin(self):
        import harness
        return harness.MAILWARD

    def queue_id_from(self, reply_text):
        self.assertIn("queued as ", reply_text)
        return reply_text.split("queued as ")[1].split()[0]

    def test_swaks_starttls_auth(self):
        marker = "swaks-marker-7f3a"
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.mw.port), "--tls",
                            "--tls-ca-path", self.ca.cert, "--tls-verify",
                            "--auth", "PLAIN", "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                            "--from", "alice@example.org", "--to", "bob@example.net",
                            "--header", "Subject: test", "--body", marker, "--helo", "client.example.org"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = [l for l in p.stdout.splitlines() if "queued as" in l][-1]
        qid = self.queue_id_from(line)
        body = self.queued_body(qid)
        self.assertIn(marker.encode(), body)
        self.assertTrue(body.startswith(b"Received: from client.example.org ([127.0.0.1])"), body[:200])
        self.assertIn(b"with ESMTPSA id " + qid.encode(), body)
        self.assertRegex(body.decode(), r"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+")
        show = json.loads(self.mw.cli("queue", "show", qid, "--json").stdout)
        self.assertEqual(show["sender"], "alice@example.org")
        self.assertEqual(show["auth_user"], "alice@example.org")
        self.assertEqual([r["address"] for r in show["recipients"]], ["bob@example.net"])
        self.assertEqual(show["recipients"][0]["state"], "queued")

    def test_swaks_auth_login(self):
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.mw.port), "--tls",
                            "--auth", "LOGIN", "--auth-user", "alice@example.org", "--auth-password", PASSWORD,
                            "--from", "alice@example.org", "--to", "carol@example.net"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("235 2.7.0", p.stdout)

    def test_smtplib_implicit_tls_byte_for_byte(self):
        ctx = self.ca.client_context()
        # Dot-stuffing, 8-bit UTF-8 text and a long-but-legal line must come back exactly.
        data = ("From: alice@example.org\r\nTo: dave@example.net\r\nSubject: bytes\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                ".leading dot\r\n..two dots\r\nGrüße aus Köln\r\n" + "x" * 990 + "\r\nend\r\n").encode()
        with smtplib.SMTP_SSL("127.0.0.1", self.mw.tls_port, context=ctx,
                              local_hostname="app.example.org", timeout=60) as s:
            s.ehlo()
            self.assertIn("auth", s.esmtp_features)
            self.assertNotIn("starttls", s.esmtp_features)
            s.login("alice@example.org", PASSWORD)
            s.mail("alice@example.org", ["BODY=8BITMIME"])
            s.rcpt("dave@example.net")
            code, resp = s.data(data)
            self.assertEqual(code, 250)
        qid = self.queue_id_from(resp.decode())
        body = self.queued_body(qid)
        self.assertTrue(body.endswith(data), body[-200:])
        self.assertTrue(body.startswith(b"Received: "))

    def test_smtplib_starttls_requiretls_and_dsn(self):
        ctx = self.ca.client_context()
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            self.assertNotIn("requiretls", s.esmtp_features)  # only offered under TLS
            s.starttls(context=ctx)
            s.ehlo("app.example.org")
            self.assertIn("requiretls", s.esmtp_features)
            s.login("alice@example.org", PASSWORD)
            code, _ = s.mail("alice@example.org", ["REQUIRETLS", "RET=HDRS", "ENVID=abc+2Bdef"])
            self.assertEqual(code, 250)
            code, _ = s.rcpt("erin@example.net", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;erin+2Bx@example.net"])
            self.assertEqual(code, 250)
            code, resp = s.data(b"Subject: r\r\n\r\nhello\r\n")
            self.assertEqual(code, 250)
        qid = self.queue_id_from(resp.decode())
        show = json.loads(self.mw.cli("queue", "show", qid, "--json").stdout)
        self.assertTrue(show["requiretls"])
        self.assertEqual(show["envid"], "abc+def")
        self.assertEqual(show["recipients"][0]["orcpt"], "rfc822;erin+x@example.net")
        self.assertEqual(show["recipients"][0]["notify"], 2 | 4)

    def test_pipelined_session(self):
        c = RawClient(self.mw.port)
        self.assertEqual(c.read_reply()[0], 220)
        c.send("EHLO pipe.example.org\r\nSTARTTLS\r\n")
        code, lines = c.read_reply()
        self.assertEqual(code, 250)
        self.assertIn("PIPELINING", lines)
        self.assertEqual(c.read_reply()[0], 220)
        c.starttls(self.ca.client_context(), Mailward.HOSTNAME)
        c.send("EHLO pipe.example.org\r\n")
        self.assertEqual(c.read_reply()[0], 250)
        c.cmd("AUTH PLAIN " + __import__("base64").b64encode(b"\0alice@example.org\0" + PASSWORD.encode()).decode())
        # Everything up to DATA in one packet (RFC 2920), then the message and QUIT in another.
        c.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<p1@example.net>\r\nRCPT TO:<p2@example.net>\r\n"
               "RCPT TO:<bad address>\r\nDATA\r\n")
        codes = [c.read_reply()[0] for _ in range(5)]
        self.assertEqual(codes, [250, 250, 250, 501, 354])
        c.send("Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        code, lines = c.read_reply()
        self.assertEqual(code, 250)
        self.assertEqual(c.read_reply()[0], 221)
        qid = self.queue_id_from(lines[0])
        show = json.loads(self.mw.cli("queue", "show", qid, "--json").stdout)
        self.assertEqual([r["address"] for r in show["recipients"]], ["p1@example.net", "p2@example.net"])
        c.close()

    def test_smtputf8_addresses(self):
        ctx = self.ca.client_context()
        with smtplib.SMTP_SSL("127.0.0.1", self.mw.tls_port, context=ctx, timeout=60) as s:
            s.ehlo()
            self.assertIn("smtputf8", s.esmtp_features)
            s.login("alice@example.org", PASSWORD)
            # Without SMTPUTF8 on MAIL a UTF-8 recipient is refused (RFC 6531 3.4)...
            s.mail("alice@example.org")
            s.command_encoding = "utf-8"  # smtplib would refuse to send it otherwise
            code, resp = s.rcpt("jürgen@bücher.example")
            self.assertEqual(code, 553, resp)
            s.rset()
            # ...with it, the address is kept as UTF-8.
            s.mail("alice@example.org", ["SMTPUTF8", "BODY=8BITMIME"])
            code, resp = s.rcpt("jürgen@bücher.example")
            self.assertEqual(code, 250, resp)
            code, resp = s.data("Subject: ü\r\n\r\nGrüße\r\n".encode())
            self.assertEqual(code, 250)
        qid = self.queue_id_from(resp.decode())
        show = json.loads(self.mw.cli("queue", "show", qid, "--json").stdout)
        self.assertTrue(show["smtputf8"])
        self.assertEqual(show["recipients"][0]["address"], "jürgen@bücher.example")
        self.assertIn(b"with UTF8SMTPSA id", self.queued_body(qid))

    def test_relay_denied_without_auth_outside_trusted_networks(self):
        c = RawClient(self.mw.port)  # from 127.0.0.1, not trusted in this config
        c.read_reply()
        c.cmd("EHLO outsider.example.org")
        code, lines = c.cmd("MAIL FROM:<spammer@example.org>")
        self.assertEqual(code, 530, lines)
        code, _ = c.cmd("RCPT TO:<victim@example.net>")
        self.assertGreaterEqual(code, 500)
        code, _ = c.cmd("DATA")
        self.assertGreaterEqual(code, 500)
        c.close()
        for line in self.mw.cli("queue", "list", "--json").stdout.splitlines():
            self.assertNotEqual(json.loads(line)["sender"], "spammer@example.org")

    def test_trusted_network_relays_without_auth(self):
        import socket
        sock = socket.socket()
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", self.mw.port))
        c = RawClient.__new__(RawClient)
        c.sock, c.buf = sock, b""
        sock.settimeout(30)
        c.read_reply()
        c.cmd("EHLO trusted.example.org")
        self.assertEqual(c.cmd("MAIL FROM:<app@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<frank@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        code, lines = c.cmd("Subject: t\r\n\r\nhi\r\n.")
        self.assertEqual(code, 250, lines)
        c.close()

    def test_auth_before_tls_refused(self):
        c = RawClient(self.mw.port)
        c.read_reply()
        code, lines = c.cmd("EHLO x.example.org")
        self.assertNotIn("AUTH PLAIN LOGIN", lines)  # not even offered
        code, lines = c.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHMzY3JldC1wYXNzdzByZA==")
        self.assertEqual(code, 538, lines)
        self.assertIn("5.7.11", lines[0])
        c.close()

    def test_wrong_password_refused(self):
        ctx = self.ca.client_context()
        with smtplib.SMTP_SSL("127.0.0.1", self.mw.tls_port, context=ctx, timeout=60) as s:
            s.ehlo()
            with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
                s.login("alice@example.org", "wrong-password")
            self.assertEqual(e.exception.smtp_code, 535)
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login("nobody@example.org", PASSWORD)

    def test_command_injected_after_starttls_is_not_executed(self):
        c = RawClient(self.mw.port)
        c.read_reply()
        c.cmd("EHLO inj.example.org")
        # The attacker's MAIL rides in the same packet as STARTTLS (CVE-2011-0411 class).
        c.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
        self.assertEqual(c.read_reply()[0], 220)
        c.starttls(self.ca.client_context(), Mailward.HOSTNAME)
        self.assertEqual(c.cmd("EHLO inj.example.org")[0], 250)
        c.cmd("AUTH PLAIN " + __import__("base64").b64encode(b"\0alice@example.org\0" + PASSWORD.encode()).decode())
        # Had the injected MAIL run, this RCPT would be accepted; it must be refused for want of MAIL.
        code, lines = c.cmd("RCPT TO:<x@example.net>")
        self.assertEqual(code, 503, lines)
        self.assertIn("MAIL", lines[0])
        self.assertIn("discarded", self.mw.log())
        c.close()

    def test_implicit_tls_rejects_plaintext(self):
        c = RawClient(self.mw.tls_port, timeout=10)
        c.send("EHLO plain.example.org\r\n")
        self.assertTrue(c.closed_by_peer())
        c.close()


if __name__ == "__main__":
    unittest.main()
