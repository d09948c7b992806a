"""The command line with bad input: every error is one clear line on stderr and a non-zero exit,
never a crash. Also the config errors that name file, line and key, and a busy listen port."""
import os
import socket
import subprocess
import unittest

import harness
from harness import Mailward, TempDir


def mailward(*args, stdin=None):
    return subprocess.run([harness.MAILWARD] + list(args), input=stdin, capture_output=True, text=True,
                          timeout=120)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.mw = Mailward(self.tmp.path, tls=False)

    def tearDown(self):
        self.mw.stop()
        self.tmp.cleanup()

    def assertOneLineError(self, p, *needles):
        self.assertNotEqual(p.returncode, 0)
        self.assertLess(p.returncode, 128, "crashed: " + p.stderr)  # not killed by a signal
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith("mailward: "), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])

    def test_unknown_key_names_file_line_and_key(self):
        path = os.path.join(self.tmp.path, "bad.toml")
        with open(path, "w") as f:
            f.write('[server]\nhostname = "x.example.test"\n\n[submission]\nlisten = ["127.0.0.1:2525"]\nlisten_tls = []\n')
        p = mailward("queue", "list", "-c", path)
        self.assertOneLineError(p, path + ":6", "submission.listen_tls")
        self.assertEqual(p.returncode, 2)

    def test_bad_duration_and_missing_file(self):
        path = os.path.join(self.tmp.path, "bad.toml")
        with open(path, "w") as f:
            f.write('[delivery]\nmax_queue_lifetime = "5 days"\n')
        self.assertOneLineError(mailward("serve", "-c", path), ":2", "delivery.max_queue_lifetime")
        self.assertOneLineError(mailward("serve", "-c", os.path.join(self.tmp.path, "nope.toml")), "nope.toml")

    def test_queue_bad_ids(self):
        self.assertOneLineError(self.mw.cli("queue", "show", "../etc/passwd", check=False), "not a queue id")
        self.assertOneLineError(self.mw.cli("queue", "show", "0123456789abcdefgh", check=False),
                                "no message 0123456789abcdefgh")
        self.assertOneLineError(self.mw.cli("queue", "delete", "0123456789abcdefgh", check=False), "no message")
        self.assertOneLineError(self.mw.cli("queue", "retry", "0123456789abcdefgh", check=False), "no message")

    def test_queue_list_empty(self):
        p = self.mw.cli("queue", "list", "--json")  # one object per line per message (postqueue -j)
        self.assertEqual(p.stdout.strip(), "")
        self.assertEqual(self.mw.cli("queue", "list").stdout.strip(), "queue is empty")

    def test_users(self):
        self.mw.add_user("alice@example.org", "password-one")
        self.assertOneLineError(self.mw.cli("user", "add", "alice@example.org", stdin="password-two\n", check=False),
                                "already exists")
        self.assertOneLineError(self.mw.cli("user", "add", "bob@example.org", stdin="short\n", check=False),
                                "too short")
        self.assertOneLineError(self.mw.cli("user", "add", "carol@example.org", "--mode", "plaintext",
                                            stdin="password-three\n", check=False), "unknown mode 'plaintext'")
        self.assertOneLineError(self.mw.cli("user", "add", "bad name", stdin="password-four\n", check=False),
                                "spaces")
        self.assertOneLineError(self.mw.cli("user", "add", "dave@example.org", stdin="", check=False),
                                "no password")
        self.assertOneLineError(self.mw.cli("user", "del", "nobody@example.org", check=False), "no user")
        self.mw.cli("user", "passwd", "alice@example.org", "--mode", "tls-only", stdin="password-new\n")
        out = self.mw.cli("user", "list", "--json").stdout
        self.assertIn('"mode": "tls-only"', out)
        self.mw.cli("user", "del", "alice@example.org")
        self.assertEqual(self.mw.cli("user", "list", "--json").stdout.strip(), "[]")

    def test_unknown_subcommand_and_pending_ones(self):
        p = mailward("frobnicate")
        self.assertNotEqual(p.returncode, 0)
        self.assertOneLineError(mailward("report", "--since", "soon"), "not a duration")
        self.assertOneLineError(mailward("check", "bad domain!"), "not a domain name")

    def test_port_in_use_is_a_clear_startup_error(self):
        s = socket.socket()
        s.bind(("127.0.0.1", self.mw.port))
        s.listen()
        try:
            p = subprocess.run([harness.MAILWARD, "serve", "-c", self.mw.config], capture_output=True, text=True,
                               timeout=120)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("cannot listen on 127.0.0.1:%d" % self.mw.port, p.stderr)
            self.assertIn("in use", p.stderr)
        finally:
            s.close()

    def test_first_start_creates_key_and_certificate_0600(self):
        self.mw.start()
        self.mw.stop()
        for rel in ("master.key", "tls/submission.crt", "tls/submission.key"):
            st = os.stat(os.path.join(self.mw.data_dir, rel))
            self.assertEqual(st.st_mode & 0o777, 0o600, rel)
        self.assertEqual(os.path.getsize(os.path.join(self.mw.data_dir, "master.key")), 32)

    def test_a_master_key_readable_by_others_is_refused(self):
        self.mw.start()
        self.mw.stop()
        key = os.path.join(self.mw.data_dir, "master.key")
        os.chmod(key, 0o644)
        try:
            p = subprocess.run([harness.MAILWARD, "serve", "-c", self.mw.config], capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("master key has mode 0644", p.stderr)
            self.assertIn("chmod 600", p.stderr)
        finally:
            os.chmod(key, 0o600)

    def test_a_bad_preload_file_stops_serve_with_a_clear_line(self):
        cases = [("not json", "{{{", "not a JSON object"),
                 ("domains of the wrong shape", '{"version": 1, "domains": [{"domain": "a.example"}]}',
                  "domains: missing or not an object"),
                 ("missing file", None, "cannot read")]
        for name, content, needle in cases:
            with self.subTest(name=name):
                path = os.path.join(self.tmp.path, "preload-%d.json" % len(name))
                if content is not None:
                    with open(path, "w") as f:
                        f.write(content)
                config = os.path.join(self.tmp.path, "preload.toml")
                with open(self.mw.config) as src, open(config, "w") as dst:
                    dst.write(src.read() + '\n[policy]\npreload_file = "%s"\n' % path)
                p = subprocess.run([harness.MAILWARD, "serve", "-c", config], capture_output=True, text=True,
                                   timeout=120)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertLess(p.returncode, 128, "crashed: " + p.stderr)
                last = [l for l in p.stderr.splitlines() if l.strip()][-1]
                self.assertTrue(last.startswith("mailward: policy.preload_file: "), last)
                self.assertIn(needle, last)


if __name__ == "__main__":
    unittest.main()
