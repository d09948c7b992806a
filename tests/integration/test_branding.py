"""Branding and languages end to end ([branding], docs/design.md "Branding and languages"): serve runs
with an organisation's name (with characters HTML must escape), a PNG logo, an accent colour and a
support contact. A message to a domain without STARTTLS is escrowed; the notice at the MX names the
organisation and the sender, links the logo on the portal, gives the support contact and says it never
asks for a password; so does the one-time code mail, sent from the organisation's name. The portal
serves the logo (bytes, Content-Type, cache lifetime, security headers), answers in the language of the
request's Accept-Language (German for "de-DE", English with none, a malformed one, or one we lack),
and in headless Chromium with locale de and en shows the German and English texts with the brand."""
import email
import email.policy
import json
import os
import re
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, Mailward  # noqa: E402
import test_escrow  # noqa: E402  (a module, so its test class is not collected here again)
from test_escrow import PNG, PortalClient, csrf_of  # noqa: E402

BROWSER_DIR = os.path.join(os.path.dirname(__file__), "..", "browser")
ORG = "Acme & Sons <Secure>"
ORG_HTML = "Acme &amp; Sons &lt;Secure&gt;"
SUPPORT = "help@acme.example.test"
COLOR = "#aa3300"
NEVER_EN = "This message never asks for your password."
NEVER_DE = "fragt nie nach Ihrem Passwort"


