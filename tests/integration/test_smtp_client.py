"""The outbound SMTP client, wire-exact, against a scripted SMTP server on loopback: DSN parameters
rendered (RET, ENVID, NOTIFY, ORCPT as xtext), dot-stuffing, PIPELINING in one write, SIZE checked
before MAIL, a peer without 8BITMIME, and a 554 greeting. Recipients use an address literal
(user@[127.0.0.1]) so no DNS is involved; [delivery] port points at the scripted server.

PostfixPeerTest drives the client alone (smtp_client_probe, env SMTP_CLIENT_PROBE_BIN) against a
private Postfix of the lab (tests/lab/mwlab): delivered over TLS 1.3 at verify and dane (Postfix's
Received header proves it), and nothing sent at encrypt to a listener without STARTTLS, at verify to
a certificate for another name, or at dane with a TLSA record that does not match.

AuthTest drives the probe with credentials (--auth-user, --auth-password-file: the Target of a
[[delivery.routes]] entry with auth_user) against a scripted server that does STARTTLS with a lab
CA certificate: AUTH PLAIN inside TLS carries the right base64 string and MAIL follows; a server
offering only CRAM-MD5 inside TLS ends the session at AUTH with no MAIL; a plaintext session never
gets AUTH or the password and sends no MAIL."""
import base64
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import Mailward, TempDir, free_port  # noqa: E402
from mwlab import PostfixMx, TestCA, received_tls  # noqa: E402

PROBE = os.environ.get("SMTP_CLIENT_PROBE_BIN", "smtp_client_probe")


class Scripted(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, ehlo=("PIPELINING", "8BITMIME", "DSN", "SIZE 1000000"), greeting="220 fake ESMTP"):
        self.ehlo, self.greeting = list(ehlo), greeting
        self.sessions = []  # per connection: list of (kind, bytes) with kind "read" per recv()
        self.messages = []
        super().__init__(("127.0.0.1", port), Handler)


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        srv = self.server
        log = []
        srv.sessions.append(log)
        w = self.wfile
        w.write((srv.greeting + "\r\n").encode())
        if not srv.greeting.startswith("220"):
            return
        sock = self.request
        buf = b""
        in_data = False
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return
            log.append(chunk)
            buf += chunk
            while b"\r\n" in buf:
                if in_data:
                    line, buf = buf.split(b"\r\n", 1)
                    if line == b".":
                        in_data = False
                        srv.messages.append(data)
                        data = b""
                        w.write(b"250 2.0.0 queued\r\n")
                    else:
                        data += (line[1:] if line.startswith(b".") else line) + b"\r\n"  # unstuff
                    continue
                line, buf = buf.split(b"\r\n", 1)
                cmd = line.upper()
                if cmd.startswith(b"EHLO"):
                    lines = ["fake"] + srv.ehlo
                    w.write("".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", l)
                                    for i, l in enumerate(lines)).encode())
                elif cmd.startswith(b"DATA"):
                    w.write(b"354 go on\r\n")
                    in_data = True
                elif cmd.startswith(b"QUIT"):
                    w.write(b"221 bye\r\n")
                    return
                else:
                    w.write(b"250 2.0.0 ok\r\n")


