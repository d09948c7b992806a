"""mwlab: the mailward test lab - real peers on loopback (knot DNS with signed zones, a private Postfix
MX with several listeners, a throwaway CA, a validating unbound, a STARTTLS-stripping proxy) for
integration tests and scripts/lab.
"""
from .ca import TestCA
from .dns import BlackHoleDns, DnsServer, Zone
from .https import PolicyServer
from .mitm import Mitm, MitmConnection
from .postfix import Listener, PostfixMx, TlsInfo, received_by, received_tls
from .resolver import ValidatingResolver
from .scenario import LabDomain, MxHost, StandardLab, standard_lab
from .util import LabError, free_port, pick_block

__all__ = ["PolicyServer", "TestCA", "BlackHoleDns", "DnsServer", "Zone", "Listener", "PostfixMx", "TlsInfo",
           "received_by", "received_tls", "ValidatingResolver", "Mitm", "MitmConnection", "LabDomain",
           "MxHost", "StandardLab", "standard_lab", "LabError", "free_port", "pick_block"]
