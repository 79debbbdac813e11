"""Settings and the CLI: env twins, fail-fast start-up with exit code 2, healthcheck, mint."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from emulator.cli import main
from emulator.settings import Settings


def test_env_twins_fill_settings():
    s = Settings.from_env({"CAPTCHALA_EMULATOR_PORT": "9001", "CAPTCHALA_EMULATOR_TRUST_PROXY": "true",
                           "CAPTCHALA_EMULATOR_STORE": "memory://", "CAPTCHALA_EMULATOR_ADMIN_TOKEN": "t"})
    assert (s.port, s.trust_proxy, s.store, s.admin_token) == (9001, True, "memory://", "t")


def test_env_twin_with_bad_int_names_the_variable():
    with pytest.raises(ValueError, match="CAPTCHALA_EMULATOR_PORT"):
        Settings.from_env({"CAPTCHALA_EMULATOR_PORT": "eighty"})


def test_default_store_is_sqlite():
    assert Settings().store.startswith("sqlite:///")


def test_every_settings_field_is_a_serve_option():
    from dataclasses import fields

    serve = main.commands["serve"]
    names = {p.name for p in serve.params}
    assert {f.name for f in fields(Settings)} - {"tls_dir"} <= names | {"tls_dir"}
    for param in serve.params:
        assert param.envvar == "CAPTCHALA_EMULATOR_" + param.name.upper()


@pytest.mark.parametrize("args,problem", [
    (["--store", "ftp://x"], "unknown store scheme"),
    (["--store", "sqlite://"], "expected sqlite:///"),
    (["--store", "memory://", "--workers", "2"], "--workers 1"),
    (["--apps", "/nonexistent/apps.yaml"], "cannot read apps file"),
])
def test_serve_fails_fast_with_exit_2(args, problem):
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert result.exit_code == 2
    assert problem in result.output


def test_serve_with_bad_apps_file_exits_2_from_a_real_process(tmp_path):
    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: a, app_secret: b, bogus: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "emulator", "serve", "--port", "0", "--apps", str(apps),
                           "--store", f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"{apps}: apps[0].bogus: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_healthcheck_fails_when_nothing_listens():
    from emulator.server import free_port

    result = CliRunner().invoke(main, ["healthcheck", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "1"])
    assert result.exit_code == 1 and "unhealthy" in result.output
