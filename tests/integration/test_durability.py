"""Durability: concurrent clients submit while the server is killed with SIGKILL at a random moment;
after a restart every message that got 250 is in the queue byte for byte. Several rounds.
Bodies small and large (inline in SQLite / in the body spool); all are read from the database file
and the spool's segment files, a sample also with `mailward queue show ID --body`."""
import random
import smtplib
import subprocess
import threading
import time
import unittest
import uuid

import harness
from harness import Mailward, TempDir

CLIENTS = 8
ROUNDS = 3


class DurabilityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.mw = Mailward(self.tmp.path, tls=False)  # 127.0.0.1 is trusted by default: no AUTH needed

    def tearDown(self):
        self.mw.stop()
        self.tmp.cleanup()

    def client(self, stop, acked):
        while not stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.mw.port, timeout=20) as s:
                    s.ehlo("durable.example.org")
                    while not stop.is_set():
                        marker = uuid.uuid4().hex
                        # Small bodies stay in SQLite, large ones (8 KiB and more) go to the spool.
                        lines = random.choice((40, 400))
                        data = ("Subject: %s\r\n\r\n" % marker + "line of body text %s\r\n" % marker * lines).encode()
                        s.mail("app@example.org")
                        s.rcpt("r-%s@example.net" % marker[:8])
                        code, resp = s.data(data)
                        if code == 250:
                            qid = resp.decode().split("queued as ")[1].split()[0]
                            acked.append((qid, data))
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)

    def test_kill9_loses_nothing_acknowledged(self):
        acked = []
        for rnd in range(ROUNDS):
            self.mw.start()
            stop = threading.Event()
            threads = [threading.Thread(target=self.client, args=(stop, acked)) for _ in range(CLIENTS)]
            before = len(acked)
            for t in threads:
                t.start()
            time.sleep(random.uniform(1.0, 3.0))
            self.mw.kill9()
            stop.set()
            for t in threads:
                t.join(timeout=60)
            self.assertGreater(len(acked), before, "no message was accepted in round %d" % rnd)

        # Restart once more so that recovery runs, then check every acknowledged message.
        self.mw.start()
        self.mw.stop()
        listed = subprocess.run([harness.MAILWARD, "queue", "list", "--json", "-c", self.mw.config],
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        import json
        ids = {json.loads(line)["queue_id"] for line in listed.stdout.splitlines()}
        missing = [qid for qid, _ in acked if qid not in ids]
        self.assertEqual(missing, [], "%d of %d acknowledged messages lost" % (len(missing), len(acked)))
        # Every body, read straight from the database file (read-only), then a sample through the CLI.
        import os
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.mw.data_dir, "mailward.db"), uri=True)
        bodies = dict(db.execute("SELECT message_id, data FROM bodies"))
        spooled = {row[0]: row[1:] for row in db.execute("SELECT message_id, segment, start, length FROM spooled_bodies")}
        db.close()
        for qid, (segment, start, length) in spooled.items():  # read straight from the segment file
            with open(os.path.join(self.mw.data_dir, "spool", "%016x.seg" % segment), "rb") as f:
                f.seek(start)
                bodies[qid] = f.read(length)
        for qid, data in acked:
            body = bytes(bodies.get(qid, b""))
            self.assertTrue(body.startswith(b"Received: ") and body.endswith(data), qid)
        big = [qid for qid, data in acked if len(data) > 8192]
        self.assertTrue(big and all(qid in spooled for qid in big), "large bodies are spooled")
        self.assertTrue(all(qid not in spooled for qid, data in acked if len(data) < 4096), "small ones are not")
        for qid, data in random.sample(acked, min(10, len(acked))):
            body = subprocess.run([harness.MAILWARD, "queue", "show", qid, "--body", "-c", self.mw.config],
                                  capture_output=True, timeout=120).stdout
            self.assertTrue(body.startswith(b"Received: ") and body.endswith(data), qid)
        print("durability: %d acknowledged messages over %d kill -9 rounds, all present" % (len(acked), ROUNDS))


if __name__ == "__main__":
    unittest.main()
