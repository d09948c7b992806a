"""Escrow end to end: a message to a lab domain without STARTTLS is sealed, the Postfix MX receives a
notice without any of the message's content, and the recipient's whole journey through the portal
works over HTTPS with a plain HTTP client: open the link (which consumes nothing), ask for a code (read
from the code mail at the MX), sign in, read the body, download an attachment byte for byte, reply
(the reply reaches the sender's MX over TLS), sign out. Refusals: CSRF without token, foreign Origin,
wrong codes until locked, a revoked message. The audit chain of the message is checked with the CLI."""
import email
import email.policy
import http.client
import json
import os
import re
import smtplib
import ssl
import sys
import unittest
import uuid
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, Mailward, wait_for  # noqa: E402

SENDER = "alice@tls.example.test"      # replies come back to the lab's tls.example.test maildir
RCPT = "bob@notls.example.test"        # no STARTTLS: escrow
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cf000000030101001c0c0a0f0000000049454e44ae426082")


def hostile_message(marker, attachment):
    m = EmailMessage()
    m["From"] = "Alice Example <%s>" % SENDER
    m["To"] = RCPT
    m["Subject"] = "Quarterly figures %s" % marker
    m["Message-ID"] = "<%s@tls.example.test>" % marker
    m.set_content("Plain part %s\n" % marker)
    m.add_alternative("<p>HTML part <b>%s</b></p><script>document.title='pwned'</script>"
                      "<img src=x onerror=\"document.title='pwned'\">"
                      "<a href=\"javascript:alert(1)\">click</a>"
                      "<img src=\"http://tracker.example/pixel.gif\"><img alt=\"logo\" src=\"cid:logo1@tls.example.test\">" % marker,
                      subtype="html")
    # An inline image of the HTML part (multipart/related, cid: URL): shown from the message itself.
    m.get_payload()[1].add_related(PNG, "image", "png", cid="<logo1@tls.example.test>")
    m.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="figures.bin")
    return m


def submit(mw, message):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        code, resp = s.mail(SENDER)
        assert code == 250, resp
        code, resp = s.rcpt(RCPT)
        assert code == 250, resp
        code, resp = s.data(message.as_bytes(policy=email.policy.SMTP))
        assert code == 250, resp
    return resp.decode().split("queued as ")[1].split()[0]


class PortalClient:
    """A minimal browser: HTTPS to the portal (certificate from the lab CA, checked), cookies, Origin."""

    def __init__(self, mw, ca_file):
        self.mw = mw
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.ctx.check_hostname = False  # connects to 127.0.0.1; the name is checked below
        self.cookies = {}
        self.origin = mw.portal_url

    def request(self, method, path, body=None, headers=None, origin=True, cookies=True):
        conn = http.client.HTTPSConnection("127.0.0.1", self.mw.portal_port, context=self.ctx, timeout=30)
        h = {"Host": "%s:%d" % (Mailward.PORTAL_HOST, self.mw.portal_port), "User-Agent": "test-client/1.0"}
        if cookies and self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if method == "POST" and origin:
            h["Origin"] = self.origin if origin is True else origin
        h.update(headers or {})
        # The certificate first: an answer with "Connection: close" (a request refused before its
        # body was read) closes the connection as soon as it is read.
        conn.connect()
        names = [v for k, v in conn.sock.getpeercert().get("subjectAltName", ()) if k == "DNS"]
        assert Mailward.PORTAL_HOST in names, names
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        for v in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = v.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in v:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return r.status, r.headers, data

    def form(self, path, fields, headers=None, **kw):
        from urllib.parse import urlencode
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", path, urlencode(fields), h, **kw)

    def multipart(self, path, fields, files):
        boundary = "----mw" + uuid.uuid4().hex
        parts = []
        for k, v in fields.items():
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                          % (boundary, k, v)).encode())
        for name, (filename, data) in files.items():
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                          "Content-Type: application/octet-stream\r\n\r\n" % (boundary, name, filename)).encode()
                         + data + b"\r\n")
        body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
        return self.request("POST", path, body, {"Content-Type": "multipart/form-data; boundary=" + boundary})


def csrf_of(page):
    m = re.search(rb'name="csrf" value="([^"]+)"', page)
    assert m, page[:2000]
    return m.group(1).decode()