class SmtpClientTest(unittest.TestCase):
    def run_case(self, ehlo=("PIPELINING", "8BITMIME", "DSN", "SIZE 1000000"), greeting="220 fake ESMTP",
                 mail_params=(), rcpt_params=(), body=b"Subject: t\r\n\r\nhello\r\n", wait_state="delivered"):
        tmp = TempDir()
        port = free_port()
        srv = Scripted(port, ehlo, greeting)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        # These cases are about the SMTP wire, against a scripted peer without STARTTLS: the sender
        # mode that allows plaintext to a domain without TLS (docs/design.md) keeps them about that.
        mw = Mailward(tmp.path, tls=False, extra={"delivery": {"port": port, "retry_schedule": ["1h"]},
                                                  "policy": {"default_mode": "opportunistic"}})
        try:
            mw.start()
            import smtplib
            with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
                s.ehlo("app.example.org")
                s.mail("alice@[127.0.0.1]", list(mail_params))
                code, _ = s.rcpt("bob@[127.0.0.1]", list(rcpt_params))
                self.assertEqual(code, 250)
                code, resp = s.data(body)
                self.assertEqual(code, 250)
            qid = resp.decode().split("queued as ")[1].split()[0]
            deadline = time.time() + 60
            while time.time() < deadline:
                r = mw.queue_show(qid)["recipients"][0]
                if r["state"] == wait_state or (wait_state == "queued" and r["attempts"] >= 1):
                    break
                time.sleep(0.2)
            self.assertTrue(r["state"] == wait_state, r)
            return srv, r
        finally:
            mw.stop()
            srv.shutdown()
            srv.server_close()
            tmp.cleanup()

    def commands(self, srv, session=0):
        text = b"".join(srv.sessions[session])
        return [l for l in text.split(b"\r\n") if l[:4].upper() in (b"MAIL", b"RCPT", b"DATA", b"EHLO", b"QUIT")]

    def test_dsn_parameters_and_pipelining(self):
        srv, _ = self.run_case(mail_params=["RET=HDRS", "ENVID=a+2Bb"],
                               rcpt_params=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2B1@x.example"])
        cmds = self.commands(srv)
        mail = [c for c in cmds if c.startswith(b"MAIL")][0]
        self.assertRegex(mail.decode(), r"^MAIL FROM:<alice@\[127\.0\.0\.1\]> SIZE=\d+ RET=HDRS ENVID=a\+2Bb$")
        rcpt = [c for c in cmds if c.startswith(b"RCPT")][0]
        self.assertEqual(rcpt, b"RCPT TO:<bob@[127.0.0.1]> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2B1@x.example")
        # PIPELINING: MAIL, RCPT and DATA arrived in a single read.
        self.assertTrue(any(c.startswith(b"MAIL") and b"RCPT TO" in c and b"DATA\r\n" in c for c in srv.sessions[0]),
                        srv.sessions[0])

    def test_dot_stuffing_on_the_wire(self):
        body = b"Subject: dots\r\n\r\n.hidden line\r\n..two\r\nend\r\n"
        srv, _ = self.run_case(body=body)
        raw = b"".join(srv.sessions[0])
        self.assertIn(b"\r\n..hidden line\r\n...two\r\nend\r\n.\r\n", raw)
        # The server unstuffs: what it stored ends with the original body.
        self.assertTrue(srv.messages[0].endswith(body), srv.messages[0][-80:])

    def test_size_checked_before_mail(self):
        srv, r = self.run_case(ehlo=("PIPELINING", "8BITMIME", "SIZE 200"), body=b"Subject: big\r\n\r\n" + b"x" * 500 + b"\r\n",
                               wait_state="failed")
        self.assertIn("200", r["last_error"])
        # No MAIL for the big message (a bounce to alice@[127.0.0.1] may follow in a later session).
        first = [c for c in self.commands(srv) if c.startswith(b"MAIL")]
        self.assertFalse(any(b"alice@" in c for c in first), first)

    def test_peer_without_8bitmime(self):
        srv, r = self.run_case(ehlo=("PIPELINING",), mail_params=["BODY=8BITMIME"],
                               body="Subject: ü\r\n\r\nGrüße\r\n".encode(), wait_state="failed")
        self.assertIn("8BITMIME", r["last_error"])
        self.assertFalse([c for c in self.commands(srv) if c.startswith(b"MAIL FROM:<alice")])

    def test_554_greeting_defers(self):
        srv, r = self.run_case(greeting="554 5.7.1 no service here", wait_state="queued")
        self.assertIn("554", r["last_error"])
        self.assertEqual(r["state"], "queued")


class PostfixPeerTest(unittest.TestCase):
    """The client alone against real Postfix listeners, one instance for the class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mw-client-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)  # postfix and nobody must reach the instance below it
        cls.ca = TestCA(os.path.join(cls.tmp, "ca"))
        cls.mx = PostfixMx(os.path.join(cls.tmp, "mx"))
        cls.good_cert = cls.ca.issue("mx.tls.example.test")
        cls.good = cls.mx.add_listener(tls="starttls", cert=cls.good_cert, hostname="mx.tls.example.test")
        cls.plain = cls.mx.add_listener(tls="none", hostname="mx.notls.example.test")
        cls.wrong = cls.mx.add_listener(tls="starttls", cert=cls.ca.issue("other.example.test"),
                                        hostname="mx.wrongname.example.test")
        cls.mx.accept_domains(["tls.example.test", "notls.example.test", "wrongname.example.test"])
        try:
            cls.mx.start()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.mx.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.mx.clear_messages()

    def probe(self, listener, level, mx_host, to, *extra):
        body = ("Subject: probe %s\r\nMessage-ID: <%s@probe.example.test>\r\n\r\n"
                ".a line with a leading dot\r\nend\r\n" % (level, time.time_ns())).encode()
        msg = os.path.join(self.tmp, "message.eml")
        with open(msg, "wb") as f:
            f.write(body)
        cp = subprocess.run([PROBE, listener.endpoint, level, "--mx-host", mx_host, "--ca", str(self.ca.cert_path),
                             "--from", "alice@relay.example.test", "--to", to, "--message", msg, *extra],
                            capture_output=True, text=True, timeout=120)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        return json.loads(cp.stdout)

    def assert_delivered(self, out, domain):
        self.assertTrue(out["connected"], out)
        self.assertIsNone(out["transaction_error"], out)
        self.assertEqual([r["accepted"] for r in out["recipients"]], [True], out)
        [msg] = self.mx.wait_for_messages(domain, 1, timeout=30)
        self.assertIn(b"\r\n.a line with a leading dot\r\n".replace(b"\r\n", b"\n"), msg.replace(b"\r\n", b"\n"))
        return msg

    def assert_nothing_arrives(self, domain, listener, since, commands):
        """No message stored, and the listener's smtpd logged exactly `commands` for the session
        (its disconnect line counts every command: no mail=, rcpt= or data=)."""
        time.sleep(2)  # Postfix delivers to the maildir within milliseconds of the final reply
        self.assertEqual(self.mx.messages(domain), [])
        lines = [l for l in self.mx.log()[since:].splitlines() if "/%s/smtpd[" % listener.name in l]
        disconnects = [l for l in lines if " disconnect from " in l]
        self.assertEqual(len(disconnects), 1, lines)
        self.assertTrue(disconnects[0].endswith(" " + commands), disconnects[0])
        self.assertFalse([l for l in lines if "client=" in l], lines)

    def test_verify_delivers_over_tls13(self):
        out = self.probe(self.good, "verify", "mx.tls.example.test", "bob@tls.example.test")
        msg = self.assert_delivered(out, "tls.example.test")
        tls = received_tls(msg)
        self.assertIsNotNone(tls, msg[:400])
        self.assertEqual(tls.protocol, "TLSv1.3")
        self.assertEqual(out["tls"]["protocol"], "TLSv1.3")
        self.assertEqual(out["tls"]["cipher"], tls.cipher)
        self.assertTrue(out["tls"]["chain_valid"] and out["tls"]["name_matched"], out["tls"])
        self.assertEqual(out["tls"]["spki_sha256"], TestCA.spki_sha256(self.good_cert[0]))

    def test_encrypt_sends_nothing_without_starttls(self):
        since = len(self.mx.log())
        out = self.probe(self.plain, "encrypt", "mx.notls.example.test", "bob@notls.example.test")
        self.assertFalse(out["connected"], out)
        self.assertEqual(out["error"]["stage"], "TLS policy", out)
        self.assertTrue(out["error"]["detail"].startswith("STARTTLS not offered"), out)
        self.assert_nothing_arrives("notls.example.test", self.plain, since, "ehlo=1 quit=1 commands=2")
        # The same listener takes the message at may (in clear): the check above can fail.
        out = self.probe(self.plain, "may", "mx.notls.example.test", "bob@notls.example.test")
        self.assertIsNone(received_tls(self.assert_delivered(out, "notls.example.test")))

    def test_verify_sends_nothing_to_a_wrong_name(self):
        since = len(self.mx.log())
        out = self.probe(self.wrong, "verify", "mx.wrongname.example.test", "bob@wrongname.example.test")
        self.assertFalse(out["connected"], out)
        self.assertEqual(out["error"]["stage"], "TLS policy", out)
        self.assertTrue(out["error"]["tls"]["chain_valid"], out)
        self.assertFalse(out["error"]["tls"]["name_matched"], out)
        self.assert_nothing_arrives("wrongname.example.test", self.wrong, since, "ehlo=1 starttls=1 quit=1 commands=3")
        # encrypt does not check the name: delivered over TLS.
        out = self.probe(self.wrong, "encrypt", "mx.wrongname.example.test", "bob@wrongname.example.test")
        msg = self.assert_delivered(out, "wrongname.example.test")
        self.assertEqual(received_tls(msg).protocol, "TLSv1.3")

    def test_dane_311(self):
        spki = TestCA.spki_sha256(self.good_cert[0])
        wrong = ("00" if spki[:2] != "00" else "11") + spki[2:]
        since = len(self.mx.log())
        out = self.probe(self.good, "dane", "mx.tls.example.test", "bob@tls.example.test", "--tlsa", "3 1 1 " + wrong)
        self.assertFalse(out["connected"], out)
        self.assertEqual(out["error"]["stage"], "TLS policy", out)
        self.assertFalse(out["error"]["tls"]["dane_matched"], out)
        self.assert_nothing_arrives("tls.example.test", self.good, since, "ehlo=1 starttls=1 quit=1 commands=3")
        out = self.probe(self.good, "dane", "mx.tls.example.test", "bob@tls.example.test", "--tlsa", "3 1 1 " + spki)
        msg = self.assert_delivered(out, "tls.example.test")
        self.assertTrue(out["tls"]["dane_matched"], out)
        self.assertEqual(received_tls(msg).protocol, "TLSv1.3")


class TlsScripted(socketserver.ThreadingTCPServer):
    """A scripted server with STARTTLS: ehlo_plain before TLS, ehlo_tls inside it; every command
    line is recorded as (inside_tls, text)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, cert, ehlo_plain, ehlo_tls=(), auth_reply="235 2.7.0 Authentication successful"):
        self.ehlo_plain, self.ehlo_tls, self.auth_reply = list(ehlo_plain), list(ehlo_tls), auth_reply
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert[0]), str(cert[1]))
        self.commands = []
        super().__init__(("127.0.0.1", port), TlsHandler)


