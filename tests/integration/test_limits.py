"""Every submission limit hit once, with the reply a client sees: over-long command lines, message
size (SIZE= and actual), recipients per message, bad commands per session, total and per-IP
connections, the idle timeout, bare LF/CR in DATA (SMTP smuggling), and command order errors."""
import socket
import time
import unittest

from harness import Mailward, RawClient, TempDir


def connect_from(source_ip, port):
    s = socket.socket()
    s.bind((source_ip, 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    c = RawClient.__new__(RawClient)
    c.sock, c.buf = s, b""
    return c


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.mw = Mailward(cls.tmp.path, tls=False, extra={"submission": {
            "max_message_size": 10000, "max_recipients": 3, "max_bad_commands": 5,
            "command_timeout": "2s"}})
        cls.mw.start()

    @classmethod
    def tearDownClass(cls):
        cls.mw.stop()
        cls.tmp.cleanup()

    def session(self):
        c = RawClient(self.mw.port)
        self.assertEqual(c.read_reply()[0], 220)
        self.assertEqual(c.cmd("EHLO limits.example.org")[0], 250)
        return c

    def test_line_too_long(self):
        c = self.session()
        code, lines = c.cmd("NOOP " + "A" * 1200)
        self.assertEqual(code, 500)
        self.assertIn("5.5.2", lines[0])
        self.assertIn("too long", lines[0])
        self.assertEqual(c.cmd("NOOP")[0], 250)  # the session goes on
        c.close()

    def test_size_parameter_over_limit(self):
        c = self.session()
        code, lines = c.cmd("MAIL FROM:<a@example.org> SIZE=20000")
        self.assertEqual(code, 552)
        self.assertIn("5.3.4", lines[0])
        c.close()

    def test_message_over_limit(self):
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(("Subject: big\r\n\r\n" + ("y" * 70 + "\r\n") * 300 + ".\r\n"))
        code, lines = c.read_reply()
        self.assertEqual(code, 552)
        self.assertIn("5.3.4", lines[0])
        # The transaction is over; a new one works.
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 250)
        c.close()

    def test_too_many_recipients(self):
        c = self.session()
        c.cmd("MAIL FROM:<a@example.org>")
        codes = [c.cmd("RCPT TO:<r%d@example.net>" % i)[0] for i in range(4)]
        self.assertEqual(codes, [250, 250, 250, 452])
        c.close()

    def test_too_many_bad_commands(self):
        c = self.session()
        codes = [c.cmd("FOO%d" % i)[0] for i in range(4)]
        self.assertEqual(codes, [500] * 4)
        code, lines = c.cmd("BAR")
        self.assertEqual(code, 500)
        code, lines = c.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("Too many errors", lines[0])
        self.assertTrue(c.closed_by_peer())

    def test_idle_timeout(self):
        c = self.session()
        t0 = time.time()
        code, lines = c.read_reply()  # we say nothing; the server gives up after command_timeout
        self.assertEqual(code, 421)
        self.assertIn("4.4.2", lines[0])
        self.assertGreater(time.time() - t0, 1.5)
        self.assertTrue(c.closed_by_peer())

    def test_bare_lf_in_data_is_refused(self):
        for smuggle in ["line one\n.\nMAIL FROM:<evil@example.org>\r\n", "a\rb\r\n"]:
            c = self.session()
            c.cmd("MAIL FROM:<a@example.org>")
            c.cmd("RCPT TO:<b@example.net>")
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send("Subject: s\r\n\r\n" + smuggle + ".\r\n")
            code, lines = c.read_reply()
            self.assertEqual(code, 550, (smuggle, lines))
            self.assertIn("5.6.0", lines[0])
            c.close()

    def test_command_order(self):
        c = RawClient(self.mw.port)
        c.read_reply()
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 503)  # before EHLO
        c.cmd("EHLO order.example.org")
        self.assertEqual(c.cmd("RCPT TO:<b@example.net>")[0], 503)   # before MAIL
        c.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(c.cmd("MAIL FROM:<a@example.org>")[0], 503)  # nested
        self.assertEqual(c.cmd("DATA")[0], 554)                         # no recipients
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(c.cmd("VRFY someone")[0], 252)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()


class ConnectionLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.mw = Mailward(cls.tmp.path, tls=False, extra={"submission": {
            "max_connections": 3, "max_connections_per_ip": 2}})
        cls.mw.start()

    @classmethod
    def tearDownClass(cls):
        cls.mw.stop()
        cls.tmp.cleanup()

    def test_per_ip_then_total(self):
        # The harness's readiness probe came from 127.0.0.1: use other addresses, and give the
        # server a moment to release that probe's slot before counting.
        time.sleep(1.0)
        a1 = connect_from("127.0.0.5", self.mw.port)
        self.assertEqual(a1.read_reply()[0], 220)
        a2 = connect_from("127.0.0.5", self.mw.port)
        self.assertEqual(a2.read_reply()[0], 220)
        a3 = connect_from("127.0.0.5", self.mw.port)
        code, lines = a3.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("from your address", lines[0])
        b1 = connect_from("127.0.0.6", self.mw.port)
        self.assertEqual(b1.read_reply()[0], 220)
        # Full: a newcomer closes an idle session of the network holding two more (127.0.0.5).
        c1 = connect_from("127.0.0.7", self.mw.port)
        self.assertEqual(c1.read_reply()[0], 220)
        # Now every network holds one: the next newcomer is refused.
        d1 = connect_from("127.0.0.8", self.mw.port)
        code, lines = d1.read_reply()
        self.assertEqual(code, 421)
        self.assertIn("Too many connections", lines[0])
        for c in (a1, a2, a3, b1, c1, d1):
            c.close()
        # Slots are given back when clients leave.
        deadline = time.time() + 10
        while True:
            c = connect_from("127.0.0.5", self.mw.port)
            code, _ = c.read_reply()
            c.close()
            if code == 220 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(code, 220)


if __name__ == "__main__":
    unittest.main()
