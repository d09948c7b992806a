"""The portal's limits over HTTPS against a running mailward: a body too large for its route is
refused from the header with 413 before the client sends a byte of it (also chunked, and
100-continue is sent only when a body is welcome); a reply body without a session is refused 401
before it is read; connections per client address are limited while another address (127.0.0.2)
is still served; a slow header is cut off; and secure replies are limited per message and per
session (429 with Retry-After, the sender's MX gets only the allowed ones) and in total size."""
import json
import os
import re
import socket
import ssl
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, Mailward, TempDir, wait_for  # noqa: E402
from test_escrow import PortalClient, csrf_of, hostile_message, submit, text_of  # noqa: E402

RCPT_DOMAIN = "notls.example.test"
SENDER_DOMAIN = "tls.example.test"
TOKEN = "A" * 43  # a well-formed link token (unknown: the forms refuse it only after the body)


class Raw:
    """One TLS connection to the portal, from a chosen loopback address, for byte-level requests."""

    def __init__(self, mw, source="127.0.0.1", timeout=10):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = socket.create_connection(("127.0.0.1", mw.portal_port), timeout=timeout, source_address=(source, 0))
        self.sock = ctx.wrap_socket(s, server_hostname=Mailward.PORTAL_HOST)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def response(self):
        """Reads one response's status line and header: (status, header bytes)."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before a response; got %r" % self.buf[:200])
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return int(head.split(b" ", 2)[1]), head

    def closed(self, timeout=10):
        """True when the server closes the connection within timeout (whatever it sent first)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except (ConnectionError, ssl.SSLError):
            return True
        except (TimeoutError, socket.timeout):
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def post_head(mw, path, length=None, extra=b"", origin=True, content_type=b"application/x-www-form-urlencoded"):
    h = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + Mailward.PORTAL_HOST.encode() + b"\r\n"
    if origin:
        h += b"Origin: " + mw.portal_url.encode() + b"\r\n"
    h += b"Content-Type: " + content_type + b"\r\n"
    if length is not None:
        h += b"Content-Length: %d\r\n" % length
    return h + extra + b"\r\n"


