"""Delivery engine against real peers on loopback: the lab's knot DNS (signed and unsigned zones,
TLSA) and Postfix MX listeners with different TLS behaviour. The proof of TLS is Postfix's own
Received header, and the proof that a peer never saw a message is Postfix's own log
(`disconnect ... ehlo=1 quit=1`: no MAIL, no DATA)."""
import json
import os
import re
import smtplib
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LAB_SENDER, submit, with_marker, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import BlackHoleDns, received_tls, standard_lab  # noqa: E402

SENDER = LAB_SENDER


class DeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        # backup.example.test: MX 10 has no listener (connection refused), MX 20 is the TLS host.
        dead = lab.mx.address(99)
        lab.dns.add_zone("backup.example.test", [("@", "MX", "10 mx1.backup.example.test."),
                                                 ("mx1", "A", dead),
                                                 ("@", "MX", "20 mx.tls.example.test.")])
        # ratchet.example.test: first the TLS listener (its certificate names another host: encrypt),
        # later re-pointed at the listener without STARTTLS, as a STARTTLS-stripping attacker would.
        # TTL 1 s so that the change is seen at once.
        cls.tls_addr = lab.domains["tls.example.test"].mx[0].address
        cls.notls_addr = lab.domains["notls.example.test"].mx[0].address
        # rekey.example.test: first the self-signed listener (learned at encrypt with its key), later
        # re-pointed at a listener with another key whose chain is valid but names another host.
        cls.selfsigned_addr = lab.domains["selfsigned.example.test"].mx[0].address
        cls.wrongname_addr = lab.domains["wrongname.example.test"].mx[0].address
        lab.dns.add_zone("rekey.example.test", [("@", "MX", "10 mx.rekey.example.test."),
                                                ("mx", "A", cls.selfsigned_addr)], ttl=1)
        lab.dns.add_zone("ratchet.example.test", [("@", "MX", "10 mx.ratchet.example.test."),
                                                  ("mx", "A", cls.tls_addr)], ttl=1)
        lab.mx.accept_domains(["backup.example.test", "ratchet.example.test", "rekey.example.test"])
        lab.start()
        extra = lab.mailward_config()
        # Longer than mailward's 2 s connection reuse: a retry opens a new connection, and the lab's
        # forced replies apply from the next connection.
        extra["delivery"]["retry_schedule"] = ["3s"]
        extra["dns"]["timeout"] = "3s"
        extra["policy.domains"] = {"notls.example.test": "encrypt", "wrongname.example.test": "verify",
                                   "selfsigned.example.test": "encrypt"}
        cls.mw = Mailward(cls.tmp.path, tls=False, extra=extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.lab.stop()
            cls.tmp.cleanup()

    def rcpt_state(self, qid, i=0):
        return self.mw.queue_show(qid)["recipients"][i]

    def wait_state(self, qid, state, timeout=60):
        return wait_for(lambda: (r := self.rcpt_state(qid))["state"] == state and r, timeout,
                        "%s to be %s" % (qid, state))

    def wait_attempts(self, qid, n=1, timeout=60):
        return wait_for(lambda: (r := self.rcpt_state(qid))["attempts"] >= n and r, timeout,
                        "%s to have %d attempt(s)" % (qid, n))

    def postfix_sessions_on(self, service):
        """Postfix's disconnect lines for sessions on a listener, e.g. 'ehlo=2 starttls=1 mail=1 ...'."""
        return [l for l in self.lab.mx.log().splitlines() if "disconnect from" in l and "/%s/smtpd[" % service in l]

    def force_reply(self, rcpt, reply):
        self.lab.mx.set_recipient_reply(rcpt, reply)
        time.sleep(2.5)  # pooled connections (2 s) are gone: the next attempt sees the new reply

    def test_delivered_over_tls(self):
        marker = "tls-marker-1"
        qid = submit(self.mw, "bob@tls.example.test", marker)
        wait_for(lambda: with_marker(self.lab.mx.messages("tls.example.test"), marker), 60, "delivery")
        msgs = with_marker(self.lab.mx.messages("tls.example.test"), marker)
        self.assertEqual(len(msgs), 1)
        tls = received_tls(msgs[0])
        self.assertIsNotNone(tls, msgs[0][:600])
        self.assertEqual(tls.protocol, "TLSv1.3")
        self.wait_state(qid, "delivered")
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertEqual(lines[-1]["result"], "delivered")
        self.assertEqual(lines[-1]["tls"]["protocol"], "TLSv1.3")
        self.assertTrue(lines[-1]["tls"]["chain_valid"])
        self.assertEqual(lines[-1]["mx"], "mx.tls.example.test")

    def test_swaks_submission_reaches_postfix_over_tls(self):
        import subprocess
        marker = "swaks-delivery-marker"
        p = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.mw.port),
                            "--from", SENDER, "--to", "swaks@tls.example.test", "--header", "Subject: " + marker,
                            "--body", marker], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        msgs = wait_for(lambda: with_marker(self.lab.mx.messages("tls.example.test"), marker), 60, "delivery")
        tls = received_tls(msgs[0])
        self.assertIsNotNone(tls)
        self.assertEqual(tls.protocol, "TLSv1.3")

    def test_recipients_in_several_domains_and_ipv6(self):
        marker = "multi-domain-marker"
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.mail(SENDER)
            for r in ("m1@tls.example.test", "m2@v6.example.test", "m3@tls.example.test"):
                self.assertEqual(s.rcpt(r)[0], 250)
            code, resp = s.data(("Subject: %s\r\n\r\nbody\r\n" % marker).encode())
            self.assertEqual(code, 250)
        qid = resp.decode().split("queued as ")[1].split()[0]
        wait_for(lambda: all(r["state"] == "delivered" for r in self.mw.queue_show(qid)["recipients"]), 60,
                 "all three recipients delivered")
        tls_msgs = with_marker(self.lab.mx.messages("tls.example.test"), marker)
        v6_msgs = with_marker(self.lab.mx.messages("v6.example.test"), marker)
        # One maildir per domain: a copy per recipient, told apart by Delivered-To.
        self.assertEqual(sorted(re.search(rb"Delivered-To: (\S+)", m).group(1) for m in tls_msgs),
                         [b"m1@tls.example.test", b"m3@tls.example.test"])
        # Both tls.example.test recipients went in one transaction (Postfix: one queue id, nrcpt=2).
        self.assertRegex(self.lab.mx.log(), r"from=<%s>, size=\d+, nrcpt=2" % re.escape(SENDER))
        self.assertEqual(len(v6_msgs), 1)
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertIn("::1", [l["address"] for l in lines if l["recipient"] == "m2@v6.example.test"])

    def test_learned_policy_ratchet_and_downgrade_incident(self):
        first = submit(self.mw, "r1@ratchet.example.test", "ratchet-1")
        self.wait_state(first, "delivered")
        learned = json.loads(self.mw.cli("policy", "show", "ratchet.example.test", "--json").stdout)
        self.assertEqual(learned["level"], "encrypt")  # every MX probed: TLS, certificate names another host
        line = [l for l in self.mw.delivery_log() if l["queue_id"] == first][-1]
        self.assertEqual(line["required_level"], "encrypt")
        self.assertTrue(any(r.startswith("learned: encrypt") for r in line["level_reasons"]), line)
        # A later delivery at the learned level confirms it.
        time.sleep(1.1)
        again = submit(self.mw, "r0@ratchet.example.test", "ratchet-0")
        self.wait_state(again, "delivered")
        confirmed = json.loads(self.mw.cli("policy", "show", "ratchet.example.test", "--json").stdout)
        self.assertGreater(confirmed["last_confirmed"], learned["last_confirmed"])
        # The attacker's move: the domain's MX now answers without STARTTLS.
        self.lab.dns.set_records("ratchet.example.test", [("@", "MX", "10 mx.ratchet.example.test."),
                                                          ("mx", "A", self.notls_addr)])
        time.sleep(2.5)
        second = submit(self.mw, "r2@ratchet.example.test", "ratchet-2")
        r = self.wait_attempts(second)
        self.assertEqual(r["state"], "queued")  # deferred, never sent in the clear
        self.assertIn("STARTTLS not offered", r["last_error"])
        shown = json.loads(self.mw.cli("policy", "show", "ratchet.example.test", "--json").stdout)
        self.assertEqual(shown["level"], "encrypt")  # not lowered
        self.assertEqual([i["kind"] for i in shown["incidents"]][:1], ["starttls_missing"])
        self.assertIn("possible STARTTLS downgrade attack on ratchet.example.test", self.mw.log())
        self.assertEqual(with_marker(self.lab.mx.messages("ratchet.example.test"), "ratchet-2"), [])
        # The metric (data_dir/metrics.prom, rewritten every 5 s) counts it.
        metrics_file = os.path.join(self.mw.data_dir, "metrics.prom")
        deadline = time.time() + 12
        text = ""
        while time.time() < deadline:
            text = open(metrics_file).read() if os.path.exists(metrics_file) else ""
            if 'mailward_policy_incidents_total{kind="starttls_missing"}' in text:
                break
            time.sleep(0.5)
        self.assertRegex(text, r'mailward_policy_incidents_total\{kind="starttls_missing"\} [1-9]')
        # Only an administrator lowers it.
        self.mw.cli("policy", "forget", "ratchet.example.test")
        p = self.mw.cli("policy", "show", "ratchet.example.test", check=False)
        self.assertIn("incident", p.stdout)  # the history stays

    def test_certificate_change_without_valid_chain_is_held_with_an_incident(self):
        first = submit(self.mw, "r1@rekey.example.test", "rekey-1")
        self.wait_state(first, "delivered")
        learned = json.loads(self.mw.cli("policy", "show", "rekey.example.test", "--json").stdout)
        self.assertEqual(learned["level"], "encrypt")
        # The interceptor: same MX name, another key, a chain that does not name the host.
        self.lab.dns.set_records("rekey.example.test", [("@", "MX", "10 mx.rekey.example.test."),
                                                        ("mx", "A", self.wrongname_addr)])
        time.sleep(2.5)
        second = submit(self.mw, "r2@rekey.example.test", "rekey-2")
        r = self.wait_attempts(second)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("certificate changed", r["last_error"])
        shown = json.loads(self.mw.cli("policy", "show", "rekey.example.test", "--json").stdout)
        self.assertIn("certificate_changed", [i["kind"] for i in shown["incidents"]])
        self.assertIn("certificate changed for rekey.example.test", self.mw.log())
        self.assertEqual(with_marker(self.lab.mx.messages("rekey.example.test"), "rekey-2"), [])
        # The re-probe did not make the new key acceptable: the retry is held again.
        r = self.wait_attempts(second, 2)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("certificate changed", r["last_error"])

    def test_encrypt_without_starttls_is_deferred_and_peer_never_sees_mail(self):
        qid = submit(self.mw, "carol@notls.example.test", "notls-marker")
        r = self.wait_attempts(qid)
        self.assertEqual(r["state"], "queued")
        self.assertIn("STARTTLS", r["last_error"])
        self.assertIn("encrypt", r["last_error"])
        time.sleep(1)
        self.assertEqual(with_marker(self.lab.mx.messages("notls.example.test"), "notls-marker"), [])
        sessions = self.postfix_sessions_on("notls")
        self.assertTrue(sessions, self.lab.mx.log()[-3000:])
        for l in sessions:
            self.assertNotIn("mail=", l)
            self.assertNotIn("data=", l)
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertEqual(lines[0]["result"], "deferred-tls-policy")
        self.assertEqual(lines[0]["required_level"], "encrypt")

    def test_verify_with_wrong_name_is_deferred(self):
        qid = submit(self.mw, "dave@wrongname.example.test", "wrongname-marker")
        r = self.wait_attempts(qid)
        self.assertEqual(r["state"], "queued")
        self.assertIn("verify", r["last_error"])
        self.assertEqual(with_marker(self.lab.mx.messages("wrongname.example.test"), "wrongname-marker"), [])
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertEqual(lines[0]["result"], "deferred-tls-policy")
        self.assertFalse(lines[0]["tls"]["name_matched"])

    def test_admin_override_lowers_with_reason_and_expires(self):
        # wrongname.example.test requires verify (static policy); its certificate names another host.
        self.mw.cli("policy", "set", "wrongname.example.test", "encrypt", "--reason", "partner renews its certificate",
                    "--expires", "1h")
        qid = submit(self.mw, "olga@wrongname.example.test", "override-on")
        self.wait_state(qid, "delivered")
        line = [l for l in self.mw.delivery_log() if l["queue_id"] == qid][-1]
        self.assertEqual(line["required_level"], "encrypt")
        self.assertTrue(any("partner renews its certificate" in r for r in line["level_reasons"]), line)
        self.assertIsNotNone(received_tls(with_marker(self.lab.mx.messages("wrongname.example.test"),
                                                      "override-on")[0]))
        # An override that has expired is ignored (and said so): verify applies again.
        self.mw.cli("policy", "set", "wrongname.example.test", "encrypt", "--reason", "short", "--expires", "2s")
        time.sleep(2.5)
        qid = submit(self.mw, "olga@wrongname.example.test", "override-expired")
        r = self.wait_attempts(qid)
        self.assertEqual(r["state"], "queued")
        line = [l for l in self.mw.delivery_log() if l["queue_id"] == qid][-1]
        self.assertEqual(line["required_level"], "verify")
        self.assertTrue(any("expired" in x for x in line["level_reasons"]), line)
        self.mw.cli("policy", "clear", "wrongname.example.test")
        self.assertEqual(with_marker(self.lab.mx.messages("wrongname.example.test"), "override-expired"), [])

    def submit_requiretls(self, rcpt, marker):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the submission port's self-signed certificate
        with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.starttls(context=ctx)
            s.ehlo("app.example.org")
            code, resp = s.mail(SENDER, ["REQUIRETLS"])
            self.assertEqual(code, 250, resp)
            s.rcpt(rcpt)
            code, resp = s.data(("Subject: %s\r\n\r\nbody %s\r\n" % (marker, marker)).encode())
            self.assertEqual(code, 250, resp)
        return resp.decode().split("queued as ")[1].split()[0]

    def test_requiretls_over_dnssec_mx_needs_a_next_hop_that_supports_it(self):
        # dane.example.test: DNSSEC-secure MX and TLSA, so mailward's side of RFC 8689 is met and it
        # connects with TLS; Postfix 3.7 does not offer REQUIRETLS, so the message must not be
        # relayed (RFC 8689 section 4.2.2): a 5.7.30 failure, never a delivery without the promise.
        # (A peer that offers REQUIRETLS gets the message: SmtpClientTest.RequireTlsOverTls.)
        qid = self.submit_requiretls("rita@dane.example.test", "requiretls-hop")
        r = wait_for(lambda: (x := self.rcpt_state(qid))["attempts"] >= 1 and x, 60, "an attempt")
        self.assertEqual(r["state"], "failed", r)
        self.assertIn("5.7.30", r["last_error"])
        line = [l for l in self.mw.delivery_log() if l["queue_id"] == qid][-1]
        self.assertTrue(any(x.startswith("REQUIRETLS") for x in line["level_reasons"]), line)
        self.assertIsNotNone(line["tls"], line)  # the session was TLS; MAIL was refused by mailward's client
        self.assertEqual(with_marker(self.lab.mx.messages("dane.example.test"), "requiretls-hop"), [])

    def test_requiretls_unmet_without_authenticated_mx_is_held_never_sent(self):
        # tls.example.test is unsigned: its MX set is not authenticated (RFC 8689 section 4.2.1).
        qid = self.submit_requiretls("rita@tls.example.test", "requiretls-unmet")
        # The default mode tls-or-escrow: held for escrow, then sealed, and only a notice goes out.
        wait_for(lambda: self.rcpt_state(qid)["state"] == "escrowed", 60, "sealed in escrow")
        line = [l for l in self.mw.delivery_log() if l["queue_id"] == qid][-1]
        self.assertTrue(any(x.startswith("REQUIRETLS") for x in line["level_reasons"]), line)
        self.assertEqual(line["result"], "awaiting-escrow", line)
        notices = wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test")
                                    if b"A secure message is waiting" in m and b"rita@tls.example.test" in m],
                           60, "the escrow notice")
        self.assertEqual(with_marker(notices, "requiretls-unmet"), [])
        self.assertEqual(with_marker(self.lab.mx.messages("tls.example.test"), "requiretls-unmet"), [])

    def test_selfsigned_meets_encrypt(self):
        marker = "selfsigned-marker"
        qid = submit(self.mw, "erin@selfsigned.example.test", marker)
        self.wait_state(qid, "delivered")
        msgs = with_marker(self.lab.mx.messages("selfsigned.example.test"), marker)
        self.assertEqual(len(msgs), 1)
        self.assertIsNotNone(received_tls(msgs[0]))

    def test_dane_match_delivers_and_mismatch_defers(self):
        good = submit(self.mw, "frank@dane.example.test", "dane-good")
        bad = submit(self.mw, "gina@danebad.example.test", "dane-bad")
        self.wait_state(good, "delivered")
        msgs = with_marker(self.lab.mx.messages("dane.example.test"), "dane-good")
        self.assertEqual(len(msgs), 1)
        self.assertIsNotNone(received_tls(msgs[0]))
        good_line = [l for l in self.mw.delivery_log() if l["queue_id"] == good][-1]
        self.assertEqual(good_line["required_level"], "dane")
        self.assertTrue(good_line["tls"]["dane_matched"])
        r = self.wait_attempts(bad)
        self.assertEqual(r["state"], "queued")
        self.assertIn("dane", r["last_error"])
        self.assertEqual(with_marker(self.lab.mx.messages("danebad.example.test"), "dane-bad"), [])

    def test_4xx_is_retried_then_delivered(self):
        rcpt = "henry@tls.example.test"
        self.force_reply(rcpt, "450 4.2.0 mailbox busy, try later")
        qid = submit(self.mw, rcpt, "retry-marker")
        r = self.wait_attempts(qid)
        self.assertEqual(r["state"], "queued")
        self.assertIn("450 4.2.0", r["last_error"])
        self.force_reply(rcpt, None)
        r = self.wait_state(qid, "delivered")
        self.assertGreaterEqual(r["attempts"], 2)
        self.assertEqual(len(with_marker(self.lab.mx.messages("tls.example.test"), "retry-marker")), 1)

    def test_5xx_bounces_with_a_dsn(self):
        rcpt = "nobody@tls.example.test"
        self.force_reply(rcpt, "550 5.1.1 no such user here")
        qid = submit(self.mw, rcpt, "bounce-marker", params=["RET=HDRS", "ENVID=bounce-env"])
        r = self.wait_state(qid, "failed")
        self.assertIn("550 5.1.1", r["last_error"])
        dsns = wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test")
                                 if b"bounce-env" in m and b"multipart/report" in m], 60, "the DSN")
        dsn = dsns[0]
        self.assertIn(b"Status: 5.1.1", dsn)
        self.assertIn(b"Final-Recipient: rfc822; " + rcpt.encode(), dsn)
        self.assertRegex(dsn, rb"Diagnostic-Code: smtp; 550 5\.1\.1 .*no such user here")
        self.assertIn(b"Subject: bounce-marker", dsn)          # the headers came back (RET=HDRS)...
        self.assertNotIn(b"body bounce-marker", dsn)           # ...the body did not
        self.assertIn(b"Delivered-To: " + SENDER.encode(), dsn)

    def test_null_mx_bounces(self):
        qid = submit(self.mw, "ivan@nullmx.example.test", "nullmx-marker", params=["ENVID=nullmx-env"])
        r = self.wait_state(qid, "failed")
        self.assertIn("null MX", r["last_error"])
        dsns = wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test") if b"nullmx-env" in m],
                        60, "the DSN")
        self.assertIn(b"Status: 5.1.10", dsns[0])

    def test_second_mx_used_when_first_fails(self):
        marker = "backup-marker"
        qid = submit(self.mw, "judy@backup.example.test", marker)
        self.wait_state(qid, "delivered")
        msgs = with_marker(self.lab.mx.messages("backup.example.test"), marker)
        self.assertEqual(len(msgs), 1)
        lines = [l for l in self.mw.delivery_log() if l["queue_id"] == qid]
        self.assertEqual([l["mx"] for l in lines], ["mx1.backup.example.test", "mx.tls.example.test"])
        self.assertEqual(lines[0]["result"], "deferred")
        self.assertEqual(lines[1]["result"], "delivered")


class DnsTimeoutTest(unittest.TestCase):
    def test_dns_timeout_defers(self):
        tmp = TempDir()
        hole = BlackHoleDns()
        hole.start()
        mw = Mailward(tmp.path, tls=False, extra={"dns": {"servers": [hole.server], "timeout": "2s"},
                                                   "delivery": {"retry_schedule": ["1h"]}})
        try:
            mw.start()
            t0 = time.time()
            qid = submit(mw, "kim@tls.example.test", "dns-timeout")
            r = wait_for(lambda: (x := mw.queue_show(qid)["recipients"][0])["attempts"] >= 1 and x, 60,
                         "the first attempt")
            self.assertEqual(r["state"], "queued")
            self.assertRegex(r["last_error"], re.compile("tim(ed|e) ?out", re.I))
            self.assertLess(time.time() - t0, 30)
        finally:
            mw.stop()
            hole.stop()
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
