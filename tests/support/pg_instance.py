#!/usr/bin/python3
# A private PostgreSQL 15 for the tests: initdb into a fresh temp dir, listening on 127.0.0.1 (a free
# port) and a unix socket in that dir only, trust auth for the role mailward_test, stopped by its PID
# (SIGINT = pg_ctl's "fast" shutdown). fsync and full_page_writes are OFF: the tests that use it claim
# nothing about surviving a machine crash (COMMIT still waits for the server's WAL write).
# PgInstance(durable=True) keeps them ON (fsync, full_page_writes, synchronous_commit = on, as
# shipped): what bench/ needs to measure what durability costs; settings={name: value} adds -c options.
# As root, initdb and the server run as the `postgres` system user (initdb refuses root).
# CLI (CTest fixture): pg_instance.py start STATE_FILE | stop STATE_FILE. start prints the DSN and
# writes STATE_FILE (JSON: dir, pid, port, dsn) and the DSN alone to the file "dsn" beside it (what
# the C++ tests read: MAILWARD_PG_DSN_FILE); stop ends the server and removes its dir and both files.
# Python tests: `from pg_instance import PgInstance; pg = PgInstance(); pg.start(); ... pg.stop()`.
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROLE = "mailward_test"


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found (install postgresql-15: scripts/setup)")
    return found[-1]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgInstance:
    def __init__(self, durable=False, settings=None):
        self.durable = durable
        self.settings = dict(settings or {})
        self._options()  # a bad setting is refused here, before anything starts
        self.dir = None
        self.pid = None
        self.port = None
        self.dsn = None
        self._user = None

    def _run(self, argv, **kw):
        if self._user is not None:
            argv = ["runuser", "-u", self._user, "--"] + argv
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

    def start(self):
        if os.geteuid() == 0:
            self._user = "postgres"
            pw = pwd.getpwnam(self._user)
        self.dir = tempfile.mkdtemp(prefix="mailward-pg-")
        if self._user is not None:
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        data = os.path.join(self.dir, "data")
        try:
            self._run([pg_bin("initdb"), "-D", data, "-U", ROLE, "--auth=trust", "-E", "UTF8", "--locale=C",
                       "--no-sync", "--no-instructions"])
            for _attempt in range(5):
                self.port = free_port()
                opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
                opts += self._options()
                try:
                    self._run([pg_bin("pg_ctl"), "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-t", "30",
                               "-o", opts, "start"])
                    break
                except subprocess.CalledProcessError:
                    continue  # the port was taken meanwhile: another one
            else:
                raise RuntimeError("postgres did not start:\n" + self.log())
            with open(os.path.join(data, "postmaster.pid")) as f:
                self.pid = int(f.readline())
        except Exception:
            self.stop()
            raise
        self.dsn = f"host=127.0.0.1 port={self.port} user={ROLE} dbname=postgres connect_timeout=10"
        return self.dsn

    def _options(self):
        if self.durable:
            base = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
        else:
            base = {"fsync": "off", "full_page_writes": "off"}
        base.update({"max_connections": "100", "shared_buffers": "32MB"})
        base.update(self.settings)
        for k, v in base.items():
            if not k.replace("_", "").isalnum() or not str(v).replace("_", "").replace(".", "").isalnum():
                raise ValueError(f"bad PostgreSQL setting {k}={v!r}")
        return "".join(f" -c {k}={v}" for k, v in base.items())

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)  # fast shutdown
                for _ in range(200):
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def state(self):
        return {"dir": self.dir, "pid": self.pid, "port": self.port, "dsn": self.dsn}

    @classmethod
    def from_state(cls, st):
        pg = cls()
        pg.dir, pg.pid, pg.port, pg.dsn = st["dir"], st["pid"], st["port"], st["dsn"]
        return pg


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: pg_instance.py start|stop STATE_FILE", file=sys.stderr)
        return 2
    state_file = argv[2]
    dsn_file = os.path.join(os.path.dirname(os.path.abspath(state_file)), "dsn")
    if argv[1] == "start":
        if os.path.exists(state_file):  # a previous run that was not cleaned up
            with open(state_file) as f:
                PgInstance.from_state(json.load(f)).stop()
            os.unlink(state_file)
        if os.path.exists(dsn_file):
            os.unlink(dsn_file)
        pg = PgInstance()
        dsn = pg.start()
        os.makedirs(os.path.dirname(os.path.abspath(state_file)), exist_ok=True)
        with open(state_file, "w") as f:
            json.dump(pg.state(), f)
        with open(dsn_file, "w") as f:
            f.write(dsn + "\n")
        print(dsn)
        return 0
    if os.path.exists(dsn_file):
        os.unlink(dsn_file)
    if not os.path.exists(state_file):
        return 0
    with open(state_file) as f:
        PgInstance.from_state(json.load(f)).stop()
    os.unlink(state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
