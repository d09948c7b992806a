"""Issue 11's delivery fixes against real peers on loopback (the lab's knot DNS and Postfix):
- SMTP smuggling: a secure reply from the portal whose text holds every bare CR / bare LF end-of-data
  look-alike, from a sender whose display name carries encoded CRs, reaches the MX as ONE message;
  nothing after a fake end marker turns into a message of its own.
- DANE (RFC 7672 2.1.1): a host of a DNSSEC-signed MX set whose A answer is secure but whose AAAA
  answer is bogus (its RRSIG is corrupt) is not used - the message waits - never delivered without
  the TLSA check; the same host with a good AAAA signature is delivered at dane.
- REQUIRETLS (RFC 8689 4.4): the bounce of a REQUIRETLS message carries REQUIRETLS, and to a next hop
  that cannot honour it the bounce (with the original inside) is never sent.
- Loops: with [delivery] allow_loopback_mx = false an MX on 127.0.0.x is a routing loop (5.4.6, no
  connection, nothing at the MX); mailward's own listener is refused even when loopback is allowed."""
import json
import os
import re
import smtplib
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

import test_escrow as esc  # noqa: E402  (its PortalClient and helpers; its tests are not collected here)
from harness import LAB_SENDER, submit, with_marker, LabTestCase, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import received_tls, standard_lab  # noqa: E402

SENDER = LAB_SENDER


