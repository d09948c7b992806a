"""Privilege separation seen from outside (docs/design.md, "Process model"): `mailward serve` started
as root with [server] user = "mailward" runs as four processes: serve (delivery, the escrow sealer and
sweeper) and its children the key holder (mailward-keys), the portal (mailward-portal) and the
submission server (mailward-smtp), all as that user with no capabilities. Only the key holder holds the
master key file (in /proc/PID/fd) and it listens on nothing; only the portal process listens on the
portal port and only the submission process on the submission ports; serve cannot open the key file (a
probe as its uid is refused); data_dir belongs to the user, the key file stays root's 0600. A
submission is delivered at once (the submission process wakes delivery), an escrow round trip (seal,
code, sign in, read) works through the portal process. A killed key holder, portal or submission
process ends serve with status 1 and one line naming it; a missing user stops serve with one line
naming the key; started as another user, serve says so and runs (children included) as that user."""
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
from harness import LabTestCase, Mailward, TempDir, submit, wait_for  # noqa: E402
import test_escrow  # noqa: E402
from test_escrow import PortalClient, csrf_of  # noqa: E402

USER = "mailward"
CHILDREN = ["mailward-keys", "mailward-portal", "mailward-smtp"]


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


def alive(pid):
    """pid runs (a zombie waiting for init's reaping does not count)."""
    try:
        return status_of(pid)["State"][0] != "Z"
    except OSError:
        return False


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


