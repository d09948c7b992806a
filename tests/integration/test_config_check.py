"""`mailward config check` (issue 13): like `postfix check`, one finding per line (ok / warning /
error) about the configuration's files, permissions, certificates and listeners; exit 0 without
errors, 1 with errors, 2 when the configuration does not parse. One test per class of finding:
a missing file, a world-readable key, an open data_dir, an expired certificate, a key that does
not match, a name the certificate does not cover, a syntax error; and what would listen where.
"""
import json
import os
import re
import subprocess
import unittest

import harness
from harness import TempDir, TestCA, free_port, run, toml_value


def mailward(*args):
    return subprocess.run([harness.MAILWARD] + list(args), capture_output=True, text=True, timeout=60)


class ConfigCheckTest(unittest.TestCase):
    HOST = "relay.example.test"
    PORTAL = "portal.example.test"

    def setUp(self):
        self.tmp = TempDir()
        self.dir = self.tmp.path
        self.ca = TestCA(self.dir)
        self.cert, self.key = self.issue(self.HOST, ["DNS:" + self.HOST, "DNS:" + self.PORTAL], days=400)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir, mode=0o700)
        os.chmod(self.data_dir, 0o700)
        self.port, self.tls_port, self.portal_port = free_port(), free_port(), free_port()
        self.sections = {
            "server": {"hostname": self.HOST, "data_dir": self.data_dir, "user": "nobody"},
            "submission": {"listen": ["127.0.0.1:%d" % self.port], "tls_listen": ["127.0.0.1:%d" % self.tls_port],
                           "cert": self.cert, "key": self.key},
            "escrow": {"listen": "127.0.0.1:%d" % self.portal_port,
                       "url": "https://%s:%d" % (self.PORTAL, self.portal_port)},
            "delivery": {"ca_file": self.ca.cert},
        }

    def tearDown(self):
        self.tmp.cleanup()

    def issue(self, name, sans, days):
        """A leaf certificate from the test CA valid for days days (TestCA.issue makes 2-day ones)."""
        base = os.path.join(self.dir, name + "-%d" % days)
        key, csr, crt, ext = base + ".key", base + ".csr", base + ".crt", base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-out", csr, "-subj", "/CN=" + name])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key, "-CAcreateserial",
             "-out", crt, "-days", str(days), "-extfile", ext])
        os.chmod(key, 0o600)
        return crt, key

    def write(self, sections=None, text=None):
        path = os.path.join(self.dir, "mailward.toml")
        with open(path, "w") as f:
            if text is not None:
                f.write(text)
            else:
                for sec, kv in (sections or self.sections).items():
                    f.write("[%s]\n" % sec)
                    for k, v in kv.items():
                        f.write("%s = %s\n" % (k, toml_value(v)))
        return path

    def check(self, *extra):
        p = mailward("config", "check", "-c", self.write(), *extra)
        lines = p.stdout.splitlines()
        for l in lines[:-1]:  # every line but the summary is one finding
            self.assertRegex(l, r"^(ok|warning|error): ", p.stdout)
        return p, lines

    def findings(self, level):
        p = mailward("config", "check", "-c", self.write(), "--json")
        j = json.loads(p.stdout)
        return p, j, [f["message"] for f in j["findings"] if f["level"] == level]

    def test_good_config_passes_and_says_what_listens_where(self):
        p, lines = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertFalse([l for l in lines if l.startswith("error:")], p.stdout)
        out = p.stdout
        self.assertRegex(out, r"ok: submission\.cert %s: valid until \d{4}-\d\d-\d\d \(\d+ days left\)" %
                         self.cert.replace(".", r"\."))
        self.assertIn("ok: submission.key %s: matches the certificate" % self.key, out)
        self.assertIn("covers %s (server.hostname)" % self.HOST, out)
        self.assertIn("covers %s (the host of escrow.url)" % self.PORTAL, out)
        self.assertIn("ok: submission.key %s: mode 0600" % self.key, out)
        self.assertIn("ok: server.data_dir %s: mode 0700" % self.data_dir, out)
        self.assertIn("ok: delivery.ca_file %s: 1 certificate" % self.ca.cert, out)
        self.assertIn("ok: submission 127.0.0.1:%d: SMTP submission" % self.port, out)
        self.assertIn("ok: submission-tls 127.0.0.1:%d: SMTP submission over implicit TLS" % self.tls_port, out)
        self.assertIn("ok: portal 127.0.0.1:%d: recipients' portal (HTTPS)" % self.portal_port, out)
        self.assertRegex(lines[-1], r"^mailward config check: .*: 0 errors, \d+ warnings?$")
        # --json: the same findings, the listeners, the counts.
        p, j, errors = self.findings("error")
        self.assertEqual((p.returncode, errors, j["errors"]), (0, [], 0), p.stdout)
        self.assertEqual(j["config"], os.path.join(self.dir, "mailward.toml"))
        self.assertEqual(j["listen"], [
            {"service": "submission", "address": "127.0.0.1:%d" % self.port},
            {"service": "submission-tls", "address": "127.0.0.1:%d" % self.tls_port},
            {"service": "portal", "address": "127.0.0.1:%d" % self.portal_port}])
        for f in j["findings"]:
            self.assertEqual(set(f), {"level", "check", "message"}, f)
            self.assertIn(f["check"], {"file", "permissions", "certificate", "listen"}, f)

    def test_missing_file(self):
        # Files the loader itself reads (certificates, keys, CA file, trust anchor): serve would not
        # start, so the configuration does not load: exit 2, the file and line of the key.
        missing = os.path.join(self.dir, "nope", "ca.crt")
        self.sections["delivery"]["ca_file"] = missing
        path = self.write()
        p = mailward("config", "check", "-c", path)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertRegex(p.stdout.splitlines()[0], r"^error: %s:\d+: key 'delivery.ca_file': cannot read \"%s\"" %
                         (re.escape(path), re.escape(missing)))
        # Files only serve's start reads (the preload list): an error finding, exit 1.
        self.sections["delivery"]["ca_file"] = self.ca.cert
        preload = os.path.join(self.dir, "preload.json")
        self.sections["policy"] = {"preload_file": preload}
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: policy.preload_file %s: does not exist" % preload, lines)

    def test_certificate_about_to_expire_is_a_warning(self):
        crt, key = self.issue(self.HOST, ["DNS:" + self.HOST, "DNS:" + self.PORTAL], days=2)
        self.sections["submission"].update({"cert": crt, "key": key})
        p, lines = self.check()
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertTrue([l for l in lines if re.match(r"warning: submission\.cert %s: expires on \d{4}-\d\d-\d\d "
                                                      r"\([12] days? left\)$" % re.escape(crt), l)], p.stdout)

    def test_world_readable_key(self):
        os.chmod(self.key, 0o644)
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: submission.key %s: readable by group or others (mode 0644); chmod 600 %s" %
                      (self.key, self.key), lines)
        self.assertEqual(p.stderr, "mailward: config check: %s: 1 error (the error: lines above)\n" %
                         os.path.join(self.dir, "mailward.toml"))

    def test_open_data_dir_and_master_key(self):
        os.chmod(self.data_dir, 0o757)
        master = os.path.join(self.data_dir, "master.key")
        with open(master, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(master, 0o640)
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: server.data_dir %s: open to others (mode 0757); chmod 700 %s" %
                      (self.data_dir, self.data_dir), lines)
        self.assertIn("error: escrow.master_key_file %s: readable by group or others (mode 0640); chmod 600 %s" %
                      (master, master), lines)

    def test_owner_must_be_root_or_the_server_user(self):
        os.chown(self.key, 12345, -1)
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: submission.key %s: owned by uid 12345, not root or the [server] user 'nobody'" %
                      self.key, lines)
        os.chown(self.key, 0, -1)

    def expired_certificate(self):
        """A certificate from the test CA valid in January 2020 only (openssl ca sets the dates)."""
        d = os.path.join(self.dir, "ca-db")
        os.makedirs(os.path.join(d, "new"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        conf = os.path.join(d, "ca.cnf")
        with open(conf, "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s/new\nserial = %s/serial\n"
                    "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n" % (d, d, d))
        key, csr, crt = (os.path.join(self.dir, "old." + x) for x in ("key", "csr", "crt"))
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
             "-out", csr, "-subj", "/CN=" + self.HOST])
        run(["openssl", "ca", "-batch", "-config", conf, "-cert", self.ca.cert, "-keyfile", self.ca.key,
             "-in", csr, "-out", crt, "-notext", "-startdate", "20200101000000Z", "-enddate", "20200131000000Z"])
        os.chmod(key, 0o600)
        return crt, key

    def test_expired_certificate(self):
        crt, key = self.expired_certificate()
        self.sections["submission"].update({"cert": crt, "key": key})
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertTrue([l for l in lines if l.startswith("error: submission.cert %s: expired on 2020-01-31" % crt)],
                        p.stdout)
        self.assertIn("ok: submission.key %s: matches the certificate" % key, lines)

    def test_key_that_does_not_match(self):
        _, other_key = self.issue("other.example.test", ["DNS:other.example.test"], days=400)
        self.sections["submission"]["key"] = other_key
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: submission.key %s: does not match the certificate %s" % (other_key, self.cert), lines)

    def test_wrong_name(self):
        self.sections["server"]["hostname"] = "mail.example.test"
        self.sections["escrow"]["url"] = "https://elsewhere.example.test:%d" % self.portal_port
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        named = "it names %s, %s" % (self.HOST, self.PORTAL)
        self.assertIn("error: submission.cert %s: does not cover mail.example.test (server.hostname); %s" %
                      (self.cert, named), lines)
        self.assertIn("error: submission.cert %s: does not cover elsewhere.example.test (the host of escrow.url); %s"
                      % (self.cert, named), lines)

    def test_same_address_twice(self):
        self.sections["submission"]["tls_listen"] = ["127.0.0.1:%d" % self.port]
        p, lines = self.check()
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("error: submission-tls 127.0.0.1:%d: also configured for submission" % self.port, lines)

    def test_syntax_error_is_exit_2_with_file_and_line(self):
        path = self.write(text='[server]\nhostname = "relay.example.test"\ndata_dir = \n')
        p = mailward("config", "check", "-c", path)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stdout.splitlines()[0], r"^error: %s:3" % path.replace(".", r"\."))
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)  # the contract: one clear line on stderr
        self.assertTrue(p.stderr.startswith("mailward: %s:3: " % path), p.stderr)
        p = mailward("config", "check", "-c", path, "--json")
        self.assertEqual(p.returncode, 2)
        j = json.loads(p.stdout)
        self.assertEqual(j["errors"], 1)
        self.assertEqual(j["findings"][0]["check"], "parse")
        self.assertIn(path + ":3", j["findings"][0]["message"])
        # An unknown key: every problem is listed, each with its line.
        path = self.write(text='[server]\nhostnme = "x"\n[delivery]\nport = "25"\n')
        p = mailward("config", "check", "-c", path)
        self.assertEqual(p.returncode, 2)
        self.assertIn(path + ":2", p.stdout)
        self.assertIn(path + ":4", p.stdout)


if __name__ == "__main__":
    unittest.main()
