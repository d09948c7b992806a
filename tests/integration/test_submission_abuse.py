"""Submission abuse limits with real sockets on loopback (issue 11, items 9, 11, 12, 13):
- connection floods: ten IPv4 addresses with 100 idle connections each, and 1000 connections from
  one client network, do not keep a newcomer out (stress eviction; per-network counting);
- junk commands before AUTH, the session time limit and the stress timeout close idle sessions;
- AUTH failures are throttled per client network and one network's Argon2id work does not delay
  another's;
- sender binding at MAIL (553 5.7.1) and on From: at the end of DATA (550 5.7.1), the user CLI;
- the hop count (554 5.4.6); user names with CR/LF do not forge log lines.
Clients bind to 127.0.0.x. The IPv6 /64 test runs in a network namespace of its own (made with
`ip netns`, removed at the end), whose loopback interface gets addresses in two /64s; the
per-network arithmetic is also covered by tests/unit/server/client_net_test.cpp."""
import base64
import ctypes
import json
import os
import resource
import socket
import ssl
import subprocess
import time
import unittest

from harness import Mailward, RawClient, TempDir, wait_port

PASSWORD = "s3cret-passw0rd"
NOBODY_TRUSTED = ["127.255.255.254/32"]  # 127.0.0.0/8 is trusted by default; here nobody we use is


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Client(RawClient):
    """RawClient from a chosen loopback source address."""

    def __init__(self, port, src, timeout=30, dst="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET6 if ":" in src else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((src, 0))
        self.sock.connect((dst, port))
        self.buf = b""

    def tls_login(self, user, password):
        self.assertcode(self.read_reply(), 220)
        self.assertcode(self.cmd("EHLO client.example"), 250)
        self.assertcode(self.cmd("STARTTLS"), 220)
        self.starttls(client_ctx(), None)
        self.assertcode(self.cmd("EHLO client.example"), 250)
        if user is None:
            return None
        return self.cmd("AUTH PLAIN " + plain(user, password))

    @staticmethod
    def assertcode(reply, code):
        if reply[0] != code:
            raise AssertionError("expected %d, got %r" % (code, reply))


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


class SocketsCase(unittest.TestCase):
    """A mailward per test (self.mw, started by the test) and the client sockets it opened."""

    def setUp(self):
        self.tmp = TempDir()
        self.mw = None
        self.socks = []

    def tearDown(self):
        for c in self.socks:
            c.close()
        if self.mw:
            self.mw.stop()
        self.tmp.cleanup()


def need_fds(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n


class FloodTest(SocketsCase):
    def start(self, **submission):
        self.mw = Mailward(self.tmp.path, trusted=NOBODY_TRUSTED, extra={"submission": submission})
        self.mw.start()

    def open_idle(self, src, n, noop=True):
        """n connections from src that got the greeting (and answered one NOOP)."""
        out = []
        for _ in range(n):
            c = Client(self.mw.port, src)
            self.socks.append(c)
            out.append(c)
        for c in out:
            code, lines = c.read_reply()
            self.assertEqual(code, 220, lines)
            if noop:
                c.send("NOOP\r\n")
        if noop:
            for c in out:
                self.assertEqual(c.read_reply()[0], 250)
        return out

    def test_ten_ipv4_addresses_holding_every_slot_do_not_keep_a_newcomer_out(self):
        self.assertTrue(need_fds(4096), "ulimit -n too small for 1000 connections")
        # Defaults: max_connections 1000, 100 per client network. A long stress timeout so that
        # only eviction can make room.
        self.start(stress_command_timeout="5m")
        held = []
        for i in range(10):
            held += self.open_idle("127.0.0.%d" % (2 + i), 100)
        newcomer = Client(self.mw.port, "127.0.0.12")
        self.socks.append(newcomer)
        code, lines = newcomer.read_reply()
        self.assertEqual(code, 220, lines)  # before: 421 Too many connections
        self.assertEqual(newcomer.cmd("EHLO newcomer.example")[0], 250)
        # Exactly one of the idle sessions was closed to make room, with a 421 that says why.
        evicted = []
        for c in held:
            c.sock.settimeout(0.05)
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            evicted.append(data)
        self.assertEqual(len(evicted), 1, evicted[:3])
        self.assertTrue(evicted[0].startswith(b"421 4.7.0 "), evicted[0])
        self.assertIn(b"Server busy", evicted[0])
        self.assertIn("to make room for 127.0.0.12", self.mw.log())
        # One of those networks cannot push another out in turn: it is refused.
        again = Client(self.mw.port, "127.0.0.2")
        self.socks.append(again)
        code, lines = again.read_reply()
        self.assertEqual(code, 421, lines)

    def test_1000_connections_from_one_network_do_not_keep_a_second_client_out(self):
        self.assertTrue(need_fds(4096), "ulimit -n too small for 1000 connections")
        # 127.0.0.0/24 stands for one IPv6 /64 (see the module docstring).
        self.start(ipv4_prefix=24, stress_command_timeout="5m")
        admitted, refused = 0, 0
        for i in range(1000):
            c = Client(self.mw.port, "127.0.0.%d" % (2 + i % 200))
            self.socks.append(c)
        for c in self.socks:
            code, lines = c.read_reply()
            if code == 220:
                admitted += 1
            else:
                self.assertEqual(code, 421, lines)
                self.assertIn("from your address", lines[0])
                refused += 1
        self.assertEqual(admitted, 100)  # before: 1000 (five per address), the table full
        self.assertEqual(refused, 900)
        second = Client(self.mw.port, "127.0.1.1")
        self.socks.append(second)
        self.assertEqual(second.read_reply()[0], 220)
        self.assertEqual(second.cmd("EHLO second.example")[0], 250)

    def test_idle_sessions_get_the_stress_timeout_when_the_table_is_nearly_full(self):
        self.start(max_connections=50, max_connections_per_ip=10, stress_command_timeout="2s")
        held = []
        for i in range(5):  # 50 of 50: stressed (from 80%, 40 sessions)
            held += self.open_idle("127.0.0.%d" % (2 + i), 10)
        time.sleep(6)  # the stress timeout is 2s; command_timeout is 5 minutes
        closed = []
        for c in held:
            c.sock.settimeout(0.05)
            try:
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            closed.append(data)
        # Idle sessions are closed until the table is below 80% again (a few more may go in the
        # same instant); the rest keep the normal timeout. Before: none closed.
        self.assertGreaterEqual(len(closed), 11, closed[:3])
        self.assertLess(len(closed), 50)
        for data in closed:
            self.assertTrue(data.startswith(b"421 4.4.2 ") and b"timeout exceeded" in data, data)
        self.assertIn("idle under load (stress timeout)", self.mw.log())

    def test_junk_commands_before_auth_close_the_session(self):
        self.start(max_junk_commands=5)
        c = Client(self.mw.port, "127.0.0.2")
        self.socks.append(c)
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.cmd("EHLO junk.example")[0], 250)
        for _ in range(4):
            self.assertEqual(c.cmd("NOOP")[0], 250)
        code, lines = c.cmd("RSET")  # the sixth
        self.assertEqual(code, 421, lines)
        self.assertIn("Too many commands", lines[0])
        self.assertTrue(c.closed_by_peer())

    def test_session_time_limit(self):
        self.start(max_session_time="3s")
        c = Client(self.mw.port, "127.0.0.2")
        self.socks.append(c)
        self.assertEqual(c.read_reply()[0], 220)
        t0 = time.time()
        while time.time() - t0 < 10:
            code, lines = c.cmd("NOOP")  # activity does not extend the session
            if code != 250:
                break
            time.sleep(0.5)
        self.assertEqual(code, 421, lines)
        self.assertIn("session time limit", lines[0])
        self.assertLess(time.time() - t0, 6)


CLONE_NEWNET = 0x40000000
NET6 = "fd00:6464:6464:6464"   # the flooding /64 (the server's address is in it too)
OTHER6 = "fd00:6565:6565:6565::1"  # a client in another /64


class NetNamespace:
    """A network namespace of our own with lo up and the given addresses on it; while entered,
    this process's new sockets (and the processes it starts) live in it. Loopback only: the
    namespace has no other interface."""

    def __init__(self, addresses):
        self.name = "mwtest-%d" % os.getpid()
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.home = None
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self.ip("link", "set", "lo", "up")
            for a in addresses:
                self.ip("-6", "addr", "add", a, "dev", "lo", "nodad")
        except BaseException:
            subprocess.run(["ip", "netns", "del", self.name])
            raise

    def ip(self, *args):
        subprocess.run(["ip", "netns", "exec", self.name, "ip"] + list(args), check=True)

    def _setns(self, fd):
        if self.libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")

    def enter(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            self._setns(fd)
        finally:
            os.close(fd)

    def close(self):
        if self.home is not None:
            self._setns(self.home)
            os.close(self.home)
            self.home = None
        subprocess.run(["ip", "netns", "del", self.name], check=True)


class Ipv6NetworkTest(unittest.TestCase):
    """1000 connections from ten addresses of one IPv6 /64 count as one client network: they get
    max_connections_per_ip (100) slots, and a client from another /64 still gets in. Before, each
    address counted alone: 1000 sessions filled the table and the second client got 421."""

    def setUp(self):
        self.assertTrue(need_fds(4096), "ulimit -n too small for 1000 connections")
        self.ns = NetNamespace([NET6 + "::1/64"] + ["%s::%x/128" % (NET6, 0x100 + i) for i in range(10)]
                               + [OTHER6 + "/64"])
        self.socks = []
        self.mw = None
        self.tmp = TempDir()
        self.ns.enter()

    def tearDown(self):
        for c in self.socks:
            c.close()
        try:
            if self.mw:
                self.mw.stop()
        finally:
            self.ns.close()
            self.tmp.cleanup()

    def test_1000_connections_from_one_ipv6_64_do_not_keep_a_second_client_out(self):
        self.mw = Mailward(self.tmp.path, trusted=NOBODY_TRUSTED,
                           extra={"submission": {"stress_command_timeout": "5m"}})
        # The harness listens on 127.0.0.1 (the namespace's own lo); add the /64's server address.
        port = self.mw.port
        with open(self.mw.config) as f:
            text = f.read()
        text = text.replace('listen = ["127.0.0.1:%d"]' % port,
                            'listen = ["127.0.0.1:%d", "[%s::1]:%d"]' % (port, NET6, port), 1)
        self.assertIn("[%s::1]:%d" % (NET6, port), text)
        with open(self.mw.config, "w") as f:
            f.write(text)
        self.mw.start()
        server = NET6 + "::1"
        # start() waits for the 127.0.0.1 listener; the submission process binds this one too.
        self.assertTrue(wait_port(server, port, 30, self.mw.proc),
                        "no listener on [%s]:%d:\n%s" % (server, port, self.mw.log()[-4000:]))
        admitted, refused = 0, 0
        for i in range(1000):
            try:
                c = Client(port, "%s::%x" % (NET6, 0x100 + i % 10), dst=server)
            except ConnectionRefusedError:
                self.fail("connection %d refused (serve %s):\n%s" % (
                    i, "running" if self.mw.proc and self.mw.proc.poll() is None else "ended",
                    self.mw.log()[-4000:]))
            self.socks.append(c)
        for c in self.socks:
            code, lines = c.read_reply()
            if code == 220:
                admitted += 1
                c.send("NOOP\r\n")
            else:
                self.assertEqual(code, 421, lines)
                self.assertIn("from your address", lines[0])
                refused += 1
        self.assertEqual((admitted, refused), (100, 900))
        second = Client(port, OTHER6, dst=server)
        self.socks.append(second)
        self.assertEqual(second.read_reply()[0], 220)
        self.assertEqual(second.cmd("EHLO second.example")[0], 250)
        self.assertIn(NET6 + "::/64", self.mw.log())


class AuthThrottleTest(SocketsCase):
    def start(self, **submission):
        self.mw = Mailward(self.tmp.path, trusted=NOBODY_TRUSTED, extra={"submission": submission})
        self.mw.add_user("alice@example.org", PASSWORD)
        self.mw.start()

    def client(self, src):
        c = Client(self.mw.port, src)
        self.socks.append(c)
        return c

    def test_failed_logins_throttle_their_network_only(self):
        self.start(max_auth_failures=3, auth_failure_window="10m")
        c = self.client("127.0.0.2")
        self.assertEqual(c.tls_login("alice@example.org", "wrong-one")[0], 535)
        for pw in ["wrong-two", "wrong-three"]:
            self.assertEqual(c.cmd("AUTH PLAIN " + plain("alice@example.org", pw))[0], 535)
        # The fourth attempt, even with the right password, is refused without any Argon2id work.
        code, lines = c.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD))
        self.assertEqual(code, 454, lines)  # before: 235
        self.assertIn("too many failed logins", lines[0])
        other = self.client("127.0.0.2")  # a new connection from the same network is throttled too
        self.assertEqual(other.tls_login("alice@example.org", PASSWORD)[0], 454)
        elsewhere = self.client("127.0.0.3")
        self.assertEqual(elsewhere.tls_login("alice@example.org", PASSWORD)[0], 235)
        self.assertIn("too many failed logins from 127.0.0.2/32", self.mw.log())

    def test_one_networks_failed_logins_do_not_delay_another(self):
        self.start(max_auth_failures=1000)
        attackers = [self.client("127.0.0.2") for _ in range(30)]
        for a in attackers:
            a.tls_login(None, None)
        good = self.client("127.0.0.3")
        good.tls_login(None, None)
        t0 = time.time()
        for a in attackers:
            a.send("AUTH PLAIN " + plain("alice@example.org", "wrong-password") + "\r\n")
        time.sleep(0.2)  # every attempt is queued before the good one
        t1 = time.time()
        code, lines = good.cmd("AUTH PLAIN " + plain("alice@example.org", PASSWORD))
        good_latency = time.time() - t1
        self.assertEqual(code, 235, lines)
        for a in attackers:
            self.assertEqual(a.read_reply()[0], 535)
        attack_time = time.time() - t0
        # Before: one FIFO pool, the good login waited behind all 30 (latency ~ attack_time).
        self.assertLess(good_latency, 0.4 * attack_time, (good_latency, attack_time))


class SenderBindingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        # 127.0.0.1 is a trusted application that may use @app.example only.
        cls.mw = Mailward(cls.tmp.path, trusted=["127.0.0.1/32"],
                          extra={"submission": {"trusted_senders": ["@app.example"]}})
        cls.mw.add_user("alice@example.org", PASSWORD)
        cls.mw.add_user("bob", PASSWORD)
        cls.mw.cli("user", "add", "carol@example.org", "--sender", "@Corp.example", "--sender",
                   "carol@example.org", stdin=PASSWORD + "\n")
        cls.mw.start()

    @classmethod
    def tearDownClass(cls):
        cls.mw.stop()
        cls.tmp.cleanup()

    def login(self, user):
        c = Client(self.mw.port, "127.0.0.5")
        self.addCleanup(c.close)
        self.assertEqual(c.tls_login(user, PASSWORD)[0], 235)
        return c

    def send(self, c, mail_from, header_from):
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % mail_from)[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<rcpt@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        return c.cmd("From: %s\r\nSubject: t\r\n\r\nhello\r\n." % header_from)

    def test_account_without_a_list_may_use_its_login_address_only(self):
        c = self.login("alice@example.org")
        code, lines = c.cmd("MAIL FROM:<bob@example.org>")
        self.assertEqual(code, 553, lines)  # before: 250
        self.assertTrue(lines[0].startswith("5.7.1"), lines)
        self.assertIn("not owned by user alice@example.org", lines[0])
        self.assertEqual(self.send(c, "Alice@Example.org", "Alice <alice@example.org>")[0], 250)
        # The From: header is checked at the end of DATA.
        code, lines = self.send(c, "alice@example.org", "\"Alice\" <mallory@example.org>")
        self.assertEqual(code, 550, lines)  # before: 250
        self.assertTrue(lines[0].startswith("5.7.1"), lines)
        code, lines = self.send(c, "alice@example.org", "alice@example.org, mallory@example.org")
        self.assertEqual(code, 550, lines)
        # The null reverse-path names nobody; the From: still must be bound.
        self.assertEqual(self.send(c, "", "alice@example.org")[0], 250)

    def test_account_whose_login_is_not_an_address_may_send_as_nobody(self):
        c = self.login("bob")
        self.assertEqual(c.cmd("MAIL FROM:<bob@example.org>")[0], 553)

    def test_listed_senders_and_domains(self):
        c = self.login("carol@example.org")
        self.assertEqual(self.send(c, "x@corp.example", "X <x@CORP.example>")[0], 250)
        self.assertEqual(self.send(c, "carol@example.org", "carol@example.org")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<x@sub.corp.example>")[0], 553)
        self.assertEqual(c.cmd("MAIL FROM:<alice@example.org>")[0], 553)

    def test_trusted_network_applications_use_trusted_senders(self):
        c = RawClient(self.mw.port)
        self.addCleanup(c.close)
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.cmd("EHLO app.example")[0], 250)
        code, lines = c.cmd("MAIL FROM:<ceo@example.org>")
        self.assertEqual(code, 553, lines)
        self.assertIn("not owned by this client", lines[0])
        self.assertEqual(self.send(c, "robot@app.example", "robot@app.example")[0], 250)

    def test_hop_count(self):
        c = RawClient(self.mw.port)
        self.addCleanup(c.close)
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.cmd("EHLO app.example")[0], 250)
        for n, expect in [(49, 250), (50, 554)]:  # ours makes 50 or 51; the limit is 50
            self.assertEqual(c.cmd("MAIL FROM:<robot@app.example>")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<rcpt@example.net>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            received = "".join("Received: from hop%d.example by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n" % i
                               for i in range(n))
            code, lines = c.cmd(received + "From: robot@app.example\r\n\r\nReceived: in the body\r\n.")
            self.assertEqual(code, expect, lines)
            if expect == 554:
                self.assertTrue(lines[0].startswith("5.4.6 Too many hops"), lines)

    def test_user_cli_senders_and_tls_optional(self):
        self.mw.cli("user", "add", "dave@example.org", "--allow-tls-optional", stdin=PASSWORD + "\n")
        users = {u["name"]: u for u in json.loads(self.mw.cli("user", "list", "--json").stdout)}
        self.assertEqual(users["carol@example.org"]["senders"], ["@corp.example", "carol@example.org"])
        self.assertFalse(users["carol@example.org"]["allow_tls_optional"])
        self.assertTrue(users["dave@example.org"]["allow_tls_optional"])
        self.assertEqual(users["dave@example.org"]["senders"], [])
        self.mw.cli("user", "set", "dave@example.org", "--sender", "@dave.example", "--no-allow-tls-optional")
        self.mw.cli("user", "set", "dave@example.org", "--sender", "d@other.example")
        users = {u["name"]: u for u in json.loads(self.mw.cli("user", "list", "--json").stdout)}
        self.assertEqual(users["dave@example.org"]["senders"], ["@dave.example", "d@other.example"])
        self.assertFalse(users["dave@example.org"]["allow_tls_optional"])
        text = self.mw.cli("user", "list").stdout
        self.assertIn("senders=@dave.example,d@other.example  tls-optional=no", text)
        self.mw.cli("user", "set", "dave@example.org", "--clear-senders")
        users = {u["name"]: u for u in json.loads(self.mw.cli("user", "list", "--json").stdout)}
        self.assertEqual(users["dave@example.org"]["senders"], [])
        bad = self.mw.cli("user", "set", "dave@example.org", "--sender", "nodomain", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("bad --sender 'nodomain'", bad.stderr)
        missing = self.mw.cli("user", "set", "nobody@example.org", "--sender", "@x.example", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("no user", missing.stderr)
        both = self.mw.cli("user", "set", "dave@example.org", "--allow-tls-optional", "--no-allow-tls-optional",
                           check=False)
        self.assertNotEqual(both.returncode, 0)


class LogForgingTest(unittest.TestCase):
    def test_user_names_with_crlf_do_not_forge_log_lines(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        mw = Mailward(tmp.path, trusted=NOBODY_TRUSTED)
        mw.start()
        self.addCleanup(mw.stop)
        c = Client(mw.port, "127.0.0.2")
        self.addCleanup(c.close)
        forged = "x\r\n[2030-01-01 00:00:00.000] [info] 127.0.0.9: authenticated as 'admin'\x1b[2J"
        self.assertEqual(c.tls_login(forged, "wrong-password")[0], 535)
        # AUTH LOGIN: the user name comes in its own base64 line.
        self.assertEqual(c.cmd("AUTH LOGIN")[0], 334)
        self.assertEqual(c.cmd(base64.b64encode(b"y\nFORGED-LOGIN-LINE").decode())[0], 334)
        self.assertEqual(c.cmd(base64.b64encode(b"wrong-password").decode())[0], 535)
        log = wait_log(mw, "FORGED-LOGIN-LINE")
        for line in log.splitlines():
            self.assertNotIn("authenticated as 'admin'", line.split("authentication failed")[0], line)
            self.assertFalse(line.startswith("FORGED"), line)
            self.assertNotIn("\x1b", line)
        self.assertIn("authentication failed for 'x\\x0d\\x0a[2030-01-01", log)
        self.assertIn("\\x1b[2J'", log)
        self.assertIn("authentication failed for 'y\\x0aFORGED-LOGIN-LINE'", log)


def wait_log(mw, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        log = mw.log()
        if text in log:
            return log
        time.sleep(0.1)
    return mw.log()


if __name__ == "__main__":
    unittest.main()
