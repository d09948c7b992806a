"""`mailward policy` admin commands: list, show, set, clear, forget, simulate, export.

Every command through the real binary, happy paths and bad input (exit code and one line on stderr
naming the problem), the --json shapes, overrides with expiry (an expired one shown as expired), the
audit trail and who is recorded, `policy simulate` over a delivery log, and `policy export --format
postfix` checked by the real Postfix `postmap`.

No CLI command records a learned level (only delivery and its probes do, which need the DNS/MX lab),
so learned levels, per-MX evidence, probes and incidents are seeded straight into the SQLite store
from Python with the schema of src/store/sqlite/migrations.cpp (version 3), read-write, while no
mailward process runs. The delivery log lines are written in the documented format
(docs/operations.md, "Delivery log") for the same reason.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import time
import unittest
from datetime import datetime, timedelta, timezone

import harness
from harness import Mailward, TempDir

WHO = "policy-tester"


def ms(dt):
    return int(dt.timestamp() * 1000)


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PolicyCliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.mw = Mailward(self.tmp.path, tls=False,
                           extra={"policy.domains": {"static.example.test": "encrypt"}})
        self.env = dict(os.environ, USER=WHO)
        self.env.pop("SUDO_USER", None)

    def tearDown(self):
        self.mw.stop()
        self.tmp.cleanup()

    # ---- helpers ----

    def cli(self, *args, env=None):
        return subprocess.run([harness.MAILWARD, "policy"] + list(args) + ["-c", self.mw.config],
                              capture_output=True, text=True, timeout=120, env=env or self.env)

    def ok(self, *args, env=None):
        p = self.cli(*args, env=env)
        self.assertEqual(p.returncode, 0, "policy %s: %s" % (" ".join(args), p.stderr))
        self.assertEqual(p.stderr, "")
        return p.stdout

    def js(self, *args):
        return json.loads(self.ok(*(list(args) + ["--json"])))

    def fails(self, code, args, *needles):
        p = self.cli(*args)
        self.assertEqual(p.returncode, code, "policy %s: rc %d, %s" % (" ".join(args), p.returncode, p.stderr))
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("mailward: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        self.assertEqual(p.stdout, "")
        return lines[0]

    def db(self):
        """The store, created by mailward itself first (migrations), then opened read-write."""
        self.ok("list")
        return sqlite3.connect(os.path.join(self.mw.data_dir, "mailward.db"))

    def seed_learned(self, domain, level, hosts=(), incidents=(), probes=0, at=None):
        """A learned level as the ratchet records it: row, per-MX evidence, probe history, audit."""
        rank = ["none", "may", "encrypt", "verify", "dane"].index(level)
        at = at or datetime.now(timezone.utc) - timedelta(days=2)
        report = json.dumps({"domain": domain, "verdict": level})
        with self.db() as c:
            c.execute("INSERT INTO learned_policy (domain, level, rank, first_seen, last_confirmed, evidence)"
                      " VALUES (?, ?, ?, ?, ?, ?)", (domain, level, rank, ms(at), ms(at + timedelta(hours=1)), report))
            for host, address, hlevel, tls in hosts:
                c.execute("INSERT INTO policy_evidence (domain, host, address, level, starttls, protocol, cipher,"
                          " chain_valid, name_matched, spki_sha256, dane_matched, seen_at)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (domain, host, address, hlevel, 1 if tls else 0, "TLSv1.3" if tls else "",
                           "TLS_AES_256_GCM_SHA384" if tls else "", 1 if hlevel in ("verify", "dane") else 0,
                           1 if hlevel in ("verify", "dane") else 0, "ab" * 32 if tls else "",
                           1 if hlevel == "dane" else 0, ms(at)))
            for i in range(probes):
                c.execute("INSERT INTO probe_history (domain, at, level, report) VALUES (?, ?, ?, ?)",
                          (domain, ms(at + timedelta(minutes=i)), level, report))
            for kind, detail in incidents:
                c.execute("INSERT INTO policy_incidents (domain, at, kind, detail, host, address, raw_evidence)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (domain, ms(at + timedelta(hours=2)), kind, detail, "mx1." + domain, "192.0.2.1",
                           "250-XXXXXXXA"))
            c.execute("INSERT INTO policy_audit (at, who, action, domain, level, detail)"
                      " VALUES (?, 'ratchet', 'raise', ?, ?, 'learned')", (ms(at), domain, level))
        c.close()

    def write_log(self, lines):
        with open(os.path.join(self.mw.data_dir, "delivery.log"), "w") as f:
            for l in lines:
                f.write((l if isinstance(l, str) else json.dumps(l)) + "\n")

    # ---- set / show / list / clear ----

    def test_set_show_list_clear_with_audit(self):
        out = self.ok("set", "Partner.Example.ORG", "may", "--reason", "partner MX has no TLS until March",
                      "--expires", "7d")
        self.assertIn("partner.example.org: override may until", out)
        self.assertIn("set by " + WHO, out)
        shown = self.js("show", "partner.example.org")
        self.assertIsNone(shown["level"])
        o = shown["override"]
        self.assertEqual((o["level"], o["reason"], o["set_by"], o["expired"]),
                         ("may", "partner MX has no TLS until March", WHO, False))
        expires = datetime.strptime(o["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        self.assertAlmostEqual((expires - datetime.now(timezone.utc)).total_seconds(), 7 * 86400, delta=120)
        self.assertEqual([(a["who"], a["action"], a["level"]) for a in shown["audit"]],
                         [(WHO, "set_override", "may")])
        self.assertIn("partner MX has no TLS", shown["audit"][0]["detail"])
        for key in ("first_seen", "last_confirmed", "last_probe", "evidence", "mx", "probes", "incidents"):
            self.assertIn(key, shown)
        text = self.ok("show", "partner.example.org")
        self.assertIn("override:        may until", text)
        self.assertIn("set_override may: partner MX has no TLS", text)

        listed = self.js("list")
        self.assertEqual([(d["domain"], d["level"], d["override"]["level"]) for d in listed],
                         [("partner.example.org", None, "may")])
        self.assertIn("OVERRIDE", self.ok("list"))
        self.assertRegex(self.ok("list"), r"partner\.example\.org\s+-\s+-\s+-\s+may until 20")

        # Replacing an override; SUDO_USER is who when set.
        self.ok("set", "partner.example.org", "encrypt", "--reason", "TLS works now",
                env=dict(self.env, SUDO_USER="root-via-sudo"))
        o = self.js("show", "partner.example.org")["override"]
        self.assertEqual((o["level"], o["expires"], o["set_by"]), ("encrypt", None, "root-via-sudo"))
        self.assertIn("(no expiry)", self.ok("list"))

        cleared = self.js("clear", "partner.example.org")
        self.assertEqual(cleared, {"domain": "partner.example.org", "action": "clear_override", "who": WHO})
        shown = self.js("show", "partner.example.org")
        self.assertIsNone(shown["override"])
        self.assertEqual([(a["who"], a["action"]) for a in shown["audit"]],
                         [(WHO, "set_override"), ("root-via-sudo", "set_override"), (WHO, "clear_override")])
        self.fails(1, ["clear", "partner.example.org"], "no override for partner.example.org")
        self.assertEqual(self.js("list"), [])
        self.assertIn("no learned policy and no overrides", self.ok("list"))

    def test_expires_dates(self):
        cases = [("2099-12-31", "2099-12-31T00:00:00Z"), ("2099-12-31T12:00:00Z", "2099-12-31T12:00:00Z"),
                 ("2099-12-31T12:00Z", "2099-12-31T12:00:00Z"),
                 ("2099-12-31T12:00:00+02:00", "2099-12-31T10:00:00Z"), ("2099-06-01T08:30:00.250Z", "2099-06-01T08:30:00Z")]
        for given, stored in cases:
            self.ok("set", "dates.example.test", "verify", "--reason", "test", "--expires", given)
            self.assertEqual(self.js("show", "dates.example.test")["override"]["expires"], stored, given)
        j = self.js("set", "json.example.test", "dane", "--reason", "json shape", "--expires", "12h")
        self.assertEqual((j["domain"], j["level"], j["reason"], j["set_by"], j["expired"], j["learned"]),
                         ("json.example.test", "dane", "json shape", WHO, False, None))

    def test_expired_override_is_shown_as_expired(self):
        self.seed_learned("lapsed.example.test", "verify")
        self.ok("set", "lapsed.example.test", "may", "--reason", "short maintenance", "--expires", "1s")
        time.sleep(1.6)
        o = self.js("show", "lapsed.example.test")["override"]
        self.assertEqual((o["level"], o["expired"]), ("may", True))
        self.assertRegex(self.ok("show", "lapsed.example.test"), r"override:\s+may \(expired 20")
        self.assertIn("may (expired", self.ok("list"))
        self.assertTrue(self.js("list")[0]["override"]["expired"])
        # Export ignores it: the learned level stands.
        self.assertIn("lapsed.example.test\tverify match=hostname", self.ok("export", "--format", "postfix"))

    def test_bad_input(self):
        self.fails(2, ["set", "a.example.test", "strict", "--reason", "x"], "unknown level 'strict'",
                   "none, may, encrypt, verify or dane")
        self.fails(2, ["set", "a.example.test", "may"], "--reason", "required")
        self.fails(2, ["set", "a.example.test", "may", "--reason", ""], "--reason must not be empty")
        self.fails(2, ["set", "a.example.test", "may", "--reason", "   "], "--reason must not be empty")
        self.fails(2, ["set", "a.example.test", "may", "--reason", "two\nlines"], "one line")
        self.fails(2, ["set", "a.example.test", "may", "--reason", "x", "--expires", "2020-01-01"],
                   "'2020-01-01' is not in the future")
        self.fails(2, ["set", "a.example.test", "may", "--reason", "x", "--expires", "0s"], "not in the future")
        for bad in ("2026-13-45", "2026-02-30", "tomorrow", "2026-12-31T25:00:00Z", "2026-12-31T12:00:00Zjunk",
                    "7 days"):
            self.fails(2, ["set", "a.example.test", "may", "--reason", "x", "--expires", bad],
                       "--expires '%s' is not a date" % bad)
        for bad, why in (("bad_domain!", "is not allowed"), ("x-.example.test", "starts or ends with '-'"),
                         ("a..example", "empty label"), ("192.0.2.1", "an address"),
                         ("b\u00fccher.example", "A-labels"), ("x" * 64 + ".example", "63")):
            self.fails(2, ["set", bad, "may", "--reason", "x"], "'%s' is not a domain name" % bad, why)
        self.fails(2, ["show", "bad_domain!"], "'bad_domain!' is not a domain name")
        self.fails(2, ["forget", "a..example"], "is not a domain name")
        self.fails(2, ["clear", "192.0.2.1"], "is not a domain name")
        self.fails(1, ["show", "unknown.example.test"], "nothing is known about unknown.example.test")
        self.fails(1, ["forget", "unknown.example.test"], "nothing is learned about unknown.example.test")
        self.fails(1, ["clear", "unknown.example.test"], "there is no override for unknown.example.test")
        self.fails(2, ["export", "--format", "exim"], "unknown export format 'exim'", "postfix")
        self.fails(2, ["export"], "--format", "required")
        self.fails(2, ["simulate", "--mode", "plaintext"], "unknown mode 'plaintext'", "tls-only")
        self.fails(2, ["simulate", "--since", "a week"], "--since 'a week' is not a duration")
        # Nothing was written by any of them.
        self.assertEqual(self.js("list"), [])

    # ---- learned levels: show, forget ----

    def test_show_and_forget_learned(self):
        self.seed_learned("learned.example.test", "encrypt",
                          hosts=[("mx1.learned.example.test", "192.0.2.1", "encrypt", True),
                                 ("mx2.learned.example.test", "2001:db8::2", "verify", True)],
                          incidents=[("starttls_missing", "EHLO without STARTTLS")], probes=12)
        shown = self.js("show", "learned.example.test")
        self.assertEqual(shown["level"], "encrypt")
        self.assertEqual(shown["evidence"], {"domain": "learned.example.test", "verdict": "encrypt"})
        self.assertEqual(sorted(m["host"] for m in shown["mx"]), ["mx1.learned.example.test", "mx2.learned.example.test"])
        mx1 = [m for m in shown["mx"] if m["address"] == "192.0.2.1"][0]
        self.assertEqual((mx1["level"], mx1["starttls"], mx1["protocol"], mx1["chain_valid"]),
                         ("encrypt", True, "TLSv1.3", False))
        self.assertEqual(len(shown["probes"]), 10)  # the newest ten
        self.assertGreater(shown["probes"][0]["at"], shown["probes"][-1]["at"])
        self.assertEqual(shown["last_probe"], shown["probes"][0]["at"])
        self.assertEqual([i["kind"] for i in shown["incidents"]], ["starttls_missing"])
        self.assertEqual(shown["incidents"][0]["raw_evidence"], "250-XXXXXXXA")
        self.assertEqual([(a["who"], a["action"]) for a in shown["audit"]], [("ratchet", "raise")])
        text = self.ok("show", "learned.example.test")
        for needle in ("learned level:   encrypt", "MX evidence:", "mx2.learned.example.test [2001:db8::2]  verify",
                       "probes (newest first):", "incident ", "starttls_missing", "ratchet  raise encrypt"):
            self.assertIn(needle, text)
        self.assertEqual([d["level"] for d in self.js("list")], ["encrypt"])

        out = self.ok("set", "learned.example.test", "may", "--reason", "lower for a test")
        self.assertIn("note: this lowers the learned level encrypt", out)
        self.assertEqual(self.js("list")[0]["override"]["level"], "may")

        self.assertEqual(self.js("forget", "learned.example.test"),
                         {"domain": "learned.example.test", "action": "forget", "who": WHO})
        shown = self.js("show", "learned.example.test")
        self.assertIsNone(shown["level"])
        self.assertEqual(shown["mx"], [])
        self.assertEqual(len(shown["incidents"]), 1)  # history stays
        self.assertEqual(shown["audit"][-1]["who"], WHO)
        self.assertEqual((shown["audit"][-1]["action"], shown["audit"][-1]["detail"]), ("forget", "was encrypt"))
        self.assertEqual(shown["override"]["level"], "may")  # the override is not learned knowledge
        self.fails(1, ["forget", "learned.example.test"], "nothing is learned about learned.example.test")

    # ---- simulate ----

    def seed_for_simulate(self):
        now = datetime.now(timezone.utc)
        self.seed_learned("tls.example.test", "encrypt",
                          hosts=[("mx1.tls.example.test", "192.0.2.1", "encrypt", True),
                                 ("mx2.tls.example.test", "192.0.2.2", "verify", True)])
        self.seed_learned("weak.example.test", "may", hosts=[("mx.weak.example.test", "192.0.2.5", "may", False)])
        tls13 = {"protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "bits": 256, "forward_secret": True,
                 "spki_sha256": "cd" * 32, "chain_valid": True, "name_matched": True, "verify_error": "",
                 "dane_matched": False, "chain": []}

        def line(when, rcpt, mx, tls, result):
            return {"time": iso(when), "queue_id": "0" * 18, "recipient": rcpt, "mx": mx,
                    "address": "192.0.2.9" if mx else "", "required_level": "may", "level_reasons": [],
                    "tls": tls, "result": result, "status": "2.0.0", "reply": "", "reason": ""}

        self.write_log([
            line(now - timedelta(hours=3), "a@tls.example.test", "mx1.tls.example.test", tls13, "delivered"),
            line(now - timedelta(hours=2), "b@Seen.Example.Test", "mx.seen.example.test", tls13, "delivered"),
            line(now - timedelta(hours=2), "c@notls.example.test", "mx.notls.example.test", None, "delivered"),
            line(now - timedelta(minutes=30), "d@notls.example.test", "mx.notls.example.test", None, "delivered"),
            line(now - timedelta(hours=2), "e@static.example.test", "mx.static.example.test", None,
                 "deferred-tls-policy"),
            line(now - timedelta(hours=2), "f@weak.example.test", "mx.weak.example.test", None, "delivered"),
            line(now - timedelta(hours=2), "g@nodns.example.test", "", None, "deferred"),
            line(now - timedelta(days=9), "h@old.example.test", "mx.old.example.test", None, "delivered"),
            "this is not JSON",
        ])

    def test_simulate_modes(self):
        self.seed_for_simulate()
        r = self.js("simulate", "--mode", "tls-only")
        self.assertEqual((r["mode"], r["since"]), ("tls-only", "7d"))
        by = {d["domain"]: d for d in r["domains"]}
        self.assertEqual(sorted(by), ["nodns.example.test", "notls.example.test", "seen.example.test",
                                      "static.example.test", "tls.example.test", "weak.example.test"])
        self.assertEqual({k: (v["outcome"], v["would_fail"]) for k, v in by.items()}, {
            "tls.example.test": ("ok", False),         # learned encrypt, every MX does TLS
            "seen.example.test": ("ok", False),        # not learned; the log shows TLS 1.3
            "notls.example.test": ("bounce", True),    # last deliveries without TLS
            "weak.example.test": ("bounce", True),     # learned below encrypt
            "static.example.test": ("bounce", True),   # static encrypt, TLS failed: deferred, then bounce
            "nodns.example.test": ("unknown", False),  # never reached an MX: would be probed first
        })
        self.assertEqual(by["notls.example.test"]["attempts"], 2)
        self.assertEqual(by["notls.example.test"]["capability"], "no_tls")
        self.assertIsNone(by["notls.example.test"]["last_tls"])
        self.assertEqual(by["seen.example.test"]["last_tls"]["protocol"], "TLSv1.3")
        self.assertEqual(by["tls.example.test"]["learned"], "encrypt")
        self.assertIn("5.7.4", by["notls.example.test"]["verdict"])
        self.assertIn("deferred, then bounce (5.7.5)", by["static.example.test"]["verdict"])
        self.assertTrue(any("tls-only" in x for x in by["notls.example.test"]["reasons"]))
        self.assertEqual(r["summary"], {"domains": 6, "ok": 2, "plaintext": 0, "bounce": 3, "escrow": 0,
                                        "unknown": 1, "would_fail": 3, "skipped_lines": 1})

        r = self.js("simulate", "--mode", "tls-or-escrow")
        by = {d["domain"]: d["outcome"] for d in r["domains"]}
        self.assertEqual((by["notls.example.test"], by["weak.example.test"], by["static.example.test"],
                          by["tls.example.test"]), ("escrow", "escrow", "escrow", "ok"))
        self.assertEqual(r["summary"]["would_fail"], 3)

        r = self.js("simulate", "--mode", "opportunistic")
        by = {d["domain"]: d["outcome"] for d in r["domains"]}
        self.assertEqual((by["notls.example.test"], by["tls.example.test"], by["nodns.example.test"]),
                         ("plaintext", "ok", "plaintext"))
        self.assertEqual(by["static.example.test"], "bounce")  # the static policy still forbids plaintext

        r = self.js("simulate", "--mode", "escrow-always")
        self.assertEqual({d["outcome"] for d in r["domains"]}, {"escrow"})
        self.assertEqual(r["summary"]["would_fail"], 0)

        # The window; the default mode is [policy] default_mode (tls-or-escrow).
        r = self.js("simulate", "--since", "1h")
        self.assertEqual((r["mode"], [d["domain"] for d in r["domains"]]), ("tls-or-escrow", ["notls.example.test"]))
        r = self.js("simulate", "--since", "30d", "--mode", "tls-only")
        self.assertIn("old.example.test", [d["domain"] for d in r["domains"]])

        text = self.ok("simulate", "--mode", "tls-only")
        self.assertRegex(text, r"DOMAIN\s+LEARNED\s+OVERRIDE\s+ATTEMPTS\s+LAST TLS\s+VERDICT")
        self.assertRegex(text, r"notls\.example\.test\s+-\s+-\s+2\s+none\s+would fail: bounce \(5\.7\.4\)")
        self.assertRegex(text, r"tls\.example\.test\s+encrypt\s+-\s+1\s+TLSv1\.3\s+ok")
        self.assertIn("summary: 6 domains in the last 7d under tls-only: 2 ok, 0 plaintext allowed, "
                      "3 would fail (3 bounce, 0 escrow), 1 unknown; 1 unreadable log lines skipped", text)

    def test_simulate_without_log(self):
        r = self.js("simulate", "--mode", "tls-only")
        self.assertEqual((r["domains"], r["summary"]["domains"]), ([], 0))
        self.assertIn("summary: 0 domains", self.ok("simulate", "--mode", "tls-only"))

    # ---- export ----

    def test_export_postfix_and_postmap(self):
        for domain, level in (("verify.example.test", "verify"), ("dane.example.test", "dane"),
                              ("encrypt.example.test", "encrypt"), ("may.example.test", "may"),
                              ("lowered.example.test", "verify")):
            self.seed_learned(domain, level)
        self.ok("set", "lowered.example.test", "none", "--reason", "broken TLS, ticket 42", "--expires", "2d")
        self.ok("set", "only-override.example.test", "encrypt", "--reason", "contract requires TLS")
        path = os.path.join(self.tmp.path, "out", "mailward_tls_policy")
        os.makedirs(os.path.dirname(path))
        self.assertEqual(self.ok("export", "--format", "postfix", "-o", path), "wrote 6 entries to %s\n" % path)
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.startswith("# Postfix smtp_tls_policy_maps table generated by `mailward policy "
                                        "export` at 20"), text)
        self.assertEqual(self.ok("export", "--format", "postfix").split("\n", 1)[1], text.split("\n", 1)[1])
        entries = [l.split("\t") for l in text.splitlines() if l and not l.startswith("#")]
        proto = " protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"
        self.assertEqual(entries, [
            ["dane.example.test", "dane-only" + proto],
            ["encrypt.example.test", "encrypt" + proto],
            ["lowered.example.test", "none"],  # the active override wins
            ["may.example.test", "may"],
            ["only-override.example.test", "encrypt" + proto],
            ["verify.example.test", "verify match=hostname" + proto],
        ])
        self.assertIn("# override none until", text)
        self.assertIn("broken TLS, ticket 42", text)

        # The real Postfix reads it: postmap builds the table and answers lookups from it.
        postmap = shutil.which("postmap") or "/usr/sbin/postmap"
        self.assertTrue(os.path.exists(postmap), "Postfix's postmap is needed (scripts/setup installs postfix)")
        # A private config dir (an empty main.cf): the test needs no system Postfix configuration.
        conf = os.path.join(self.tmp.path, "postfix-conf")
        os.makedirs(conf)
        open(os.path.join(conf, "main.cf"), "w").close()
        postmap = [postmap, "-c", conf]
        table = os.path.join(self.tmp.path, "postmap", "policy")
        os.makedirs(os.path.dirname(table))
        shutil.copy(path, table)
        p = subprocess.run(postmap + ["hash:" + table], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        for domain, want in (("verify.example.test", "verify match=hostname" + proto),
                             ("lowered.example.test", "none"), ("dane.example.test", "dane-only" + proto)):
            q = subprocess.run(postmap + ["-q", domain, "hash:" + table], capture_output=True, text=True, timeout=60)
            self.assertEqual((q.returncode, q.stdout.strip()), (0, want), q.stderr)
        q = subprocess.run(postmap + ["-q", "absent.example.test", "hash:" + table], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(q.returncode, 1)

        j = self.js("export", "--format", "postfix", "-o", path)
        self.assertEqual(j, {"file": path, "format": "postfix", "entries": 6})
        self.fails(1, ["export", "--format", "postfix", "-o", os.path.join(self.tmp.path, "no", "such", "dir", "f")],
                   "cannot write")


if __name__ == "__main__":
    unittest.main()
