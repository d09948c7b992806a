"""Outbound bind address ([delivery] bind_address, and a route's own): the lab's Postfix MX logs the
address each connection came from (`connect from ...[ADDR]`). Loopback only: every 127.0.0.0/8
address is this host's."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, submit, wait_for  # noqa: E402

GLOBAL = "127.0.0.77"
ROUTED = "127.0.0.78"


class BindAddressTest(LabTestCase):
    @classmethod
    def configure(cls, extra):
        extra["delivery"]["bind_address"] = GLOBAL
        # wrongname.example.test goes to the TLS host as a next hop, from its own address.
        cls.route_target = "[mx.tls.example.test]:%d" % cls.lab.port
        extra["delivery"]["routes"] = [{"name": "via-tls", "domains": ["wrongname.example.test"],
                                        "next_hop": cls.route_target, "bind_address": ROUTED}]

    def connects_from(self, address):
        return [l for l in self.lab.mx.log().splitlines() if "connect from" in l and "[%s]" % address in l]

    def test_connections_come_from_the_configured_addresses(self):
        self.assertEqual(self.connects_from(GLOBAL), [])
        qid = submit(self.mw, "kim@tls.example.test", "bind-global")
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 60, "delivery")
        self.assertTrue(self.connects_from(GLOBAL), self.lab.mx.log()[-2000:])
        self.assertEqual(self.connects_from(ROUTED), [])
        qid = submit(self.mw, "lee@wrongname.example.test", "bind-routed")
        wait_for(lambda: self.mw.queue_show(qid)["recipients"][0]["state"] == "delivered", 60, "routed delivery")
        self.assertTrue(self.connects_from(ROUTED), self.lab.mx.log()[-2000:])


if __name__ == "__main__":
    unittest.main()
