"""The man pages stay true to the program and to docs/config.md: every subcommand `mailward --help`
lists (and every subcommand of those, and every option of each) is in mailward(8); every key of
docs/config.md's tables is in mailward.toml(5); the pages render without a groff warning (lintian's
check). Generates the pages with docs/man/mangen.py into a temp dir; needs MAILWARD_BIN (ctest sets
it), runs as any user."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "docs", "man"))

import mangen  # noqa: E402

MAILWARD = os.environ.get("MAILWARD_BIN", "mailward")


def help_of(*args):
    p = subprocess.run([MAILWARD, *args, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p.stdout


def section(text, name):
    """The lines of a CLI11 help section ("Subcommands:", "Options:") up to the next blank line."""
    m = re.search(r"^%s:\n(.*?)(?:\n\n|\Z)" % name, text, re.S | re.M)
    return m.group(1).splitlines() if m else []


def subcommands(*path):
    return [l.split()[0] for l in section(help_of(*path), "Subcommands") if l.startswith("  ") and l.split()]


def long_options(*path):
    opts = []
    for l in section(help_of(*path), "Options"):
        opts += [o for o in re.findall(r"(--[a-z][a-z-]*)", l.split("  ", 2)[1] if l.startswith("  ") else "")]
    return [o for o in opts if o not in ("--help", "--config", "--version")]


def plain(troff):
    """A man page's text with the font escapes and escaped hyphens undone, for searching."""
    return re.sub(r"\\f[BIRP]", "", troff).replace("\\-", "-").replace("\\e", "\\")


class ManPagesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pages = {name: plain(text) for name, text in mangen.render("test").items()}
        cls.raw = mangen.render("test")

    def command_entries(self):
        """{"queue list": entry text} for every command entry (.TP tag) of mailward(8)."""
        entries = {}
        blocks = self.pages["mailward.8"].split("\n.TP\n")[1:]
        for b in blocks:
            tag, _, body = b.partition("\n")
            words = [w for w in tag.split() if re.match(r"^[a-z]+$", w)]
            key = " ".join(words[:2]) if len(words) >= 2 else " ".join(words)
            entries[key] = tag + "\n" + body.split("\n.SH")[0]
        return entries

    def test_every_subcommand_and_option_is_in_mailward_8(self):
        entries = self.command_entries()
        top = subcommands()
        self.assertIn("serve", top)  # the help was read
        missing = []
        for cmd in top:
            subs = subcommands(cmd)
            if not subs:
                if cmd not in entries:
                    missing.append(cmd)
                    continue
                missing += ["%s %s" % (cmd, o) for o in long_options(cmd) if o not in entries[cmd]]
                continue
            for sub in subs:
                key = "%s %s" % (cmd, sub)
                if key not in entries:
                    missing.append(key)
                    continue
                missing += ["%s %s" % (key, o) for o in long_options(cmd, sub) if o not in entries[key]]
        self.assertEqual(sorted(set(missing)), [], "in `mailward --help` but not in docs/man/mailward.8.md")

    def test_every_config_key_is_in_mailward_toml_5(self):
        with open(os.path.join(ROOT, "docs", "config.md")) as f:
            doc = f.read()
        page = self.pages["mailward.toml.5"]
        missing = []
        count = 0
        for sec in re.split(r"^## ", doc, flags=re.M)[1:]:
            title = sec.splitlines()[0]
            if not title.startswith("["):
                continue
            name = title.strip("[]")
            self.assertIn('.SH "[%s]"' % name.upper(), page)
            for key in re.findall(r"^\| `([a-z_0-9]+)` \|", sec, re.M):
                count += 1
                if not re.search(r"^\.TP\n%s\n" % re.escape(key), page.split('.SH "[%s]"' % name.upper())[1], re.M):
                    missing.append("%s.%s" % (name, key))
        self.assertGreater(count, 50)  # the tables were read
        self.assertEqual(missing, [], "keys of docs/config.md missing from mailward.toml(5)")

    def test_sendmail_page_names_its_options(self):
        page = self.pages["mailward-sendmail.1"]
        for opt in ("-t", "-i", "-f ADDR", "-F NAME", "EX_TEMPFAIL"):
            self.assertIn(opt, page)
        # Once `mailward sendmail` exists, every option its --help lists must be on the page.
        if "sendmail" in subcommands():
            out = help_of("sendmail")
            for o in re.findall(r"^\s+(-[A-Za-z])\b", "\n".join(section(out, "Options")), re.M):
                if o != "-h" and o != "-c":
                    self.assertIn(o, page)

    def test_pages_render_without_groff_warnings(self):
        with tempfile.TemporaryDirectory() as d:
            for name, text in self.raw.items():
                path = os.path.join(d, name)
                with open(path, "w") as f:
                    f.write(text)
                env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
                p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
                                   capture_output=True, text=True, env=env, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stderr, "", "%s: groff warnings" % name)
                self.assertIn(".TH", text)


if __name__ == "__main__":
    unittest.main()
