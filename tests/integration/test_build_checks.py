"""The build checks scripts/test runs (docs/testing.md): scripts/check-deps against small made-up trees
(a missing link to a mailward library or an external one, a header of another target in the same
folder, a cycle, the layer order of docs/design.md), scripts/format --check on files in and out of
the repo's layout, and warnings as errors in the presets and the build these tests run from."""
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECK_DEPS = os.path.join(REPO, "scripts", "check-deps")
FORMAT = os.path.join(REPO, "scripts", "format")

DESIGN = """\
# design

| folder | library | what lives there |
|---|---|---|
| src/common/ | `mw_common`, `mw_io` | basics |
| src/net/ | `mw_net` | the network |
"""

# A clean tree: net links common and includes its header; common's second target (mw_io) links the
# first; a unit test links what it includes.
BASE = {
    "docs/design.md": DESIGN,
    "src/common/CMakeLists.txt": """\
        add_library(mw_common STATIC a.cpp)
        target_link_libraries(mw_common PUBLIC fmt::fmt PRIVATE SQLite::SQLite3)
        add_library(mw_io STATIC io.cpp)
        target_link_libraries(mw_io PUBLIC mw_common)
        """,
    "src/common/a.hpp": '#pragma once\n#include <fmt/format.h>\n',
    "src/common/a.cpp": '#include "common/a.hpp"\n#include <sqlite3.h>\n',
    "src/common/io.hpp": '#pragma once\n#include "common/a.hpp"\n',
    "src/common/io.cpp": '#include "common/io.hpp"\n',
    "src/net/CMakeLists.txt": """\
        add_library(mw_net STATIC b.cpp)  # a comment with mw_other in it
        target_link_libraries(mw_net PUBLIC mw_common PRIVATE mw_io)
        """,
    "src/net/b.hpp": '#pragma once\n#include "common/a.hpp"\n',
    "src/net/b.cpp": '#include "net/b.hpp"\n#include "common/io.hpp"\n#include <fmt/format.h>\n#include <string>\n',
    "tests/CMakeLists.txt": "add_subdirectory(unit/net)\n",
    "tests/unit/net/CMakeLists.txt": "mailward_unit_test(net_test SOURCES b_test.cpp LIBS mw_net)\n",
    "tests/unit/net/b_test.cpp": '#include <gtest/gtest.h>\n#include "net/b.hpp"\n',
}


def build_tree(root, changes):
    files = dict(BASE)
    files.update(changes)
    for rel, text in files.items():
        if text is None:
            continue
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))


def read(path):
    with open(path) as f:
        return f.read()


