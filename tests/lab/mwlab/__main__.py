"""`python3 -m mwlab` (what scripts/lab runs): starts the standard lab, prints the mailward config
snippet and the domain table, waits for Ctrl-C (SIGINT) or SIGTERM, then stops every peer by PID.
"""
from __future__ import annotations

import argparse
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
    args = ap.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
