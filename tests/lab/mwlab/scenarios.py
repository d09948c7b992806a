"""Forced TLS scenarios as data, end to end through the lab: a real `mailward serve` delivers to the
lab's Postfix MX, some domains behind the STARTTLS-stripping MITM (mitm.py). Each scenario is a
sender mode, a recipient domain, optional static policy, and a list of steps: actions (switch the
MITM, send, retry) and expectations (delivered with/without TLS, held, never in cleartext, incident,
log line). tests/integration/test_forced_tls.py asserts every expectation; `scripts/lab --scenarios`
runs the same table and prints what mailward did and why.

    flab = ForcedTlsLab(tmpdir).start()
    run = run_scenario(SCENARIOS[0], flab, start_mailward, workdir)   # start_mailward(dir, extra) -> mw
    [c for c in run.checks if not c.ok]; print(run.explain())
    flab.stop()

The mailward object needs: .port, .cli(*args, check=...), .queue_show(id), .log(), .delivery_log(),
.stop() (tests/integration/harness.py Mailward). Everything here is loopback only.
"""
from __future__ import annotations

import json
import secrets
import smtplib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .mitm import Mitm
from .postfix import received_by, received_tls
from .scenario import StandardLab, standard_lab

SENDER = "alice@tls.example.test"  # a DSN would come back to the lab's tls.example.test maildir
LEVELS = ("none", "may", "encrypt", "verify", "dane")
PENDING = ("queued", "awaiting_escrow", "escrowed")  # escrowed: sealed, only a notice went out

# Domains added to the standard lab for these scenarios: name -> (upstream host number, MITM host number).
# The MX host's A record is the MITM's address; the MITM relays to a Postfix listener with a CA
# certificate naming the MX host (so that mailward can learn the domain at verify).
GUARDED = {"strip.example.test": (30, 40), "firststrip.example.test": (31, 41), "inject.example.test": (32, 42)}
MIXED = "mixedmx.example.test"  # MX 10 without STARTTLS (.33), MX 20 with STARTTLS (.34)
MIXED_HELD = "held@" + MIXED     # the TLS host answers RCPT for this one with 450


class ForcedTlsLab:
    """The standard lab plus the MITM-fronted domains and mixedmx.example.test."""

    def __init__(self, tmpdir: Path | str):
        self.lab: StandardLab = standard_lab(tmpdir, start=False)
        self.mitms: dict[str, Mitm] = {}
        lab, mx = self.lab, self.lab.mx
        for domain, (up_n, mitm_n) in GUARDED.items():
            host = "mx." + domain
            up = mx.add_listener(up_n, tls="starttls", cert=lab.ca.issue(host), hostname=host,
                                 name=domain.split(".")[0])
            self.mitms[domain] = Mitm((mx.address(mitm_n), lab.port), (up.address, up.port))
            lab.dns.add_zone(domain, [("@", "MX", f"10 {host}."), ("mx", "A", mx.address(mitm_n))])
        plain = mx.add_listener(33, tls="none", hostname="mx1." + MIXED, name="mixedmx1")
        tls = mx.add_listener(34, tls="starttls", cert=lab.ca.issue("mx2." + MIXED),
                              hostname="mx2." + MIXED, name="mixedmx2")
        lab.dns.add_zone(MIXED, [("@", "MX", f"10 mx1.{MIXED}."), ("mx1", "A", plain.address),
                                 ("@", "MX", f"20 mx2.{MIXED}."), ("mx2", "A", tls.address)])
        mx.set_recipient_reply(MIXED_HELD, "450 4.2.0 mailbox busy, try later", listener=tls)
        mx.accept_domains(list(GUARDED) + [MIXED])

    def start(self) -> "ForcedTlsLab":
        self.lab.start()
        try:
            for m in self.mitms.values():
                m.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for m in self.mitms.values():
            m.stop()
        self.lab.stop()

    def __enter__(self) -> "ForcedTlsLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def listener(self, name: str):
        return next(l for l in self.lab.mx.listeners if l.name == name)

    def describe(self) -> str:
        rows = [self.lab.describe(), ""]
        for domain, m in self.mitms.items():
            rows.append(f"{domain:26} MX 10 mx.{domain} {m.endpoint} = MITM -> Postfix "
                        f"{m.upstream[0]}:{m.upstream[1]} (STARTTLS, CA certificate)")
        rows.append(f"{MIXED:26} MX 10 mx1 {self.listener('mixedmx1').endpoint} no STARTTLS; "
                    f"MX 20 mx2 {self.listener('mixedmx2').endpoint} STARTTLS (450 for {MIXED_HELD})")
        return "\n".join(rows)


