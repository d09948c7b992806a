"""`mailward sendmail` (docs/operations.md "Local programs: sendmail"): a local program hands a message
to the running server over the [sendmail] socket; the server takes the user from the socket's peer
credentials. Run as root and as an unprivileged user (setpriv to nobody) against `mailward serve` and
the lab's Postfix MX: -t with To/Cc/Bcc (Bcc removed in what Postfix stored), -i and a lone dot, -f
refused for an untrusted user (77) and honoured for root, 75 when no server listens, 65 on a bad
address or message, 64 on a bad option, the identity in Received: and in the log line, and a binary
called as `sendmail` (a symlink) behaving as `mailward sendmail`."""
import os
import re
import socket
import stat
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import MAILWARD, LabTestCase, TempDir, wait_for, with_marker  # noqa: E402

DOMAIN = "tls.example.test"
HOST = "relay.example.test"  # the harness's [server] hostname
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


class SendmailTest(LabTestCase):
    @classmethod
    def configure(cls, extra):
        # A directory serve makes (0755) when it is missing, as /run/mailward with the defaults.
        cls.socket = os.path.join(cls.tmp.path, "sock", "sendmail.sock")
        extra["sendmail"] = {"socket": cls.socket}
        extra.setdefault("submission", {})["max_message_size"] = 100000

    def sendmail(self, args, message, as_nobody=False, config=None, argv0=None):
        cmd = [argv0 or MAILWARD] + ([] if argv0 else ["sendmail"]) + ["-c", config or self.mw.config] + args
        if as_nobody:
            cmd = AS_NOBODY + cmd
        if isinstance(message, str):
            message = message.encode()
        p = subprocess.run(cmd, input=message, capture_output=True, timeout=60)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def delivered(self, marker, n=1):
        return wait_for(lambda: (m := with_marker(self.lab.mx.messages(DOMAIN), marker)) and len(m) >= n and m, 60,
                        "delivery of %s" % marker)

    def test_root_message_delivered_with_identity_and_added_fields(self):
        marker = uuid.uuid4().hex
        rc, err = self.sendmail(["bob@" + DOMAIN], "Subject: %s\n\nhello %s\n" % (marker, marker))
        self.assertEqual((rc, err), (0, ""))
        msg = self.delivered(marker)[0].decode()
        self.assertRegex(msg, r"Received: by %s \(mailward, from uid 0 user root\)" % re.escape(HOST))
        self.assertRegex(msg, r'\nFrom: "root" <root@%s>\n' % re.escape(HOST))  # the GECOS name
        self.assertRegex(msg, r"\nDate: \w{3}, ")
        self.assertRegex(msg, r"\nMessage-ID: <[^>]+@%s>" % re.escape(HOST))
        self.assertIn("local: queued", self.mw.log())

    def test_unprivileged_user_sends_as_itself(self):
        marker = uuid.uuid4().hex
        rc, err = self.sendmail(["-F", "No Body", "bob@" + DOMAIN], "Subject: %s\n\nhi\n" % marker, as_nobody=True)
        self.assertEqual((rc, err), (0, ""))
        msg = self.delivered(marker)[0].decode()
        self.assertRegex(msg, r"Received: by %s \(mailward, from uid 65534 user nobody\)" % re.escape(HOST))
        self.assertIn('From: "No Body" <nobody@%s>' % HOST, msg)
        self.assertIn("Return-Path: <nobody@%s>" % HOST, msg)
        self.assertRegex(self.mw.log(), r"local: queued \S+ from=<nobody@%s> nrcpt=1 uid=65534 user=nobody"
                         % re.escape(HOST))

    def test_t_takes_to_cc_bcc_and_removes_bcc(self):
        marker = uuid.uuid4().hex
        message = ("To: Ann <ann@%s>\nCc: cid@%s, \"Dee, D\" <dee@%s>\nBcc: hidden@%s,\n secret@%s\n"
                   "Subject: %s\n\nbody %s\n") % (DOMAIN, DOMAIN, DOMAIN, DOMAIN, DOMAIN, marker, marker)
        rc, err = self.sendmail(["-t", "-oi"], message, as_nobody=True)
        self.assertEqual((rc, err), (0, ""))
        msgs = [m.decode() for m in self.delivered(marker, 5)]
        delivered_to = sorted(re.search(r"Delivered-To: (\S+)", m).group(1) for m in msgs)
        self.assertEqual(delivered_to, sorted(a + "@" + DOMAIN for a in ("ann", "cid", "dee", "hidden", "secret")))
        for m in msgs:
            header = m.replace("\r\n", "\n").split("\n\n")[0]
            self.assertNotRegex(header, r"(?im)^bcc:")
            # Only Postfix's own trace fields name the hidden recipient of each copy.
            fields = re.split(r"\n(?=\S)", header)
            rest = "\n".join(f for f in fields if not re.match(r"(?i)(received|delivered-to|x-original-to):", f))
            self.assertNotIn("hidden@", rest)
            self.assertNotIn("secret@", rest)
            self.assertIn("To: Ann <ann@%s>" % DOMAIN, header)

    def test_lone_dot_with_and_without_i(self):
        marker = uuid.uuid4().hex
        message = "Subject: %s\n\nbefore\n.\nafter-the-dot-%s\n..two dots\n" % (marker, marker)
        rc, err = self.sendmail(["-i", "bob@" + DOMAIN], message)
        self.assertEqual((rc, err), (0, ""))
        msg = self.delivered(marker)[0].decode().replace("\r\n", "\n")
        self.assertIn("before\n.\nafter-the-dot-%s\n..two dots\n" % marker, msg)
        marker2 = uuid.uuid4().hex
        rc, err = self.sendmail(["bob@" + DOMAIN], "Subject: %s\n\nbefore\n.\nnot-sent-%s\n" % (marker2, marker2))
        self.assertEqual((rc, err), (0, ""))
        msg = self.delivered(marker2)[0].decode()
        self.assertIn("before", msg)
        self.assertNotIn("not-sent-", msg)

    def test_f_refused_for_untrusted_user_and_honoured_for_root(self):
        rc, err = self.sendmail(["-f", "ceo@" + DOMAIN, "bob@" + DOMAIN], "Subject: x\n\nx\n", as_nobody=True)
        self.assertEqual(rc, 77, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("not owned by local user nobody", err)
        # A From: header of someone else is refused too (sender binding at the end of DATA).
        rc, err = self.sendmail(["bob@" + DOMAIN], "From: ceo@%s\nSubject: x\n\nx\n" % DOMAIN, as_nobody=True)
        self.assertEqual(rc, 77, err)
        self.assertIn("From: header address rejected", err)
        marker = uuid.uuid4().hex
        rc, err = self.sendmail(["-f", "alice@" + DOMAIN, "bob@" + DOMAIN], "Subject: %s\n\nx\n" % marker)
        self.assertEqual((rc, err), (0, ""))
        msg = self.delivered(marker)[0].decode()
        self.assertIn("Return-Path: <alice@%s>" % DOMAIN, msg)
        self.assertRegex(msg, r'\nFrom: "root" <alice@%s>\n' % re.escape(DOMAIN))

    def test_bad_input_gets_its_exit_code_and_one_line(self):
        long_line = "x" * 1200
        cases = [
            (["bad@@address"], "Subject: x\n\nx\n", 65, "not a valid address"),
            (["root"], "Subject: x\n\nx\n", 67, "has no domain"),
            (["-f", "a b@c", "bob@" + DOMAIN], "Subject: x\n\nx\n", 65, "not a valid address"),
            (["bob@" + DOMAIN], b"Subject: x\n\nnul \x00 here\n", 65, "NUL"),
            (["bob@" + DOMAIN], "Subject: x\n\n%s\n" % long_line, 65, "longer than 998"),
            (["bob@" + DOMAIN], "Subject: x\n\n" + ("y" * 900 + "\n") * 200, 65, "larger than"),
            ([], "Subject: x\n\nx\n", 64, "no recipients"),
            (["-t"], "Subject: x\n\nx\n", 64, "no recipients"),
            (["-t"], "To: <unterminated\n\nx\n", 65, "cannot be read"),
            (["-bs"], "", 64, "unsupported option -bs"),
            (["-f"], "", 64, "needs a value"),
        ]
        for args, message, code, text in cases:
            with self.subTest(args=args, code=code):
                rc, err = self.sendmail(args, message, as_nobody=True)
                self.assertEqual(rc, code, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(text, err)
        self.assertNotIn("Sanitizer", self.mw.log())

    def test_server_not_running_is_tempfail(self):
        tmp = TempDir()
        try:
            cfg = os.path.join(tmp.path, "down.toml")
            with open(cfg, "w") as f:
                f.write('[server]\nhostname = "%s"\n[sendmail]\nsocket = "%s"\n' % (HOST, os.path.join(tmp.path, "no.sock")))
            os.chmod(cfg, 0o644)
            rc, err = self.sendmail(["bob@" + DOMAIN], "Subject: x\n\nx\n", as_nobody=True, config=cfg)
            self.assertEqual(rc, 75, err)
            self.assertIn("is mailward serve running?", err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        finally:
            tmp.cleanup()

    def test_called_as_sendmail_through_a_symlink(self):
        tmp = TempDir()
        try:
            link = os.path.join(tmp.path, "sendmail")
            os.symlink(os.path.abspath(MAILWARD) if os.path.exists(MAILWARD) else MAILWARD, link)
            marker = uuid.uuid4().hex
            # Options that cron, PHP and mutt pass are accepted and change nothing.
            rc, err = self.sendmail(["-oi", "-odi", "-oem", "-bm", "-t"], "To: bob@%s\nSubject: %s\n\nx\n"
                                    % (DOMAIN, marker), as_nobody=True, argv0=link)
            self.assertEqual((rc, err), (0, ""))
            self.delivered(marker)
            rc, err = self.sendmail(["-q"], "", argv0=link)
            self.assertEqual(rc, 64, err)
            self.assertIn("unsupported option -q", err)
        finally:
            tmp.cleanup()

    def test_raw_session_on_the_socket_has_no_tls_and_no_auth(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self.socket)
        f = sock.makefile("rwb")

        def cmd(line):
            if line:
                f.write(line.encode() + b"\r\n")
                f.flush()
            lines = []
            while True:
                l = f.readline().decode().rstrip("\r\n")
                lines.append(l)
                if len(l) < 4 or l[3] != "-":
                    return int(l[:3]), lines

        try:
            self.assertEqual(cmd("")[0], 220)
            code, lines = cmd("EHLO x")
            self.assertEqual(code, 250)
            self.assertFalse([l for l in lines if "STARTTLS" in l or "AUTH" in l], lines)
            self.assertEqual(cmd("AUTH PLAIN AGFAYg==")[0], 503)
            self.assertEqual(cmd("STARTTLS")[0], 502)
            self.assertEqual(cmd("MAIL FROM:<anyone@%s>" % DOMAIN)[0], 250)  # root may
            code, lines = cmd("RCPT TO:<no-domain>")
            self.assertEqual(code // 100, 5, lines)
            self.assertEqual(cmd("QUIT")[0], 221)
        finally:
            sock.close()

    def test_socket_and_its_directory(self):
        st = os.stat(self.socket)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(st.st_mode & 0o777, 0o666)
        self.assertEqual(os.stat(os.path.dirname(self.socket)).st_mode & 0o777, 0o755)


if __name__ == "__main__":
    unittest.main()