class DeliverySecurityLabTest(unittest.TestCase):
    """One lab, one mailward (loopback allowed, as every lab config must)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        # daneaaaa / daneok: DNSSEC-signed, TLSA 3 1 1 of the MX's certificate, MX with A and AAAA.
        # In daneaaaa only the AAAA RRSIGs are corrupt: A secure, AAAA bogus. daneok is the control.
        for n, name, bogus in ((19, "daneaaaa.example.test", "signature:AAAA"), (20, "daneok.example.test", None)):
            host = "mx." + name
            pair = lab.ca.issue(host)
            listener = lab.mx.add_listener(n, tls="starttls", cert=pair, hostname=host, name=name.split(".")[0])
            records = [("@", "MX", "10 %s." % host), ("mx", "A", listener.address), ("mx", "AAAA", "::1")]
            for p in sorted({25, lab.port}):
                records.append(("_%d._tcp.mx" % p, "TLSA", "3 1 1 " + lab.ca.spki_sha256(pair[0])))
            if bogus:
                lab.dns.add_zone(name, records, bogus=bogus)
            else:
                lab.dns.add_zone(name, records, signed=True)
        lab.mx.accept_domains(["daneaaaa.example.test", "daneok.example.test"])
        lab.start()
        extra = lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["3s"]
        extra["dns"]["timeout"] = "3s"
        crt, key = lab.ca.issue(Mailward.PORTAL_HOST)
        extra["escrow"] = {"cert": str(crt), "key": str(key)}
        cls.mw = Mailward(cls.tmp.path, extra=extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.lab.stop()
            cls.tmp.cleanup()

    def rcpt_state(self, qid, i=0):
        return self.mw.queue_show(qid)["recipients"][i]

    def log_of(self, qid):
        return [l for l in self.mw.delivery_log() if l["queue_id"] == qid]

    # -- item 2: SMTP smuggling through the portal's secure reply --------------------------------

    def test_secure_reply_with_smuggling_sequences_arrives_once(self):
        marker = "SMUG" + uuid.uuid4().hex[:10]
        # The display name carries encoded CR LF "." CR LF: decoded, a smuggling attempt in a header
        # (written by hand: Python's email package refuses to build it).
        raw = ("From: =?utf-8?q?Alice=0D=0A=2E=0D=0AMAIL_FROM=3A=3Cx=40evil=2Etest=3E?= <%s>\r\n"
               "To: <%s>\r\nSubject: Figures %s\r\nMessage-ID: <%s@tls.example.test>\r\n"
               "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain part %s\r\n"
               % (SENDER, esc.RCPT, marker, marker, marker)).encode()
        n_notices = len(self.lab.mx.messages("notls.example.test"))
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.mail(SENDER)
            self.assertEqual(s.rcpt(esc.RCPT)[0], 250)
            code, resp = s.data(raw)
            self.assertEqual(code, 250, resp)
        qid = resp.decode().split("queued as ")[1].split()[0]
        wait_for(lambda: self.rcpt_state(qid)["state"] == "escrowed", 60, "sealed in escrow")
        notice = self.lab.mx.wait_for_messages("notls.example.test", n_notices + 1, timeout=60)[n_notices]
        link = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notice).group(1).decode()

        c = esc.PortalClient(self.mw, str(self.lab.ca.cert_path))
        status, _, page = c.request("GET", link)
        self.assertEqual(status, 200, page)
        csrf = esc.csrf_of(page)
        n = len(self.lab.mx.messages("notls.example.test"))
        self.assertEqual(c.form(link + "/code", {"csrf": csrf})[0], 200)
        msgs = self.lab.mx.wait_for_messages("notls.example.test", n + 1, timeout=60)
        code = re.search(r"one-time code is: (\d{6})", esc.text_of(msgs[n])).group(1)
        status, headers, _ = c.form(link + "/login", {"csrf": csrf, "code": code})
        self.assertEqual(status, 303)
        status, _, page = c.request("GET", "/read")
        self.assertEqual(status, 200)
        session_csrf = esc.csrf_of(page)

        # Each 2023 sequence, followed by a whole smuggled transaction to a second mailbox.
        reply_marker = "REPLY" + uuid.uuid4().hex[:10]
        smuggled = "MAIL FROM:<mallory@evil.test>\r\nRCPT TO:<smuggled@tls.example.test>\r\nDATA\r\n" \
                   "Subject: SMUGGLED-%s\r\n\r\nforged\r\n" % reply_marker
        text = "Thanks! %s\n" % reply_marker
        for seq in ("\n.\n", "\r.\r", "\r.\n", "\n.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r"):
            text += "line" + seq + smuggled
        text += "bare\rCR and bare\nLF, and no final line end"
        before = len(self.lab.mx.messages("tls.example.test"))
        status, headers, _ = c.multipart("/read/reply", {"csrf": session_csrf, "text": text}, {})
        self.assertEqual((status, headers["Location"]), (303, "/read?sent=1"))
        self.lab.mx.wait_for_messages("tls.example.test", before + 1, timeout=60)
        time.sleep(3)  # anything smuggled would be a second message right behind the first
        arrived = with_marker(self.lab.mx.messages("tls.example.test"), reply_marker)
        # One message: the smuggled ones (their subjects hold reply_marker too) never became messages.
        self.assertEqual(len(arrived), 1, [a[:300] for a in arrived])
        # Postfix saw one transaction from us for the reply: no MAIL from mallory, ever.
        self.assertNotIn("mallory@evil.test", self.lab.mx.log())
        for line in self.lab.mx.log().splitlines():
            self.assertNotIn("bare <LF>", line)
            self.assertNotIn("bare <CR>", line)

    # -- item 3: DANE and a bogus AAAA answer ----------------------------------------------------

    def test_bogus_aaaa_in_signed_mx_set_defers_instead_of_dropping_dane(self):
        marker = "aaaabogus-" + uuid.uuid4().hex[:8]
        qid = submit(self.mw, "dana@daneaaaa.example.test", marker)
        r = wait_for(lambda: (x := self.rcpt_state(qid))["attempts"] >= 2 and x, 60, "two attempts")
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("address lookup failed", r["last_error"])
        lines = [l for l in self.log_of(qid) if l["mx"] == "mx.daneaaaa.example.test"]
        self.assertTrue(lines, self.log_of(qid))
        for l in lines:
            self.assertEqual((l["result"], l["status"], l["address"], l["tls"]), ("deferred", "4.4.3", "", None), l)
            self.assertIn("AAAA", l["reason"])
        self.assertEqual(with_marker(self.lab.mx.messages("daneaaaa.example.test"), marker), [])
        self.mw.cli("queue", "delete", qid, check=False)

    def test_good_aaaa_signature_is_delivered_at_dane(self):
        marker = "aaaaok-" + uuid.uuid4().hex[:8]
        qid = submit(self.mw, "dana@daneok.example.test", marker)
        wait_for(lambda: with_marker(self.lab.mx.messages("daneok.example.test"), marker), 60, "delivery")
        wait_for(lambda: self.rcpt_state(qid)["state"] == "delivered", 30, "delivered")
        line = self.log_of(qid)[-1]
        self.assertEqual(line["required_level"], "dane", line)
        self.assertTrue(line["tls"]["dane_matched"], line)

    # -- item 4: the bounce of a REQUIRETLS message ----------------------------------------------

    def test_bounce_of_requiretls_message_carries_requiretls_and_is_never_sent_without_it(self):
        # dane.example.test meets mailward's side of RFC 8689 but Postfix offers no REQUIRETLS:
        # 5.7.30, a bounce to the sender at tls.example.test (unsigned MX: REQUIRETLS cannot be met).
        marker = "rtlsbounce-" + uuid.uuid4().hex[:8]
        known = {json.loads(l)["queue_id"] for l in self.mw.cli("queue", "list", "--json").stdout.splitlines()}
        known |= {line["queue_id"] for line in self.mw.delivery_log()}
        qid = submit(self.mw, "rita@dane.example.test", marker, params=["REQUIRETLS"], tls=True)
        r = wait_for(lambda: (x := self.rcpt_state(qid))["attempts"] >= 1 and x, 60, "an attempt")
        self.assertEqual(r["state"], "failed", r)
        self.assertIn("5.7.30", r["last_error"])

        def the_bounce():
            # Found through its first delivery log line: `queue list` shows only pending messages,
            # and the bounce may be sealed in escrow before a poll of the queue sees it.
            for line in self.mw.delivery_log():
                if (line["recipient"] == SENDER and line["queue_id"] not in known
                        and line["queue_id"] != qid):
                    show = self.mw.queue_show(line["queue_id"])
                    if show["sender"] == "":
                        return show
            return None
        bounce = wait_for(the_bounce, 60, "the bounce in the queue")
        self.assertTrue(bounce["requiretls"], bounce)
        self.assertEqual(bounce["recipients"][0]["address"], SENDER)
        # Its delivery is held (escrow in the default mode) or refused, never made without REQUIRETLS.
        wait_for(lambda: self.mw.queue_show(bounce["id"])["recipients"][0]["attempts"] >= 1, 60, "a bounce attempt")
        time.sleep(2)
        self.assertEqual(with_marker(self.lab.mx.messages("tls.example.test"), marker), [])
        self.assertEqual(with_marker(self.lab.mx.messages("dane.example.test"), marker), [])
        bl = [l for l in self.mw.delivery_log() if l["queue_id"] == bounce["id"]]
        self.assertTrue(bl)
        self.assertTrue(any(x.startswith("REQUIRETLS") for x in bl[-1]["level_reasons"]), bl[-1])


class LoopTest(LabTestCase):
    """[delivery] allow_loopback_mx off (the default): the lab's MX on 127.A.B.x is a loop."""
    @classmethod
    def configure(cls, extra):
        extra["delivery"]["allow_loopback_mx"] = False
        extra["delivery"]["retry_schedule"] = ["1h"]
        extra["policy"] = {"default_mode": "opportunistic"}  # no probing: straight to the attempt

    def test_loopback_mx_is_refused_with_5_4_6(self):
        marker = "loop-" + uuid.uuid4().hex[:8]
        qid = submit(self.mw, "bob@tls.example.test", marker)
        r = wait_for(lambda: (x := self.mw.queue_show(qid)["recipients"][0])["state"] == "failed" and x, 60,
                     "the recipient failed")
        self.assertIn("loops back to myself", r["last_error"])
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertTrue(lines)
        for line in lines:  # no attempt other than the refusal: never connected
            self.assertEqual((line["result"], line["status"], line["tls"]), ("loop", "5.4.6", None), line)
            self.assertEqual(line["mx"], "mx.tls.example.test")
            self.assertIn("allow_loopback_mx", line["reason"])
        self.assertIn("loops back to myself", self.mw.log())
        time.sleep(1)
        self.assertEqual(with_marker(self.lab.mx.messages("tls.example.test"), marker), [])


