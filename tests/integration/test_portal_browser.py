"""The recipient's journey in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by
playwright-core through tests/browser/portal_flow.mjs. A message with a hostile HTML body is escrowed;
the browser opens the notice's link, asks for a code (this test reads it from the MX and hands it
over), signs in, reads the body (the marker is shown, no script of the body runs, no request leaves the
portal), saves a screenshot of the message page under the test's output, downloads the attachment
byte for byte, replies with a file (the reply reaches the sender's MX) and signs out."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lab"))

from harness import LabTestCase, Mailward  # noqa: E402
import test_escrow  # noqa: E402  (a module, so its test class is not collected here again)

BROWSER_DIR = os.path.join(os.path.dirname(__file__), "..", "browser")
# Screenshots and downloads stay here after the run (the build tree, not the temp dir).
OUT_DIR = os.path.join(os.environ.get("MAILWARD_TEST_OUT", "/tmp/mailward-test-output"), "portal_browser")


class PortalBrowserTest(LabTestCase):
    portal_cert = True  # the same set-up as test_escrow's
    escrow_one = test_escrow.EscrowTest.escrow_one
    code_from_mx = test_escrow.EscrowTest.code_from_mx

    def test_recipient_journey_in_chromium(self):
        self.assertTrue(os.path.exists("/usr/bin/chromium"), "scripts/setup installs chromium")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")),
                        "scripts/setup installs playwright-core (npm ci in tests/browser)")
        marker = "BROWSER" + uuid.uuid4().hex[:10]
        attachment = os.urandom(5000)
        qid, notice, link_path = self.escrow_one(marker, attachment)
        link = "https://%s:%d%s" % (Mailward.PORTAL_HOST, self.mw.portal_port, link_path)
        reply_file = os.path.join(self.tmp.path, "reply-attachment.txt")
        with open(reply_file, "wb") as f:
            f.write(b"reply attachment " + marker.encode())
        shutil.rmtree(OUT_DIR, ignore_errors=True)
        node = subprocess.Popen(
            ["node", os.path.join(BROWSER_DIR, "portal_flow.mjs"), link, Mailward.PORTAL_HOST,
             str(self.mw.portal_port), OUT_DIR, marker, hashlib.sha256(attachment).hexdigest(), reply_file],
            cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            n_before = len(self.lab.mx.messages("notls.example.test"))
            line = node.stdout.readline()
            need = json.loads(line or "{}")
            self.assertEqual(need.get("need"), "code", line or node.stderr.read())
            self.assertEqual(need.get("heading"), "Enter your one-time code", need)
            code = self.code_from_mx(n_before)
            node.stdin.write(json.dumps({"code": code}) + "\n")
            node.stdin.flush()
            out = node.stdout.readline()
            node.wait(timeout=120)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
        err = node.stderr.read()
        for pipe in (node.stdin, node.stdout, node.stderr):
            pipe.close()
        self.assertEqual(node.returncode, 0, err[-4000:])
        r = json.loads(out)["result"]

        self.assertEqual(r["landingHeading"], "You have a secure message")
        self.assertEqual(r["afterCodeHeading"], "Enter your one-time code")
        self.assertTrue(r["bodyHasMarker"], r["bodyText"][:500])
        self.assertEqual(r["dialogs"], [], "a script from the message ran")
        self.assertNotEqual(r["title"], "pwned")
        self.assertNotEqual(r["frameTitle"], "pwned")
        self.assertNotIn("allow-scripts", r["frameSandbox"])
        self.assertNotIn("allow-same-origin", r["frameSandbox"])
        self.assertEqual(r["foreignRequests"], [], "the page loaded something from outside the portal")
        sid = [c for c in r["cookies"] if c["name"] == "__Host-mwsid"]
        self.assertTrue(sid and sid[0]["secure"] and sid[0]["httpOnly"] and sid[0]["sameSite"] == "Strict", r["cookies"])
        self.assertTrue(os.path.getsize(r["screenshot"]) > 1000)
        self.assertEqual(r["downloadName"], "figures.bin")
        self.assertTrue(r["downloadMatches"])
        self.assertEqual(r["replyNotice"], "Your reply was sent.")
        self.assertEqual(r["signedOut"], "Signed out")
        self.assertEqual(r["readAfterLogout"], 401)
        replies = self.lab.mx.wait_for_messages("tls.example.test", 1, timeout=60)
        self.assertTrue(any((marker + "-R").encode() in m for m in replies))
        print("screenshot:", r["screenshot"])


if __name__ == "__main__":
    unittest.main()
