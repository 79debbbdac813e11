"""--tls auto / --tls-cert / --tls-key: one CA made once and reused, a certificate for every real
host name, renewal that keeps the CA, and one clear error for each bad combination."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509

from emulator.cli import main
from emulator.errors import ConfigError
from emulator.settings import Settings
from emulator.tls import HOST_NAMES, configure_tls, ensure_auto_certificate, tls_dir


def san_names(pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))}


def test_auto_makes_a_ca_and_a_certificate_for_every_real_host_name(tmp_path):
    settings, files = configure_tls(Settings(tls="auto", tls_dir=str(tmp_path / "tls"), store="memory://"))
    assert settings.tls_cert == str(files.cert) and settings.tls_key == str(files.key)
    assert files.ca == tmp_path / "tls" / "ca.pem"
    assert san_names(files.cert.read_bytes()) == set(HOST_NAMES)
    assert (files.key.stat().st_mode & 0o777) == 0o600
    # the pair really works, and verifies against the CA for a production host name
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(files.cert, files.key)
    x509_cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    x509_cert.verify_directly_issued_by(ca_cert)
    assert ipaddress.ip_address("127.0.0.1") in x509_cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)


def test_a_restart_reuses_the_same_ca_and_certificate(tmp_path):
    first = ensure_auto_certificate(tmp_path)
    before = {p: p.read_bytes() for p in (first.ca, first.cert, first.key)}
    second = ensure_auto_certificate(tmp_path)
    assert {p: p.read_bytes() for p in (second.ca, second.cert, second.key)} == before


def test_a_certificate_near_expiry_is_renewed_by_the_same_ca(tmp_path):
    first = ensure_auto_certificate(tmp_path)
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=340)
    renewed = ensure_auto_certificate(tmp_path, now=lambda: later)
    assert renewed.ca.read_bytes() == ca and renewed.cert.read_bytes() != cert
    new_cert = x509.load_pem_x509_certificate(renewed.cert.read_bytes())
    new_cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
    assert new_cert.not_valid_after_utc.replace(tzinfo=None) > later + dt.timedelta(days=300)


def test_a_certificate_missing_a_host_name_is_replaced(tmp_path):
    import trustme

    files = ensure_auto_certificate(tmp_path)
    ca = trustme.CA.from_pem(files.ca.read_bytes(), (tmp_path / "ca-key.pem").read_bytes())
    narrow = ca.issue_cert("localhost")
    files.cert.write_bytes(narrow.cert_chain_pems[0].bytes())
    files.key.write_bytes(narrow.private_key_pem.bytes())
    assert san_names(ensure_auto_certificate(tmp_path).cert.read_bytes()) == set(HOST_NAMES)


def test_the_default_directory_sits_beside_the_sqlite_state(tmp_path):
    assert tls_dir(Settings(store=f"sqlite:///{tmp_path}/state.db")) == tmp_path / "tls"
    assert tls_dir(Settings(store="sqlite:///x.db", tls_dir="/srv/tls")).as_posix() == "/srv/tls"


@pytest.mark.parametrize("changes, message", [
    ({"tls": "auto", "tls_cert": "c.pem", "tls_key": "k.pem"}, "leave out --tls-cert"),
    ({"tls_cert": "c.pem"}, "go together"),
    ({"tls_key": "k.pem"}, "go together"),
    ({"tls_cert": "/nonexistent/c.pem", "tls_key": "/nonexistent/k.pem"},
     "--tls-cert /nonexistent/c.pem: no such file"),
    ({"tls": "manual"}, "the only value is 'auto'"),
])
def test_bad_combinations_are_one_clear_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        configure_tls(Settings(store="memory://", **changes))


def test_an_unwritable_directory_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write certificates"):
        configure_tls(Settings(tls="auto", tls_dir=str(blocker / "tls"), store="memory://"))


def test_no_tls_leaves_the_settings_alone():
    settings = Settings(store="memory://")
    assert configure_tls(settings) == (settings, None)


def test_serve_refuses_a_cert_without_a_key_with_exit_code_2(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    result = CliRunner().invoke(main, ["serve", "--store", "memory://", "--workers", "1", "--tls-cert", str(cert)])
    assert result.exit_code == 2
    assert "--tls-cert and --tls-key go together" in result.output


def test_tls_auto_is_part_of_the_plain_install():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(dep.startswith("trustme") for dep in pyproject["project"]["dependencies"])


def test_tls_auto_without_trustme_is_one_line_with_the_install_command(tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "trustme").mkdir(parents=True)
    (blocked / "trustme" / "__init__.py").write_text("raise ImportError(\"No module named 'trustme'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "emulator", "serve", "--tls", "auto", "--port", "0", "--workers", "1",
                           "--store", "memory://", "--tls-dir", str(tmp_path / "tls")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert "pip install trustme" in done.stderr
