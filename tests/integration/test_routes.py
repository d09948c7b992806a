"""[[delivery.routes]] end to end with the lab's Postfix as a smarthost that takes mail only from
clients that authenticated, and offers AUTH only inside TLS (Cyrus SASL, sasldb):

- a routed domain goes to the smarthost, not to its own MX (which does no TLS): delivered with TLS
  at verify after AUTH PLAIN, even for an opportunistic sender that the MX would take in the clear;
  the delivery log names the route (its "route" key and the reasons), `queue show --json` the route
  its last attempt used, `policy simulate --json` the route the domain takes; the smarthost's log
  shows the SASL login;
- a wrong password: deferred (never bounced), the reason says the smarthost refused AUTH;
- a smarthost whose certificate the lab CA did not issue: the route's verify floor is not met, the
  message is held and the password never sent (no AUTH in the smarthost's log);
- a domain with no route still goes to its own MX, and nothing names a route for it.
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import Mailward, TempDir, submit, wait_for  # noqa: E402
from mwlab import received_tls, standard_lab  # noqa: E402
from mwlab.postfix import received_by  # noqa: E402

PASSWORD = "s3cret pass!"
ROUTED = "routed.example.test"         # its MX does no TLS; its route goes to the smarthost
WRONG = "wrongpw.example.test"         # routed to the smarthost with a wrong password
UNTRUSTED = "untrusted.example.test"   # routed to a smarthost with a self-signed certificate
SMARTHOST = "smarthost.example.test"
BADCERT = "badcert.example.test"


class RoutesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        lab = standard_lab(os.path.join(cls.tmp.path, "lab"), start=False)
        cls.lab = lab
        mx = lab.mx
        users = {"relay": PASSWORD}
        cls.smart = mx.add_smarthost_listener(users, lab.ca.issue(SMARTHOST), SMARTHOST, address=60, name="smart")
        cls.bad = mx.add_smarthost_listener(users, lab.ca.self_signed(BADCERT), BADCERT, address=61, name="badcert")
        lab.dns.add_zone(SMARTHOST, [("@", "A", cls.smart.address)])
        lab.dns.add_zone(BADCERT, [("@", "A", cls.bad.address)])
        for d in (ROUTED, WRONG, UNTRUSTED):
            lab.dns.add_zone(d, [("@", "MX", "10 mx.notls.example.test.")])
        mx.accept_domains([ROUTED, WRONG, UNTRUSTED])
        lab.start()
        good = os.path.join(cls.tmp.path, "relay.pass")
        wrong = os.path.join(cls.tmp.path, "wrong.pass")
        for path, text in ((good, PASSWORD + "\n"), (wrong, "not-the-password\n")):
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
        extra = lab.mailward_config()
        extra["delivery"]["retry_schedule"] = ["1h"]
        extra["delivery"]["routes"] = [
            {"name": "smarthost", "domains": [ROUTED], "next_hop": "[%s]:%d" % (SMARTHOST, lab.port),
             "auth_user": "relay", "auth_password_file": good},
            {"name": "wrong-password", "domains": [WRONG], "next_hop": "[%s]:%d" % (SMARTHOST, lab.port),
             "auth_user": "relay", "auth_password_file": wrong},
            {"name": "untrusted", "domains": [UNTRUSTED], "next_hop": "[%s]:%d" % (BADCERT, lab.port),
             "auth_user": "relay", "auth_password_file": good},
        ]
        # Opportunistic: without its route, mail for ROUTED would go to its MX in the clear.
        extra["policy"] = {"default_mode": "opportunistic"}
        cls.mw = Mailward(cls.tmp.path, tls=False, extra=extra).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            cls.lab.stop()
            cls.tmp.cleanup()

    def lines(self, qid):
        return [l for l in self.mw.delivery_log() if l["queue_id"] == qid]

    def first_attempt(self, qid):
        return wait_for(lambda: (r := self.mw.queue_show(qid)["recipients"][0])["attempts"] >= 1 and r, 60,
                        "a first attempt of " + qid)

    def arrived(self, domain, marker):
        return [m for m in self.lab.mx.messages(domain) if marker.encode() in m]

    def outcome_line(self, qid):
        """The main log's outcome line of qid's delivery."""
        return wait_for(lambda: [l for l in self.mw.log().splitlines() if qid + ": to=<" in l and "status=sent" in l],
                        30, "the outcome line of " + qid)[-1]

    def simulated(self, domain):
        out = json.loads(self.mw.cli("policy", "simulate", "--json").stdout)
        return [d for d in out["domains"] if d["domain"] == domain][0]

    def smarthost_log(self, name):
        return "\n".join(l for l in self.lab.mx.log().splitlines() if "postfix/%s/" % name in l)

    def test_a_routed_domain_goes_through_the_smarthost_with_auth_inside_tls(self):
        qid = submit(self.mw, "bob@" + ROUTED, "routed-1")
        msgs = wait_for(lambda: self.arrived(ROUTED, "routed-1"), 60, "the routed message at the lab")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(received_by(msgs[0]), SMARTHOST, "taken by the smarthost, not by the domain's MX")
        self.assertIsNotNone(received_tls(msgs[0]), "relayed to the smarthost without TLS")
        line = [l for l in self.lines(qid) if l["result"] == "delivered"][-1]
        self.assertEqual(line["mx"], SMARTHOST)
        self.assertEqual(line["required_level"], "verify", line)
        self.assertTrue(any(r.startswith("route smarthost: TLS at least verify") for r in line["level_reasons"]),
                        line["level_reasons"])
        self.assertTrue(line["tls"] and line["tls"]["chain_valid"], line)
        self.assertRegex(self.smarthost_log("smart"), r"sasl_method=PLAIN, sasl_username=relay")
        self.assertEqual(line["route"], "smarthost", line)
        self.assertTrue(all(l.get("route") == "smarthost" for l in self.lines(qid)), self.lines(qid))
        r = self.mw.queue_show(qid)["recipients"][0]
        self.assertEqual(r["route"], "smarthost", r)
        self.assertIsNone(r["next_route"], "a delivered recipient has no next attempt")
        self.assertIn("route=smarthost", self.outcome_line(qid))
        self.assertEqual(self.simulated(ROUTED)["route"], "smarthost")

    def test_a_wrong_password_defers(self):
        qid = submit(self.mw, "bob@" + WRONG, "wrong-1")
        r = self.first_attempt(qid)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("AUTH as relay refused", r["last_error"])
        self.assertIn("535", r["last_error"])
        self.assertEqual(r["route"], "wrong-password", r)
        self.assertEqual(r["next_route"], "wrong-password", "the config's route for the next attempt")
        text = self.mw.cli("queue", "show", qid).stdout
        self.assertIn("route:      wrong-password (last attempt)", text)
        self.assertIn("next route: wrong-password (the config's route for the next attempt)", text)
        time.sleep(1)
        self.assertEqual(self.arrived(WRONG, "wrong-1"), [])

    def test_an_unverified_smarthost_never_gets_the_password(self):
        qid = submit(self.mw, "bob@" + UNTRUSTED, "untrusted-1")
        r = self.first_attempt(qid)
        self.assertEqual(r["state"], "queued", r)
        self.assertIn("TLS verify required, not met", r["last_error"])
        time.sleep(1)
        self.assertEqual(self.arrived(UNTRUSTED, "untrusted-1"), [])
        log = self.smarthost_log("badcert")
        self.assertIn("connect from", log, "mailward did talk to the untrusted smarthost")
        self.assertNotRegex(log, r"sasl_|authentication failed|AUTH", "the password went to an unverified host")

    def test_a_domain_without_a_route_goes_to_its_own_mx(self):
        qid = submit(self.mw, "carol@notls.example.test", "direct-1")
        msgs = wait_for(lambda: self.arrived("notls.example.test", "direct-1"), 60, "the direct message")
        self.assertEqual(received_by(msgs[0]), "mx.notls.example.test")
        line = [l for l in self.lines(qid) if l["result"] == "delivered"][-1]
        self.assertFalse(any(r.startswith("route ") for r in line["level_reasons"]), line["level_reasons"])
        self.assertNotIn("route", line)
        r = self.mw.queue_show(qid)["recipients"][0]
        self.assertIsNone(r["route"], r)
        self.assertNotIn("route=", self.outcome_line(qid))
        self.assertIsNone(self.simulated("notls.example.test")["route"])


if __name__ == "__main__":
    unittest.main()
