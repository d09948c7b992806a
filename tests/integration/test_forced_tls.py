"""Forced TLS end to end: a real `mailward serve` delivering into the lab (knot DNS, Postfix MX) with a
STARTTLS-stripping / 454-injecting MITM in front of some MX hosts. The scenarios are data, defined once
in tests/lab/mwlab/scenarios.py (also run by `scripts/lab --scenarios`); each becomes one test here
that fails with the story of what mailward did and why. Proofs come from the peers, not from mailward:
the MITM's record of every cleartext byte, Postfix's Received header and log, the maildirs."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import Mailward, TempDir  # noqa: E402
from mwlab.scenarios import SCENARIOS, ForcedTlsLab, run_scenario  # noqa: E402


def start_mailward(workdir, extra):
    return Mailward(workdir, tls=False, extra=extra).start()


class ForcedTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.flab = ForcedTlsLab(os.path.join(cls.tmp.path, "lab")).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.flab.stop()
        finally:
            cls.tmp.cleanup()

    def check_scenario(self, sc):
        run = run_scenario(sc, self.flab, start_mailward, os.path.join(self.tmp.path, sc.item + "-" + sc.name))
        self.assertTrue(run.checks, "the scenario checked nothing")
        failed = [c for c in run.checks if not c.ok]
        self.assertEqual(failed, [], "\n" + run.explanation)


def _make_test(sc):
    def test(self):
        self.check_scenario(sc)
    test.__doc__ = "(%s) %s" % (sc.item, sc.title)
    return test


for _sc in SCENARIOS:
    setattr(ForcedTlsTest, "test_%s_%s" % (_sc.item, re.sub(r"\W", "_", _sc.name)), _make_test(_sc))


if __name__ == "__main__":
    unittest.main()
