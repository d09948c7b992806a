"""One private Postfix instance as the lab's receiving MX: several smtpd listeners on distinct 127.A.B.x
addresses (and optionally [::1]) sharing one port, each with its own TLS mode, certificate, hostname and
forced replies via master.cf `-o` overrides. Mail for the accepted domains is stored by virtual(8) in one
maildir per domain; the Received header written with smtpd_tls_received_header proves the TLS used.

Never touches /etc/postfix: config, queue and data directories live in the instance dir (under /tmp).
Every process of the instance is found by PID (master.pid and MAIL_CONFIG in /proc/PID/environ).
"""
from __future__ import annotations

import atexit
import email.parser
import email.policy
import os
import pwd
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .util import (LabError, free_port, make_traversable, pick_block, pid_alive, require_loopback, run,
                   stop_pid, tail, wait_until)

TLS_MODES = ("starttls", "none", "required", "wrapper")

_SERVICES = """\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

Cert = tuple[Union[str, Path], Union[str, Path]]


@dataclass
class Listener:
    """One smtpd listener: address:port with its behaviour."""
    address: str
    port: int
    tls: str
    cert: Optional[Cert]
    hostname: str
    name: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


@dataclass
class TlsInfo:
    """What the top Received header says about the TLS of the hop that delivered the message."""
    protocol: str   # "TLSv1.3"
    cipher: str     # "TLS_AES_256_GCM_SHA384"


def received_tls(message: bytes) -> Optional[TlsInfo]:
    """TLS facts from the top (newest) Received header of a stored message; None if it came in clear."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(message, headersonly=True)
    received = msg.get_all("Received") or []
    if not received:
        raise LabError("message has no Received header")
    top = " ".join(str(received[0]).split())
    m = re.search(r"\(using (TLSv[\d.]+) with cipher (\S+)", top)
    return TlsInfo(m.group(1), m.group(2)) if m else None


def received_by(message: bytes) -> Optional[str]:
    """The host name after "by" in the top Received header: which listener (myhostname) took the message."""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(message, headersonly=True)
    received = msg.get_all("Received") or []
    m = re.search(r"\bby (\S+)", " ".join(str(received[0]).split())) if received else None
    return m.group(1) if m else None