# -- one run ----------------------------------------------------------------------------------

@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Sent:
    qid: str
    marker: str
    rcpt: str


class Run:
    """The state of one scenario run: the lab, mailward, the scenario's MITM, what was sent, the checks."""

    def __init__(self, scenario: "Scenario", flab: ForcedTlsLab, mw):
        self.scenario, self.flab, self.lab, self.mw = scenario, flab, flab.lab, mw
        self.mitm: Optional[Mitm] = flab.mitms.get(scenario.domain)
        self.mitm_since = 0            # MITM connection number of the last mode switch
        self.sent: dict[str, Sent] = {}
        self.checks: list[Check] = []
        self.steps: list[str] = []     # what happened, in order, for people
        self.explanation = ""          # explain() as of the end of the run (mailward still up)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def rcpt_state(self, msg: str) -> dict:
        return self.mw.queue_show(self.sent[msg].qid)["recipients"][0]

    def policy(self) -> dict:
        return json.loads(self.mw.cli("policy", "show", self.scenario.domain, "--json").stdout)

    def arrived(self, msg: str) -> list[bytes]:
        marker = self.sent[msg].marker.encode()
        return [m for m in self.lab.mx.messages(self.scenario.domain) if marker in m]

    def explain(self) -> str:
        """What mailward did and why: the delivery log per message, its log's policy lines, the MITM."""
        sc = self.scenario
        out = [f"== ({sc.item}) {sc.name}: {sc.title}",
               f"   sender mode {sc.mode}, domain {sc.domain}"
               + (f", static policy {sc.static}" if sc.static else "")]
        out += [f"   {s}" for s in self.steps]
        out.append("   what mailward did (delivery log):")
        log = self.mw.delivery_log()
        for name, s in self.sent.items():
            try:
                r = self.mw.queue_show(s.qid)["recipients"][0]
                out.append(f"     {name} {s.qid} <{s.rcpt}>: now {r['state']}, {r['attempts']} attempt(s)"
                           + (f", last error: {r['last_error']}" if r["last_error"] else ""))
            except Exception as e:  # noqa: BLE001 - an explanation must not hide the test's own failure
                out.append(f"     {name} {s.qid}: queue show failed: {e}")
            for l in (x for x in log if x.get("queue_id") == s.qid):
                tls = l.get("tls") or {}
                out.append(f"       {l.get('time', '')[11:19]} {l.get('result')} required={l.get('required_level')}"
                           f" mx={l.get('mx') or '-'} [{l.get('address') or '-'}]"
                           f" tls={tls.get('protocol', 'none')} {l.get('reason') or ''}".rstrip())
                if l.get("level_reasons"):
                    out.append("         why: " + "; ".join(l["level_reasons"]))
        policy_lines = [l for l in self.mw.log().splitlines() if "policy:" in l or "downgrade" in l]
        if policy_lines:
            out.append("   mailward log (policy):")
            out += [f"     {l}" for l in policy_lines[-12:]]
        if self.mitm:
            out.append("   MITM:")
            out += [f"     {l}" for l in self.mitm.log().splitlines()]
        out.append("   checks:")
        out += [f"     {'PASS' if c.ok else 'FAIL'}  {c.what}" + (f"\n           {c.detail}" if c.detail and not c.ok
                                                                  else "") for c in self.checks]
        return "\n".join(out)


def wait(pred: Callable[[], object], timeout: float, interval: float = 0.25):
    """pred() until truthy (returned) or timeout (its last value returned)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# -- steps: actions -----------------------------------------------------------------------------

@dataclass
class SetMitm:
    """Switch the scenario domain's MITM (cuts its open connections)."""
    mode: str

    def run(self, r: Run) -> Optional[Check]:
        r.mitm.set_mode(self.mode)
        r.mitm_since = r.mitm.connections
        r.steps.append(f"mitm -> {self.mode}")
        return None


