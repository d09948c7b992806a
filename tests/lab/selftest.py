"""Self-test of the mailward test lab (tests/lab/mwlab): proves each peer really behaves as the
integration tests will assume - knot serves signed and unsigned zones, signed zones validate with the
exported trust anchor (drill and a validating unbound) and bogus ones fail, Postfix listeners offer or
withhold STARTTLS, store mail with a Received header that shows TLS, and force 4xx/5xx replies; the
MITM proxy relays, strips STARTTLS or answers it with 454, and keeps every cleartext byte.

Run: cd tests/lab && python3 -m unittest -v selftest   (CTest: integration.lab_selftest)
"""
from __future__ import annotations

import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from mwlab import dnswire
from mwlab.util import wait_until
from mwlab import (BlackHoleDns, DnsServer, LabError, Mitm, PostfixMx, TestCA, ValidatingResolver,
                   free_port, received_by, received_tls, standard_lab)


def tmpdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mwlab-selftest-", dir="/tmp"))


def sh(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


def kdig(port: int, *args: str) -> str:
    cp = sh("kdig", "@127.0.0.1", "-p", str(port), "+time=2", "+retry=0", *args)
    return cp.stdout


def swaks(address: str, port: int, to: str, *extra: str) -> subprocess.CompletedProcess:
    return sh("swaks", "--server", address, "--port", str(port), "--to", to,
              "--from", "sender@relay.example.test", "--helo", "relay.example.test",
              "--timeout", "10", *extra)


def ehlo_features(address: str, port: int) -> set[str]:
    """The EHLO keywords a listener advertises (over a plain Python socket)."""
    with smtplib.SMTP(address, port, timeout=10) as s:
        s.ehlo("relay.example.test")
        return set(s.esmtp_features)


def tls_handshake(address: str, port: int, ca_file: Path, server_name: str) -> tuple[str, bytes]:
    """STARTTLS with certificate and name verification; returns (protocol, peer certificate DER).
    Raises ssl.SSLCertVerificationError when the certificate does not verify."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with smtplib.SMTP(address, port, timeout=10) as s:
        s._host = server_name  # smtplib verifies against the host it connected to; we name the MX
        s.ehlo("relay.example.test")
        s.starttls(context=ctx)
        return s.sock.version(), s.sock.getpeercert(binary_form=True)


class DnsLabTest(unittest.TestCase):
    """knot serving unsigned, signed and bogus zones; a validating unbound and drill as judges."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tmpdir()
        cls.dns = DnsServer(cls.tmp)
        cls.dns.add_zone("test", [])
        cls.dns.add_zone("plain.example.test", [
            ("@", "MX", "10 mx"), ("mx", "A", "127.0.53.1"), ("mx", "AAAA", "::1"),
            ("_mta-sts", "TXT", '"v=STSv1; id=20240101"'), ("alias", "CNAME", "mx"),
        ])
        cls.tlsa = "3 1 1 " + "ab" * 32
        signed = [("@", "MX", "10 mx"), ("mx", "A", "127.0.53.2"), ("_25._tcp.mx", "TLSA", cls.tlsa)]
        cls.dns.add_zone("signed.example.test", signed, signed=True)
        for kind in ("signature", "expired", "anchor", "stripped"):
            cls.dns.add_zone(f"{kind}.bogus.example.test", signed, bogus=kind)
        cls.dns.add_zone("aaaa.bogus.example.test", signed + [("mx", "AAAA", "::1")], bogus="signature:AAAA")
        cls.dns.start()
        cls.anchor = cls.dns.trust_anchor_file()
        cls.resolver = ValidatingResolver(cls.tmp, [cls.dns.server], cls.anchor)
        cls.resolver.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.resolver.stop()
        cls.dns.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_unsigned_zone_is_served(self) -> None:
        p = self.dns.port
        self.assertEqual(kdig(p, "+short", "MX", "plain.example.test").split(), ["10", "mx.plain.example.test."])
        self.assertEqual(kdig(p, "+short", "A", "mx.plain.example.test").strip(), "127.0.53.1")
        self.assertEqual(kdig(p, "+short", "AAAA", "mx.plain.example.test").strip(), "::1")
        self.assertEqual(kdig(p, "+short", "TXT", "_mta-sts.plain.example.test").strip(), '"v=STSv1; id=20240101"')
        self.assertIn("mx.plain.example.test.", kdig(p, "+short", "A", "alias.plain.example.test"))
        self.assertNotIn("RRSIG", kdig(p, "+dnssec", "MX", "plain.example.test"))

    def test_signed_zone_is_served_with_signatures(self) -> None:
        out = kdig(self.dns.port, "+dnssec", "TLSA", "_25._tcp.mx.signed.example.test")
        self.assertIn("RRSIG\tTLSA 13", out)
        self.assertIn("abab", out.lower())
        self.assertIn("257 3 13", kdig(self.dns.port, "+short", "DNSKEY", "signed.example.test"))

    def test_trust_anchor_file_lists_every_signed_zone(self) -> None:
        text = self.anchor.read_text()
        for zone in ["signed.example.test."] + [f"{k}.bogus.example.test." for k in
                                                 ("signature", "expired", "anchor", "stripped")]:
            self.assertRegex(text, rf"(?m)^{zone}\s+\d+\s+IN\s+DS\s+\d+ 13 2 [0-9a-f]{{64}}$")
        self.assertNotIn("plain.example.test", text)

    def test_signed_zone_validates_with_drill(self) -> None:
        for kind in ("DS", "DNSKEY"):
            cp = sh("drill", "-S", "-k", str(self.dns.trust_anchor_file(kind)), "-p", str(self.dns.port),
                    "@127.0.0.1", "TLSA", "_25._tcp.mx.signed.example.test")
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            self.assertIn("Chase successful", cp.stdout)

    def test_bogus_signature_fails_drill(self) -> None:
        cp = sh("drill", "-S", "-k", str(self.anchor), "-p", str(self.dns.port), "@127.0.0.1",
                "MX", "signature.bogus.example.test")
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("Bogus DNSSEC signature", cp.stdout)

    def test_resolver_secure_insecure_bogus(self) -> None:
        r = self.resolver.query("_25._tcp.mx.signed.example.test", "TLSA")
        self.assertEqual((r.rcode, r.ad, r.texts("TLSA")), ("NOERROR", True, [self.tlsa]))
        r = self.resolver.query("signed.example.test", "MX")
        self.assertEqual((r.rcode, r.ad), ("NOERROR", True))
        r = self.resolver.query("nothere.signed.example.test", "A")
        self.assertEqual((r.rcode, r.ad), ("NXDOMAIN", True))
        r = self.resolver.query("plain.example.test", "MX")
        self.assertEqual((r.rcode, r.ad, r.texts("MX")), ("NOERROR", False, ["10 mx.plain.example.test."]))
        r = self.resolver.query("nothing.example.test", "MX")
        self.assertEqual((r.rcode, r.ad), ("NXDOMAIN", False))
        for kind in ("signature", "expired", "anchor", "stripped"):
            with self.subTest(bogus=kind):
                r = self.resolver.query(f"mx.{kind}.bogus.example.test", "A")
                self.assertEqual(r.rcode, "SERVFAIL", f"{kind} should be bogus")
        self.assertIn("validation failure", self.resolver.log())

    def test_only_the_aaaa_signature_is_broken(self) -> None:
        # "signature:AAAA": the A answer of the same name stays secure, the AAAA answer is bogus.
        a = self.resolver.query("mx.aaaa.bogus.example.test", "A")
        self.assertEqual((a.rcode, a.ad, a.texts("A")), ("NOERROR", True, ["127.0.53.2"]))
        self.assertEqual(self.resolver.query("aaaa.bogus.example.test", "MX").ad, True)
        self.assertEqual(self.resolver.query("mx.aaaa.bogus.example.test", "AAAA").rcode, "SERVFAIL")

    def test_dnskey_anchor_validates_too(self) -> None:
        with ValidatingResolver(self.tmp, [self.dns.server], self.dns.trust_anchor_file("DNSKEY")) as r:
            self.assertTrue(r.query("mx.signed.example.test", "A").ad)
            self.assertEqual(r.query("mx.anchor.bogus.example.test", "A").rcode, "SERVFAIL")

    def test_without_anchor_everything_is_insecure(self) -> None:
        with ValidatingResolver(self.tmp, [self.dns.server], None) as r:
            res = r.query("mx.signed.example.test", "A")
            self.assertEqual((res.rcode, res.ad), ("NOERROR", False))

    def test_set_records_reloads_and_stays_signed(self) -> None:
        z = self.dns.add_zone("change.example.test", [("mx", "A", "127.0.53.3")], signed=True)
        anchor_before = list(z.ds)
        self.dns.set_records("change.example.test", [("mx", "A", "127.0.53.4")])
        self.assertEqual(self.dns.query("mx.change.example.test", "A").texts("A"), ["127.0.53.4"])
        self.assertEqual(self.dns.zones["change.example.test."].ds, anchor_before)
        with ValidatingResolver(self.tmp, [self.dns.server], self.dns.trust_anchor_file()) as r:
            res = r.query("mx.change.example.test", "A")
            self.assertEqual((res.ad, res.texts("A")), (True, ["127.0.53.4"]))

    def test_black_hole_and_frozen_server_time_out(self) -> None:
        with BlackHoleDns() as hole:
            t0 = time.monotonic()
            with self.assertRaises(socket.timeout):
                dnswire.query("127.0.0.1", hole.port, "plain.example.test", "MX", timeout=0.5)
            self.assertLess(time.monotonic() - t0, 2)
        self.dns.freeze()
        try:
            with self.assertRaises(socket.timeout):
                self.dns.query("plain.example.test", "MX", timeout=0.5)
        finally:
            self.dns.thaw()
        self.assertEqual(self.dns.query("plain.example.test", "MX").rcode, "NOERROR")


class PostfixLabTest(unittest.TestCase):
    """One private Postfix with STARTTLS, no-TLS, TLS-1.2-only, TLS-required and ::1 listeners."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tmpdir()
        cls.ca = TestCA(cls.tmp / "ca")
        cls.mx = PostfixMx(cls.tmp)
        cert = cls.ca.issue("mx.tls.example.test")
        cls.tls = cls.mx.add_listener(tls="starttls", cert=cert, hostname="mx.tls.example.test")
        cls.plain = cls.mx.add_listener(tls="none", hostname="mx.notls.example.test")
        cls.tls12 = cls.mx.add_listener(tls="starttls", cert=cert, hostname="mx.tls12.example.test",
                                        tls_protocols=">=TLSv1.2, <=TLSv1.2")
        cls.required = cls.mx.add_listener(tls="required", cert=cert, hostname="mx.req.example.test")
        cls.v6 = cls.mx.add_listener("::1", tls="starttls", cert=cert, hostname="mx.tls.example.test")
        cls.mx.accept_domains(["tls.example.test", "notls.example.test"])
        cls.mx.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.mx.stop()
        leftovers = cls.mx.processes()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert not leftovers, f"postfix processes left: {leftovers}"

    def setUp(self) -> None:
        self.mx.clear_messages()

    def test_starttls_delivery_shows_tls13_in_received(self) -> None:
        cp = swaks(self.tls.address, self.tls.port, "alice@tls.example.test", "--tls",
                   "--header", "Subject: lab tls")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        info = received_tls(msg)
        self.assertIsNotNone(info, msg.decode(errors="replace"))
        self.assertEqual(info.protocol, "TLSv1.3")
        self.assertTrue(info.cipher.startswith("TLS_"))
        self.assertEqual(received_by(msg), "mx.tls.example.test")
        self.assertIn(b"Delivered-To: alice@tls.example.test", msg)
        self.assertIn(b"Subject: lab tls", msg)

    def test_plaintext_delivery_has_no_tls_in_received(self) -> None:
        cp = swaks(self.plain.address, self.plain.port, "bob@notls.example.test")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        [msg] = self.mx.wait_for_messages("notls.example.test", 1, timeout=15)
        self.assertIsNone(received_tls(msg))
        self.assertEqual(received_by(msg), "mx.notls.example.test")

    def test_no_tls_listener_does_not_offer_starttls(self) -> None:
        self.assertNotIn("starttls", ehlo_features(self.plain.address, self.plain.port))
        self.assertIn("starttls", ehlo_features(self.tls.address, self.tls.port))
        cp = swaks(self.plain.address, self.plain.port, "bob@notls.example.test", "--quit-after", "EHLO")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertNotIn("STARTTLS", cp.stdout)
        cp = swaks(self.plain.address, self.plain.port, "bob@notls.example.test", "--tls")
        self.assertNotEqual(cp.returncode, 0)

    def test_certificate_verifies_against_test_ca(self) -> None:
        proto, _der = tls_handshake(self.tls.address, self.tls.port, self.ca.cert_path, "mx.tls.example.test")
        self.assertEqual(proto, "TLSv1.3")
        with self.assertRaises(ssl.SSLCertVerificationError):
            tls_handshake(self.tls.address, self.tls.port, self.ca.cert_path, "other.example.test")

    def test_tls12_only_listener(self) -> None:
        proto, _ = tls_handshake(self.tls12.address, self.tls12.port, self.ca.cert_path, "mx.tls.example.test")
        self.assertEqual(proto, "TLSv1.2")
        cp = swaks(self.tls12.address, self.tls12.port, "carol@tls.example.test", "--tls")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertEqual(received_tls(msg).protocol, "TLSv1.2")

    def test_tls_required_listener_refuses_plaintext_mail(self) -> None:
        with smtplib.SMTP(self.required.address, self.required.port, timeout=10) as s:
            s.ehlo("relay.example.test")
            code, text = s.mail("sender@relay.example.test")
            self.assertEqual(code, 530, text)

    def test_ipv6_listener(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        with smtplib.SMTP("::1", self.v6.port, timeout=10) as s:
            s._host = "mx.tls.example.test"
            s.ehlo("relay.example.test")
            s.starttls(context=ctx)
            s.ehlo("relay.example.test")
            s.sendmail("sender@relay.example.test", ["v6@tls.example.test"], b"Subject: v6\r\n\r\nhi\r\n")
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertIn(b"[IPv6:::1]", msg)
        self.assertEqual(received_tls(msg).protocol, "TLSv1.3")

    def _rcpt(self, listener, rcpt: str) -> tuple[int, bytes]:
        with smtplib.SMTP(listener.address, listener.port, timeout=10) as s:
            s.ehlo("relay.example.test")
            s.mail("sender@relay.example.test")
            return s.rcpt(rcpt)

    def test_forced_450_and_550_replies(self) -> None:
        self.mx.set_recipient_reply("later@tls.example.test", "450 4.2.0 try later")
        self.mx.set_recipient_reply("gone@tls.example.test", "550 5.1.1 no such user")
        self.mx.set_recipient_reply("only-l0@tls.example.test", "451 4.3.0 listener busy", listener=self.tls)
        try:
            for l in (self.tls, self.plain):
                self.assertEqual(self._rcpt(l, "later@tls.example.test")[0], 450)
                code, text = self._rcpt(l, "gone@tls.example.test")
                self.assertEqual(code, 550)
                self.assertIn(b"5.1.1", text)
                self.assertEqual(self._rcpt(l, "fine@tls.example.test")[0], 250)
            self.assertEqual(self._rcpt(self.tls, "only-l0@tls.example.test")[0], 451)
            self.assertEqual(self._rcpt(self.plain, "only-l0@tls.example.test")[0], 250)
            cp = swaks(self.plain.address, self.plain.port, "later@tls.example.test")
            self.assertNotEqual(cp.returncode, 0)
            self.assertIn("450 4.2.0", cp.stdout)
        finally:
            self.mx.set_recipient_reply("later@tls.example.test", None)
            self.mx.set_recipient_reply("gone@tls.example.test", None)
            self.mx.set_recipient_reply("only-l0@tls.example.test", None, listener=self.tls)
        self.assertEqual(self._rcpt(self.tls, "later@tls.example.test")[0], 250)

    def test_unknown_domain_is_refused(self) -> None:
        self.assertEqual(self._rcpt(self.tls, "x@elsewhere.example.test")[0], 554)

    def test_second_instance_runs_alongside_and_stops_clean(self) -> None:
        tmp2 = tmpdir()
        try:
            mx2 = PostfixMx(tmp2)
            self.assertNotEqual(mx2.block, self.mx.block)
            l = mx2.add_listener(tls="none", hostname="mx.two.example.test")
            mx2.accept_domains(["two.example.test"])
            with mx2:
                cp = swaks(l.address, l.port, "x@two.example.test")
                self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
                mx2.wait_for_messages("two.example.test", 1, timeout=15)
                self.assertTrue(mx2.processes())
            self.assertEqual(mx2.processes(), [])
            self.assertTrue(self.mx.processes(), "stopping one instance must not touch another")
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)

    def test_port_clash_is_reported(self) -> None:
        tmp2 = tmpdir()
        try:
            mx2 = PostfixMx(tmp2, port=self.tls.port, block=self.mx.block)
            mx2.add_listener(self.tls.address, tls="none")
            with self.assertRaises(LabError) as cm:
                mx2.start(timeout=10)
            self.assertIn("already in use", str(cm.exception))
            self.assertEqual(mx2.processes(), [])
        finally:
            shutil.rmtree(tmp2, ignore_errors=True)


class StandardLabTest(unittest.TestCase):
    """The standard scenario of scripts/lab: every domain resolves and behaves as documented."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tmpdir()
        cls.lab = standard_lab(cls.tmp)
        try:
            cls.resolver = ValidatingResolver(cls.tmp, [cls.lab.dns.server], cls.lab.trust_anchor_file())
            cls.resolver.start()
        except BaseException:
            cls.lab.stop()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.resolver.stop()
        cls.lab.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_mailward_config(self) -> None:
        c = self.lab.mailward_config()
        self.assertEqual(c["dns"]["servers"], [f"127.0.0.1:{self.lab.dns.port}"])
        self.assertTrue(Path(c["dns"]["trust_anchor_file"]).is_file())
        self.assertTrue(Path(c["delivery"]["ca_file"]).is_file())
        self.assertEqual(c["delivery"]["port"], self.lab.mx.port)
        self.assertIn("[delivery]\nport = ", self.lab.mailward_toml())

    def test_every_domain_resolves_with_expected_security(self) -> None:
        for name, dom in self.lab.domains.items():
            with self.subTest(domain=name):
                r = self.resolver.query(name, "MX")
                if dom.bogus:
                    self.assertEqual(r.rcode, "SERVFAIL")
                    continue
                self.assertEqual(r.rcode, "NOERROR")
                self.assertEqual(r.ad, dom.signed)
                if not dom.mx:
                    self.assertEqual(r.texts("MX"), ["0 ."])
                for h in dom.mx:
                    self.assertIn(f"{h.preference} {h.host}.", r.texts("MX"))
                    qtype = "AAAA" if ":" in h.address else "A"
                    a = self.resolver.query(h.host, qtype)
                    self.assertEqual((a.texts(qtype), a.ad), ([h.address], dom.signed))

    def test_listeners_behave_as_described(self) -> None:
        ca = self.lab.ca.cert_path
        for name, dom in self.lab.domains.items():
            for h in dom.mx:
                with self.subTest(domain=name, host=h.host):
                    feats = ehlo_features(h.address, self.lab.port)
                    if h.tls == "none":
                        self.assertNotIn("starttls", feats)
                    elif h.cert == "ca":
                        self.assertEqual(tls_handshake(h.address, self.lab.port, ca, h.host)[0], "TLSv1.3")
                    else:
                        self.assertIn("starttls", feats)
                        with self.assertRaises(ssl.SSLCertVerificationError):
                            tls_handshake(h.address, self.lab.port, ca, h.host)

    def test_dane_tlsa_matches_only_where_it_should(self) -> None:
        for name, matches in (("dane.example.test", True), ("danebad.example.test", False)):
            with self.subTest(domain=name):
                h = self.lab.domains[name].mx[0]
                _, der = tls_handshake(h.address, self.lab.port, self.lab.ca.cert_path, h.host)
                pem = self.tmp / f"{name}.pem"
                pem.write_text(ssl.DER_cert_to_PEM_cert(der))
                served = f"3 1 1 {TestCA.spki_sha256(pem)}"
                for port in (25, self.lab.port):
                    r = self.resolver.query(f"_{port}._tcp.{h.host}", "TLSA")
                    self.assertTrue(r.ad)
                    self.assertEqual(served in r.texts("TLSA"), matches, r.texts("TLSA"))

    def test_mail_to_each_domain_lands_in_its_maildir(self) -> None:
        for name in ("tls.example.test", "mixed.example.test"):
            h = self.lab.domains[name].mx[0]
            cp = swaks(h.address, self.lab.port, f"someone@{name}", "--tls")
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            [msg] = self.lab.mx.wait_for_messages(name, 1, timeout=15)
            self.assertEqual(received_tls(msg).protocol, "TLSv1.3")
            self.assertEqual(received_by(msg), h.host)


class MitmLabTest(unittest.TestCase):
    """The attacker in the middle between a client (smtplib, swaks, raw sockets) and a Postfix
    listener with STARTTLS: passthrough relays TLS untouched, strip hides STARTTLS and refuses it
    with 502, reply454 refuses it with 454; the cleartext the client sent is kept."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tmpdir()
        cls.ca = TestCA(cls.tmp / "ca")
        cls.mx = PostfixMx(cls.tmp)
        cls.up = cls.mx.add_listener(tls="starttls", cert=cls.ca.issue("mx.tls.example.test"),
                                     hostname="mx.tls.example.test", name="up")
        cls.mx.accept_domains(["tls.example.test"])
        cls.mx.start()
        cls.addr = cls.mx.address(40)
        cls.mitm = Mitm((cls.addr, cls.mx.port), (cls.up.address, cls.up.port)).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.mitm.stop()
        cls.mx.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self) -> None:
        self.mx.clear_messages()
        self.mitm.set_mode("passthrough")
        self.first = self.mitm.connections
        self.sessions_before = len(self._sessions())

    def send(self, marker: str, tls: bool) -> None:
        with smtplib.SMTP(self.addr, self.mx.port, timeout=10) as s:
            s._host = "mx.tls.example.test"
            s.ehlo("relay.example.test")
            if tls:
                s.starttls(context=ssl.create_default_context(cafile=str(self.ca.cert_path)))
                s.ehlo("relay.example.test")
            s.sendmail("sender@relay.example.test", ["m@tls.example.test"],
                       f"Subject: {marker}\r\n\r\nbody {marker}\r\n".encode())

    def cleartext(self) -> bytes:
        return self.mitm.cleartext_from_client(self.first)

    def _sessions(self) -> list[str]:
        return [l for l in self.mx.log().splitlines() if "/up/smtpd[" in l and "disconnect from" in l]

    def upstream_sessions(self) -> list[str]:
        """Postfix's disconnect lines of the upstream listener (what reached the real server) for
        the sessions of this test; waits for at least one."""
        return wait_until(lambda: self._sessions()[self.sessions_before:], 10, "postfix disconnect lines")

    def test_passthrough_relays_tls_and_keeps_only_cleartext(self) -> None:
        self.send("mitm-secret-tls", tls=True)
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertEqual(received_tls(msg).protocol, "TLSv1.3")
        self.assertIn(b"mitm-secret-tls", msg)
        self.assertEqual(self.mitm.connections, self.first + 1)
        text = self.cleartext()
        self.assertIn(b"ehlo relay.example.test\r\n", text)
        self.assertTrue(text.endswith(b"STARTTLS\r\n"), text)  # nothing readable after it
        self.assertNotIn(b"mitm-secret-tls", text)
        self.assertIn("STARTTLS accepted by the server", self.mitm.log())

    def test_passthrough_plaintext_is_recorded(self) -> None:
        # The proof that the recording works: the same body sent without TLS is in the cleartext.
        self.send("mitm-secret-plain", tls=False)
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertIsNone(received_tls(msg))
        self.assertIn(b"body mitm-secret-plain\r\n", self.cleartext())

    def test_strip_hides_starttls_and_refuses_it_with_502(self) -> None:
        self.mitm.set_mode("strip")
        c = RawLine(self.addr, self.mx.port)
        self.assertEqual(c.reply()[0], 220)
        code, lines = c.cmd("EHLO relay.example.test")
        self.assertEqual(code, 250)
        self.assertIn("XXXXXXXA", lines)
        self.assertNotIn("STARTTLS", " ".join(lines).upper())
        self.assertEqual(c.cmd("STARTTLS"), (502, ["5.5.1 Unrecognized command"]))
        self.assertEqual(c.cmd("NOOP")[0], 250)  # the session goes on in the clear
        c.cmd("QUIT")
        c.close()
        sessions = self.upstream_sessions()
        self.assertNotIn("starttls", sessions[-1])  # the real server never saw STARTTLS
        self.assertIn("stripped STARTTLS from the EHLO reply", self.mitm.log())
        with smtplib.SMTP(self.addr, self.mx.port, timeout=10) as s:
            s.ehlo("relay.example.test")
            self.assertFalse(s.has_extn("starttls"))

    def test_strip_defeats_swaks_tls_and_plaintext_is_seen(self) -> None:
        self.mitm.set_mode("strip")
        cp = swaks(self.addr, self.mx.port, "a@tls.example.test", "--tls", "--body", "strip-secret-1")
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("STARTTLS", cp.stdout + cp.stderr)
        self.assertEqual(self.mx.messages("tls.example.test"), [])
        self.assertNotIn(b"strip-secret-1", self.cleartext())
        # An opportunistic client falls back to plaintext: the attacker reads the body.
        cp = swaks(self.addr, self.mx.port, "a@tls.example.test", "--tls-optional", "--body", "strip-secret-2")
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertIsNone(received_tls(msg))
        self.assertIn(b"strip-secret-2", self.cleartext())

    def test_reply454_refuses_starttls_without_forwarding_it(self) -> None:
        self.mitm.set_mode("reply454")
        with smtplib.SMTP(self.addr, self.mx.port, timeout=10) as s:
            s.ehlo("relay.example.test")
            self.assertTrue(s.has_extn("starttls"))  # still offered...
            code, text = s.docmd("STARTTLS")
            self.assertEqual((code, text), (454, b"4.7.0 TLS not available due to temporary reason"))
        sessions = self.upstream_sessions()
        self.assertNotIn("starttls", sessions[-1])  # ...but the real server never saw it
        cp = swaks(self.addr, self.mx.port, "a@tls.example.test", "--tls")
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("454 4.7.0", cp.stdout)

    def test_injected_reply_keeps_reply_order_when_pipelined(self) -> None:
        self.mitm.set_mode("reply454")
        c = RawLine(self.addr, self.mx.port)
        c.reply()
        c.send("EHLO relay.example.test\r\nSTARTTLS\r\nNOOP\r\n")  # one write
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 454)
        self.assertEqual(c.reply()[0], 250)
        c.close()

    def test_starttls_in_a_message_body_is_relayed_as_content(self) -> None:
        self.mitm.set_mode("strip")
        with smtplib.SMTP(self.addr, self.mx.port, timeout=10) as s:
            s.ehlo("relay.example.test")
            s.sendmail("sender@relay.example.test", ["m@tls.example.test"],
                       b"Subject: body\r\n\r\nSTARTTLS\r\nDATA\r\nbody-marker\r\n")
        [msg] = self.mx.wait_for_messages("tls.example.test", 1, timeout=15)
        self.assertIn(b"\nSTARTTLS\nDATA\nbody-marker\n", msg.replace(b"\r\n", b"\n"))
        self.assertNotIn("answered STARTTLS itself", self.mitm.log().split(f"conn {self.first} ")[-1])

    def test_set_mode_cuts_open_connections_and_counts(self) -> None:
        c = RawLine(self.addr, self.mx.port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(self.mitm.connections, self.first + 1)
        self.mitm.set_mode("strip")
        self.assertTrue(c.closed_by_peer())
        c.close()
        self.assertEqual(self.mitm.connection_log()[-1].mode, "passthrough")
        c = RawLine(self.addr, self.mx.port)
        c.reply()
        self.assertEqual(self.mitm.connection_log()[-1].mode, "strip")
        self.assertEqual(self.mitm.connections, self.first + 2)
        c.close()

    def test_bad_mode_and_non_loopback_are_refused(self) -> None:
        with self.assertRaises(ValueError):
            self.mitm.set_mode("evil")
        with self.assertRaises(LabError):
            Mitm(("192.0.2.1", 25), (self.up.address, self.up.port))
        busy = Mitm((self.addr, self.mx.port), (self.up.address, self.up.port))
        with self.assertRaises(LabError):
            busy.start()

    def test_unreachable_upstream_closes_the_client(self) -> None:
        port = free_port([self.addr])
        with Mitm((self.addr, port), (self.mx.address(41), port), timeout=2) as m:
            c = RawLine(self.addr, port)
            self.assertTrue(c.closed_by_peer())
            c.close()
            self.assertIn("unreachable", m.log())


class RawLine:
    """A minimal line-based SMTP client for the MITM tests."""

    def __init__(self, address: str, port: int):
        self.sock = socket.create_connection((address, port), timeout=10)
        self.buf = b""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def reply(self) -> tuple[int, list[str]]:
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError(f"closed; got {self.buf!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line[4:].decode())
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line: str) -> tuple[int, list[str]]:
        self.send(line + "\r\n")
        return self.reply()

    def closed_by_peer(self, timeout: float = 5) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except ConnectionError:
            return True
        except socket.timeout:
            return False

    def close(self) -> None:
        self.sock.close()


if __name__ == "__main__":
    unittest.main()
