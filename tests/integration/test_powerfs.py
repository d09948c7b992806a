"""powerfs, the power-loss file system of the durability tests (tests/tools/powerfs.cpp).

What it must do to be trusted: at a power cut (unmount with --power-cut) keep exactly what was made
durable - a file's data and size at its fsync, a directory's names at the directory's fsync - and
drop the rest; on a clean unmount keep everything. Checked with plain POSIX calls and with SQLite in
WAL mode: rows committed with synchronous=FULL survive, rows committed with synchronous=OFF (no
fsync) do not, and the database passes integrity_check either way. Needs root (FUSE mounts).
"""
import os
import sqlite3
import subprocess
import time
import unittest

from harness import TempDir

POWERFS = os.environ.get("POWERFS_BIN", "")


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def write(path, data, sync=False):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


@unittest.skipUnless(os.geteuid() == 0, "FUSE mounts need root")
@unittest.skipUnless(POWERFS and os.path.exists(POWERFS), "POWERFS_BIN not built")
class PowerFsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir("powerfs")
        self.backing = os.path.join(self.tmp.path, "backing")
        self.mnt = os.path.join(self.tmp.path, "mnt")
        os.makedirs(self.backing)
        os.makedirs(self.mnt)
        self.proc = None
        self.log = os.path.join(self.tmp.path, "powerfs.log")

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.tmp.cleanup()

    def mount(self, power_cut=True):
        state = os.path.join(self.tmp.path, f"state-{time.monotonic_ns()}")
        os.makedirs(state)
        args = [POWERFS] + (["--power-cut"] if power_cut else []) + ["--state", state, self.backing, self.mnt]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            self.assertIsNone(self.proc.poll(), f"powerfs exited: {read(self.log, 'r')}")
            self.assertLess(time.monotonic(), deadline, "powerfs did not mount")
            time.sleep(0.02)

    def unmount(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=True, capture_output=True)
        self.assertEqual(self.proc.wait(timeout=30), 0, read(self.log, "r"))
        self.proc = None

    def b(self, *parts):
        return os.path.join(self.backing, *parts)

    def m(self, *parts):
        return os.path.join(self.mnt, *parts)

    def test_cut_keeps_exactly_what_was_synced(self):
        write(self.b("old"), b"old contents")  # there before the mount: durable
        write(self.b("renamed-away"), b"r")
        self.mount()
        write(self.m("synced"), b"A" * 5000, sync=True)
        write(self.m("unsynced"), b"gone")
        write(self.m("data-only"), b"data and name", sync=True)  # the directory sync below makes the name durable
        with open(self.m("old"), "ab") as f:
            f.write(b" + appended, never synced")
        os.rename(self.m("renamed-away"), self.m("renamed-to"))
        fsync_dir(self.mnt)  # names now: old, synced, unsynced, data-only, renamed-to
        write(self.m("after-dir-sync"), b"x", sync=True)  # data synced, name not
        with open(self.m("synced"), "r+b") as f:  # overwrite part of a synced file, unsynced
            f.write(b"B" * 10)
        os.unlink(self.m("old"))  # an unlink never synced
        os.makedirs(self.m("sub"))
        write(self.m("sub", "inner"), b"inner", sync=True)
        fsync_dir(self.m("sub"))  # sub's own entries are durable, but sub's name in the root is not
        self.unmount()

        names = sorted(os.listdir(self.backing))
        self.assertEqual(names, ["data-only", "old", "renamed-to", "synced", "unsynced"])
        self.assertEqual(read(self.b("synced")), b"A" * 5000)
        self.assertEqual(read(self.b("old")), b"old contents")
        self.assertEqual(read(self.b("data-only")), b"data and name")
        # A durable name whose data never was: an empty file, as ext4 leaves it.
        self.assertEqual(os.path.getsize(self.b("unsynced")), 0)
        self.assertEqual(read(self.b("renamed-to")), b"r")
        self.assertIn("power cut", read(self.log, "r"))

    def test_clean_unmount_keeps_everything(self):
        self.mount(power_cut=False)
        write(self.m("unsynced"), b"kept")
        os.makedirs(self.m("d"))
        write(self.m("d", "f"), b"kept too")
        self.unmount()
        self.assertEqual(read(self.b("unsynced")), b"kept")
        self.assertEqual(read(self.b("d", "f")), b"kept too")

    def test_owner_mode_and_truncate(self):
        os.chmod(self.backing, 0o777)
        self.mount()
        # A file made by an unprivileged user keeps its owner and mode through the cut.
        subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/sh", "-c",
                        f"umask 077; printf owned > {self.m('owned')}; sync {self.m('owned')}"],
                       check=True, cwd="/")
        write(self.m("shrunk"), b"0123456789", sync=True)
        fsync_dir(self.mnt)
        os.truncate(self.m("shrunk"), 3)  # not synced: the cut restores 10 bytes
        self.unmount()
        st = os.stat(self.b("owned"))
        self.assertEqual(st.st_uid, 65534)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(read(self.b("owned")), b"owned")
        self.assertEqual(read(self.b("shrunk")), b"0123456789")

    def sqlite_rows(self, path):
        db = sqlite3.connect(path)
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            return [r[0] for r in db.execute("SELECT v FROM t ORDER BY v")]
        finally:
            db.close()

    def test_sqlite_loses_only_what_it_did_not_sync(self):
        self.mount()
        # The writer is killed with SIGKILL, then the power is cut: no close, no checkpoint.
        script = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE t (v INTEGER)")
for i in range(50):
    db.execute("INSERT INTO t VALUES (?)", (i,))
db.execute("PRAGMA synchronous=OFF")  # committed, never fsynced
for i in range(50, 80):
    db.execute("INSERT INTO t VALUES (?)", (i,))
print(len(db.execute("SELECT v FROM t").fetchall()), flush=True)
time.sleep(60)
"""
        with subprocess.Popen(["/usr/bin/python3", "-c", script, self.m("q.db")], stdout=subprocess.PIPE,
                              text=True) as child:
            try:
                self.assertEqual(child.stdout.readline().strip(), "80")
            finally:
                child.kill()
        self.unmount()
        rows = self.sqlite_rows(self.b("q.db"))
        self.assertEqual(rows[:50], list(range(50)))
        self.assertEqual(len(rows), 50, "rows committed without fsync survived the power cut")


if __name__ == "__main__":
    unittest.main()
