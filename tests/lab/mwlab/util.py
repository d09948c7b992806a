"""Shared helpers of the mailward test lab: errors, subprocesses, free loopback ports and address blocks,
bounded waits and stopping processes by PID.

Only loopback addresses (127.0.0.0/8, ::1) are ever produced or accepted here.
"""
from __future__ import annotations

import ipaddress
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

T = TypeVar("T")

# Ports for lab peers come from below the kernel's ephemeral range (32768-60999 on Debian), so a
# client connection's local port can never take a port a peer is about to bind.
PORT_RANGE = (20000, 32000)


class LabError(RuntimeError):
    """A lab peer failed to start, stop or answer; the message carries the peer's log where there is one."""


def require_loopback(address: str) -> str:
    """Returns address unchanged if it is a loopback address, else raises LabError."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError as e:
        raise LabError(f"not an IP address: {address!r}") from e
    if not ip.is_loopback:
        raise LabError(f"the lab uses loopback addresses only, got {address}")
    return address


def tail(path: Path | str, lines: int = 40) -> str:
    """The last lines of a log file, or a note that it does not exist."""
    p = Path(path)
    if not p.exists():
        return f"({p} does not exist)"
    text = p.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])


def run(cmd: list[str], *, timeout: float = 60, cwd: Optional[Path | str] = None,
        input: Optional[str] = None, what: Optional[str] = None,
        env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Runs cmd, returns the completed process; raises LabError with its output if it fails or times out."""
    label = what or " ".join(cmd[:3])
    try:
        cp = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, text=True,
                            timeout=timeout, env=env)
    except FileNotFoundError as e:
        raise LabError(f"{label}: program not found ({cmd[0]}); run scripts/setup") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{label}: timed out after {timeout}s: {' '.join(cmd)}") from e
    if cp.returncode != 0:
        raise LabError(f"{label} failed (exit {cp.returncode}): {' '.join(cmd)}\n"
                       f"stdout:\n{cp.stdout}\nstderr:\n{cp.stderr}")
    return cp


def _bindable(address: str, port: int, kinds: Iterable[int]) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for kind in kinds:
        s = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address.strip("[]"), port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(addresses: Iterable[str] = ("127.0.0.1",), udp: bool = False) -> int:
    """A random port in PORT_RANGE that is free for TCP (and UDP if udp) on every given loopback address."""
    addrs = [require_loopback(a) for a in addresses]
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        if all(_bindable(a, port, kinds) for a in addrs):
            return port
    raise LabError(f"no free port found on {addrs}")


def pick_block() -> str:
    """A random '127.A.B' prefix (A in 100..254) whose addresses 127.A.B.1-63 nothing listens on yet.

    127.0.x.x is never used: 127.0.0.1 and 127.0.1.1 belong to the host. Two instances picking the same
    block by chance (1 in 40,000) are caught by the port check at start.
    """
    for _ in range(50):
        prefix = f"127.{random.randint(100, 254)}.{random.randint(0, 255)}"
        if _bindable(f"{prefix}.10", 0, [socket.SOCK_STREAM]):
            return prefix
    raise LabError("no free 127.x.y block found")


def wait_until(pred: Callable[[], Optional[T]], timeout: float, what: str,
               interval: float = 0.02, on_timeout: Optional[Callable[[], str]] = None) -> T:
    """Polls pred until it returns a truthy value (returned) or timeout seconds pass (LabError).

    The poll interval grows from `interval` to at most 0.25 s so short waits stay short.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = on_timeout() if on_timeout else ""
            raise LabError(f"timed out after {timeout}s waiting for {what}" + (f"\n{extra}" if extra else ""))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def pid_alive(pid: int) -> bool:
    """True if a process with this PID exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stop_pid(pid: int, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """Sends sig to one PID, waits up to timeout for it to exit, then SIGKILLs it."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def make_traversable(path: Path) -> None:
    """Lets other users (postfix, nobody) traverse path; raises LabError if an ancestor forbids it."""
    path = path.resolve()
    st = path.stat()
    if not st.st_mode & 0o001:
        os.chmod(path, st.st_mode | 0o055)
    for parent in path.parents:
        if not parent.stat().st_mode & 0o001:
            raise LabError(f"{parent} is not searchable by other users; the postfix and nobody users "
                           f"must reach {path}: use a directory under /tmp")


def _die_with_parent() -> None:
    """preexec_fn for peers started as children: their own session (a terminal's Ctrl-C reaches only
    the lab, which then stops them in order) and SIGTERM when the lab process dies (no orphans)."""
    os.setsid()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(cmd: list[str], log_path: Path) -> "subprocess.Popen":
    """Starts a foreground peer (knotd, unbound) as a child writing stdout+stderr to log_path."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
