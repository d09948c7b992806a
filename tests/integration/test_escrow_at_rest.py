"""Escrow at rest (issue 11, items 6 and 8), end to end with `mailward serve` and the lab.

Item 6: messages with bodies of 1, 5, 7.9, 9 and 100 KiB (b-tree cell, overflow pages, just under
the spool's 8 KiB, the spool) to a domain whose TLS fails verification are deferred first, so the
test sees each body's marker in the data files right after submission (the scan works); once
`escrow_after` has passed they are sealed, and then no byte of mailward.db, mailward.db-wal,
mailward.db-shm or spool/ holds any marker. The wrapped keys are found while live and, after
`escrow revoke`, nowhere.

Item 8: every audit row is anchored in data_dir/escrow-audit.anchor (and logged); deleting a
message's last audit rows with the sqlite3 CLI (trigger dropped) leaves the hash chain intact
but makes `escrow audit` fail with exit code 5 and "anchor: MISMATCH"."""
import email.policy
import json
import os
import smtplib
import sqlite3
import subprocess
import sys
import unittest
import uuid
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, wait_for  # noqa: E402

SENDER = "alice@tls.example.test"
# STARTTLS with a self-signed certificate, and the static policy asks for verify: TLS fails to a
# domain that does TLS, so the message is deferred and goes to escrow after escrow_after.
RCPT = "bob@selfsigned.example.test"
# Long enough that the five submissions and their checks (CLI calls under ASan, on a loaded machine:
# 8 s once ran out) finish before the first message is sealed.
ESCROW_AFTER_S = 20


