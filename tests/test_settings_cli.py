"""Settings and the CLI: env twins, fail-fast start-up with exit code 2, healthcheck, mint."""

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from emulator.app import create_app
from emulator.cli import main
from emulator.errors import ConfigError
from emulator.server import ThreadServer, free_port
from emulator.settings import Settings, specs


def test_env_twins_fill_settings():
    s = Settings.from_env({"CAPTCHALA_EMULATOR_PORT": "9001", "CAPTCHALA_EMULATOR_TRUST_PROXY": "true",
                           "CAPTCHALA_EMULATOR_STORE": "memory://", "CAPTCHALA_EMULATOR_ADMIN_TOKEN": "t"})
    assert (s.port, s.trust_proxy, s.store, s.admin_token) == (9001, True, "memory://", "t")


def test_env_twin_with_bad_int_names_the_variable():
    with pytest.raises(ConfigError, match="CAPTCHALA_EMULATOR_PORT='eighty': not an integer"):
        Settings.from_env({"CAPTCHALA_EMULATOR_PORT": "eighty"})


@pytest.mark.parametrize("command", ["serve", "healthcheck", "mint"])
@pytest.mark.parametrize("variable,value,problem", [
    ("PORT", "eighty", "not an integer"),
    ("WORKERS", "0", "must be in 1..64"),
    ("LOG_FORMAT", "xml", "expected one of off, text, json"),
    ("QUIET", "maybe", "expected one of"),
])
def test_a_bad_env_value_is_one_line_under_the_variable_name_exit_2(command, variable, value, problem):
    result = CliRunner().invoke(main, [command], env={f"CAPTCHALA_EMULATOR_{variable}": value})
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"captchala-emulator: error: CAPTCHALA_EMULATOR_{variable}={value!r}: {problem}")


def test_every_option_of_every_subcommand_has_help_and_settings_options_show_their_env_twin():
    for name, command in main.commands.items():
        wide = click.Context(command, info_name=name, terminal_width=10_000, max_content_width=10_000)
        text = " ".join(command.get_help(wide).split())
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            assert param.help, f"{name} {param.opts[0]} has no help text"
            assert " ".join(param.help.split()) in text, f"{name} {param.opts[0]}"
        for spec in specs():
            if name in spec.meta.commands:
                assert f"{spec.flag} " in text and f"env var: {spec.env}" in text, f"{name} {spec.flag}"


def test_serve_flags_and_their_defaults_are_the_settings_fields():
    serve = {p.name: p for p in main.commands["serve"].params}
    defaults = Settings()
    for spec in specs():
        if "serve" in spec.meta.commands:
            assert spec.default == serve[spec.name].default or spec.meta.shown_default, spec.name
            assert serve[spec.name].default in (getattr(defaults, spec.name), None), spec.name
    assert set(serve) == {s.name for s in specs() if "serve" in s.meta.commands}


def test_mint_and_healthcheck_find_the_emulator_on_the_port_env_twin(tmp_path):
    server = ThreadServer(create_app(Settings(store="memory://", secret="x", quiet=True, admin_token="adm")),
                          host="127.0.0.1", port=0).start()
    try:
        env = {"CAPTCHALA_EMULATOR_PORT": str(server.port), "CAPTCHALA_EMULATOR_ADMIN_TOKEN": "adm"}
        minted = CliRunner().invoke(main, ["mint", "--action", "login"], env=env)
        assert minted.exit_code == 0 and minted.output.strip(), minted.output
        healthy = CliRunner().invoke(main, ["healthcheck"], env=env)
        assert healthy.exit_code == 0 and healthy.output == "healthy\n", healthy.output
        dead = {**env, "CAPTCHALA_EMULATOR_URL": f"http://127.0.0.1:{free_port()}"}
        unreachable = CliRunner().invoke(main, ["mint"], env=dead)  # the env twin beats the port
        assert unreachable.exit_code == 1 and "cannot reach" in unreachable.output  # as every control command
        assert CliRunner().invoke(main, ["mint", "--url", server.url], env=dead).exit_code == 0  # the flag beats both
    finally:
        server.stop()


def test_default_store_is_sqlite():
    assert Settings().store.startswith("sqlite:///")


@pytest.mark.parametrize("args,problem", [
    (["--store", "ftp://x"], "unknown store scheme"),
    (["--store", "sqlite://"], "expected sqlite:///"),
    (["--store", "memory://", "--workers", "2"], "--workers 1"),
    (["--apps", "/nonexistent/apps.yaml"], "cannot read apps file"),
    (["--store", "memory://", "--workers", "1", "--max-server-token-ttl", "9" * 400], "--max-server-token-ttl"),
    (["--store", "memory://", "--workers", "1", "--max-server-token-ttl", str(10 * 365 * 86400 + 1)],
     "--max-server-token-ttl"),
    (["--store", "sqlite:////proc/nope/x.db"], "/proc/nope/x.db: cannot create its directory"),
    (["--store", "sqlite:////proc/version"], "/proc/version: cannot open its lock file"),
    (["--store", "redis://127.0.0.1:1/abc"], "the database must be a number"),
    (["--store", "redis://127.0.0.1:1/0?prefix=a%0Ab"], "may hold only letters, digits"),
])
def test_serve_fails_fast_with_exit_2(args, problem):
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert problem in result.output and "Traceback" not in result.output


def test_serve_with_bad_apps_file_exits_2_from_a_real_process(tmp_path):
    apps = tmp_path / "apps.yaml"
    apps.write_text("- {app_key: a, app_secret: b, bogus: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "emulator", "serve", "--port", "0", "--apps", str(apps),
                           "--store", f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"{apps}: apps[0].bogus: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_malformed_healthcheck_url_is_one_line_exit_2():
    result = CliRunner().invoke(main, ["healthcheck", "--url", "http://[::1"])
    assert result.exit_code == 2 and "--url http://[::1" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_mint_refused_with_a_page_that_is_not_json_is_one_line_exit_1(tmp_path):
    """A proxy or the server itself can answer an error page in HTML."""
    from flask import Flask

    html = Flask(__name__)
    html.add_url_rule("/_emulator/pass-tokens", "page", lambda: ("<html>\n<body>\nBad Gateway\n</body>\n</html>", 502),
                      methods=["POST"])
    server = ThreadServer(html, host="127.0.0.1", port=0).start()
    try:
        result = CliRunner().invoke(main, ["mint", "--url", f"http://127.0.0.1:{server.port}"])
    finally:
        server.stop()
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.count("\n") == 1 and "HTTP 502" in result.output


def test_healthcheck_fails_when_nothing_listens():
    result = CliRunner().invoke(main, ["healthcheck", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "1"])
    assert result.exit_code == 1 and "unhealthy" in result.output
