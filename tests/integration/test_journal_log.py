"""Logs as the journal and an operator read them (docs/operations.md "Logs"): with stderr on the
stream JOURNAL_STREAM names (device:inode, systemd's rule) every process's lines start with the
syslog priority and carry no timestamp; otherwise today's format. One outcome line per recipient
(`status=sent|deferred|bounced`) against the lab's Postfix MX listeners."""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import submit, Mailward, TempDir, wait_for  # noqa: E402
from mwlab import standard_lab  # noqa: E402

ISO_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")


def start_with_journal_stream(mw, matching):
    """Starts mw with JOURNAL_STREAM naming its log file (matching) or another file."""
    with open(mw.log_path, "ab"):
        pass
    target = mw.log_path if matching else mw.config
    st = os.stat(target)
    return mw.start(env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})

class JournalLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.lab = standard_lab(os.path.join(cls.tmp.path, "lab"))
        try:
            extra = cls.lab.mailward_config()
            extra["delivery"]["retry_schedule"] = ["1h"]
            # Forced TLS for a domain whose MX offers no STARTTLS: deferred, never sent in the clear.
            extra["policy.domains"] = {"notls.example.test": "encrypt"}
            mw_dir = os.path.join(cls.tmp.path, "mw")
            os.makedirs(mw_dir)
            cls.mw = start_with_journal_stream(Mailward(mw_dir, tls=False, extra=extra), True)
        except BaseException:
            cls.lab.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            try:
                cls.lab.stop()
            finally:
                cls.tmp.cleanup()

    def outcome_line(self, qid, status):
        pattern = re.compile(r"^<6>%s: to=<[^>]*>, relay=.*, status=%s \(.*\)$" % (re.escape(qid), status), re.M)
        return wait_for(lambda: pattern.search(self.mw.log()), 60, "the %s line of %s" % (status, qid)).group(0)

    def test_lines_carry_the_priority_and_no_timestamp(self):
        # Every process writes: serve, the portal and the submission process (a submission logs).
        submit(self.mw, "journal@tls.example.test", "journal-1")
        wait_for(lambda: "<6>[mailward-smtp] " in self.mw.log(), 30, "a submission line")
        lines = [l for l in self.mw.log().splitlines() if l.strip()]
        ours = [l for l in lines if not l.startswith(("==", "    #"))]  # sanitizer text, if any
        self.assertTrue(ours)
        for l in ours:
            self.assertRegex(l, r"^<[2-7]>", l)
            self.assertIsNone(ISO_START.match(l[3:]), l)
        log = self.mw.log()
        self.assertRegex(log, r"(?m)^<6>mailward serving as ")
        self.assertRegex(log, r"(?m)^<6>\[mailward-portal\] ")
        self.assertRegex(log, r"(?m)^<6>\[mailward-smtp\] 127\.0\.0\.1: queued ")
        self.assertRegex(log, r"(?m)^<7>")  # log_level = debug

    def test_sent_line(self):
        qid = submit(self.mw, "bob@tls.example.test", "outcome-sent")
        line = self.outcome_line(qid, "sent")
        addr = self.lab.domains["tls.example.test"].mx[0].address
        self.assertIn("to=<bob@tls.example.test>, relay=mx.tls.example.test[%s]:%d, delay=" % (addr, self.lab.port),
                      line)
        self.assertRegex(line, r", delay=\d+\.\d\d, tls=[a-z]+/TLSv1\.3/TLS_[A-Z0-9_]+, status=sent \(250 ")

    def test_deferred_line_under_forced_tls(self):
        qid = submit(self.mw, "carol@notls.example.test", "outcome-deferred")
        line = self.outcome_line(qid, "deferred")
        self.assertIn("to=<carol@notls.example.test>, relay=mx.notls.example.test[", line)
        self.assertIn("tls=encrypt/none, status=deferred (", line)
        self.assertIn("STARTTLS", line)

    def test_bounced_line(self):
        rcpt = "nobody@tls.example.test"
        self.lab.mx.set_recipient_reply(rcpt, "550 5.1.1 no such user here")
        time.sleep(2.5)  # pooled connections (2 s) are gone: the next session sees the reply
        qid = submit(self.mw, rcpt, "outcome-bounced")
        line = self.outcome_line(qid, "bounced")
        self.assertIn("to=<nobody@tls.example.test>, relay=mx.tls.example.test[", line)
        self.assertRegex(line, r"status=bounced \(.*550 5\.1\.1 .*no such user here.*\)$")


class PlainLogTest(unittest.TestCase):
    """JOURNAL_STREAM inherited but naming another file (stderr redirected): today's format."""

    def test_timestamps_and_level_names_without_the_journal(self):
        tmp = TempDir()
        mw = start_with_journal_stream(Mailward(tmp.path, tls=False), False)
        try:
            wait_for(lambda: "mailward serving as" in mw.log(), 30, "the start line")
            wait_for(lambda: "[mailward-smtp]" in mw.log(), 30, "a submission process line")
            mw.stop()
            log = mw.log()
        finally:
            mw.stop()
            tmp.cleanup()
        lines = [l for l in log.splitlines() if l.strip()]
        self.assertTrue(lines)
        for l in lines:
            self.assertRegex(l, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (trace|debug|info|warning|error|critical) ", l)
            self.assertNotRegex(l, r"^<\d>")
        self.assertRegex(log, r"(?m)^\S+ info \[mailward-smtp\] ")


if __name__ == "__main__":
    unittest.main()
