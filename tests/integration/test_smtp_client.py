"""The outbound SMTP client, wire-exact, against a scripted SMTP server on loopback: DSN parameters
rendered (RET, ENVID, NOTIFY, ORCPT as xtext), dot-stuffing, PIPELINING in one write, SIZE checked
before MAIL, a peer without 8BITMIME, and a 554 greeting. Recipients use an address literal
(user@[127.0.0.1]) so no DNS is involved; [delivery] port points at the scripted server."""
import json
import socket
import socketserver
import threading
import time
import unittest

from harness import Mailward, TempDir, free_port


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
        mw = Mailward(tmp.path, tls=False, extra={"delivery": {"port": port, "retry_schedule": ["1h"]}})
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


if __name__ == "__main__":
    unittest.main()
