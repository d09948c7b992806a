"""`python3 -m mwlab` (what scripts/lab runs): starts the standard lab, prints the mailward config
snippet and the domain table, waits for Ctrl-C (SIGINT) or SIGTERM, then stops every peer by PID.
With --scenarios [NAME...]: runs the Forced TLS scenarios (mwlab/scenarios.py) against a mailward
binary and prints, per scenario, what mailward did and why; exit 0 only if every check passed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .scenario import standard_lab
from .util import LabError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/lab", description="Run the mailward test lab on loopback.")
    ap.add_argument("--dir", help="work directory (default: a new /tmp/mwlab-XXXX)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (mail, logs) at exit")
    ap.add_argument("--validate", action="store_true",
                    help="also run a validating unbound configured like mailward's resolver")
    ap.add_argument("--scenarios", nargs="*", metavar="NAME",
                    help="run the Forced TLS scenarios (all, or these names or item letters) and exit")
    ap.add_argument("--mailward", default=os.environ.get("MAILWARD_BIN"),
                    help="mailward binary for --scenarios (default: $MAILWARD_BIN, else build/debug)")
    args = ap.parse_args(argv)
    if args.scenarios is not None:
        return run_scenarios(args)

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mwlab-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    lab = resolver = None
    try:
        print(f"mwlab: starting in {work} ...", flush=True)
        lab = standard_lab(work)
        if args.validate:
            from .resolver import ValidatingResolver
            resolver = ValidatingResolver(work, [lab.dns.server], lab.trust_anchor_file())
            resolver.start()
        print("\n# mailward configuration for this lab (add to your TOML file):\n")
        print(lab.mailward_toml())
        print("# libunbound must also be told: local-zone \"test.\" nodefault and do-not-query-localhost: no\n")
        print("# domains (every MX listens on the port above):\n")
        print(lab.describe())
        print(f"\n# DNS     : kdig @127.0.0.1 -p {lab.dns.port} MX tls.example.test   (log {lab.dns.log_path})")
        if resolver:
            print(f"# resolver: kdig @127.0.0.1 -p {resolver.port} +dnssec MX dane.example.test  (validating)")
        print(f"# postfix : log {lab.mx.log_path}")
        print(f"#           mail {lab.mx.mail_dir}/<domain>/new/")
        print(f"# try     : swaks --server {lab.domains['tls.example.test'].mx[0].address} "
              f"--port {lab.port} --to you@tls.example.test --tls")
        print("\nmwlab: running; press Ctrl-C to stop.", flush=True)
        while not stop.wait(1):
            pass
        print("\nmwlab: stopping ...", flush=True)
        return 0
    except LabError as e:
        print(f"mwlab: {e}", file=sys.stderr)
        return 1
    finally:
        if resolver:
            resolver.stop()
        if lab:
            lab.stop()
        if args.keep:
            print(f"mwlab: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_scenarios(args) -> int:
    """Starts the scenario lab, runs the chosen scenarios one by one with a fresh mailward each,
    prints each story as it finishes and a summary table."""
    from .scenarios import SCENARIOS, ForcedTlsLab, run_scenario
    root = Path(__file__).resolve().parents[3]
    binary = args.mailward or str(root / "build" / "debug" / "src" / "cli" / "mailward")
    if not Path(binary).is_file():
        print(f"mwlab: no mailward binary at {binary}; build it or pass --mailward BIN", file=sys.stderr)
        return 1
    unknown = [n for n in args.scenarios if not any(n in (s.item, s.name) for s in SCENARIOS)]
    if unknown:
        print(f"mwlab: no scenario {', '.join(unknown)}; known: "
              f"{', '.join(s.item + ' ' + s.name for s in SCENARIOS)}", file=sys.stderr)
        return 1
    chosen = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios or s.item in args.scenarios]
    sys.path.insert(0, str(root / "tests" / "integration"))
    import harness  # the integration tests' mailward runner (config file, start, CLI, logs)
    harness.MAILWARD = binary

    def start_mailward(workdir: str, extra: dict):
        return harness.Mailward(workdir, tls=False, extra=extra).start()

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mwlab-scenarios-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # Postfix (postfix, nobody) must reach the lab below it
    results = []
    flab = None
    try:
        print(f"mwlab: starting the scenario lab in {work} (mailward: {binary}) ...", flush=True)
        flab = ForcedTlsLab(work / "lab").start()
        print(flab.describe() + "\n", flush=True)
        for sc in chosen:
            run = run_scenario(sc, flab, start_mailward, work / f"{sc.item}-{sc.name}")
            print(run.explanation + "\n", flush=True)
            results.append((sc, run.ok))
    except LabError as e:
        print(f"mwlab: {e}", file=sys.stderr)
        return 1
    finally:
        if flab:
            flab.stop()
        if args.keep:
            print(f"mwlab: kept {work} (mailward data, logs and config per scenario)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("summary:")
    for sc, ok in results:
        print(f"  {'PASS' if ok else 'FAIL'}  ({sc.item}) {sc.name}: {sc.title}")
    return 0 if all(ok for _, ok in results) else 2


if __name__ == "__main__":
    sys.exit(main())