def parts(raw):
    """(message, text part, html part) of a raw mail."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = html = ""
    for p in msg.walk():
        if p.get_content_type() == "text/plain" and not text:
            text = p.get_content()
        elif p.get_content_type() == "text/html" and not html:
            html = p.get_content()
    return msg, text, html


class BrandingTest(LabTestCase):
    portal_cert = True
    escrow_one = test_escrow.EscrowTest.escrow_one

    @classmethod
    def configure(cls, extra):
        logo = os.path.join(cls.tmp.path, "logo.png")
        with open(logo, "wb") as f:
            f.write(PNG)
        extra["branding"] = {"organization": ORG, "logo_file": logo, "color": COLOR,
                             "support_contact": SUPPORT, "language": "en"}

    def logo_url(self):
        return "https://%s:%d/brand/logo" % (Mailward.PORTAL_HOST, self.mw.portal_port)

    def check_brand_in_mail(self, raw, what):
        msg, text, html = parts(raw)
        self.assertEqual(msg["Content-Language"], "en", what)
        for body in (text, html):
            self.assertIn(NEVER_EN, body, what)
            self.assertIn(SUPPORT, body, what)
        self.assertIn(ORG, text, what)
        self.assertIn(ORG_HTML, html, what)
        self.assertNotIn("<Secure>", html, what)
        self.assertIn('<img src="%s"' % self.logo_url(), html, what)
        self.assertIn('href="mailto:%s"' % SUPPORT, html, what)
        self.assertIn(COLOR, html, what)
        return msg, text, html

    def test_notice_code_mail_and_portal_carry_the_brand(self):
        marker = "BRAND" + uuid.uuid4().hex[:10]
        qid, notice, link = self.escrow_one(marker)
        msg, text, html = self.check_brand_in_mail(notice, "notice")
        self.assertEqual(msg["Subject"], "A secure message is waiting for you")
        self.assertIn("Alice Example", text)  # the sender's display name, from the From header
        self.assertIn("<strong>Alice Example &lt;alice@tls.example.test&gt;</strong>", html)
        self.assertNotIn(marker, text + html)

        c = PortalClient(self.mw, self.ca_file)
        # The logo, as the mails link it: the file's bytes, its type, cacheable, loadable from mail.
        status, headers, body = c.request("GET", "/brand/logo")
        self.assertEqual(status, 200)
        self.assertEqual(body, PNG)
        self.assertEqual(headers["Content-Type"], "image/png")
        self.assertIn("max-age=604800", headers["Cache-Control"])
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertIn("max-age=", headers["Strict-Transport-Security"])
        self.assertEqual(headers["Cross-Origin-Resource-Policy"], "cross-origin")

        # The link's page by Accept-Language: English without one, for a malformed one or one we lack.
        cases = [
            (None, "en", "You have a secure message"),
            ("de-DE,de;q=0.9,en;q=0.8", "de", "Sie haben eine sichere Nachricht"),
            ("en;q=0.2, de;q=0.9", "de", "Sie haben eine sichere Nachricht"),
            ("de;q=0, en;q=0.1", "en", "You have a secure message"),
            ("fr-FR", "en", "You have a secure message"),
            ("de;q=2.5", "en", "You have a secure message"),
        ]
        for header, lang, h1 in cases:
            status, headers, page = c.request("GET", link, headers={"Accept-Language": header} if header else None)
            page = page.decode()
            self.assertEqual(status, 200, header)
            self.assertEqual(headers["Content-Language"], lang, header)
            self.assertIn('<html lang="%s">' % lang, page, header)
            self.assertIn("<h1>%s</h1>" % h1, page, header)
            self.assertIn(ORG_HTML, page, header)
            self.assertIn('<img src="/brand/logo"', page, header)
            self.assertIn(NEVER_DE if lang == "de" else "never asks for your password", page, header)

        # The code mail: from the organisation's name, branded, English ([branding] language).
        n_before = len(self.lab.mx.messages("notls.example.test"))
        status, _, page = c.request("GET", link)
        status, _, page = c.form(link + "/code", {"csrf": csrf_of(page)}, headers={"Accept-Language": "de"})
        self.assertEqual(status, 200, page)
        self.assertIn("Wenn dieser Link gültig ist", page.decode())
        code_mail = self.lab.mx.wait_for_messages("notls.example.test", n_before + 1, timeout=60)[n_before]
        msg, text, html = self.check_brand_in_mail(code_mail, "code mail")
        self.assertEqual(msg["From"].addresses[0].display_name, ORG)
        self.assertEqual(msg["From"].addresses[0].addr_spec, "no-reply@%s" % Mailward.HOSTNAME)
        self.assertRegex(text, r"one-time code is: \d{6}")

    def test_chromium_in_german_and_english(self):
        self.assertTrue(os.path.exists("/usr/bin/chromium"), "scripts/setup installs chromium")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")),
                        "scripts/setup installs playwright-core (npm ci in tests/browser)")
        _, _, link_path = self.escrow_one("BROWSERBRAND" + uuid.uuid4().hex[:8])
        link = "https://%s:%d%s" % (Mailward.PORTAL_HOST, self.mw.portal_port, link_path)
        out = subprocess.run(["node", os.path.join(BROWSER_DIR, "branding_check.mjs"), link, Mailward.PORTAL_HOST,
                              "de-DE", "en-US"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=180)
        self.assertEqual(out.returncode, 0, out.stderr[-4000:])
        results = json.loads(out.stdout)["results"]
        want = {
            "de-DE": ("de", "Sie haben eine sichere Nachricht", "Portal für sichere Nachrichten",
                      ["Code anfordern", "Nachricht öffnen"], NEVER_DE, "Fragen? Wenden Sie sich an"),
            "en-US": ("en", "You have a secure message", "Secure message portal",
                      ["Send me a code", "Open the message"], "never asks for your password", "Questions? Contact"),
        }
        for locale, (lang, heading, portal, buttons, never, support) in want.items():
            r = results[locale]
            self.assertEqual(r["status"], 200, r)
            self.assertEqual(r["contentLanguage"], lang, r)
            self.assertEqual(r["htmlLang"], lang, r)
            self.assertEqual(r["heading"], heading, r)
            self.assertEqual(r["organization"], ORG, r)  # shown as text, not markup
            self.assertEqual(r["portalName"], portal, r)
            self.assertEqual(r["buttons"], buttons, r)
            self.assertIn(never, r["footer"], r)
            self.assertIn(support, r["footer"], r)
            self.assertEqual(r["supportHref"], "mailto:" + SUPPORT, r)
            self.assertEqual(r["headerColor"], "rgb(170, 51, 0)", r)  # #aa3300
            self.assertEqual(r["logoSrc"], "/brand/logo", r)
            self.assertTrue(r["logoLoaded"], r)
            self.assertEqual(r["logoNaturalWidth"], 1, r)  # the 1x1 PNG
            self.assertEqual(r["dialogs"], [], r)


if __name__ == "__main__":
    unittest.main()
