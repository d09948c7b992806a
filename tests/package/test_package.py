"""The Debian package as an administrator meets it: scripts/package builds mailward_*.deb and
mailward-sendmail_*.deb, lintian finds nothing not overridden, `apt-get install ./mailward_*.deb`
installs beside the machine's Postfix, the files, user, owners and modes are as docs/operations.md
says, the service starts the way its systemd unit starts it (the unit's ExecStart and Environment
under setpriv with the unit's CapabilityBoundingSet and no-new-privs, as root), a swaks submission is
delivered to a lab Postfix MX, SIGTERM ends it with status 0, and `apt-get purge` leaves nothing.
Runs as root only (it installs a package); leaves the machine as it found it, also on failure: the
packages are purged at the end. Never touches /etc/postfix or the machine's services.
Each step is its own method, run in order by test_install_run_purge."""
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))

from harness import free_port, toml_value, wait_for, wait_port  # noqa: E402

PACKAGES = ["mailward", "mailward-sendmail"]
UNIT = "/lib/systemd/system/mailward.service"
# What the packages put on the machine and purge must take away again.
LEFTOVERS = ["/usr/sbin/mailward", "/etc/mailward", "/var/lib/mailward", UNIT,
             "/etc/systemd/system/multi-user.target.wants/mailward.service",
             "/usr/share/man/man8/mailward.8.gz", "/usr/share/doc/mailward"]
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def sh(cmd, check=True, timeout=600, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:],
                                                          p.stderr[-4000:]))
    return p


def installed(pkg):
    p = sh(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg], check=False)
    return p.returncode == 0 and p.stdout.strip() not in ("", "un")


def unit_settings(path):
    """The [Service] settings of a unit file: {key: [values in order]}."""
    settings = {}
    sec = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                sec = line
                continue
            if sec == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                settings.setdefault(k, []).append(v)
    return settings


def setpriv_bounding(caps):
    """systemd's CapabilityBoundingSet=CAP_A CAP_B as setpriv's --bounding-set=-all,+a,+b."""
    return "--bounding-set=-all" + "".join(",+" + c.lower().removeprefix("cap_") for c in caps)


