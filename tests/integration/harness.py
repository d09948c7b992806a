"""Test harness for integration tests with real peers on loopback.

Starts `mailward serve` with a config written per test into a private temp dir, makes a test CA
and server certificates with the openssl CLI at test time, picks free ports, and stops every
process it started by PID. Used by every tests/integration/test_*.py file.
"""
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import shutil
import sys
import unittest

MAILWARD = os.environ.get("MAILWARD_BIN", "mailward")


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=30.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class TestCA:
    """A throwaway certificate authority and leaf certificates, made with the openssl CLI."""

    def __init__(self, directory):
        self.dir = directory
        self.cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "ca.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=mailward test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"])

    def issue(self, name, sans=None):
        """Returns (cert_path, key_path) for a leaf certificate naming `name` (and sans)."""
        base = os.path.join(self.dir, name)
        key, csr, crt, ext = base + ".key", base + ".csr", base + ".crt", base + ".ext"
        sans = sans or ["DNS:" + name]
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(sans) + "\nextendedKeyUsage=serverAuth\n"
                    "basicConstraints=critical,CA:FALSE\n")
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + name])
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext])
        return crt, key

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx


class Mailward:
    """One `mailward serve` process with its own data dir and ports."""

    HOSTNAME = "relay.example.test"
    PORTAL_HOST = "portal.example.test"

    def __init__(self, tmp, ca=None, extra=None, trusted=None, tls=True):
        self.tmp = tmp
        self.data_dir = os.path.join(tmp, "data")
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.config = os.path.join(tmp, "mailward.toml")
        self.log_path = os.path.join(tmp, "mailward.log")
        self.proc = None
        self.ca = ca
        # The escrow portal on a port of its own (tests run in parallel); its URL's host is the
        # name tests use for the portal (PORTAL_HOST), its certificate from ca when given.
        self.portal_port = free_port()
        self.portal_url = "https://%s:%d" % (self.PORTAL_HOST, self.portal_port)
        self.run_dir = os.path.join(tmp, "run")
        os.makedirs(self.run_dir, exist_ok=True)
        os.chmod(self.run_dir, 0o1777)
        sections = {
            "server": {"hostname": self.HOSTNAME, "data_dir": self.data_dir, "log_level": "debug"},
            "submission": {"listen": ["127.0.0.1:%d" % self.port]},
            "escrow": {"listen": "127.0.0.1:%d" % self.portal_port, "url": self.portal_url},
            # Every peer of the tests listens on loopback (the lab's Postfix on 127.A.B.x, scripted
            # servers on 127.0.0.1): allowed here, refused as a mail loop by default.
            "delivery": {"allow_loopback_mx": True},
            # Each server its own local socket (the default /run/mailward/sendmail.sock is one per
            # machine), in a directory serve can write to even when not started as root.
            "sendmail": {"socket": os.path.join(self.run_dir, "sendmail.sock")},
        }
        if tls:
            sections["submission"]["tls_listen"] = ["127.0.0.1:%d" % self.tls_port]
        if ca is not None:
            crt, key = ca.issue(self.HOSTNAME, ["DNS:" + self.HOSTNAME, "IP:127.0.0.1"])
            sections["submission"]["cert"] = crt
            sections["submission"]["key"] = key
        if trusted is not None:
            sections["submission"]["trusted_networks"] = trusted
        for sec, kv in (extra or {}).items():
            sections.setdefault(sec, {}).update(kv)
        self.portal_listen = str(sections["escrow"]["listen"])
        with open(self.config, "w") as f:
            for sec, kv in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in kv.items():
                    key = k if k.replace("_", "").isalnum() else toml_value(k)  # "a.example" = ...
                    f.write("%s = %s\n" % (key, toml_value(v)))

    def start(self, timeout=60, env=None):
        """env: variables added to this run's environment."""
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([MAILWARD, "serve", "-c", self.config], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, **env) if env else None)
        # Ready when the submission port and the portal's both listen (the portal starts last;
        # a test that connects to it at once must not race its bind).
        phost, _, pport = self.portal_listen.rpartition(":")
        if not (wait_port("127.0.0.1", self.port, timeout, self.proc) and
                wait_port(phost.strip("[]"), int(pport), timeout, self.proc)):
            self.stop()
            raise RuntimeError("mailward did not start:\n" + self.log())
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """Stops the server by PID; a sanitizer report in its log fails the test that stops it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.logf.close()
        rc = None if self.proc is None else self.proc.returncode
        self.proc = None
        if os.path.exists(self.log_path) and "Sanitizer" in self.log():
            raise AssertionError("mailward reported a sanitizer error:\n" + self.log()[-6000:])
        return rc

    def kill9(self):
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.logf.close()
            self.proc = None

    def cli(self, *args, stdin=None, check=True):
        p = subprocess.run([MAILWARD] + list(args) + ["-c", self.config], input=stdin, capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("mailward %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    def queue_show(self, qid):
        import json
        return json.loads(self.cli("queue", "show", qid, "--json").stdout)

    def delivery_log(self):
        """The structured delivery log: one dict per attempt line."""
        import json
        path = os.path.join(self.data_dir, "delivery.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]

    def add_user(self, name, password, mode=None):
        args = ["user", "add", name] + (["--mode", mode] if mode else [])
        self.cli(*args, stdin=password + "\n")


LAB_SENDER = "alice@tls.example.test"  # a bounce comes back to the lab's tls.example.test maildir


def submit(mw, rcpt, marker, sender=LAB_SENDER, params=(), tls=False):
    """Submits one message with marker in its subject and body from a trusted-network client
    (optionally after STARTTLS, for REQUIRETLS); returns its queue id."""
    with smtplib.SMTP("127.0.0.1", mw.port, timeout=60) as s:
        s.ehlo("app.example.org")
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the submission port's self-signed certificate
            s.starttls(context=ctx)
            s.ehlo("app.example.org")
        code, resp = s.mail(sender, list(params))
        assert code == 250, (code, resp)
        code, resp = s.rcpt(rcpt)
        assert code == 250, (code, resp)
        author = sender or "app@app.example.org"  # a null sender's message still has an author
        code, resp = s.data(("Subject: %s\r\nFrom: <%s>\r\nTo: <%s>\r\n\r\nbody %s\r\n" %
                             (marker, author, rcpt, marker)).encode())
        assert code == 250, (code, resp)
    return resp.decode().split("queued as ")[1].split()[0]


def with_marker(messages, marker):
    """The messages (bytes) that hold marker."""
    return [m for m in messages if marker.encode() in m]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table ([[delivery.routes]] as routes = [{...}, ...])
        return "{" + ", ".join("%s = %s" % (k, toml_value(x)) for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class TempDir:
    """A temp dir under /tmp readable by other users (peers like Postfix run as their own user)."""

    def __init__(self, prefix="mailward-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(self.path, 0o755)

    def cleanup(self):
        if os.environ.get("MAILWARD_KEEP_TMP"):
            return
        shutil.rmtree(self.path, ignore_errors=True)


class RawClient:
    """A byte-level SMTP client for protocol tests (pipelining, injection, limits)."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_reply(self):
        """Reads one complete (possibly multi-line) reply; returns (code, text_lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed; got %r" % (self.buf,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            line = line.decode("utf-8", "replace")
            lines.append(line[4:])
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.read_reply()

    def starttls(self, ctx, server_hostname):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        self.buf = b""

    def closed_by_peer(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_for(predicate, timeout=60, what="condition"):
    """Polls predicate until it returns something true (returned) or timeout seconds pass."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class LabTestCase(unittest.TestCase):
    """A test class sharing one standard lab (tests/lab: knot DNS with the test zones, Postfix MX
    listeners, the test CA) and one mailward delivering into it. A subclass changes mailward's
    config in configure(extra) (sections as dicts, from the lab's [dns] and [delivery]); with
    portal_cert the portal's certificate comes from the lab's CA (clients verify it with ca_file)."""

    portal_cert = False
    submission_tls = False

    @classmethod
    def configure(cls, extra):
        pass

    @classmethod
    def setUpClass(cls):
        lab_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lab")
        if lab_dir not in sys.path:
            sys.path.insert(0, lab_dir)
        from mwlab.scenario import standard_lab
        cls.tmp = TempDir()
        try:
            cls.lab = standard_lab(os.path.join(cls.tmp.path, "lab"))
        except BaseException:
            cls.tmp.cleanup()
            raise
        try:
            extra = cls.lab.mailward_config()
            if cls.portal_cert:
                crt, key = cls.lab.ca.issue(Mailward.PORTAL_HOST)
                extra["escrow"] = {"cert": str(crt), "key": str(key)}  # listen, url: the harness's
            cls.configure(extra)
            mw_dir = os.path.join(cls.tmp.path, "mw")
            os.makedirs(mw_dir)
            cls.mw = Mailward(mw_dir, tls=cls.submission_tls, extra=extra).start()
            cls.ca_file = str(cls.lab.ca.cert_path)
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
