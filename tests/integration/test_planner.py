"""One planner: what the delivery engine decided for a lab domain (its delivery-log line) and what
`mailward policy simulate --json` says for the same domain afterwards, from the same recorded facts
(the learned level and per-MX evidence the first-contact probe stored), agree on the required level
and the action. Both come from policy::plan(); before it, simulate re-derived the capability itself
and disagreed with the engine in places. Domains: TLS with a CA certificate (verify), DANE, one MX
without STARTTLS (tls-or-escrow: escrow) and a mixed domain (forced TLS via the TLS host only)
that the preload list raises to verify (simulate used to ignore the preload list)."""
import json
import os
import time
import unittest

from harness import LabTestCase, submit, wait_for

# The delivery log's final results and the planner's actions they stand for.
ACTION_OF_RESULT = {"delivered": "deliver", "awaiting-escrow": "escrow"}


class PlannerAgreementTest(LabTestCase):
    DOMAINS = ("tls.example.test", "dane.example.test", "notls.example.test", "mixed.example.test")

    @classmethod
    def configure(cls, extra):
        preload = os.path.join(cls.tmp.path, "preload.json")
        with open(preload, "w") as f:
            json.dump({"version": 1, "domains": {"mixed.example.test": "verify"}}, f)
        extra.setdefault("policy", {})["preload_file"] = preload

    def final_line(self, qid):
        def find():
            lines = [l for l in self.mw.delivery_log()
                     if l["queue_id"] == qid and l["result"] in ACTION_OF_RESULT]
            return lines[-1] if lines else None
        return wait_for(find, 90, "a final delivery-log line for " + qid)

    def test_simulate_agrees_with_the_engine(self):
        engine = {}
        for n, domain in enumerate(self.DOMAINS):
            qid = submit(self.mw, "planner%d@%s" % (n, domain), "planner-%d" % n)
            engine[domain] = self.final_line(qid)
        p = self.mw.cli("policy", "simulate", "--json", "--mode", "tls-or-escrow")
        rows = {r["domain"]: r for r in json.loads(p.stdout)["domains"]}
        for domain, line in engine.items():
            with self.subTest(domain=domain):
                self.assertIn(domain, rows, p.stdout)
                sim = rows[domain]
                self.assertEqual(sim["required_level"], line["required_level"], (sim, line))
                self.assertEqual(sim["action"], ACTION_OF_RESULT[line["result"]], (sim, line))
        # The domains are not all alike: the check above compares different decisions.
        self.assertEqual({rows[d]["action"] for d in self.DOMAINS}, {"deliver", "escrow"})
        self.assertEqual(rows["dane.example.test"]["required_level"], "dane")
        self.assertEqual(rows["mixed.example.test"]["capability"], "partial_tls")
        self.assertEqual(rows["mixed.example.test"]["required_level"], "verify")  # the preload list

        # The MTA-STS policies `serve` cached in the store count for simulate as for delivery: an
        # enforce policy raises notls.example.test to verify, and the table or JSON on stdout stays
        # clean (what reading them logs goes to stderr). The policy gets into the store as a cache
        # file of an earlier build, which serve imports once at start.
        now_ms = int(time.time() * 1000)
        policy = "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mx.notls.example.test\n"
        legacy = os.path.join(self.mw.data_dir, "mta-sts-cache.json")
        with open(legacy, "w") as f:
            json.dump({"version": 1, "policies": {"notls.example.test": {
                "id": "planner1", "fetched_at": now_ms, "expires": now_ms + 3600 * 1000, "policy": policy}}}, f)
        self.mw.stop()
        self.mw.start()
        wait_for(lambda: os.path.exists(legacy + ".imported"), 30, "serve importing " + legacy)
        self.assertFalse(os.path.exists(legacy))
        p = self.mw.cli("policy", "simulate", "--json", "--mode", "tls-or-escrow")
        rows = {r["domain"]: r for r in json.loads(p.stdout)["domains"]}
        notls = rows["notls.example.test"]
        self.assertEqual(notls["required_level"], "verify", notls)
        self.assertEqual(notls["reasons"][0], "mta-sts: enforce (id planner1, cached)", notls)
        self.assertTrue(any("MTA-STS enforce" in r for r in notls["reasons"]), notls)
        self.assertIn("cached policies loaded", p.stderr)


if __name__ == "__main__":
    unittest.main()