@dataclass
class Send:
    """Submit a message with a unique body marker to <local or msg>@domain."""
    msg: str
    local: Optional[str] = None

    def run(self, r: Run) -> Optional[Check]:
        rcpt = (self.local or self.msg) + "@" + r.scenario.domain
        marker = f"{r.scenario.name}-{self.msg}-{secrets.token_hex(4)}"
        with smtplib.SMTP("127.0.0.1", r.mw.port, timeout=60) as s:
            s.ehlo("app.example.org")
            s.mail(SENDER)
            code, resp = s.rcpt(rcpt)
            if code != 250:
                return Check(f"submit {self.msg} to {rcpt}", False, f"RCPT: {code} {resp!r}")
            code, resp = s.data(f"Subject: {marker}\r\nFrom: <{SENDER}>\r\nTo: <{rcpt}>\r\n\r\n"
                                f"body {marker}\r\n".encode())
        qid = resp.decode().split("queued as ")[1].split()[0]
        r.sent[self.msg] = Sent(qid, marker, rcpt)
        r.steps.append(f"send {self.msg} to {rcpt}: queued as {qid}")
        return None


@dataclass
class Retry:
    """`mailward queue retry ID`."""
    msg: str

    def run(self, r: Run) -> Optional[Check]:
        p = r.mw.cli("queue", "retry", r.sent[self.msg].qid, check=False)
        r.steps.append(f"mailward queue retry {r.sent[self.msg].qid}: {(p.stdout + p.stderr).strip()}")
        return None if p.returncode == 0 else Check(f"queue retry {self.msg}", False, p.stderr.strip())


# -- steps: expectations ------------------------------------------------------------------------

@dataclass
class Delivered:
    """The message reached the domain's maildir once, with TLS (tls=True) or in plaintext (False),
    optionally by a given listener host name, and the queue says delivered."""
    msg: str
    tls: bool
    via: Optional[str] = None
    timeout: float = 30

    def run(self, r: Run) -> Check:
        what = f"{self.msg} delivered {'with TLS' if self.tls else 'in plaintext'}" + \
               (f" by {self.via}" if self.via else "")
        msgs = wait(lambda: r.arrived(self.msg), self.timeout)
        if not msgs:
            st = r.rcpt_state(self.msg)
            return Check(what, False, f"not in the maildir after {self.timeout}s; queue: {st['state']}, "
                                      f"{st['attempts']} attempt(s), last error: {st['last_error']}")
        if len(msgs) != 1:
            return Check(what, False, f"{len(msgs)} copies arrived")
        info, by = received_tls(msgs[0]), received_by(msgs[0])
        if self.tls and info is None:
            return Check(what, False, f"arrived WITHOUT TLS (by {by})")
        if not self.tls and info is not None:
            return Check(what, False, f"arrived with {info.protocol}, expected plaintext")
        if self.via and by != self.via:
            return Check(what, False, f"arrived by {by}")
        st = wait(lambda: (x := r.rcpt_state(self.msg))["state"] == "delivered" and x, 10) or r.rcpt_state(self.msg)
        if st["state"] != "delivered":
            return Check(what, False, f"in the maildir but the queue says {st['state']}")
        return Check(what + (f" ({info.protocol} {info.cipher})" if info else ""), True)


@dataclass
class Held:
    """The message is not delivered and stays pending (queued, or awaiting escrow where allowed) after
    mailward has dealt with it (and, if queued, after a retry)."""
    msg: str
    states: tuple[str, ...] = ("queued",)

    def run(self, r: Run) -> Check:
        what = f"{self.msg} not delivered, stays {' or '.join(self.states)}"
        st = wait(lambda: (x := r.rcpt_state(self.msg))["attempts"] >= 1 or x["state"] != "queued", 20)
        st = r.rcpt_state(self.msg)
        if st["state"] == "queued" and st["attempts"] >= 1:  # watch one retry too: still held?
            n = st["attempts"]
            wait(lambda: r.rcpt_state(self.msg)["attempts"] > n, 8)
            st = r.rcpt_state(self.msg)
        detail = f"queue: {st['state']}, {st['attempts']} attempt(s), last error: {st['last_error']}"
        if r.arrived(self.msg):
            return Check(what, False, "DELIVERED to the MX; " + detail)
        if st["state"] not in self.states:
            return Check(what, False, detail)
        if st["state"] == "queued" and st["attempts"] < 1:
            return Check(what, False, "mailward never attempted it; " + detail)
        return Check(what + f" ({st['state']}: {st['last_error']})", True)