@unittest.skipUnless(os.geteuid() == 0, "the package test installs and purges a Debian package: run it as root")
class PackageTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mailward-package-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.debs = {}
        self.procs = []
        self.lab = None

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.lab is not None:
            self.lab.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_install_run_purge(self):
        for pkg in PACKAGES:
            self.assertFalse(installed(pkg), "%s is installed already: the test would remove it; "
                             "purge it first (apt-get purge %s)" % (pkg, pkg))
        for path in LEFTOVERS:
            self.assertFalse(os.path.lexists(path), "%s exists before the test: it would be removed" % path)
        self.postfix_was_installed = installed("postfix")
        try:
            self.step_build()
            self.step_lintian()
            self.step_install()
            self.step_sendmail_package()
            self.step_files()
            self.step_conffile_parses()
            self.step_serve_deliver_stop()
            self.step_syscalls_within_unit_filters()
        finally:
            self.step_purge()
        self.step_nothing_left()

    # --- steps -----------------------------------------------------------------------------------

    def step_build(self):
        start = time.monotonic()
        # Into build/package (scripts/package's default): the same path every run, so ccache hits.
        out = sh(["scripts/package"], cwd=ROOT, timeout=3600)
        for line in out.stdout.split():
            name = os.path.basename(line)
            pkg = name.split("_")[0]
            self.debs[pkg] = line
        self.assertEqual(sorted(self.debs), PACKAGES, out.stdout)
        print("\npackage: scripts/package took %.0fs" % (time.monotonic() - start), file=sys.stderr)
        sendmail = sh(["dpkg-deb", "-f", self.debs["mailward-sendmail"], "Provides", "Conflicts", "Replaces"]).stdout
        self.assertEqual(sendmail.count("mail-transport-agent"), 3, sendmail)
        main = sh(["dpkg-deb", "-f", self.debs["mailward"], "Provides", "Conflicts"]).stdout
        self.assertNotIn("mail-transport-agent", main)

    def step_lintian(self):
        # Errors and warnings fail (overrides in debian/*.lintian-overrides are honoured and listed).
        p = sh(["lintian", "--fail-on", "error,warning", "--display-level", ">=warning", "--show-overrides",
                self.debs["mailward"], self.debs["mailward-sendmail"]], check=False, timeout=900)
        self.assertEqual(p.returncode, 0, "lintian:\n" + p.stdout + p.stderr)

    def step_install(self):
        sh(["apt-get", "install", "-y", "--no-install-recommends", self.debs["mailward"]], env=APT_ENV, timeout=900)
        self.assertTrue(installed("mailward"))
        self.assertTrue(installed("postfix"), "postfix was removed")  # installs beside Postfix
        size = sh(["dpkg-query", "-W", "-f=${Installed-Size}", "mailward"]).stdout
        print("package: mailward Installed-Size %s KiB" % size, file=sys.stderr)

    def step_sendmail_package(self):
        """mailward-sendmail conflicts with Postfix (mail-transport-agent): apt would remove Postfix,
        so it is checked unpacked, never installed here."""
        sim = sh(["apt-get", "install", "-s", self.debs["mailward-sendmail"]], env=APT_ENV, check=False)
        if installed("postfix"):
            self.assertRegex(sim.stdout, r"(?m)^Remv postfix", "apt should replace Postfix:\n" + sim.stdout)
        root = os.path.join(self.tmp, "sendmail-deb")
        sh(["dpkg-deb", "-x", self.debs["mailward-sendmail"], root])
        link = os.path.join(root, "usr/sbin/sendmail")
        self.assertTrue(os.path.islink(link))
        self.assertEqual(os.readlink(link), "mailward")
        self.assertTrue(os.path.exists(os.path.join(root, "usr/share/man/man1/mailward-sendmail.1.gz")))

    def step_files(self):
        def owner_mode(path):
            st = os.lstat(path)
            return (pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode))

        user = pwd.getpwnam("mailward")
        self.assertLess(user.pw_uid, 1000, "a system user")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertEqual(owner_mode("/usr/sbin/mailward"), ("root", 0o755))
        self.assertEqual(owner_mode("/etc/mailward/mailward.toml"), ("root", 0o644))
        self.assertEqual(owner_mode("/var/lib/mailward"), ("mailward", 0o700))
        self.assertEqual(owner_mode(UNIT), ("root", 0o644))
        for page in ("man8/mailward.8.gz", "man5/mailward.toml.5.gz"):
            self.assertTrue(os.path.exists("/usr/share/man/" + page), page)
        conffiles = sh(["dpkg-query", "-W", "-f=${Conffiles}", "mailward"]).stdout
        self.assertIn("/etc/mailward/mailward.toml", conffiles)
        version = sh(["/usr/sbin/mailward", "--version"]).stdout
        self.assertIn("0.1.0", version)

    def step_conffile_parses(self):
        """The shipped conffile loads (`config check` once it exists; until then the unit test
        tests/unit/config/debian_conffile_test.cpp loads it) and the binary runs."""
        helptext = sh(["/usr/sbin/mailward", "--help"]).stdout
        if re.search(r"(?m)^\s+config\s", helptext):
            p = sh(["/usr/sbin/mailward", "config", "check", "-c", "/etc/mailward/mailward.toml"], check=False)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        else:
            self.assertIn("--config", sh(["/usr/sbin/mailward", "serve", "--help"]).stdout)

    def step_serve_deliver_stop(self):
        from mwlab import received_tls, standard_lab

        self.lab = standard_lab(os.path.join(self.tmp, "lab"))
        port, portal, metrics = free_port(), free_port(), free_port()
        config = os.path.join(self.tmp, "mailward.toml")
        run_dir = os.path.join(self.tmp, "run")  # the unit's RuntimeDirectory, for the sendmail socket
        os.makedirs(run_dir, mode=0o755)
        self.sendmail_socket = os.path.join(run_dir, "sendmail.sock")
        sections = {
            "server": {"hostname": "relay.example.test", "data_dir": "/var/lib/mailward"},
            "metrics": {"listen": "127.0.0.1:%d" % metrics},
            "sendmail": {"socket": self.sendmail_socket},
            "submission": {"listen": ["127.0.0.1:%d" % port]},
            "escrow": {"listen": "127.0.0.1:%d" % portal, "url": "https://portal.example.test:%d" % portal},
        }
        for sec, kv in self.lab.mailward_config().items():
            sections.setdefault(sec, {}).update(kv)
        with open(config, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec + "".join("%s = %s\n" % (k, toml_value(v)) for k, v in kv.items()))

        self.config, self.port, self.portal = config, port, portal
        log = open(os.path.join(self.tmp, "serve.log"), "wb")
        start = time.monotonic()
        proc, cmd = self.start_like_unit(log)
        up = wait_port("127.0.0.1", port, 60, proc) and wait_port("127.0.0.1", portal, 60, proc)
        startup = time.monotonic() - start
        serve_log = lambda: open(os.path.join(self.tmp, "serve.log"), errors="replace").read()  # noqa: E731
        self.assertTrue(up, "mailward did not start under %s:\n%s" % (" ".join(cmd), serve_log()))
        print("package: start-up (exec to both ports listening) %.2fs" % startup, file=sys.stderr)

        # Every process runs as mailward once it serves; the key file stays root's.
        wait_for(lambda: "running as user mailward" in serve_log(), 30, "the drop to mailward")
        uid = pwd.getpwnam("mailward").pw_uid
        with open("/proc/%d/status" % proc.pid) as f:
            self.assertIn("Uid:\t%d\t%d\t%d\t%d" % (uid, uid, uid, uid), f.read())
        key = os.stat("/var/lib/mailward/master.key")
        self.assertEqual((key.st_uid, stat.S_IMODE(key.st_mode)), (0, 0o600))

        marker = "pkg-" + uuid.uuid4().hex[:12]
        swaks = sh(["swaks", "--server", "127.0.0.1:%d" % port, "--from", "alice@tls.example.test",
                    "--to", "pkg@tls.example.test", "--header", "Subject: " + marker, "--body", "body " + marker],
                   timeout=120)
        self.assertIn("queued as", swaks.stdout)
        msgs = wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test") if marker.encode() in m], 90,
                        "delivery to the lab MX")
        self.assertTrue(received_tls(msgs[0]), msgs[0][:2000])

        # A local program through the installed binary's sendmail, as root.
        marker2 = "pkg-sendmail-" + uuid.uuid4().hex[:8]
        p = sh(["/usr/sbin/mailward", "sendmail", "-c", config, "-t"],
               input="To: pkg@tls.example.test\nSubject: %s\n\nbody %s\n" % (marker2, marker2), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test") if marker2.encode() in m], 90,
                 "the sendmail message at the lab MX")

        # ExecReload: SIGHUP reloads, the service goes on.
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload: done" in serve_log(), 30, "the reload")
        swaks = sh(["swaks", "--server", "127.0.0.1:%d" % port, "--from", "alice@tls.example.test",
                    "--to", "pkg@tls.example.test", "--header", "Subject: after reload"], timeout=120)
        self.assertIn("queued as", swaks.stdout)

        # The Prometheus endpoint, checked by promtool.
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics, timeout=30) as r:
            text = r.read()
        self.assertIn(b"mailward_", text)
        lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)

        proc.send_signal(15)
        self.assertEqual(proc.wait(timeout=90), 0, serve_log())
        log.close()

    def step_syscalls_within_unit_filters(self):
        """What systemd enforces only as PID 1, checked by tracing a second start (with a submission
        and its delivery) under strace: every system call is in the unit's SystemCallFilter groups and
        every socket family in its RestrictAddressFamilies."""
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed")
        unit = unit_settings(UNIT)
        groups, cur = {}, None
        for line in sh(["systemd-analyze", "syscall-filter"]).stdout.splitlines():
            if line.startswith("@"):
                cur = groups.setdefault(line.strip(), [])
            elif line.strip() and not line.strip().startswith("#") and cur is not None:
                cur.append(line.strip())

        def expand(name):
            out = set()
            for m in groups.get(name, [name]):
                out |= expand(m) if m.startswith("@") and m != name else {m}
            return out

        allowed = set()
        for f in unit["SystemCallFilter"]:
            for name in f.split():
                allowed |= expand(name)
        self.assertGreater(len(allowed), 100, "systemd-analyze syscall-filter was read")
        trace = os.path.join(self.tmp, "strace.out")
        log = open(os.path.join(self.tmp, "serve-strace.log"), "wb")
        proc, _ = self.start_like_unit(log, ["strace", "-f", "-qq", "-o", trace])
        self.assertTrue(wait_port("127.0.0.1", self.port, 60, proc) and wait_port("127.0.0.1", self.portal, 60, proc))
        marker = "pkg-" + uuid.uuid4().hex[:12]
        sh(["swaks", "--server", "127.0.0.1:%d" % self.port, "--from", "alice@tls.example.test",
            "--to", "pkg2@tls.example.test", "--header", "Subject: " + marker], timeout=120)
        wait_for(lambda: [m for m in self.lab.mx.messages("tls.example.test") if marker.encode() in m], 90,
                 "delivery to the lab MX")
        # strace's pid is proc's; serve is its child: SIGTERM to serve, which ends strace too.
        serve_pid = int(sh(["pgrep", "-P", str(proc.pid), "-x", "mailward"]).stdout.split()[0])
        os.kill(serve_pid, 15)
        self.assertEqual(proc.wait(timeout=90), 0)
        log.close()
        with open(trace, errors="replace") as f:
            text = f.read()
        used = set(re.findall(r"(?m)^\d+ +([a-z0-9_]+)\(", text))
        self.assertIn("setresuid", used)
        self.assertEqual(sorted(used - allowed), [], "system calls outside SystemCallFilter")
        families = set(re.findall(r"socket\((AF_[A-Z0-9]+)", text))
        allowed_families = set(unit["RestrictAddressFamilies"][0].split())
        self.assertEqual(sorted(families - allowed_families), [], "socket families outside RestrictAddressFamilies")

    def step_purge(self):
        present = [p for p in PACKAGES if installed(p)]
        if present:
            sh(["apt-get", "purge", "-y"] + present, env=APT_ENV, timeout=900)

    def step_nothing_left(self):
        for pkg in PACKAGES:
            self.assertFalse(installed(pkg), pkg)
        left = [p for p in LEFTOVERS if os.path.lexists(p)]
        self.assertEqual(left, [], "left behind by apt-get purge")
        # The user stays (as with Debian's other MTAs); it was made by postinst or existed before.
        self.assertTrue(self.user_exists())
        self.assertEqual(installed("postfix"), self.postfix_was_installed)

    # --- helpers ---------------------------------------------------------------------------------

    def start_like_unit(self, log, wrapper=()):
        """Starts the installed unit's ExecStart as systemd would without its namespaces: its
        Environment (MAILWARD_CONFIG pointed at the test's config, as a drop-in would), as root under
        setpriv with the unit's CapabilityBoundingSet and no-new-privs, its UMask, cwd /."""
        unit = unit_settings(UNIT)
        self.assertEqual(unit["Type"], ["notify"])
        self.assertNotIn("User", unit)  # started as root: serve drops to [server] user itself
        self.assertEqual(unit["NoNewPrivileges"], ["yes"])
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        for assignment in unit.get("Environment", []):
            for word in shlex.split(assignment):
                k, _, v = word.partition("=")
                env[k] = v
        self.assertIn("MAILWARD_CONFIG", env)
        env["MAILWARD_CONFIG"] = self.config
        (exec_start,) = unit["ExecStart"]
        argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in shlex.split(exec_start)]
        self.assertEqual(argv[:2], ["/usr/sbin/mailward", "serve"])
        caps = unit["CapabilityBoundingSet"][0].split()
        cmd = list(wrapper) + ["setpriv", setpriv_bounding(caps), "--no-new-privs", "--"] + argv
        umask = int(unit.get("UMask", ["0022"])[0], 8)
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd="/", preexec_fn=lambda: os.umask(umask))
        self.procs.append(proc)
        return proc, cmd

    @staticmethod
    def user_exists():
        try:
            pwd.getpwnam("mailward")
            return True
        except KeyError:
            return False


if __name__ == "__main__":
    unittest.main()
