"""The queue as administrators read it (issue 13), against a running `mailward serve` and the lab:
`queue list` in mailq's layout with each recipient's state and delay reason, `queue list --json` in
the shape of Postfix's `postqueue -j` (checked field by field), the --domain / --state filters,
`queue hold` (no delivery while the MX accepts), `queue release` (delivered) and `queue flush` (a
deferred message goes at once, not at its next retry ten minutes later).

Deferrals come from the lab: notls.example.test has no STARTTLS and a static policy of encrypt
(Forced TLS defers), and the tls.example.test MX answers RCPT with 450 for the addresses a test
asks it to (set_recipient_reply), until the test lifts it.
"""
import json
import re
import smtplib
import time
import unittest

from harness import LAB_SENDER, LabTestCase, wait_for, with_marker

RETRY = "10m"  # no retry of its own during a test: what goes out was released or flushed


def submit_many(mw, rcpts, marker):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        code, resp = s.mail(LAB_SENDER)
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (code, resp)
        code, resp = s.data(("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\nbody %s\r\n" %
                             (marker, LAB_SENDER, rcpts[0], marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


class QueueAdminTest(LabTestCase):
    @classmethod
    def configure(cls, extra):
        extra["delivery"]["retry_schedule"] = [RETRY]
        extra["policy.domains"] = {"notls.example.test": "encrypt"}

    # -- helpers ------------------------------------------------------------------------------

    def list_json(self, *args):
        p = self.mw.cli("queue", "list", "--json", *args)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def entry(self, qid, *args):
        found = [e for e in self.list_json(*args) if e["queue_id"] == qid]
        return found[0] if found else None

    def attempted(self, qid, n):
        """Waits until every recipient of qid was tried at least once (n recipients pending)."""
        def done():
            r = self.mw.queue_show(qid)["recipients"]
            return len(r) == n and all(x["attempts"] >= 1 for x in r) and r
        return wait_for(done, 60, "an attempt for each recipient of " + qid)

    def defer_at_tls_mx(self, rcpt):
        self.lab.mx.set_recipient_reply(rcpt, "450 4.2.0 try again later")

    def lift(self, rcpt):
        self.lab.mx.set_recipient_reply(rcpt, None)
        time.sleep(2.5)  # mailward's pooled connections (2 s) are gone: the next attempt sees it

    def delivered(self, marker):
        return with_marker(self.lab.mx.messages("tls.example.test"), marker)

    # -- list ---------------------------------------------------------------------------------

    def test_list_json_has_postqueue_shape_and_mailward_fields(self):
        marker = "qa-json-" + str(time.time())
        rcpt_tls, rcpt_notls = "json-a@tls.example.test", "json-b@notls.example.test"
        self.defer_at_tls_mx(rcpt_tls)
        before = int(time.time())
        qid = submit_many(self.mw, [rcpt_tls, rcpt_notls], marker)
        shown = self.attempted(qid, 2)
        e = self.entry(qid)
        self.assertIsNotNone(e)
        # postqueue -j's fields, in its types.
        self.assertEqual(e["queue_name"], "deferred")
        self.assertEqual(e["queue_id"], qid)
        self.assertIsInstance(e["arrival_time"], int)
        self.assertTrue(before - 1 <= e["arrival_time"] <= int(time.time()) + 1, e)
        self.assertEqual(e["message_size"], self.mw.queue_show(qid)["size"])
        self.assertEqual(e["sender"], LAB_SENDER)
        self.assertIs(e["forced_expire"], False)
        self.assertEqual([r["address"] for r in e["recipients"]], [rcpt_tls, rcpt_notls])
        by = {r["address"]: r for r in e["recipients"]}
        self.assertIn("450 4.2.0", by[rcpt_tls]["delay_reason"])
        self.assertEqual(by[rcpt_tls]["delay_reason"], shown[0]["last_error"])
        self.assertEqual(by[rcpt_notls]["delay_reason"], shown[1]["last_error"])
        self.assertRegex(by[rcpt_notls]["delay_reason"].lower(), r"starttls|tls")
        # mailward's own fields.
        self.assertEqual(e["state"], "deferred")
        self.assertIs(e["held"], False)
        self.assertIs(e["requiretls"], False)
        self.assertRegex(e["next_attempt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        for r in e["recipients"]:
            self.assertEqual(r["state"], "deferred")
            self.assertEqual(r["attempts"], 1)
            self.assertRegex(r["next_attempt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual(set(r["tls"]), {"static", "learned", "override"})
        self.assertEqual(by[rcpt_notls]["tls"]["static"], "encrypt")
        self.assertIsNone(by[rcpt_tls]["tls"]["static"])
        self.assertEqual(min(r["next_attempt"] for r in e["recipients"]), e["next_attempt"])

        # The text: mailq's layout (queue id, size, arrival time, sender; per recipient the reason in
        # parentheses, then the address indented).
        out = self.mw.cli("queue", "list").stdout
        self.assertTrue(out.startswith("-Queue ID-"), out)
        lines = out.splitlines()
        i = [n for n, l in enumerate(lines) if l.startswith(qid)][0]
        self.assertRegex(lines[i], r"^%s  +%d \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d +%s$" %
                         (qid, e["message_size"], re.escape(LAB_SENDER)))
        self.assertRegex(lines[i + 1], r"^\(deferred: .*450 4\.2\.0.*; next attempt \S+Z\)$")
        self.assertEqual(lines[i + 2], " " * 50 + rcpt_tls)
        self.assertTrue(lines[i + 3].startswith("(deferred: "), lines[i + 3])
        self.assertEqual(lines[i + 4], " " * 50 + rcpt_notls)
        self.assertRegex(lines[-1], r"^-- \d+ Kbytes in \d+ Requests?\.$")

        # Filters: by domain (the recipients at it), by state; a bad state names the valid ones.
        e = self.entry(qid, "--domain", "NOTLS.example.test")
        self.assertEqual([r["address"] for r in e["recipients"]], [rcpt_notls])
        self.assertIsNotNone(self.entry(qid, "--state", "deferred"))
        self.assertIsNone(self.entry(qid, "--state", "held"))
        self.assertIsNone(self.entry(qid, "--domain", "example.org"))
        p = self.mw.cli("queue", "list", "--state", "stuck", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown queue state 'stuck' (valid: held, active, deferred, queued, awaiting_escrow)",
                      p.stderr)
        self.mw.cli("queue", "delete", qid)
        self.lift(rcpt_tls)

    # -- hold / release -----------------------------------------------------------------------

    def test_hold_prevents_delivery_while_the_mx_accepts_and_release_delivers(self):
        marker = "qa-hold-" + str(time.time())
        rcpt = "hold@tls.example.test"
        self.defer_at_tls_mx(rcpt)
        qid = submit_many(self.mw, [rcpt], marker)
        self.attempted(qid, 1)
        p = self.mw.cli("queue", "hold", qid)
        self.assertEqual(p.stdout.strip(), qid + ": on hold (never delivered until released)")
        self.lift(rcpt)  # the MX accepts it now
        # Neither a retry nor a flush sends it: the engine (idle poll 5 s) never leases it.
        self.mw.cli("queue", "retry", qid)
        self.mw.cli("queue", "flush")
        time.sleep(8)
        self.assertEqual(self.delivered(marker), [])
        show = self.mw.queue_show(qid)
        self.assertIs(show["held"], True)
        self.assertEqual(show["recipients"][0]["state"], "queued")
        self.assertEqual(show["recipients"][0]["attempts"], 1)
        e = self.entry(qid)
        self.assertEqual((e["queue_name"], e["state"], e["held"]), ("hold", "held", True))
        self.assertEqual(e["recipients"][0]["state"], "held")
        self.assertIn("on hold", e["recipients"][0]["delay_reason"])
        self.assertIsNotNone(self.entry(qid, "--state", "held"))
        line = [l for l in self.mw.cli("queue", "list").stdout.splitlines() if l.startswith(qid)][0]
        self.assertTrue(line.startswith(qid + "!"), line)  # mailq marks a held message with '!'
        self.assertIn("on hold:", self.mw.cli("queue", "show", qid).stdout)

        p = self.mw.cli("queue", "release", qid, "--json")
        self.assertEqual(json.loads(p.stdout), {"id": qid, "action": "released"})
        wait_for(lambda: self.delivered(marker), 30, "delivery after release")
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 30, "delivered state")
        self.assertIs(self.mw.queue_show(qid)["held"], False)

    def test_hold_and_release_errors(self):
        unknown = "0123456789abcdefgh"
        for cmd in ("hold", "release"):
            p = self.mw.cli("queue", cmd, unknown, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertEqual(p.stderr.strip(), "mailward: no message %s in the queue" % unknown)
            p = self.mw.cli("queue", cmd, "../x", check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("is not a queue id", p.stderr)
        marker = "qa-notheld-" + str(time.time())
        qid = submit_many(self.mw, ["notheld@notls.example.test"], marker)
        p = self.mw.cli("queue", "release", qid, check=False)
        self.assertEqual((p.returncode, p.stderr.strip()), (1, "mailward: message %s is not on hold" % qid))
        self.mw.cli("queue", "delete", qid)
        p = self.mw.cli("queue", "hold", qid, check=False)
        self.assertEqual((p.returncode, p.stderr.strip()),
                         (1, "mailward: message %s has nothing left to deliver (nothing to hold)" % qid))

    # -- flush --------------------------------------------------------------------------------

    def test_flush_sends_a_deferred_message_at_once(self):
        marker = "qa-flush-" + str(time.time())
        rcpt = "flush@tls.example.test"
        self.defer_at_tls_mx(rcpt)
        qid = submit_many(self.mw, [rcpt], marker)
        r = self.attempted(qid, 1)[0]
        self.assertEqual(r["state"], "queued")
        # Its next attempt is ten minutes away.
        e = self.entry(qid)
        self.assertGreater(time.mktime(time.strptime(e["next_attempt"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone,
                           time.time() + 300)
        self.lift(rcpt)
        time.sleep(6)  # a full idle poll of the engine: nothing goes without the flush
        self.assertEqual(self.delivered(marker), [])
        p = self.mw.cli("queue", "flush", "--json")
        j = json.loads(p.stdout)
        self.assertEqual(j["action"], "flush")
        self.assertGreaterEqual(j["messages"], 1)
        start = time.time()
        wait_for(lambda: self.delivered(marker), 20, "delivery after flush")
        self.assertLess(time.time() - start, 20)
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 30, "delivered state")
        self.assertIsNone(self.entry(qid))
        text = self.mw.cli("queue", "flush").stdout
        self.assertRegex(text, r"^\d+ messages? due now; a running 'mailward serve' starts them within 5 seconds$")


if __name__ == "__main__":
    unittest.main()