class TlsHandler(socketserver.BaseRequestHandler):
    tls_sock = None  # the connection after STARTTLS

    def handle(self):
        srv = self.server
        self.request.settimeout(30)
        buf = b""

        def sock():
            return self.tls_sock or self.request

        def send(text):
            sock().sendall(text.encode() + b"\r\n")

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                chunk = sock().recv(65536)
                if not chunk:
                    return None
                buf += chunk
            l, buf = buf.split(b"\r\n", 1)
            return l.decode("utf-8", "replace")

        send("220 scripted ESMTP")
        try:
            self.converse(srv, send, line)
        finally:
            if self.tls_sock is not None:
                self.tls_sock.close()

    def converse(self, srv, send, line):
        inside = False
        while True:
            cmd = line()
            if cmd is None:
                return
            srv.commands.append((inside, cmd))
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                lines = ["scripted"] + (srv.ehlo_tls if inside else srv.ehlo_plain)
                send("\r\n".join("250%s%s" % ("-" if i < len(lines) - 1 else " ", l) for i, l in enumerate(lines)))
            elif verb == "STARTTLS" and not inside:
                send("220 2.0.0 ready")
                self.tls_sock = srv.context.wrap_socket(self.request, server_side=True)
                self.tls_sock.settimeout(30)
                inside = True
            elif verb == "AUTH":
                send(srv.auth_reply)
            elif verb == "DATA":
                send("354 go on")
                while line() not in (None, "."):
                    pass
                send("250 2.0.0 queued")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 2.0.0 ok")