@dataclass
class NotInCleartext:
    """The MITM saw connections since its last switch, and the message's marker in none of the bytes
    the client sent in the clear."""
    msg: str

    def run(self, r: Run) -> Check:
        what = f"{self.msg} never crossed the MITM in cleartext"
        seen = r.mitm.connections - r.mitm_since
        if seen < 1:
            return Check(what, False, "no connection through the MITM since its last switch: proves nothing")
        if r.sent[self.msg].marker.encode() in r.mitm.cleartext_from_client():
            return Check(what, False, "the MITM READ THE BODY in cleartext")
        return Check(what + f" ({seen} connection(s) since the switch)", True)


@dataclass
class Learned:
    """`mailward policy show DOMAIN` has the domain at this level or higher."""
    at_least: str = "encrypt"

    def run(self, r: Run) -> Check:
        what = f"domain learned at >= {self.at_least}"
        p = r.policy()
        level = p.get("level")
        ok = level in LEVELS and LEVELS.index(level) >= LEVELS.index(self.at_least)
        return Check(what + f" ({level})", ok, json.dumps(p)[:400])


@dataclass
class Incident:
    """`mailward policy show DOMAIN --json` lists an incident (of one of these kinds, if given)."""
    kinds: tuple[str, ...] = ()

    def run(self, r: Run) -> Check:
        what = "incident recorded" + (f" ({' or '.join(self.kinds)})" if self.kinds else "")
        incs = wait(lambda: r.policy().get("incidents"), 5) or []
        found = [i.get("kind") for i in incs]
        ok = bool(found) and (not self.kinds or any(k in self.kinds for k in found))
        return Check(what + (f": {found}" if ok else ""), ok, f"incidents: {incs}")


@dataclass
class LogHas:
    """mailward's log contains this text."""
    text: str

    def run(self, r: Run) -> Check:
        ok = bool(wait(lambda: self.text in r.mw.log(), 5))
        return Check(f"mailward log says {self.text!r}", ok, "not in the log")


@dataclass
class PlainHostUnused:
    """The Postfix listener (by name) never got a MAIL command: no message started there (Postfix's
    log: no queue id, no NOQUEUE reject, no mail= in a session summary), none of ours arrived by it."""
    listener: str

    def run(self, r: Run) -> Check:
        host = r.flab.listener(self.listener).hostname
        what = f"plaintext host {host} never got MAIL"
        tag = f"postfix/{self.listener}/smtpd["

        def lines() -> list[str]:
            return [l for l in r.lab.mx.log().splitlines() if tag in l]
        # a pooled connection is summed up only when it closes: wait until every session has ended
        wait(lambda: sum(" connect from" in l for l in lines()) == sum("disconnect from" in l for l in lines()), 8)
        mine = lines()
        used = [l for l in mine if ": client=" in l or "NOQUEUE:" in l
                or ("disconnect from" in l and " mail=" in l)]
        by_it = [s for s in r.sent if any(received_by(m) == host for m in r.arrived(s))]
        if used or by_it:
            return Check(what, False, f"Postfix log: {used}; messages taken by it: {by_it}")
        sessions = sum("disconnect from" in l for l in mine)
        return Check(what + f" ({sessions} session(s) without MAIL)", True)


# -- the table ----------------------------------------------------------------------------------

@dataclass
class Scenario:
    item: str                 # the issue's item letter
    name: str
    title: str
    domain: str
    mode: str                 # sender mode: [policy] default_mode for the trusted-network submission
    steps: list = field(default_factory=list)
    static: dict = field(default_factory=dict)  # [policy.domains]