class PostfixMx:
    """A private Postfix: listeners on 127.A.B.x:port (block and port unique per instance)."""

    def __init__(self, tmpdir: Path | str, port: Optional[int] = None, block: Optional[str] = None,
                 hostname: str = "mx.lab.example.test"):
        base = Path(tmpdir)
        base.mkdir(parents=True, exist_ok=True)
        make_traversable(base)
        self.block = block or pick_block()
        require_loopback(self.block + ".1")
        self.dir = base / f"postfix-{self.block.replace('.', '-')}"
        self.config_dir = self.dir / "etc"
        self.queue_dir = self.dir / "spool"
        self.data_dir = self.dir / "data"
        self.mail_dir = self.dir / "mail"
        self.log_dir = self.dir / "log"
        self.log_path = self.log_dir / "postfix.log"
        for d in (self.dir, self.config_dir, self.queue_dir, self.data_dir, self.mail_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        os.chown(self.mail_dir, 65534, 65534)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pw.pw_uid, pw.pw_gid)
        self.port = port or free_port([self.block + ".10"])
        self.hostname = hostname
        self.listeners: list[Listener] = []
        self.domains: list[str] = []
        self._replies: dict[str, dict[str, str]] = {"all": {}}
        self._next_host = 10
        self._started = False

    # -- configuration ------------------------------------------------------------------------

    def address(self, n: int) -> str:
        """The instance's address number n: '127.A.B.n'."""
        return f"{self.block}.{n}"

    def add_listener(self, address: Union[str, int, None] = None, tls: str = "starttls",
                     cert: Optional[Cert] = None, hostname: Optional[str] = None,
                     tls_protocols: Optional[str] = None, options: Optional[dict[str, str]] = None,
                     name: Optional[str] = None) -> Listener:
        """Adds an smtpd listener on address (None: the next free 127.A.B.x; int n: 127.A.B.n; or an
        explicit loopback address such as "::1") and this instance's port.

        tls: "starttls" (offered, optional), "none" (not offered), "required" (STARTTLS before MAIL)
        or "wrapper" (implicit TLS on connect). cert: (cert_path, key_path), needed unless tls="none".
        tls_protocols: e.g. ">=TLSv1.2, <=TLSv1.2" to pin the protocol. options: extra `-o` settings.
        Listeners added after start() take effect with reload().
        """
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {TLS_MODES}")
        if tls != "none" and cert is None:
            raise ValueError(f"tls={tls!r} needs cert=(cert_path, key_path)")
        if address is None:
            used = {l.address for l in self.listeners}
            while self.address(self._next_host) in used:
                self._next_host += 1
            address = self.address(self._next_host)
        elif isinstance(address, int):
            address = self.address(address)
        address = require_loopback(address.strip("[]"))
        if any(l.address == address for l in self.listeners):
            raise ValueError(f"{address} already has a listener")
        name = name or f"l{len(self.listeners)}"
        l = Listener(address, self.port, tls, cert, hostname or self.hostname, name, dict(options or {}))
        if tls_protocols:
            l.options["smtpd_tls_protocols"] = tls_protocols
            l.options["smtpd_tls_mandatory_protocols"] = tls_protocols
        self.listeners.append(l)
        self._replies.setdefault(name, {})
        return l

    def add_smarthost_listener(self, users: dict[str, str], cert: Cert, hostname: str,
                               address: Union[str, int, None] = None, tls: str = "starttls",
                               name: Optional[str] = None) -> Listener:
        """A listener that takes mail only from clients that authenticated (SASL PLAIN or LOGIN,
        Cyrus SASL with a sasldb of users: name -> password), and offers AUTH only inside TLS
        (smtpd_tls_auth_only): a smarthost as an organisation runs one. What it accepts goes to
        the maildirs of accept_domains() like any listener's."""
        name = name or f"sasl{len(self.listeners)}"
        # One Cyrus SASL config for the instance: smtpd reads cyrus_sasl_config_path from main.cf
        # only (a -o override is not seen when the SASL library initialises).
        sasl_dir = self.config_dir / "sasl"
        sasl_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(sasl_dir, 0o755)
        db = sasl_dir / "sasldb2"
        for user, password in users.items():
            run(["saslpasswd2", "-f", str(db), "-c", "-p", "-u", hostname, user], what="saslpasswd2",
                input=password)
        pw = pwd.getpwnam("postfix")
        os.chown(db, pw.pw_uid, pw.pw_gid)
        os.chmod(db, 0o600)
        (sasl_dir / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {db}\n")
        self.sasl_dir = sasl_dir
        options = {
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "smtpd_sasl_local_domain": hostname,
            "smtpd_tls_auth_only": "yes",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_sasl_tls_security_options": "noanonymous",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
        }
        return self.add_listener(address, tls=tls, cert=cert, hostname=hostname, options=options, name=name)

    def accept_domains(self, domains: list[str]) -> None:
        """Mail for these domains is accepted and stored, one maildir per domain (any local part)."""
        for d in domains:
            d = d.lower().rstrip(".")
            if d not in self.domains:
                self.domains.append(d)
        if self._started:
            self._write_config()
            self.reload()

    def set_recipient_reply(self, recipient: str, reply: Optional[str],
                            listener: Optional[Listener] = None) -> None:
        """Forces the RCPT TO reply for one address, e.g. "450 4.2.0 try later" or
        "550 5.1.1 no such user" (None removes it), on one listener or all. Takes effect with the next
        SMTP connection (sessions already open keep the old answer)."""
        table = self._replies["all" if listener is None else listener.name]
        if reply is None:
            table.pop(recipient.lower(), None)
        else:
            if not re.fullmatch(r"[45]\d\d( [45]\.\d{1,3}\.\d{1,3})? .+", reply):
                raise ValueError(f"reply must look like '450 4.2.0 text', got {reply!r}")
            table[recipient.lower()] = reply
        if self._started:
            self._write_maps()  # each smtpd serves one client (max_use=1): the next one reads it

    # -- process ------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Writes main.cf/master.cf and starts the instance; LabError with its log if it does not come up."""
        if not self.listeners:
            raise LabError("PostfixMx: add at least one listener before start()")
        for l in self.listeners:
            if not _port_free(l.address, l.port):
                raise LabError(f"{l.endpoint} is already in use")
        self._write_config()
        self._started = True
        atexit.register(self.stop)  # a test that dies on an exception leaves no instance behind
        try:
            cp = run(["script", "-qec", f"postfix -c {self.config_dir} start", "/dev/null"],
                     what="postfix start", timeout=60, env=self._env())
        except LabError as e:
            self.stop()
            raise LabError(f"{e}\npostfix log:\n{tail(self.log_path, 40)}") from None
        try:
            wait_until(self._all_listening, timeout, f"postfix listeners {self.endpoints()}",
                       on_timeout=lambda: f"postfix start said:\n{cp.stdout}\nlog:\n{tail(self.log_path, 60)}")
        except LabError:
            self.stop()
            raise

    def reload(self, timeout: float = 10) -> None:
        """Rewrites the configuration and sends SIGHUP to the master (what `postfix reload` does, minus
        its slow checks); returns once the master has re-read it and every listener listens. Needed
        only for listener or domain changes: reply maps are read by each new smtpd (max_use=1)."""
        master = self.master_pid()
        if not master or not pid_alive(master):
            raise LabError(f"postfix is not running; log:\n{tail(self.log_path, 40)}")
        self._write_config()
        before = self.log().count(" reload -- version")
        os.kill(master, signal.SIGHUP)
        wait_until(lambda: self.log().count(" reload -- version") > before, timeout,
                   "postfix master to reload", on_timeout=lambda: tail(self.log_path))
        wait_until(self._all_listening, timeout, "listeners after reload",
                   on_timeout=lambda: tail(self.log_path))

    def stop(self, timeout: float = 15) -> None:
        """Stops the instance and makes sure every one of its processes is gone (by PID)."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        master = self.master_pid()
        if master and pid_alive(master):
            stopped_ok = True
            try:
                run(["postfix", "-c", str(self.config_dir), "stop"], what="postfix stop",
                    timeout=timeout, env=self._env())
            except LabError:
                stopped_ok = False
            deadline = time.monotonic() + timeout
            while pid_alive(master) and time.monotonic() < deadline:
                time.sleep(0.05)
            if pid_alive(master) or not stopped_ok:
                stop_pid(master, timeout=2, sig=signal.SIGTERM)
        for _ in range(100):
            left = self.processes()
            if not left:
                return
            for pid, _comm in left:
                stop_pid(pid, timeout=2)
        raise LabError(f"postfix processes left after stop: {self.processes()}")

    def master_pid(self) -> Optional[int]:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def processes(self) -> list[tuple[int, str]]:
        """(pid, command) of every process of this instance: environment MAIL_CONFIG=our config dir."""
        needle = f"\0MAIL_CONFIG={self.config_dir}\0".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                env = b"\0" + Path(f"/proc/{entry}/environ").read_bytes() + b"\0"
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if needle in env and pid_alive(int(entry)):
                found.append((int(entry), comm))
        return found

    def endpoints(self) -> list[str]:
        return [l.endpoint for l in self.listeners]

    def __enter__(self) -> "PostfixMx":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what arrived -------------------------------------------------------------------------

    def maildir(self, domain: str) -> Path:
        return self.mail_dir / domain.lower().rstrip(".")

    def messages(self, domain: str) -> list[bytes]:
        """Raw bytes of every message delivered to domain's maildir, oldest first."""
        md = self.maildir(domain)
        files = [p for sub in ("new", "cur") for p in (md / sub).glob("*") if p.is_file()]
        files.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in files]

    def wait_for_messages(self, domain: str, n: int = 1, timeout: float = 20) -> list[bytes]:
        """Waits until domain has at least n messages and returns them all; LabError with the log if not."""
        return wait_until(lambda: (m := self.messages(domain)) and len(m) >= n and m, timeout,
                          f"{n} message(s) for {domain}", on_timeout=lambda: tail(self.log_path, 40))

    def clear_messages(self, domain: Optional[str] = None) -> None:
        """Deletes the stored messages of one domain, or of all."""
        for d in [domain] if domain else self.domains:
            for sub in ("new", "cur", "tmp"):
                for p in (self.maildir(d) / sub).glob("*"):
                    p.unlink()

    def log(self) -> str:
        """The instance's log (maillog_file) so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    received_tls = staticmethod(received_tls)
    received_by = staticmethod(received_by)

    # -- internals ----------------------------------------------------------------------------

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
        env["MAIL_CONFIG"] = str(self.config_dir)
        return env

    def _all_listening(self) -> bool:
        master = self.master_pid()
        if not master or not pid_alive(master):
            if self._started and self.log_path.exists() and "fatal" in self.log():
                raise LabError(f"postfix master is not running; log:\n{tail(self.log_path, 40)}")
            return False
        return all(not _port_free(l.address, l.port) for l in self.listeners)

    def _write_maps(self) -> None:
        for name, table in self._replies.items():
            p = self.config_dir / f"rcpt_{name}"
            tmp = p.with_suffix(".tmp")
            tmp.write_text("".join(f"{k}\t{v}\n" for k, v in sorted(table.items())))
            tmp.replace(p)
        (self.config_dir / "vmailbox").write_text(
            "".join(f"@{d}\t{d}/\n" for d in self.domains))

    def _write_config(self) -> None:
        c = self.config_dir
        v6 = any(":" in l.address for l in self.listeners)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.log_dir,
            "inet_interfaces": "loopback-only",
            "inet_protocols": "all" if v6 else "ipv4",
            "myhostname": self.hostname,
            "mydomain": "lab.example.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8" + (" [::1]/128" if v6 else ""),
            "mynetworks_style": "host",
            "local_recipient_maps": "",
            "local_transport": "error:5.1.1 the lab MX has no local mailboxes",
            "default_transport": "error:5.7.1 the lab MX delivers to its own maildirs only",
            "relay_transport": "error:5.7.1 the lab MX delivers to its own maildirs only",
            "alias_maps": "", "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": "$myhostname ESMTP mailward-lab",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "100",
            "smtpd_hard_error_limit": "200",
            "smtpd_client_connection_count_limit": "0",
            "in_flow_delay": "0",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions": f"check_recipient_access texthash:{c}/rcpt_all, permit",
            "virtual_mailbox_domains": ", ".join(self.domains) or "lab.invalid",
            "virtual_mailbox_base": self.mail_dir,
            "virtual_mailbox_maps": f"texthash:{c}/vmailbox",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "virtual_minimum_uid": "100",
            "smtpd_tls_security_level": "none",
            "smtpd_tls_received_header": "yes",
            "smtpd_tls_loglevel": "1",
            "smtpd_tls_session_cache_database": "",
            "smtpd_tls_ciphers": "medium",
            "delay_warning_time": "0",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "queue_run_delay": "10s",
        }
        if getattr(self, "sasl_dir", None):
            main["cyrus_sasl_config_path"] = str(self.sasl_dir)
        (c / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        lines = [_SERVICES]
        for l in self.listeners:
            # max_use=1: a fresh smtpd per client, so map changes apply to the next connection
            opts = {"myhostname": l.hostname, "syslog_name": f"postfix/{l.name}", "max_use": "1",
                    "smtpd_recipient_restrictions":
                        f"check_recipient_access texthash:{c}/rcpt_{l.name}, "
                        f"check_recipient_access texthash:{c}/rcpt_all, permit"}
            if l.tls == "none":
                opts["smtpd_tls_security_level"] = "none"
            else:
                opts["smtpd_tls_chain_files"] = f"{l.cert[1]}, {l.cert[0]}"
                opts["smtpd_tls_security_level"] = "encrypt" if l.tls == "required" else "may"
                if l.tls == "wrapper":
                    opts["smtpd_tls_wrappermode"] = "yes"
            opts.update(l.options)
            host = f"[{l.address}]" if ":" in l.address else l.address
            args = "".join(f"\n  -o {{{k} = {v}}}" for k, v in opts.items())
            lines.append(f"{host}:{l.port} inet n - n - - smtpd{args}\n")
        (c / "master.cf").write_text("".join(lines))
        self._write_maps()


def _port_free(address: str, port: int) -> bool:
    import socket
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