def listening_inodes_on(port):
    """Socket inodes of TCP listeners on port."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rpartition(":")[2], 16) == port:
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
        """{name: pid} of serve ("serve") and its children, one of each name."""
        serve = self.mw.proc.pid
        procs = {"serve": serve}
        for p in children_of(serve):
            name = comm_of(p)
            self.assertNotIn(name, procs, "one %s among serve's children" % name)
            procs[name] = p
        self.assertEqual(sorted(procs), sorted(["serve"] + CHILDREN), "serve's children")
        return procs

    def key_path(self):
        return os.path.join(self.mw.data_dir, "master.key")

    def test_every_process_runs_as_the_user_without_capabilities(self):
        procs = self.processes()
        uid, gid = str(self.user.pw_uid), str(self.user.pw_gid)
        self.assertNotEqual(self.user.pw_uid, 0)
        self.assertEqual(len(procs), 4)
        for name, pid in procs.items():
            st = status_of(pid)
            self.assertEqual(st["Uid"].split(), [uid] * 4, name)  # real, effective, saved, fs
            self.assertEqual(st["Gid"].split(), [gid] * 4, name)
            self.assertEqual(int(st["CapEff"], 16), 0, name)
            self.assertEqual(int(st["CapPrm"], 16), 0, name)
            self.assertEqual(st["NoNewPrivs"], "1", name)
            self.assertNotIn("0", st["Groups"].split(), name)

    def test_only_the_key_holder_holds_the_key_and_it_does_not_listen(self):
        procs = self.processes()
        keys = procs["mailward-keys"]
        key = os.path.realpath(self.key_path())
        holders = [pid for pid in procs.values() if key in fd_targets(pid)]
        self.assertEqual(holders, [keys], "only the key holder has master.key open")
        for name, pid in procs.items():
            with open("/proc/%d/maps" % pid) as f:
                self.assertNotIn(key, f.read(), name)
        listening = listening_inodes()
        self.assertFalse(socket_inodes(keys) & listening, "the key holder listens on nothing")
        self.assertFalse(socket_inodes(procs["serve"]) & listening, "serve (delivery) listens on nothing")

    def test_each_listener_belongs_to_its_process(self):
        procs = self.processes()
        ports = {
            "mailward-portal": {int(self.mw.portal_listen.rpartition(":")[2])},
            "mailward-smtp": {p for p in (self.mw.port, self.mw.tls_port) if p},
        }
        for name, wanted in ports.items():
            for port in wanted:
                inodes = listening_inodes_on(port)
                self.assertTrue(inodes, "something listens on %d" % port)
                owners = sorted(n for n, pid in procs.items() if socket_inodes(pid) & inodes)
                self.assertEqual(owners, [name], "the listener on port %d" % port)

    def test_a_submission_is_delivered_at_once(self):
        # The first message may wait for DNS and a TLS probe; after that the engine sits in its idle
        # wait (5 s) and only the submission process's wake-up makes the next ones go at once.
        first = submit(self.mw, "bob@tls.example.test", "PRIVSEP-WAKE-0-" + uuid.uuid4().hex[:8])
        wait_for(lambda: self.mw.queue_show(first)["recipients"][0]["state"] == "delivered", 60, "first delivery")
        for i in range(1, 4):
            qid = submit(self.mw, "bob@tls.example.test", "PRIVSEP-WAKE-%d-%s" % (i, uuid.uuid4().hex[:8]))
            start = time.monotonic()
            wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 30, "delivery")
            self.assertLess(time.monotonic() - start, 3.0, "message %d waited for the engine's idle poll" % i)

    def test_serve_cannot_read_the_key_file(self):
        st = os.stat(self.key_path())
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600), "the key stays root's, 0600")
        procs = self.processes()
        for name in ("serve", "mailward-portal", "mailward-smtp"):  # as each one's uid
            uid = int(status_of(procs[name])["Uid"].split()[1])
            p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % self.user.pw_gid, "--clear-groups",
                                "cat", self.key_path()], capture_output=True, timeout=30)
            self.assertNotEqual(p.returncode, 0, name)
            self.assertIn(b"Permission denied", p.stderr, name)
            self.assertEqual(p.stdout, b"", name)
        # Nor the key holder's memory: it runs as the same uid but is not dumpable.
        keys = self.processes()["mailward-keys"]
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

    def kill_child_ends_serve(self, name, what):
        mw = Mailward(self.tmp.path, extra={"server": {"user": USER}}).start()
        try:
            kids = [p for p in children_of(mw.proc.pid) if comm_of(p) == name]
            self.assertEqual(len(kids), 1)
            others = [p for p in children_of(mw.proc.pid) if p != kids[0]]
            os.kill(kids[0], signal.SIGKILL)
            rc = mw.proc.wait(timeout=30)
            self.assertEqual(rc, 1)
            self.assertIn("error %s (%s, pid %d) ended (signal 9); stopping" % (what, name, kids[0]), mw.log())
            self.assertIn("mailward: %s (%s) ended; stopped" % (what, name), mw.log())
            for p in others:  # the other children were stopped and reaped, none left behind
                self.assertFalse(alive(p), p)
        finally:
            mw.stop()

    def test_a_killed_key_holder_ends_serve_with_status_1(self):
        self.kill_child_ends_serve("mailward-keys", "the key holder")

    def test_a_killed_portal_process_ends_serve_with_status_1(self):
        self.kill_child_ends_serve("mailward-portal", "the portal process")

    def test_a_killed_submission_process_ends_serve_with_status_1(self):
        self.kill_child_ends_serve("mailward-smtp", "the submission process")

    def test_a_portal_that_cannot_listen_ends_serve_with_a_line_naming_it(self):
        mw = Mailward(self.tmp.path, extra={"server": {"user": USER}})
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", mw.portal_port))
        s.listen()
        try:
            p = subprocess.run([harness.MAILWARD, "serve", "-c", mw.config], capture_output=True, text=True,
                               timeout=120)
        finally:
            s.close()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("critical [mailward-portal] escrow portal: cannot listen on 127.0.0.1:%d" % mw.portal_port,
                      p.stderr)
        self.assertRegex(p.stderr, r"the portal process \(mailward-portal, pid \d+\) ended \(exit status 1\)")

    def test_children_stop_with_serve(self):
        mw = Mailward(self.tmp.path, extra={"server": {"user": USER}}).start()
        kids = children_of(mw.proc.pid)
        self.assertEqual(sorted(comm_of(p) for p in kids), CHILDREN)
        self.assertEqual(mw.stop(), 0, "SIGTERM: a clean stop")
        for p in kids:
            self.assertFalse(alive(p), "child %d is gone" % p)
        self.assertIn("[mailward-portal] escrow portal stopped", mw.log())
        self.assertIn("[mailward-smtp] submission stopped", mw.log())

    def test_children_die_with_a_killed_serve(self):
        mw = Mailward(self.tmp.path, extra={"server": {"user": USER}}).start()
        kids = children_of(mw.proc.pid)
        mw.kill9()
        wait_for(lambda: not any(alive(p) for p in kids), 10,
                 "the children to end with serve (PR_SET_PDEATHSIG)")

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
            self.assertEqual(sorted(comm_of(p) for p in children_of(proc.pid)), CHILDREN, "all the children run here too")
            for p in children_of(proc.pid):
                self.assertEqual(status_of(p)["Uid"].split(), [str(user.pw_uid)] * 4, comm_of(p))
            kids = [p for p in children_of(proc.pid) if comm_of(p) == "mailward-keys"]
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