SCENARIOS: list[Scenario] = [
    Scenario("a", "learned-strip", "learned TLS domain under a STARTTLS-stripping MITM",
             "strip.example.test", "tls-or-escrow", [
                 SetMitm("passthrough"), Send("m1"), Delivered("m1", tls=True, via="mx.strip.example.test"),
                 NotInCleartext("m1"), Learned("encrypt"),
                 SetMitm("strip"), Send("m2"), Held("m2"), NotInCleartext("m2"),
                 Incident(("starttls_missing",)), LogHas("possible STARTTLS downgrade attack"),
                 SetMitm("passthrough"), Retry("m2"), Delivered("m2", tls=True, via="mx.strip.example.test"),
                 NotInCleartext("m2"),
             ]),
    Scenario("b", "first-contact-strip", "first contact through a stripping MITM, sender tls-or-escrow",
             "firststrip.example.test", "tls-or-escrow", [
                 SetMitm("strip"), Send("m1"), Held("m1", PENDING), NotInCleartext("m1"),
             ]),
    Scenario("c", "learned-454", "454 injected to STARTTLS for a learned TLS domain",
             "inject.example.test", "tls-or-escrow", [
                 SetMitm("passthrough"), Send("m1"), Delivered("m1", tls=True, via="mx.inject.example.test"),
                 NotInCleartext("m1"), Learned("encrypt"),
                 SetMitm("reply454"), Send("m2"), Held("m2"), NotInCleartext("m2"),
                 Incident(("starttls_454",)), LogHas("possible STARTTLS downgrade attack"),
                 SetMitm("passthrough"), Retry("m2"), Delivered("m2", tls=True, via="mx.inject.example.test"),
                 NotInCleartext("m2"),
             ]),
    Scenario("d", "mixed-mx", "MX 10 without TLS, MX 20 with TLS, sender tls-or-escrow: only the TLS host",
             MIXED, "tls-or-escrow", [
                 Send("m1"), Delivered("m1", tls=True, via="mx2." + MIXED),
                 Send("m2", local="held"), Held("m2"),  # the TLS host says 450: held, not MX 10
                 PlainHostUnused("mixedmx1"),
             ]),
    Scenario("e1", "selfsigned-verify", "self-signed MX, static policy verify: not delivered",
             "selfsigned.example.test", "tls-or-escrow", [Send("m1"), Held("m1")],
             static={"selfsigned.example.test": "verify"}),
    Scenario("e2", "selfsigned-encrypt", "self-signed MX, static policy encrypt: delivered with TLS",
             "selfsigned.example.test", "tls-or-escrow",
             [Send("m1"), Delivered("m1", tls=True, via="mx.selfsigned.example.test")],
             static={"selfsigned.example.test": "encrypt"}),
    Scenario("f", "opportunistic-plaintext", "opportunistic sender to a never-seen domain without TLS",
             "notls.example.test", "opportunistic",
             [Send("m1"), Delivered("m1", tls=False, via="mx.notls.example.test")]),
]


def mailward_extra(flab: ForcedTlsLab, sc: Scenario) -> dict:
    """The mailward config sections for one scenario (besides [server] and [submission])."""
    extra = flab.lab.mailward_config()
    extra["delivery"]["retry_schedule"] = ["2s"]
    extra["dns"]["timeout"] = "3s"
    extra["policy"] = {"default_mode": sc.mode}
    if sc.static:
        extra["policy.domains"] = dict(sc.static)
    return extra


def run_scenario(sc: Scenario, flab: ForcedTlsLab, start_mailward: Callable[[str, dict], object],
                 workdir: Path | str) -> Run:
    """Runs one scenario with a fresh mailward (its own data dir in workdir): every step in order,
    expectations recorded as Checks (a failed one does not stop the run). Stops mailward."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    mitm = flab.mitms.get(sc.domain)
    if mitm:
        mitm.set_mode("passthrough")
    mw = start_mailward(str(workdir), mailward_extra(flab, sc))
    r = Run(sc, flab, mw)
    try:
        for step in sc.steps:
            try:
                c = step.run(r)
            except Exception as e:  # noqa: BLE001 - a broken step is a failed check, with the reason
                c = Check(f"{type(step).__name__} {getattr(step, 'msg', '')}".strip(), False,
                          f"{type(e).__name__}: {e}")
            if c is not None:
                r.checks.append(c)
                r.steps.append(f"{'PASS' if c.ok else 'FAIL'}  {c.what}")
    finally:
        r.explanation = r.explain()
        mw.stop()
    return r