class OwnListenerTest(unittest.TestCase):
    """Delivery to mailward's own submission listener is a loop even with loopback allowed."""

    def test_own_listener_is_refused_even_when_loopback_is_allowed(self):
        tmp = TempDir()
        try:
            mw = Mailward(tmp.path, tls=False, extra={"delivery": {"port": 1, "retry_schedule": ["1h"]},
                                                      "policy": {"default_mode": "opportunistic"}})
            with open(mw.config) as f:
                text = f.read()
            self.assertIn("allow_loopback_mx = true", text)
            with open(mw.config, "w") as f:
                f.write(text.replace("\nport = 1\n", "\nport = %d\n" % mw.port))  # [delivery] port = our own
            mw.start()
            try:
                marker = "own-" + uuid.uuid4().hex[:8]
                qid = submit(mw, "me@[127.0.0.1]", marker, sender="")  # null sender: no bounce
                r = wait_for(lambda: (x := mw.queue_show(qid)["recipients"][0])["state"] == "failed" and x, 60,
                             "the recipient failed")
                self.assertIn("loops back to myself", r["last_error"])
                self.assertIn("own listeners", r["last_error"])
                line = [l for l in mw.delivery_log() if l["queue_id"] == qid][-1]
                self.assertEqual((line["result"], line["status"]), ("loop", "5.4.6"), line)
                # Only the one message was ever received: the loop never fed itself.
                listed = [json.loads(l)["queue_id"] for l in mw.cli("queue", "list", "--json").stdout.splitlines()]
                self.assertEqual([i for i in listed if i != qid], [])
                self.assertEqual({l["queue_id"] for l in mw.delivery_log()}, {qid})
            finally:
                mw.stop()
        finally:
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
