"""Privilege separation seen from outside (docs/design.md, "Process model"): `mailward serve` started
as root with [server] user = "mailward" runs as two processes, serve and its child the key holder,
both as that user with no capabilities; only the key holder holds the master key file (in
/proc/PID/fd), it listens on nothing, serve has the listening sockets and cannot open the key file
(a probe as serve's uid is refused); data_dir belongs to the user, the key file stays root's 0600.
An escrow round trip (seal, code, sign in, read) works with privilege separation on. A key holder
killed ends serve with status 1; a missing user stops serve with one line naming the key; started
as another user, serve says so and runs (key holder included) as that user."""
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import LabTestCase, Mailward, TempDir, wait_for  # noqa: E402
import test_escrow  # noqa: E402
from test_escrow import PortalClient, csrf_of  # noqa: E402

USER = "mailward"


def ensure_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                       check=True)
        return pwd.getpwnam(USER)


def status_of(pid):
    """/proc/PID/status as a dict of its fields."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def children_of(pid):
    kids = set()
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            kids.update(int(c) for c in f.read().split())
    return sorted(kids)


def comm_of(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().strip()


def fd_targets(pid):
    out = []
    base = "/proc/%d/fd" % pid
    for fd in os.listdir(base):
        try:
            out.append(os.readlink(os.path.join(base, fd)))
        except OSError:
            pass  # closed in between
    return out


def listening_inodes():
    """Socket inodes of TCP listeners (state 0A) on this host."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A":
                    inodes.add(parts[9])
    return inodes


def socket_inodes(pid):
    return {m.group(1) for t in fd_targets(pid) for m in [re.match(r"socket:\[(\d+)\]", t)] if m}


class PrivsepTest(LabTestCase):
    portal_cert = True

    @classmethod
    def setUpClass(cls):
        cls.user = ensure_user()
        super().setUpClass()

    @classmethod
    def configure(cls, extra):
        extra.setdefault("server", {})["user"] = USER

    escrow_one = test_escrow.EscrowTest.escrow_one
    code_from_mx = test_escrow.EscrowTest.code_from_mx

    def processes(self):
        """(serve pid, key holder pid)."""
        serve = self.mw.proc.pid
        kids = [p for p in children_of(serve) if comm_of(p) == "mailward-keys"]
        self.assertEqual(len(kids), 1, "one key holder among serve's children %s" % children_of(serve))
        return serve, kids[0]

    def key_path(self):
        return os.path.join(self.mw.data_dir, "master.key")

    def test_both_processes_run_as_the_user_without_capabilities(self):
        serve, keys = self.processes()
        uid, gid = str(self.user.pw_uid), str(self.user.pw_gid)
        self.assertNotEqual(self.user.pw_uid, 0)
        for pid, name in ((serve, "serve"), (keys, "key holder")):
            st = status_of(pid)
            self.assertEqual(st["Uid"].split(), [uid] * 4, name)  # real, effective, saved, fs
            self.assertEqual(st["Gid"].split(), [gid] * 4, name)
            self.assertEqual(int(st["CapEff"], 16), 0, name)
            self.assertEqual(int(st["CapPrm"], 16), 0, name)
            self.assertEqual(st["NoNewPrivs"], "1", name)
            self.assertNotIn("0", st["Groups"].split(), name)
        # Every thread, including those started before the drop (resolver, pools, store writer).
        for pid in (serve, keys):
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
                self.assertEqual(st["Uid"].split(), [uid] * 4, (pid, tid))
                self.assertEqual((int(st["CapEff"], 16), st["NoNewPrivs"]), (0, "1"), (pid, tid))
        self.assertEqual(comm_of(serve), "mailward")
        log = self.mw.log()
        self.assertIn("running as user mailward (uid %s, gid %s); the key holder is pid %d" % (uid, gid, keys), log)
        self.assertRegex(log, r"key holder: pid %d holds the master key .*master\.key" % keys)

    def test_only_the_key_holder_holds_the_key_and_it_does_not_listen(self):
        serve, keys = self.processes()
        key = os.path.realpath(self.key_path())
        holders = [pid for pid in [serve] + children_of(serve) if key in fd_targets(pid)]
        self.assertEqual(holders, [keys], "only the key holder has master.key open")
        for pid in (serve, keys):
            with open("/proc/%d/maps" % pid) as f:
                self.assertNotIn(key, f.read())
        listening = listening_inodes()
        self.assertFalse(socket_inodes(keys) & listening, "the key holder listens on nothing")
        self.assertGreaterEqual(len(socket_inodes(serve) & listening), 2, "serve has the submission and portal listeners")

    def test_serve_cannot_read_the_key_file(self):
        st = os.stat(self.key_path())
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600), "the key stays root's, 0600")
        serve, _ = self.processes()
        uid = int(status_of(serve)["Uid"].split()[1])
        p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % self.user.pw_gid, "--clear-groups",
                            "cat", self.key_path()], capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"Permission denied", p.stderr)
        self.assertEqual(p.stdout, b"")
        # Nor the key holder's memory: it runs as the same uid but is not dumpable.
        _, keys = self.processes()
        p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % self.user.pw_gid, "--clear-groups",
                            "head", "-c", "1", "/proc/%d/environ" % keys], capture_output=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"Permission denied", p.stderr)
        # Everything else in data_dir is the user's: serve writes there after the drop.
        for rel in ("mailward.db", "spool", "tls/submission.key", "escrow-audit.anchor"):
            path = os.path.join(self.mw.data_dir, rel)
            if os.path.exists(path):
                self.assertEqual(os.stat(path).st_uid, self.user.pw_uid, rel)
        self.assertEqual(os.stat(self.mw.data_dir).st_uid, self.user.pw_uid)

    def test_escrow_round_trip_with_privilege_separation(self):
        marker = "PRIVSEP" + uuid.uuid4().hex[:10]
        qid, notice, link = self.escrow_one(marker)
        self.assertNotIn(marker.encode(), notice)
        c = PortalClient(self.mw, self.ca_file)
        status, _, page = c.request("GET", link)
        self.assertEqual(status, 200, page)
        csrf = csrf_of(page)
        n = len(self.lab.mx.messages("notls.example.test"))
        self.assertEqual(c.form(link + "/code", {"csrf": csrf})[0], 200)
        code = self.code_from_mx(n)
        status, headers, _ = c.form(link + "/login", {"csrf": csrf, "code": code})
        self.assertEqual((status, headers["Location"]), (303, "/read"))
        status, _, page = c.request("GET", "/read")
        self.assertEqual(status, 200, page)
        self.assertIn(marker.encode(), page)
        eid = self.escrow_id(qid)
        wait_for(lambda: "key holder: unwrapped the key of escrow %s for session" % eid in self.mw.log(), 10,
                 "the key holder's log line")
        # Signed out, the same cookie opens nothing any more.
        self.assertEqual(c.form("/logout", {"csrf": csrf_of(page)})[0], 200)
        self.assertEqual(c.request("GET", "/read")[0], 401)

    escrow_id = test_escrow.EscrowTest.escrow_id