def message(marker, size):
    m = EmailMessage()
    m["From"] = "Alice <%s>" % SENDER
    m["To"] = RCPT
    m["Subject"] = "figures " + marker
    line = marker + " the quarterly figures, confidential\n"
    text = (line * (size // len(line) + 1))[:size]
    m.set_content(text)
    return m


def submit(mw, msg):
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        s.mail(SENDER)
        code, resp = s.rcpt(RCPT)
        assert code == 250, resp
        code, resp = s.data(msg.as_bytes(policy=email.policy.SMTP))
        assert code == 250, resp
    return resp.decode().split("queued as ")[1].split()[0]


def data_files(data_dir):
    """mailward.db, its -wal and -shm, and every spool segment."""
    out = []
    for name in ("mailward.db", "mailward.db-wal", "mailward.db-shm"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            out.append(p)
    spool = os.path.join(data_dir, "spool")
    if os.path.isdir(spool):
        out += [os.path.join(spool, n) for n in os.listdir(spool)]
    return out


def hits(data_dir, needle, only_spool=False):
    n = 0
    files = [os.path.join(data_dir, f) for f in os.listdir(data_dir)] if only_spool else data_files(data_dir)
    for p in files:
        try:
            with open(p, "rb") as f:
                n += f.read().count(needle)
        except FileNotFoundError:
            pass
    return n


class EscrowAtRestTest(LabTestCase):
    @classmethod
    def configure(cls, extra):
        extra["delivery"]["retry_schedule"] = ["2s"]
        extra["policy"] = {"escrow_after": "%ds" % ESCROW_AFTER_S}
        extra["policy.domains"] = {"selfsigned.example.test": "verify"}

    def escrow_ids(self, qids):
        rows = json.loads(self.mw.cli("escrow", "list", "--all", "--json").stdout)
        by_q = {r["queue_id"]: r["id"] for r in rows}
        return [by_q[q] for q in qids]

    def wait_escrowed(self, qids):
        wait_for(lambda: all(self.mw.queue_show(q)["recipients"][0]["state"] == "escrowed" for q in qids),
                 ESCROW_AFTER_S + 60, "the recipients sealed in escrow")

    def wrapped_keys(self, eids):
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.mw.data_dir, "mailward.db"), uri=True, timeout=10)
        try:
            rows = dict(db.execute("SELECT escrow_id, wrapped_key FROM escrow_keys").fetchall())
        finally:
            db.close()
        return [rows[e] for e in eids]

    def test_sealed_bodies_and_shredded_keys_leave_no_byte_behind(self):
        sizes = {"1 KiB": 1024, "5 KiB": 5 * 1024, "7.9 KiB": 7400, "9 KiB": 9 * 1024, "100 KiB": 100 * 1024}
        markers, qids = {}, {}
        for name, size in sizes.items():
            markers[name] = ("REST" + uuid.uuid4().hex[:16]).encode()
            qids[name] = submit(self.mw, message(markers[name].decode(), size))
        # Right after submission: each body is in the data files (queue DB or spool), deferred.
        for name, q in qids.items():
            self.assertEqual(self.mw.queue_show(q)["recipients"][0]["state"], "queued", name)
            self.assertGreater(hits(self.mw.data_dir, markers[name]), 0,
                               "%s: the scan finds the queued plaintext before sealing" % name)
        spool = os.path.join(self.mw.data_dir, "spool")
        spooled = [n for n in sizes if hits(spool, markers[n], only_spool=True) > 0]
        self.assertEqual(sorted(spooled), ["100 KiB", "9 KiB"], "8 KiB and more go to the spool")
        sizes_stored = {n: self.mw.queue_show(q)["size"] for n, q in qids.items()}
        self.assertTrue(7 * 1024 < sizes_stored["7.9 KiB"] < 8192, sizes_stored)

        self.wait_escrowed(qids.values())
        for name in sizes:
            wait_for(lambda: hits(self.mw.data_dir, markers[name]) == 0, 30,
                     "no byte of the %s body left after sealing" % name)
        eids = self.escrow_ids(qids.values())
        keys = self.wrapped_keys(eids)
        for name, key in zip(sizes, keys):
            self.assertGreaterEqual(len(key), 40)
            self.assertGreater(hits(self.mw.data_dir, key), 0, "%s: the scan finds the live wrapped key" % name)

        for eid in eids:
            self.assertIn("revoked", self.mw.cli("escrow", "revoke", eid, "--reason", "at-rest test").stdout)
        for name, key in zip(sizes, keys):
            wait_for(lambda: hits(self.mw.data_dir, key) == 0, 30, "the %s message's key gone after shredding" % name)
        for name in sizes:
            self.assertEqual(hits(self.mw.data_dir, markers[name]), 0, name)
        shown = [json.loads(self.mw.cli("escrow", "show", e, "--json").stdout) for e in eids]
        self.assertTrue(all(s["key_destroyed"] and s["state"] == "revoked" for s in shown), shown)

    def test_audit_rows_cut_off_the_end_are_seen_through_the_anchor(self):
        q = submit(self.mw, message("ANCHOR" + uuid.uuid4().hex[:8], 2000))
        self.wait_escrowed([q])
        eid = self.escrow_ids([q])[0]
        self.assertIn("revoked", self.mw.cli("escrow", "revoke", eid).stdout)  # a row from the CLI too
        anchor = os.path.join(self.mw.data_dir, "escrow-audit.anchor")
        with open(anchor) as f:
            lines = [l.split() for l in f if l.startswith(eid + " ")]
        audit = json.loads(self.mw.cli("escrow", "audit", eid, "--json").stdout)
        self.assertEqual((audit["chain"], audit["anchor"]["state"]), ("intact", "matches"), audit)
        self.assertEqual([[eid, str(e["seq"]), e["hash"]] for e in audit["entries"]], lines,
                         "every row anchored: id, seq, hash")
        self.assertEqual(oct(os.stat(anchor).st_mode & 0o777), "0o600")
        events = [e["event"] for e in audit["entries"]]
        self.assertEqual(events[:2], ["sealed", "notice_sent"])
        self.assertEqual(events[-1], "revoked")
        self.assertIn("escrow: audit %s #%d" % (eid, audit["entries"][0]["seq"]), self.mw.log(), "and in the log")

        # An attacker with the database: the last two rows go, with the trigger out of the way.
        cut_from = audit["entries"][-2]["seq"]
        subprocess.run(["sqlite3", "-cmd", ".timeout 10000", os.path.join(self.mw.data_dir, "mailward.db"),
                        "DROP TRIGGER escrow_audit_no_delete; DELETE FROM escrow_audit WHERE seq >= %d;" % cut_from],
                       check=True, capture_output=True)
        p = self.mw.cli("escrow", "audit", eid, "--json", check=False)
        self.assertEqual(p.returncode, 5, p.stderr)
        after = json.loads(p.stdout)
        self.assertEqual(after["chain"], "intact", "the chain alone cannot see rows cut off its end")
        self.assertEqual(len(after["entries"]), len(audit["entries"]) - 2)
        self.assertEqual(after["anchor"]["state"], "mismatch")
        self.assertIn("rows at the end were removed", after["anchor"]["problem"])
        text = self.mw.cli("escrow", "audit", eid, check=False)
        self.assertEqual(text.returncode, 5)
        self.assertIn("anchor: MISMATCH", text.stdout)
        print("\n$ mailward escrow audit %s\n%s" % (eid, text.stdout))


if __name__ == "__main__":
    unittest.main()
