"""A throwaway test certificate authority made with the openssl CLI (EC P-256 by default).

TestCA(directory) creates the CA on construction; issue() makes server leaves under it (serverAuth,
SAN DNS names), self_signed() makes certificates under no CA, spki_sha256() gives the TLSA 3 1 1 hash.
Everything it writes stays inside `directory`; nothing here is trusted outside the lab.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Optional, Sequence

from .util import LabError, run

_CA_CONF = """\
[ ca ]
default_ca = lab_ca
[ lab_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/ca.crt
private_key = $dir/ca.key
default_md = sha256
policy = lab_policy
unique_subject = no
copy_extensions = none
email_in_dn = no
[ lab_policy ]
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_LEAF_EXT = """\
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature{ke}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
{aki}
subjectAltName = {san}
"""


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _keygen_args(key: str) -> list[str]:
    if key == "ec":
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    m = re.fullmatch(r"rsa:?(\d+)", key)
    if m:
        return ["-newkey", f"rsa:{m.group(1)}"]
    raise ValueError(f"key must be 'ec' or 'rsa:BITS', got {key!r}")


def _utc(d: _dt.datetime) -> str:
    return d.astimezone(_dt.timezone.utc).strftime("%Y%m%d%H%M%SZ")


class TestCA:
    """A CA in `directory`: cert_path/key_path of the CA itself, and leaves issued under it."""

    __test__ = False  # not a unittest/pytest test class

    def __init__(self, directory: Path | str, name: str = "mailward lab CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "newcerts").mkdir(exist_ok=True)
        self.cert_path = self.dir / "ca.crt"
        self.key_path = self.dir / "ca.key"
        self._conf = self.dir / "ca.cnf"
        if not self.cert_path.exists():
            self._conf.write_text(_CA_CONF.format(dir=self.dir))
            (self.dir / "index.txt").write_text("")
            (self.dir / "serial").write_text(os.urandom(8).hex().upper() + "\n")
            run(["openssl", "req", "-x509", "-config", str(self._conf), "-extensions", "v3_ca",
                 *_keygen_args("ec"), "-nodes", "-keyout", str(self.key_path), "-out",
                 str(self.cert_path), "-days", "3650", "-subj", f"/CN={name}"], what="openssl: CA")
            os.chmod(self.key_path, 0o644)  # postfix/nobody never need it, but tests may read it

    # -- leaves -------------------------------------------------------------------------------

    def issue(self, name: str, sans: Optional[Sequence[str]] = None, *, key: str = "ec",
              not_before: Optional[_dt.datetime] = None, not_after: Optional[_dt.datetime] = None,
              days: int = 30) -> tuple[Path, Path]:
        """A leaf for CN=name with SAN DNS names `sans` (default [name]); returns (cert_path, key_path).

        key: "ec" (P-256) or "rsa:2048" etc. not_before/not_after (aware datetimes) make expired or
        not-yet-valid certificates; by default valid from one hour ago for `days` days.
        """
        sans = list(sans) if sans else [name]
        stem = self._stem(name)
        crt, keyp, csr = Path(stem + ".crt"), Path(stem + ".key"), Path(stem + ".csr")
        self._new_key_and_csr(name, key, keyp, csr)
        now = _dt.datetime.now(_dt.timezone.utc)
        start = not_before or now - _dt.timedelta(hours=1)
        end = not_after or now + _dt.timedelta(days=days)
        ext = Path(stem + ".ext")
        ext.write_text(_LEAF_EXT.format(san=", ".join(f"DNS:{s}" for s in sans),
                                        ke=", keyEncipherment" if key != "ec" else "",
                                        aki="authorityKeyIdentifier = keyid"))
        run(["openssl", "ca", "-batch", "-notext", "-config", str(self._conf), "-in", str(csr),
             "-out", str(crt), "-extfile", str(ext), "-extensions", "leaf",
             "-startdate", _utc(start), "-enddate", _utc(end), "-subj", f"/CN={name}"],
            what=f"openssl: issue {name}")
        return crt, keyp

    def self_signed(self, name: str, sans: Optional[Sequence[str]] = None, *,
                    key: str = "ec", days: int = 30) -> tuple[Path, Path]:
        """A self-signed server certificate for name (under no CA); returns (cert_path, key_path)."""
        sans = list(sans) if sans else [name]
        stem = self._stem("self-" + name)
        crt, keyp, ext = Path(stem + ".crt"), Path(stem + ".key"), Path(stem + ".ext")
        ext.write_text("[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = x\n" +
                       _LEAF_EXT.format(san=", ".join(f"DNS:{s}" for s in sans),
                                        ke=", keyEncipherment" if key != "ec" else "", aki=""))
        run(["openssl", "req", "-x509", "-config", str(ext), "-extensions", "leaf",
             *_keygen_args(key), "-nodes", "-keyout", str(keyp), "-out", str(crt),
             "-days", str(days), "-subj", f"/CN={name}"], what=f"openssl: self-signed {name}")
        os.chmod(keyp, 0o644)
        return crt, keyp

    # -- facts --------------------------------------------------------------------------------

    @staticmethod
    def spki_sha256(cert_path: Path | str) -> str:
        """Hex SHA-256 of the certificate's DER SubjectPublicKeyInfo: the data of a TLSA 3 1 1 record."""
        pem = run(["openssl", "x509", "-in", str(cert_path), "-noout", "-pubkey"],
                  what="openssl: pubkey").stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem.encode(),
                             capture_output=True, check=False)
        if der.returncode != 0 or not der.stdout:
            raise LabError(f"openssl pkey failed for {cert_path}: {der.stderr.decode(errors='replace')}")
        return hashlib.sha256(der.stdout).hexdigest()

    @staticmethod
    def cert_sha256(cert_path: Path | str) -> str:
        """Hex SHA-256 of the whole DER certificate: the data of a TLSA 3 0 1 record."""
        der = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-outform", "DER"],
                             capture_output=True, check=True).stdout
        return hashlib.sha256(der).hexdigest()

    # -- internals ----------------------------------------------------------------------------

    def _stem(self, name: str) -> str:
        """A fresh path prefix (no suffix) for a new certificate named name."""
        stem, i = str(self.dir / _safe(name)), 1
        while Path(stem + ".crt").exists():
            i += 1
            stem = str(self.dir / f"{_safe(name)}-{i}")
        return stem

    def _new_key_and_csr(self, name: str, key: str, keyp: Path, csr: Path) -> None:
        run(["openssl", "req", "-new", "-config", str(self._conf), *_keygen_args(key), "-nodes",
             "-keyout", str(keyp), "-out", str(csr), "-subj", f"/CN={name}"],
            what=f"openssl: key for {name}")
        os.chmod(keyp, 0o644)