class PrivsepStartTest(unittest.TestCase):
    """serve on its own (no lab): started as another user, with its key holder killed, without its user."""

    def setUp(self):
        ensure_user()
        self.tmp = TempDir()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_killed_key_holder_ends_serve_with_status_1(self):
        mw = Mailward(self.tmp.path, extra={"server": {"user": USER}}).start()
        try:
            kids = [p for p in children_of(mw.proc.pid) if comm_of(p) == "mailward-keys"]
            self.assertEqual(len(kids), 1)
            os.kill(kids[0], signal.SIGKILL)
            rc = mw.proc.wait(timeout=30)
            self.assertEqual(rc, 1)
            self.assertIn("escrow: the key holder (pid %d) ended (signal 9); stopping" % kids[0], mw.log())
        finally:
            mw.stop()

    def test_started_unprivileged_it_says_so_and_runs_as_it_is(self):
        user = ensure_user()
        mw = Mailward(self.tmp.path, extra={"server": {"user": "mw-no-such-user"}})  # not looked up
        os.makedirs(mw.data_dir, mode=0o700)
        os.chown(mw.data_dir, user.pw_uid, user.pw_gid)
        with open(mw.log_path, "ab") as log:
            proc = subprocess.Popen(["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid,
                                     "--clear-groups", harness.MAILWARD, "serve", "-c", mw.config],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self.assertTrue(harness.wait_port("127.0.0.1", mw.portal_port, 60, proc), mw.log())
            self.assertIn("not started as root (uid %d): running as this user, [server] user is not used"
                          % user.pw_uid, mw.log())
            kids = [p for p in children_of(proc.pid) if comm_of(p) == "mailward-keys"]
            self.assertEqual(len(kids), 1, "the key holder runs here too")
            self.assertIn(os.path.realpath(os.path.join(mw.data_dir, "master.key")), fd_targets(kids[0]))
            self.assertEqual(status_of(kids[0])["Uid"].split(), [str(user.pw_uid)] * 4)
            # Same uid as serve, yet its memory is closed to that uid (not dumpable).
            p = subprocess.run(["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--clear-groups",
                                "head", "-c", "1", "/proc/%d/environ" % kids[0]], capture_output=True, timeout=30)
            self.assertIn(b"Permission denied", p.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0, mw.log())

    def test_a_missing_user_stops_serve_with_one_line(self):
        mw = Mailward(self.tmp.path, extra={"server": {"user": "mw-no-such-user"}})
        p = subprocess.run([harness.MAILWARD, "serve", "-c", mw.config], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn('mailward: server.user: no system user "mw-no-such-user"', p.stderr)
        self.assertFalse(os.path.exists(os.path.join(mw.data_dir, "master.key")), "nothing was started")


if __name__ == "__main__":
    unittest.main()