class AuthTest(unittest.TestCase):
    """The client's AUTH (RFC 4954) with the probe's credentials, against TlsScripted."""

    USER, PASSWORD = "relay", "s3cret pass!"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mw-auth-", dir="/tmp")
        cls.ca = TestCA(os.path.join(cls.tmp, "ca"))
        cls.cert = cls.ca.issue("smart.example.test")
        cls.password_file = os.path.join(cls.tmp, "relay.pass")
        with open(cls.password_file, "w") as f:
            f.write(cls.PASSWORD + "\n")
        cls.message = os.path.join(cls.tmp, "message.eml")
        with open(cls.message, "wb") as f:
            f.write(b"Subject: auth\r\n\r\nbody\r\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_probe(self, level, ehlo_plain, ehlo_tls=()):
        port = free_port()
        srv = TlsScripted(port, self.cert, ehlo_plain, ehlo_tls)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            cp = subprocess.run([PROBE, "127.0.0.1:%d" % port, level, "--mx-host", "smart.example.test",
                                 "--ca", str(self.ca.cert_path), "--from", "alice@relay.example.test",
                                 "--to", "bob@routed.example.test", "--message", self.message,
                                 "--auth-user", self.USER, "--auth-password-file", self.password_file],
                                capture_output=True, text=True, timeout=120)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            return json.loads(cp.stdout), list(srv.commands)
        finally:
            srv.shutdown()
            srv.server_close()

    def verbs(self, commands):
        return [c.split(" ", 1)[0].upper() for _, c in commands]

    def assert_password_never_sent(self, commands):
        plain = base64.b64encode(self.PASSWORD.encode()).decode()
        for _, c in commands:
            self.assertNotIn(self.PASSWORD, c)
            self.assertNotIn(plain, c)
            self.assertNotIn(base64.b64encode(("\0%s\0%s" % (self.USER, self.PASSWORD)).encode()).decode(), c)

    def test_auth_plain_inside_tls_then_mail(self):
        out, commands = self.run_probe("verify", ["STARTTLS"], ["AUTH PLAIN LOGIN", "8BITMIME"])
        self.assertTrue(out["connected"], out)
        self.assertIsNone(out["transaction_error"], out)
        self.assertTrue(out["recipients"] and out["recipients"][0]["accepted"], out)
        self.assertTrue(out["tls"]["established"], out)
        want = "AUTH PLAIN " + base64.b64encode(("\0%s\0%s" % (self.USER, self.PASSWORD)).encode()).decode()
        auth = [(inside, c) for inside, c in commands if c.upper().startswith("AUTH")]
        self.assertEqual(auth, [(True, want)], commands)
        verbs = self.verbs(commands)
        self.assertEqual(verbs[:6], ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT"], commands)
        self.assertTrue(all(inside for inside, _ in commands[2:]), commands)

    def test_no_plain_or_login_inside_tls_ends_at_auth(self):
        out, commands = self.run_probe("verify", ["STARTTLS"], ["AUTH CRAM-MD5"])
        self.assertFalse(out["connected"], out)
        self.assertEqual(out["error"]["stage"], "AUTH", out)
        self.assertEqual(out["error"]["detail"], "smart.example.test offers neither AUTH PLAIN nor AUTH LOGIN", out)
        self.assertEqual(self.verbs(commands), ["EHLO", "STARTTLS", "EHLO", "QUIT"], commands)
        self.assertEqual([inside for inside, _ in commands], [False, False, True, True], commands)
        self.assert_password_never_sent(commands)

    def test_a_plaintext_session_never_gets_the_password(self):
        # may, and the server offers AUTH but no STARTTLS: the session stays in plaintext, so the
        # client refuses AUTH itself and sends no MAIL (it does not relay unauthenticated).
        out, commands = self.run_probe("may", ["AUTH PLAIN LOGIN"])
        self.assertFalse(out["connected"], out)
        self.assertEqual(out["error"]["stage"], "AUTH", out)
        self.assertIn("no TLS session with smart.example.test (credentials only inside TLS)", out["error"]["detail"])
        verbs = self.verbs(commands)
        self.assertEqual(verbs, ["EHLO", "QUIT"], commands)
        self.assertFalse(any(inside for inside, _ in commands), commands)
        self.assert_password_never_sent(commands)


if __name__ == "__main__":
    unittest.main()
