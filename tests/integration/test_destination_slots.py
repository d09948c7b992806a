"""[delivery] max_per_destination end to end: a scripted SMTP peer on loopback that holds every
transaction open for a while and counts how many run at once. Recipients use an address literal
(user@[127.0.0.1]) so no DNS is involved; [delivery] port points at the scripted peer. With a limit
of 2 and six messages for the one destination, never more than two transactions run at once, two do
(the waiting deliveries are handed the slots, none is starved), and every message is delivered."""
import os
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))

from harness import Mailward, TempDir, free_port, submit, wait_for  # noqa: E402

HOLD = 1.0  # seconds the peer waits before its reply to the end of data


class Counting(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        self.lock = threading.Lock()
        self.active = 0  # transactions between MAIL and the reply to the end of data
        self.peak = 0
        self.delivered = []
        super().__init__(("127.0.0.1", port), CountingHandler)

    def begin(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def end(self, data):
        with self.lock:
            self.active -= 1
            self.delivered.append(data)


class CountingHandler(socketserver.StreamRequestHandler):
    def handle(self):
        srv, w = self.server, self.wfile
        w.write(b"220 counting ESMTP\r\n")
        in_data, in_txn, data = False, False, b""
        for raw in self.rfile:
            line = raw.rstrip(b"\r\n")
            if in_data:
                if line == b".":
                    in_data = False
                    time.sleep(HOLD)
                    in_txn = False
                    srv.end(data)
                    data = b""
                    w.write(b"250 2.0.0 queued\r\n")
                else:
                    data += line + b"\r\n"
                continue
            cmd = line.upper()
            if cmd.startswith(b"EHLO"):
                w.write(b"250-counting\r\n250 8BITMIME\r\n")
            elif cmd.startswith(b"MAIL"):
                if not in_txn:
                    in_txn = True
                    srv.begin()
                w.write(b"250 2.1.0 ok\r\n")
            elif cmd.startswith(b"DATA"):
                in_data = True
                w.write(b"354 go on\r\n")
            elif cmd.startswith(b"RSET"):
                if in_txn:
                    in_txn = False
                    srv.end(b"")
                w.write(b"250 2.0.0 ok\r\n")
            elif cmd.startswith(b"QUIT"):
                w.write(b"221 bye\r\n")
                return
            else:
                w.write(b"250 2.0.0 ok\r\n")
        if in_txn:
            srv.end(b"")


class DestinationSlotsTest(unittest.TestCase):
    def test_max_per_destination_holds_and_hands_over(self):
        tmp = TempDir()
        port = free_port()
        srv = Counting(port)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        # A peer without STARTTLS: the sender mode that allows plaintext keeps this about the slots.
        mw = Mailward(tmp.path, tls=False, extra={
            "delivery": {"port": port, "max_per_destination": 2, "retry_schedule": ["1h"]},
            "policy": {"default_mode": "opportunistic"}})
        try:
            mw.start()
            qids = [submit(mw, "bob@[127.0.0.1]", "slots-%d" % i, sender="alice@[127.0.0.1]") for i in range(6)]
            for qid in qids:
                wait_for(lambda: mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 60,
                         "%s delivered" % qid)
            self.assertEqual(len([d for d in srv.delivered if b"slots-" in d]), 6)
            self.assertEqual(srv.peak, 2, "transactions at once to one destination")
        finally:
            mw.stop()
            srv.shutdown()
            srv.server_close()
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
