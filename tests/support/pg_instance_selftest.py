"""Self-test of tests/support/pg_instance.py: the tests' PostgreSQL runs with fsync and
full_page_writes OFF (as the tests assume), PgInstance(durable=True) with both ON and
synchronous_commit on (what bench/ relies on to measure durability), extra settings are applied,
and a setting that is not a plain name=value is refused when the instance is made.

Run: cd tests/support && python3 -m unittest -v pg_instance_selftest   (CTest: postgres.pg_instance_selftest)
"""
import subprocess
import unittest

from pg_instance import PgInstance, pg_bin

SHOW = ("SELECT current_setting('fsync'), current_setting('full_page_writes'),"
        " current_setting('synchronous_commit'), current_setting('shared_buffers')")


def settings_of(pg):
    cp = subprocess.run([pg_bin("psql"), "-X", "-A", "-t", "-F", "|", "-d", pg.dsn, "-c", SHOW],
                        capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        raise AssertionError("psql: " + cp.stderr)
    return tuple(cp.stdout.strip().split("|"))


class PgInstanceTest(unittest.TestCase):
    def check(self, pg, want):
        pg.start()
        try:
            self.assertEqual(settings_of(pg), want)
        finally:
            pg.stop()
        self.assertIsNone(pg.pid)

    def test_settings(self):
        cases = [
            ("default: fast, not crash-safe", PgInstance(), ("off", "off", "on", "32MB")),
            ("durable: as shipped", PgInstance(durable=True), ("on", "on", "on", "32MB")),
            ("durable with a setting", PgInstance(durable=True, settings={"shared_buffers": "64MB"}),
             ("on", "on", "on", "64MB")),
        ]
        for name, pg, want in cases:
            with self.subTest(name):
                self.check(pg, want)

    def test_bad_setting_refused(self):
        for settings in ({"fsync": "off -c port=1"}, {"shared buffers": "1"}, {"a": "b;c"}):
            with self.subTest(settings=settings):
                with self.assertRaises(ValueError):
                    PgInstance(durable=True, settings=settings)


if __name__ == "__main__":
    unittest.main()