class BodyLimitsTest(unittest.TestCase):
    """Limits decided from a request's header, on a portal with the default body limits and
    header_timeout = 3s; one connection per test step."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.mw = Mailward(cls.tmp.path, tls=False, extra={
            "portal": {"max_connections_per_address": 3, "header_timeout": "3s"}}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.tmp.cleanup()

    def test_oversized_form_gets_413_before_its_body(self):
        # 16 MiB (the old server's whole-request limit, so it waited for the body) and 1 MiB (under
        # the reply's limit, over a form's 16 KiB): the 413 arrives though no body byte was sent.
        for length in (16 << 20, 1 << 20, 16 * 1024 + 1):
            c = Raw(self.mw)
            start = time.time()
            c.send(post_head(self.mw, "/m/%s/code" % TOKEN, length))
            status, head = c.response()
            self.assertEqual(status, 413, (length, head))
            self.assertLess(time.time() - start, 2.5, "answered from the header, not at a timeout")
            self.assertIn(b"connection: close", head.lower())
            self.assertTrue(c.closed(), "the connection ends: its body was never read")
            c.close()
        # Within the limit the body is read and the form judged (no pre-session cookie: 403).
        c = Raw(self.mw)
        body = b"csrf=" + b"x" * 100
        c.send(post_head(self.mw, "/m/%s/code" % TOKEN, len(body)) + body)
        self.assertEqual(c.response()[0], 403)
        c.close()

    def test_chunked_form_body_is_cut_off_at_the_route_limit(self):
        c = Raw(self.mw)
        c.send(post_head(self.mw, "/m/%s/login" % TOKEN, None, b"Transfer-Encoding: chunked\r\n"))
        c.send(b"%x\r\n" % 20000 + b"x" * 100)  # a chunk announced past 16 KiB, most of it unsent
        status, head = c.response()
        self.assertEqual(status, 413, head)
        c.close()

    def test_100_continue_only_when_the_body_is_welcome(self):
        # Too large: the final 413 at once, no 100 Continue first.
        c = Raw(self.mw)
        c.send(post_head(self.mw, "/m/%s/code" % TOKEN, 1 << 20, b"Expect: 100-continue\r\n"))
        self.assertEqual(c.response()[0], 413)
        c.close()
        # Welcome: 100 Continue, then the body, then the form's answer.
        c = Raw(self.mw)
        body = b"csrf=abc"
        c.send(post_head(self.mw, "/m/%s/code" % TOKEN, len(body), b"Expect: 100-continue\r\n"))
        self.assertEqual(c.response()[0], 100)
        c.send(body)
        self.assertEqual(c.response()[0], 403)
        c.close()

    def test_reply_body_without_a_session_is_refused_before_it_is_read(self):
        mp = b"multipart/form-data; boundary=b"
        cases = [
            ("no cookie", b"", 401),
            ("an unknown session", b"Cookie: __Host-mwsid=" + b"Z" * 43 + b"\r\n", 401),
            ("a foreign Origin", b"Origin: https://evil.example\r\n", 403),
        ]
        for name, extra, want in cases:
            c = Raw(self.mw)
            start = time.time()
            c.send(post_head(self.mw, "/read/reply", 5_000_000, extra, origin=b"Origin" not in extra,
                             content_type=mp))
            status, head = c.response()
            self.assertEqual(status, want, (name, head))
            self.assertLess(time.time() - start, 2.5, name)
            self.assertTrue(c.closed(), name)
            c.close()

    def test_a_slow_header_is_cut_off(self):
        c = Raw(self.mw)
        start = time.time()
        c.send(b"GET / HTTP/1.1\r\n")
        closed = False
        for _ in range(20):  # a header line every half second, never the end of the header
            time.sleep(0.5)
            try:
                c.send(b"X-Slow: 1\r\n")
            except (ConnectionError, ssl.SSLError, OSError):
                closed = True
                break
        closed = closed or c.closed(timeout=5)
        elapsed = time.time() - start
        self.assertTrue(closed)
        self.assertLess(elapsed, 8, "header_timeout = 3s, not the whole request's old 30 s")
        c.close()

    def test_connections_per_address(self):
        held = []
        try:
            # max_connections_per_address = 3: three open (TLS done, idle) from 127.0.0.1 ...
            for _ in range(3):
                held.append(Raw(self.mw))
            time.sleep(0.3)  # every handshake counted
            # ... the fourth from that address is told 429 ...
            c = Raw(self.mw)
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, head = c.response()
            self.assertEqual(status, 429, head)
            self.assertIn(b"retry-after: 10", head.lower())
            c.close()
            # ... while another client address is served.
            other = Raw(self.mw, source="127.0.0.2")
            other.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(other.response()[0], 200)
            other.close()
        finally:
            for h in held:
                h.close()

        def served_again():
            c = Raw(self.mw)
            try:
                c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return c.response()[0] == 200
            except (ConnectionError, ssl.SSLError, OSError):
                return False
            finally:
                c.close()
        wait_for(served_again, 10, "127.0.0.1 served again once its connections closed")
        self.assertIn("portal: answered 429 to a connection from 127.0.0.1", self.mw.log())


class ReplyLimitsTest(LabTestCase):
    """Secure replies against the lab: the sender's MX is tls.example.test's Postfix."""
    portal_cert = True

    @classmethod
    def configure(cls, extra):
        extra["portal"] = {"replies_per_message": 3, "replies_per_session": 2, "max_replies_size": 100000}

    def sign_in(self, link):
        """A new browser signed in to link; returns (client, the session's CSRF token)."""
        c = PortalClient(self.mw, self.ca_file)
        csrf = csrf_of(c.request("GET", link)[2])
        n = len(self.lab.mx.messages(RCPT_DOMAIN))
        self.assertEqual(c.form(link + "/code", {"csrf": csrf})[0], 200)
        msgs = self.lab.mx.wait_for_messages(RCPT_DOMAIN, n + 1, timeout=60)
        code = re.search(r"one-time code is: (\d{6})", text_of(msgs[n])).group(1)
        status, headers, _ = c.form(link + "/login", {"csrf": csrf, "code": code})
        self.assertEqual(status, 303)
        status, _, page = c.request("GET", "/read")
        self.assertEqual(status, 200)
        return c, csrf_of(page)

    def test_replies_are_limited_per_session_message_and_size(self):
        marker = "LIM" + uuid.uuid4().hex[:10]
        before = len(self.lab.mx.messages(RCPT_DOMAIN))
        qid = submit(self.mw, hostile_message(marker, b"attachment"))
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "escrowed", 60, "sealed")
        notice = self.lab.mx.wait_for_messages(RCPT_DOMAIN, before + 1, timeout=60)[before]
        link = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notice).group(1).decode()
        sender_before = len(self.lab.mx.messages(SENDER_DOMAIN))

        a, a_csrf = self.sign_in(link)
        tag = "R" + uuid.uuid4().hex[:8]

        def reply(client, csrf, n, files=None):
            return client.multipart("/read/reply", {"csrf": csrf, "text": "reply %s-%d" % (tag, n)}, files or {})

        # Larger than all replies to a message may be together: 413, nothing queued, nothing counted.
        status, _, page = reply(a, a_csrf, 0, {"files": ("big.bin", os.urandom(150000))})
        self.assertEqual(status, 413, page[:500])
        self.assertIn(b"total size limit", page)
        # Session a: 2 replies, the third refused (replies_per_session = 2).
        self.assertEqual(reply(a, a_csrf, 1)[0], 303)
        self.assertEqual(reply(a, a_csrf, 2)[0], 303)
        status, headers, page = reply(a, a_csrf, 3)
        self.assertEqual(status, 429, page[:500])
        self.assertGreater(int(headers["Retry-After"]), 3000)
        self.assertIn(b"You can reply again in", page)
        # Session b of the same message: 1 more (replies_per_message = 3), then refused too.
        b, b_csrf = self.sign_in(link)
        self.assertEqual(reply(b, b_csrf, 4)[0], 303)
        status, headers, _ = reply(b, b_csrf, 5)
        self.assertEqual(status, 429)
        self.assertGreater(int(headers["Retry-After"]), 3000)

        # The sender's MX got exactly the 3 allowed replies.
        def arrived():
            return [m for m in self.lab.mx.messages(SENDER_DOMAIN)[sender_before:] if tag.encode() in m]
        wait_for(lambda: len(arrived()) >= 3, 60, "the 3 allowed replies at the sender's MX")
        time.sleep(3)  # a fourth would have been queued with the others
        got = sorted(re.search(rb"reply %s-(\d)" % tag.encode(), m).group(1).decode() for m in arrived())
        self.assertEqual(got, ["1", "2", "4"])

        rows = json.loads(self.mw.cli("escrow", "list", "--json").stdout)
        eid = next(r["id"] for r in rows if r["queue_id"] == qid)
        audit = json.loads(self.mw.cli("escrow", "audit", eid, "--json").stdout)
        self.assertEqual(audit["chain"], "intact")
        sent = [e["detail"] for e in audit["entries"] if e["event"] == "reply_sent"]
        self.assertEqual(len(sent), 3, sent)
        for d in sent:
            self.assertRegex(d, r"^queue \S+, 0 attachment\(s\), \d+ bytes, session [0-9a-f]{12}$")


if __name__ == "__main__":
    unittest.main()