class CheckDepsTest(unittest.TestCase):
    def run_check(self, changes):
        root = tempfile.mkdtemp(prefix="mw-check-deps-")
        self.addCleanup(shutil.rmtree, root)
        build_tree(root, changes)
        return subprocess.run(["/usr/bin/python3", CHECK_DEPS, "--root", root], capture_output=True, text=True,
                              timeout=60)

    def test_findings(self):
        cases = [
            # (name, changes to the clean tree, the findings expected: each a substring of one line, or with
            # a leading ^ the start of one)
            ("clean tree", {}, []),
            ("mailward library included, not linked",
             {"src/net/CMakeLists.txt": "add_library(mw_net STATIC b.cpp)\ntarget_link_libraries(mw_net PRIVATE mw_io)\n"},
             ["mw_net does not link mw_common: src/net/b.hpp includes \"common/a.hpp\""]),
            ("linked only through another library's PUBLIC links",
             {"src/net/CMakeLists.txt": "add_library(mw_net STATIC b.cpp)\ntarget_link_libraries(mw_net PUBLIC mw_io)\n"},
             ["mw_net does not link mw_common"]),
            ("external header whose library is not linked",
             {"src/net/b.cpp": '#include "net/b.hpp"\n#include "common/io.hpp"\n#include <curl/curl.h>\n'},
             ["mw_net does not link PkgConfig::CURL: src/net/b.cpp includes <curl/curl.h> (libcurl)"]),
            ("external header only in a linked library's PRIVATE links",
             {"src/net/b.cpp": '#include "net/b.hpp"\n#include "common/io.hpp"\n#include <sqlite3.h>\n'},
             ["mw_net does not link SQLite::SQLite3"]),
            ("Asio needs mailward_asio, not just Boost",
             {"src/net/b.cpp": '#include "net/b.hpp"\n#include "common/io.hpp"\n#include <boost/asio/io_context.hpp>\n'},
             ["mw_net does not link mailward_asio"]),
            ("header of another target of the same folder",
             {"src/common/CMakeLists.txt": "add_library(mw_common STATIC a.cpp)\n"
                                           "target_link_libraries(mw_common PUBLIC fmt::fmt PRIVATE SQLite::SQLite3)\n"
                                           "add_library(mw_io STATIC io.cpp)\n"},
             ["mw_io does not link mw_common: src/common/io.hpp includes \"common/a.hpp\""]),
            ("test target through mailward_unit_test",
             {"tests/unit/net/b_test.cpp": '#include <gtest/gtest.h>\n#include "common/io.hpp"\n'},
             ["net_test does not link mw_io: tests/unit/net/b_test.cpp includes \"common/io.hpp\""]),
            ("source listed but missing",
             {"src/net/CMakeLists.txt": "add_library(mw_net STATIC b.cpp gone.cpp)\n"
                                        "target_link_libraries(mw_net PUBLIC mw_common PRIVATE mw_io)\n"},
             ["src/net/gone.cpp: listed in mw_net's sources but missing"]),
            ("source path with ${PROJECT_SOURCE_DIR}",
             {"src/net/CMakeLists.txt": "add_library(mw_net STATIC b.cpp ${PROJECT_SOURCE_DIR}/src/common/gone.cpp)\n"
                                        "target_link_libraries(mw_net PUBLIC mw_common PRIVATE mw_io)\n"},
             ["^src/common/gone.cpp: listed in mw_net's sources but missing"]),
            ("cycle between folders",
             {"src/common/a.cpp": '#include "common/a.hpp"\n#include <sqlite3.h>\n#include "net/b.hpp"\n',
              "src/common/CMakeLists.txt": "add_library(mw_common STATIC a.cpp)\n"
                                           "target_link_libraries(mw_common PUBLIC fmt::fmt PRIVATE SQLite::SQLite3 mw_net)\n"
                                           "add_library(mw_io STATIC io.cpp)\ntarget_link_libraries(mw_io PUBLIC mw_common)\n"},
             ["cycle common -> net -> common", "src/common/ depends on src/net/, which docs/design.md"]),
            ("folder missing from the layer table",
             {"src/extra/CMakeLists.txt": "add_library(mw_extra STATIC e.cpp)\ntarget_link_libraries(mw_extra PUBLIC mw_common)\n",
              "src/extra/e.cpp": '#include "common/a.hpp"\n'},
             ["docs/design.md: src/extra/ is not in the Layout table"]),
            ("layer table in the wrong order",
             {"docs/design.md": DESIGN.replace("| src/common/ | `mw_common`, `mw_io` | basics |\n", "")
                                      + "| src/common/ | `mw_common` | basics |\n"},
             ["src/net/ depends on src/common/, which docs/design.md's Layout table lists after it"]),
        ]
        for name, changes, expected in cases:
            with self.subTest(name):
                p = self.run_check(changes)
                lines = p.stdout.splitlines()
                if not expected:
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    self.assertEqual(lines, [])
                    continue
                self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
                for want in expected:
                    found = any(l.startswith(want[1:]) if want.startswith("^") else want in l for l in lines)
                    self.assertTrue(found, f"{want!r} not in:\n{p.stdout}")
                self.assertEqual(len(lines), len(expected), p.stdout)

    def test_bad_command_line(self):
        for args in (["--bogus"], ["--root", "/nonexistent-mailward-tree"]):
            with self.subTest(args=args):
                p = subprocess.run(["/usr/bin/python3", CHECK_DEPS] + args, capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


class FormatTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mw-format-")
        self.addCleanup(shutil.rmtree, self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def format(self, *args):
        return subprocess.run([FORMAT] + list(args), capture_output=True, text=True, timeout=120)

    def test_check_lists_files_that_differ(self):
        good = self.write("good.cpp", "namespace x {\n\nint f(int a) {\n    if (a > 1) return a;\n    return 0;\n}\n\n}  // namespace x\n")
        bad = self.write("bad.cpp", "namespace x {\nint f(int a){\n  if(a>1) return a;\n  return 0;}\n}\n")
        p = self.format("--check", good)
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        p = self.format("--check", good, bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout.splitlines(), [bad])
        self.assertIn("1 of 2 files differ", p.stderr)
        # Without --check it rewrites, after which the check passes; the good file is untouched.
        before = read(good)
        self.assertEqual(self.format(bad).returncode, 0)
        self.assertEqual(self.format("--check", bad).returncode, 0)
        self.assertEqual(read(good), before)
        self.assertIn("    if (a > 1) return a;", read(bad))

    def test_bad_command_line(self):
        for args in (["--bogus"], ["--check", os.path.join(self.dir, "missing.cpp")]):
            with self.subTest(args=args):
                p = self.format(*args)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)


class WarningsAsErrorsTest(unittest.TestCase):
    def test_presets_turn_it_on(self):
        with open(os.path.join(REPO, "CMakePresets.json")) as f:
            presets = {p["name"]: p for p in json.load(f)["configurePresets"]}
        for name in ("debug", "fuzz"):
            self.assertEqual(presets[name]["cacheVariables"].get("MAILWARD_WERROR"), "ON", name)

    def test_this_build_compiles_with_werror(self):
        # The build these tests run from (MAILWARD_BIN is build/<preset>/src/cli/mailward).
        binary = os.environ.get("MAILWARD_BIN")
        self.assertTrue(binary, "MAILWARD_BIN is not set (run through ctest)")
        build = os.path.dirname(os.path.dirname(os.path.dirname(binary)))
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            self.assertIn("MAILWARD_WERROR:BOOL=ON", f.read())
        with open(os.path.join(build, "compile_commands.json")) as f:
            commands = json.load(f)
        ours = [c for c in commands if c["file"].startswith(os.path.join(REPO, "src") + os.sep)
                or c["file"].startswith(os.path.join(REPO, "tests") + os.sep)]
        self.assertGreater(len(ours), 50)
        for c in ours:
            args = c.get("command", " ".join(c.get("arguments", [])))
            self.assertIn(" -Werror", args, c["file"])
            self.assertIn(" -Wextra", args, c["file"])


if __name__ == "__main__":
    unittest.main()
