"""HTTPS for a true drop-in: `--tls-cert/--tls-key`, or `--tls auto`, which makes (once) a local
CA and a certificate for the real CaptchaLa host names with trustme, so clients that cannot
change URLs reach the emulator through a hosts entry, a network alias or a resolver rule.

The files live in one directory (`--tls-dir`, default: a `tls` folder beside the SQLite state)
and are reused across restarts, so a CA the user trusted once stays trusted."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .settings import Settings

HOST_NAMES = ("apiv1.captcha.la", "fallbackapiv1.captchala.com", "cdn.captcha-cdn.net", "cdn.captchala.com",
              "demo-v1.captcha.la", "localhost", "127.0.0.1")
CA_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE = "ca.pem", "ca-key.pem", "cert.pem", "key.pem"
LEAF_DAYS = 365
RENEW_BEFORE_DAYS = 30
ORGANIZATION = "captchala-emulator (local test CA)"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None = None  # only for --tls auto: the file a user or a test trusts


def configure_tls(settings: Settings) -> tuple[Settings, TlsFiles | None]:
    """Resolve the TLS options into cert/key paths (creating them for `auto`); ConfigError on a bad mix."""
    if settings.tls not in (None, "", "auto"):
        raise ConfigError(f"--tls {settings.tls!r}: the only value is 'auto' (or give --tls-cert and --tls-key)")
    if settings.tls == "auto":
        if settings.tls_cert or settings.tls_key:
            raise ConfigError("--tls auto makes its own certificate: "
                              "leave out --tls-cert/--tls-key, or drop --tls auto")
        files = ensure_auto_certificate(tls_dir(settings))
        return settings.replace(tls_cert=str(files.cert), tls_key=str(files.key)), files
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together: give both, or use --tls auto")
    cert, key = settings.tls_cert, settings.tls_key
    if cert and key:
        for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
            if not Path(path).is_file():
                raise ConfigError(f"{flag} {path}: no such file")
        return settings, TlsFiles(Path(cert), Path(key))
    return settings, None


def tls_dir(settings: Settings) -> Path:
    """--tls-dir, else `tls/` beside a SQLite state file, else ~/.local/state/captchala-emulator/tls."""
    if settings.tls_dir:
        return Path(settings.tls_dir)
    if settings.store.startswith("sqlite:///") and settings.store != "sqlite:///:memory:":
        return Path(settings.store[len("sqlite:///"):]).parent / "tls"
    return Path.home() / ".local" / "state" / "captchala-emulator" / "tls"


def ensure_auto_certificate(directory: Path, *, now: Callable[[], dt.datetime] | None = None) -> TlsFiles:
    """Reuse the CA and certificate in `directory` when they cover HOST_NAMES and are not near expiry;
    otherwise make them (a kept CA signs a fresh certificate, so trust survives renewals)."""
    try:
        import trustme
    except ImportError:
        raise ConfigError("--tls auto needs the trustme package: pip install trustme "
                          "(or give --tls-cert and --tls-key)") from None

    current = (now or _utcnow)()
    files = TlsFiles(directory / CERT_FILE, directory / KEY_FILE, directory / CA_FILE)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):  # replicas sharing one directory must agree on one CA
            ca = _load_or_make_ca(directory, trustme)
            if _leaf_is_usable(files.cert, files.key, current):
                return files
            leaf = ca.issue_cert(*HOST_NAMES, common_name="apiv1.captcha.la", organization_name=ORGANIZATION,
                                 not_before=current - dt.timedelta(days=1),
                                 not_after=current + dt.timedelta(days=LEAF_DAYS))
            _write(files.key, leaf.private_key_pem.bytes(), private=True)
            # the chain ends with our CA, so a client that pins the CA's key finds it in the chain
            _write(files.cert, b"".join(blob.bytes() for blob in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    except OSError as exc:
        raise ConfigError(f"--tls auto: cannot write certificates to {directory}: {exc.strerror or exc}") from None
    return files


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock file in `directory` for the time of a check-and-create."""
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load_or_make_ca(directory: Path, trustme):
    ca_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if ca_path.is_file() and key_path.is_file():
        try:
            return trustme.CA.from_pem(ca_path.read_bytes(), key_path.read_bytes())
        except ValueError:
            pass  # unreadable: make a new one below
    ca = trustme.CA(organization_name=ORGANIZATION)
    _write(key_path, ca.private_key_pem.bytes(), private=True)
    _write(ca_path, ca.cert_pem.bytes())
    for stale in (directory / CERT_FILE, directory / KEY_FILE):  # signed by a CA that is gone
        stale.unlink(missing_ok=True)
    return ca


def _leaf_is_usable(cert_path: Path, key_path: Path, now: dt.datetime) -> bool:
    """The existing certificate names every host and is valid for at least RENEW_BEFORE_DAYS more."""
    from cryptography import x509

    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(n) for n in names.get_values_for_type(x509.DNSName)}
    covered |= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    wanted = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in HOST_NAMES}
    not_after = cert.not_valid_after_utc.replace(tzinfo=None)
    return wanted <= covered and not_after - now > dt.timedelta(days=RENEW_BEFORE_DAYS)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically (a concurrent start never reads half a file); keys are 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