def text_of(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return "\n".join(p.get_content() for p in msg.walk() if p.get_content_maintype() == "text")


class EscrowTest(LabTestCase):
    portal_cert = True

    def escrow_one(self, marker, attachment=b"\x00\x01binary\xff" * 100):
        """Sends a message to RCPT; returns (queue id, notice bytes, link path)."""
        before = len(self.lab.mx.messages("notls.example.test"))
        qid = submit(self.mw, hostile_message(marker, attachment))
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "escrowed", 60,
                 "the recipient sealed in escrow")
        notices = self.lab.mx.wait_for_messages("notls.example.test", before + 1, timeout=60)
        notice = notices[before]
        m = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notice)
        self.assertIsNotNone(m, notice.decode(errors="replace"))
        return qid, notice, m.group(1).decode()

    def code_from_mx(self, n_before):
        msgs = self.lab.mx.wait_for_messages("notls.example.test", n_before + 1, timeout=60)
        m = re.search(r"one-time code is: (\d{6})", text_of(msgs[n_before]))
        self.assertIsNotNone(m, msgs[n_before][:2000])
        return m.group(1)

    def escrow_id(self, qid):
        rows = json.loads(self.mw.cli("escrow", "list", "--json").stdout)
        return next(r["id"] for r in rows if r["queue_id"] == qid)

    def test_recipient_journey(self):
        marker = "MARK" + uuid.uuid4().hex[:12]
        attachment = bytes(range(256)) * 40
        qid, notice, link = self.escrow_one(marker, attachment)
        # The notice: generic subject, the sender's name, a link - nothing of the message.
        self.assertNotIn(marker.encode(), notice)
        self.assertNotIn(b"Quarterly", notice)
        self.assertIn(b"Subject: A secure message is waiting for you", notice)
        self.assertIn(b"Alice Example", notice)
        self.assertNotIn(RCPT.encode() + b"/", notice)  # no address in the URL
        body = self.mw.cli("queue", "show", qid, "--body", check=False)
        self.assertNotEqual(body.returncode, 0, "the queued plaintext is gone once sealed")
        # The message (over 8 KiB) was in the body spool: its plaintext is gone from the segment
        # files too (overwritten and punched out), not only from the database.
        spool = os.path.join(self.mw.data_dir, "spool")

        def plaintext_in_spool():
            for name in os.listdir(spool):
                with open(os.path.join(spool, name), "rb") as f:
                    if marker.encode() in f.read():
                        return True
            return False
        wait_for(lambda: not plaintext_in_spool(), 30, "the sealed message's plaintext zeroed in the spool")

        c = PortalClient(self.mw, self.ca_file)
        status, headers, page = c.request("GET", link)
        self.assertEqual(status, 200, page)
        self.assertIn(b"Alice Example", page)
        self.assertNotIn(marker.encode(), page)
        csp = headers["Content-Security-Policy"]
        for d in ("default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"):
            self.assertIn(d, csp)
        self.assertIn("max-age=", headers["Strict-Transport-Security"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        self.assertIn("no-store", headers["Cache-Control"])
        pre = [v for v in headers.get_all("Set-Cookie") if v.startswith("__Host-mwpre=")]
        self.assertTrue(pre and all(f in pre[0] for f in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/")), pre)
        # GET consumes nothing: a second GET shows the same page and no code mail was sent.
        n = len(self.lab.mx.messages("notls.example.test"))
        self.assertEqual(c.request("GET", link)[0], 200)
        csrf = csrf_of(page)

        # CSRF: no token, a wrong token, a foreign Origin, no Origin: all refused, no code sent.
        self.assertEqual(c.form(link + "/code", {})[0], 403)
        self.assertEqual(c.form(link + "/code", {"csrf": "x" * 64})[0], 403)
        self.assertEqual(c.form(link + "/code", {"csrf": csrf}, origin="https://evil.example")[0], 403)
        self.assertEqual(c.form(link + "/code", {"csrf": csrf}, origin=False)[0], 403)
        self.assertEqual(c.form(link + "/code", {"csrf": csrf}, origin="null",
                                headers={"Sec-Fetch-Site": "cross-site"})[0], 403)
        self.assertEqual(len(self.lab.mx.messages("notls.example.test")), n)

        status, _, page = c.form(link + "/code", {"csrf": csrf})
        self.assertEqual(status, 200)
        self.assertIn(b"If this link is valid", page)
        code = self.code_from_mx(n)
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        self.assertEqual(c.form(link + "/login", {"csrf": csrf, "code": wrong})[0], 200)
        self.assertNotIn("__Host-mwsid", c.cookies)
        status, headers, _ = c.form(link + "/login", {"csrf": csrf, "code": code})
        self.assertEqual((status, headers["Location"]), (303, "/read"))
        sid = [v for v in headers.get_all("Set-Cookie") if v.startswith("__Host-mwsid=")]
        self.assertTrue(sid and all(f in sid[0] for f in ("Secure", "HttpOnly", "SameSite=Strict")), sid)
        self.assertEqual(c.form(link + "/login", {"csrf": csrf, "code": code})[0], 403,
                         "the pre-login form is spent once signed in")
        other = PortalClient(self.mw, self.ca_file)
        other_csrf = csrf_of(other.request("GET", link)[2])
        status, _, page = other.form(link + "/login", {"csrf": other_csrf, "code": code})
        self.assertEqual(status, 200)
        self.assertIn(b"not accepted", page, "a code works once")
        self.assertNotIn("__Host-mwsid", other.cookies)

        status, headers, page = c.request("GET", "/read")
        self.assertEqual(status, 200, page)
        self.assertIn(marker.encode(), page)
        self.assertIn(b"sandbox=", page)
        self.assertNotIn(b"<script", page.lower())
        self.assertNotIn(b"onerror", page.lower())
        self.assertNotIn(b"javascript:", page.lower())
        self.assertNotIn(b"tracker.example", page)
        self.assertIn(b"figures.bin", page)
        session_csrf = csrf_of(page)

        self.assertIn(b"data:image/png;base64,", page, "the inline image is shown from the message itself")
        att = re.search(rb'href="(/read/att/\d+)" download>figures\.bin<', page)
        self.assertIsNotNone(att, page[-3000:])
        self.assertEqual(page.count(b"/read/att/"), 1, "the inline image is not listed as a file")
        status, headers, data = c.request("GET", att.group(1).decode())
        self.assertEqual(status, 200)
        self.assertEqual(data, attachment)
        self.assertTrue(headers["Content-Disposition"].startswith("attachment;"), headers["Content-Disposition"])
        self.assertEqual(headers["Content-Type"], "application/octet-stream")
        self.assertEqual(c.request("GET", "/read/att/9")[0], 404)

        # Reply: CSRF refused without the session's token; with it the reply is queued and reaches
        # the sender's MX over TLS, attachment included.
        reply_marker = "REPLY" + uuid.uuid4().hex[:10]
        reply_file = os.urandom(3000)
        self.assertEqual(c.multipart("/read/reply", {"text": "x"}, {})[0], 403)
        before = len(self.lab.mx.messages("tls.example.test"))
        status, headers, _ = c.multipart("/read/reply", {"csrf": session_csrf, "text": "Thanks! " + reply_marker},
                                         {"files": ("answer.dat", reply_file)})
        self.assertEqual((status, headers["Location"]), (303, "/read?sent=1"))
        replies = self.lab.mx.wait_for_messages("tls.example.test", before + 1, timeout=60)
        reply = next(m for m in replies if reply_marker.encode() in m)
        self.assertRegex(reply.decode(errors="replace"), r"with ESMTPS|using TLSv1\.[23]")
        parsed = email.message_from_bytes(reply, policy=email.policy.default)
        self.assertEqual(parsed["In-Reply-To"], "<%s@tls.example.test>" % marker)
        files = [p for p in parsed.iter_attachments()]
        self.assertEqual([p.get_filename() for p in files], ["answer.dat"])
        self.assertEqual(files[0].get_content(), reply_file)

        status, _, _ = c.form("/logout", {"csrf": session_csrf})
        self.assertEqual(status, 200)
        self.assertEqual(c.request("GET", "/read")[0], 401)

        # The audit chain of this message: intact, and it tells the story.
        eid = self.escrow_id(qid)
        audit = json.loads(self.mw.cli("escrow", "audit", eid, "--json").stdout)
        self.assertEqual(audit["chain"], "intact", audit)
        events = [e["event"] for e in audit["entries"]]
        for ev in ("sealed", "notice_sent", "link_opened", "code_sent", "code_failed", "code_accepted", "viewed",
                   "attachment_downloaded", "reply_sent", "logout"):
            self.assertIn(ev, events)
        self.assertEqual(events[0], "sealed")
        opened = next(e for e in audit["entries"] if e["event"] == "link_opened")
        self.assertEqual((opened["address"], opened["user_agent"]), ("127.0.0.1", "test-client/1.0"))
        text = self.mw.cli("escrow", "audit", eid).stdout
        self.assertIn("chain: intact", text)
        print("\n$ mailward escrow audit %s\n%s" % (eid, text))  # shown in the test's output

    def test_wrong_codes_lock_and_revocation_ends_access(self):
        qid, _, link = self.escrow_one("LOCK" + uuid.uuid4().hex[:8])
        c = PortalClient(self.mw, self.ca_file)
        csrf = csrf_of(c.request("GET", link)[2])
        n = len(self.lab.mx.messages("notls.example.test"))
        self.assertEqual(c.form(link + "/code", {"csrf": csrf})[0], 200)
        code = self.code_from_mx(n)
        wrong = "%06d" % ((int(code) + 7) % 1000000)
        statuses = [c.form(link + "/login", {"csrf": csrf, "code": wrong}) for _ in range(6)]
        self.assertEqual([s for s, _, _ in statuses], [200] * 5 + [429])
        self.assertIn(b"locked", statuses[-1][2])
        status, _, page = c.form(link + "/login", {"csrf": csrf, "code": code})
        self.assertEqual(status, 429, "the right code no longer works once the code is locked")

        eid = self.escrow_id(qid)
        out = self.mw.cli("escrow", "revoke", eid, "--reason", "sent to the wrong person").stdout
        self.assertIn("revoked", out)
        self.assertEqual(c.request("GET", link)[0], 410)
        shown = json.loads(self.mw.cli("escrow", "show", eid, "--json").stdout)
        self.assertEqual((shown["state"], shown["key_destroyed"]), ("revoked", True))
        again = self.mw.cli("escrow", "revoke", eid, check=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("not active", again.stderr)
        audit = json.loads(self.mw.cli("escrow", "audit", eid, "--json").stdout)
        self.assertEqual(audit["chain"], "intact")
        events = [e["event"] for e in audit["entries"]]
        self.assertIn("revoked", events)
        self.assertEqual(events[events.index("revoked") + 1:], ["link_opened"], "only the refused visit after it")

    def raw(self, data, read_timeout=15):
        """Sends raw bytes over TLS to the portal; returns what it answered before closing."""
        import socket
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", self.mw.portal_port), timeout=read_timeout) as s:
            with ctx.wrap_socket(s, server_hostname=Mailward.PORTAL_HOST) as t:
                t.sendall(data)
                out = b""
                try:
                    while chunk := t.recv(65536):
                        out += chunk
                except (TimeoutError, ssl.SSLError, ConnectionResetError):
                    pass
                return out

    def test_http_framing_errors_get_statuses_and_close(self):
        host = b"Host: portal.example.test\r\n"
        cases = [
            ("garbage request line", b"NONSENSE\r\n\r\n", b"HTTP/1.1 400"),
            ("Content-Length with Transfer-Encoding (smuggling)",
             b"POST /m/x/code HTTP/1.1\r\n" + host + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n", b"HTTP/1.1 400"),
            ("two Content-Lengths", b"POST / HTTP/1.1\r\n" + host + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
             b"HTTP/1.1 400"),
            ("header too large", b"GET / HTTP/1.1\r\n" + host + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
             b"HTTP/1.1 431"),
            ("body too large", b"POST /read/reply HTTP/1.1\r\n" + host + b"Content-Length: 99999999\r\n\r\n",
             b"HTTP/1.1 413"),
            ("method not allowed", b"PUT / HTTP/1.1\r\n" + host + b"Content-Length: 0\r\n\r\n", b"HTTP/1.1 405"),
            ("HEAD has no body", b"HEAD / HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n", b"HTTP/1.1 200"),
        ]
        for name, data, want in cases:
            out = self.raw(data)
            self.assertTrue(out.startswith(want), "%s: %r" % (name, out[:200]))
            self.assertIn(b"Strict-Transport-Security", out, name)
        head = self.raw(b"HEAD / HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
        self.assertTrue(head.endswith(b"\r\n\r\n"), head[-100:])
        # Two requests on one connection (keep-alive), answered in order.
        two = self.raw(b"GET / HTTP/1.1\r\n" + host + b"\r\n" + b"GET /nothing HTTP/1.1\r\n" + host +
                       b"Connection: close\r\n\r\n")
        self.assertEqual(re.findall(rb"HTTP/1\.1 (\d{3})", two), [b"200", b"404"])

    def test_a_silent_client_is_closed_after_the_handshake_timeout(self):
        import socket
        import time
        with socket.create_connection(("127.0.0.1", self.mw.portal_port), timeout=30) as s:
            start = time.time()
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"")
            self.assertLess(time.time() - start, 25, "the portal's 10 s handshake timeout")

    def test_bad_requests_get_clear_statuses(self):
        c = PortalClient(self.mw, self.ca_file)
        cases = [
            ("GET", "/m/" + "A" * 43, 404),          # unknown token
            ("GET", "/m/short", 404),                 # malformed token
            ("GET", "/read", 401),                    # no session
            ("GET", "/nothing", 404),
            ("DELETE", "/read", 405),
            ("POST", "/m/" + "A" * 43, 405),
        ]
        for method, path, want in cases:
            status = c.request(method, path, body="" if method == "POST" else None)[0]
            self.assertEqual(status, want, (method, path))
        # Before sign-in, a form is small and urlencoded: anything else is refused unread.
        token_path = "/m/" + "B" * 43
        self.assertEqual(c.form(token_path + "/code", {"csrf": "x" * 20000})[0], 413)
        self.assertEqual(c.request("POST", token_path + "/code", "--b\r\n\r\n--b--\r\n",
                                   {"Content-Type": "multipart/form-data; boundary=b"})[0], 400)
        for args, text in ((("escrow", "revoke", "nothex"), "not an escrow id"),
                           (("escrow", "audit", "0123456789abcdef"), "no escrowed message")):
            p = self.mw.cli(*args, check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(text, p.stderr)
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


if __name__ == "__main__":
    unittest.main()
