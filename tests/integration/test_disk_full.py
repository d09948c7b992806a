"""A full disk and a read-only file system under the data directory: submissions get 452 4.3.1 while
nothing can be written, nothing acknowledged before is lost or damaged, and the server takes mail
again by itself once space returns or the file system is writable again - no restart. The full disk
is a size-limited tmpfs. Linux refuses a read-only remount while files are open for writing, so the
read-only case is powerfs (tests/tools/powerfs.cpp) switched to answer EROFS to every change, as an
ext4 does after an error with errors=remount-ro. Needs root (mounts)."""
import os
import re
import signal
import smtplib
import subprocess
import time
import unittest
import uuid

import harness
from harness import Mailward, TempDir, wait_for

POWERFS = os.environ.get("POWERFS_BIN", "")


def try_submit(port, size):
    """(code, text) of one submission; 250 when queued. size: body bytes (>= 8 KiB goes to the spool)."""
    marker = uuid.uuid4().hex
    body = ("Subject: df-%s\r\n\r\n" % marker + ("disk full test %s\r\n" % marker) * (size // 48 + 1)).encode()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("full.example.org")
            code, text = s.mail("app@example.org")
            if code != 250:
                return code, text.decode(), marker, body
            code, text = s.rcpt("r@waiting.example.net")
            if code != 250:
                return code, text.decode(), marker, body
            code, text = s.data(body)
            return code, text.decode(), marker, body
    except smtplib.SMTPResponseException as e:
        return e.smtp_code, e.smtp_error.decode(), marker, body


@unittest.skipUnless(os.geteuid() == 0, "mounting a tmpfs needs root")
class DiskFullTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        # Deliveries wait: the DNS server named is a closed port on loopback, every lookup times out
        # (a temporary failure), so every message stays queued for the checks below.
        dead_dns = "127.0.0.1:%d" % harness.free_port()
        self.mw = Mailward(self.tmp.path, tls=False, extra={"delivery": {"retry_schedule": ["1h"]},
                                                            "dns": {"servers": [dead_dns], "timeout": "2s"}})
        os.makedirs(self.mw.data_dir)
        self.filler = os.path.join(self.mw.data_dir, "filler")
        self.acked = {}
        self.fs = None

    def tearDown(self):
        try:
            self.mw.stop()
        finally:
            if self.fs is not None:
                subprocess.run(["fusermount3", "-u", "-z", self.mw.data_dir], capture_output=True)
                self.fs.wait(timeout=30)
            else:
                subprocess.run(["umount", "-l", self.mw.data_dir], capture_output=True)
            self.tmp.cleanup()

    def mount_tmpfs(self):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", self.mw.data_dir], check=True)

    def mount_powerfs(self):
        backing, state = os.path.join(self.tmp.path, "backing"), os.path.join(self.tmp.path, "state")
        os.makedirs(backing, mode=0o700)
        os.makedirs(state)
        self.fs = subprocess.Popen([POWERFS, "--state", state, backing, self.mw.data_dir], stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.ismount(self.mw.data_dir), 10, "powerfs mounted")

    def submit_ok(self, size):
        code, text, marker, body = try_submit(self.mw.port, size)
        self.assertEqual(code, 250, text)
        self.acked[text.split("queued as ")[1].split()[0]] = body
        return marker

    def fill(self):
        """Fills the file system to the last block."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def assert_refused_while(self, what):
        for size in (2 * 1024, 64 * 1024):  # inline in SQLite and in the body spool
            code, text, _, _ = try_submit(self.mw.port, size)
            self.assertEqual(code, 452, "%s, %d bytes: %d %s" % (what, size, code, text))
            self.assertTrue(text.startswith("4.3.1"), text)

    def assert_all_acked_intact(self):
        for qid, body in self.acked.items():
            shown = subprocess.run([harness.MAILWARD, "queue", "show", qid, "--body", "-c", self.mw.config],
                                   capture_output=True, timeout=120)
            self.assertEqual(shown.returncode, 0, shown.stderr)
            self.assertTrue(shown.stdout.endswith(body), "message %s damaged" % qid)

    def test_full_disk_then_space_returns(self):
        self.mount_tmpfs()
        self.mw.start()
        for size in (2 * 1024, 64 * 1024, 2 * 1024):
            self.submit_ok(size)
        self.fill()
        self.assert_refused_while("disk full")
        self.assertIn("no space left or read-only file system", self.mw.log())
        os.unlink(self.filler)
        # No restart: the next submissions are taken again.
        wait_for(lambda: try_submit(self.mw.port, 2 * 1024)[0] == 250, 30, "a 250 after space returned")
        for size in (2 * 1024, 64 * 1024):
            self.submit_ok(size)
        self.assert_all_acked_intact()

    @unittest.skipUnless(POWERFS and os.path.exists(POWERFS), "POWERFS_BIN not built")
    def test_read_only_then_writable(self):
        self.mount_powerfs()
        self.mw.start()
        for size in (2 * 1024, 64 * 1024):
            self.submit_ok(size)
        self.fs.send_signal(signal.SIGUSR1)  # read-only: every change fails with EROFS
        try:
            self.assert_refused_while("read-only file system")
        finally:
            self.fs.send_signal(signal.SIGUSR2)
        wait_for(lambda: try_submit(self.mw.port, 2 * 1024)[0] == 250, 30, "a 250 after the remount")
        self.submit_ok(64 * 1024)
        self.assert_all_acked_intact()


@unittest.skipUnless(os.geteuid() == 0, "FUSE mounts need root")
@unittest.skipUnless(POWERFS and os.path.exists(POWERFS), "POWERFS_BIN not built")
class PortalStorageTest(harness.LabTestCase):
    """The portal while the store cannot write: 503 with Retry-After, then normal service again."""

    portal_cert = True

    @classmethod
    def configure(cls, extra):
        cls.data = os.path.join(cls.tmp.path, "data-on-powerfs")
        backing, state = os.path.join(cls.tmp.path, "backing"), os.path.join(cls.tmp.path, "state")
        for d in (cls.data, backing, state):
            os.makedirs(d, mode=0o700)
        cls.fs = subprocess.Popen([POWERFS, "--state", state, backing, cls.data], stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.ismount(cls.data), 10, "powerfs mounted")
        extra.setdefault("server", {})["data_dir"] = cls.data

    @classmethod
    def tearDownClass(cls):
        try:
            cls.mw.stop()
        finally:
            subprocess.run(["fusermount3", "-u", "-z", cls.data], capture_output=True)
            cls.fs.wait(timeout=30)
            super().tearDownClass()

    def test_portal_answers_503_while_nothing_can_be_written(self):
        from test_escrow import PortalClient, csrf_of, hostile_message, submit as submit_escrow
        before = len(self.lab.mx.messages("notls.example.test"))
        qid = submit_escrow(self.mw, hostile_message("DF" + uuid.uuid4().hex[:8], b"x" * 100))
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "escrowed", 60, "escrow")
        notice = self.lab.mx.wait_for_messages("notls.example.test", before + 1, timeout=60)[before]
        link = re.search(rb"https://portal\.example\.test:\d+(/m/[A-Za-z0-9_-]{43})", notice).group(1).decode()
        c = PortalClient(self.mw, self.ca_file)
        status, _, page = c.request("GET", link)
        self.assertEqual(status, 200, page)
        csrf = csrf_of(page)
        self.fs.send_signal(signal.SIGUSR1)  # read-only
        try:
            status, headers, page = c.form(link + "/code", {"csrf": csrf})
            self.assertEqual(status, 503, page)
            self.assertEqual(headers["Retry-After"], "120")
        finally:
            self.fs.send_signal(signal.SIGUSR2)
        status, _, page = wait_for(lambda: (r := c.form(link + "/code", {"csrf": csrf}))[0] == 200 and r, 30,
                                   "the portal writing again")
        self.assertIn(b"If this link is valid", page)


if __name__ == "__main__":
    unittest.main()
