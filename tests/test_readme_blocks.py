"""Issue 13 item 8: every code block of the README that can run, runs in the tests. Each block is
listed here with how it runs (here, or by the test named), or why it cannot; a new block that is
not listed fails `test_every_block_is_accounted_for`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from emulator.domain.apps import load_apps_file

pytest_plugins = ["pytester"]
README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Block:
    heading: str
    lang: str
    body: str
    line: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.heading, self.lang)


def blocks() -> list[Block]:
    found, heading, lines, i = [], "", README.read_text(encoding="utf-8").split("\n"), 0
    while i < len(lines):
        if re.match(r"#{1,6} ", lines[i]):
            heading = lines[i].lstrip("#").strip()
        elif lines[i].startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append(Block(heading, lines[i][3:].strip(), "\n".join(lines[i + 1:end]) + "\n", i + 1))
            i = end
        i += 1
    return found


def block(heading: str, lang: str) -> Block:
    [only] = [b for b in blocks() if b.key == (heading, lang)]
    return only


RUN_HERE = "run by this module"
ACCOUNTED: dict[tuple[str, str], str] = {
    ("Two commands", "bash"): "the install and test commands: what .ci/run does (tests/integration/test_gunicorn.py "
                              "serves with defaults; the suite is the other command)",
    ("Quick tour", "console"): "a banner's text, not a command (tests/integration/test_gunicorn.py checks the banner)",
    ("Quick tour", "bash"): RUN_HERE,
    ("Pointing the official SDKs at the emulator", "go"): "a fragment for the Go SDK (no Go toolchain in the suite)",
    ("Pointing the official SDKs at the emulator", "php"): "a fragment for the PHP SDK (no PHP in the suite)",
    ("Built-in apps", "yaml"): RUN_HERE,
    ("Copy-paste page", "html"): "a page skeleton; tests/browser/test_products.py drives pages written the same way",
    ("Solving the widget from browser tests", "python"): "tests/browser/test_solve_recipe.py",
    ("Fault profiles: make the emulator misbehave on purpose", "bash"): RUN_HERE,
    ("Schema reference", "yaml"): "the schema's outline, with `...` for the parts described below it (parsed here)",
    ("Recipe: a chaos test that switches profiles at runtime (pytest)", "python"): RUN_HERE,
    ("Installing into your own project", "bash"): "tests/packaging/test_wheel.py",
    ("The pytest plugin", "python"): "tests/test_pytest_plugin.py::test_the_readme_example_runs_as_written",
    ("Control-plane reference (`/_emulator/`)", "json"): RUN_HERE,
    ("Debugging \"captcha incomplete or invalid\"", "text"): "a log line, not a command",
    ("Diagnose *captcha incomplete or invalid*", "json"): RUN_HERE,
    ("Diagnose *captcha incomplete or invalid*", "bash"): "the audit command: tests/test_audit.py runs it against "
                                                         "login apps (this one needs your app at --target)",
    ("Diagnose *captcha incomplete or invalid*", "python"): "tests/test_readme_audit_example.py",
    ("The image", "bash"): "tests/container/test_image.py builds and runs the image",
    ("CI examples", "yaml"): RUN_HERE,
    ("One command", "bash"): "the benchmark: minutes long, not part of the suite",
    ("Soak (not in CI)", "bash"): "the soak: minutes long, not part of the suite",
}


def test_every_block_is_accounted_for():
    unlisted = [f"README.md:{b.line} [{b.lang}] under {b.heading!r}" for b in blocks() if b.key not in ACCOUNTED]
    assert not unlisted, "add these blocks to ACCOUNTED (and run them if they can run):\n" + "\n".join(unlisted)
    gone = set(ACCOUNTED) - {b.key for b in blocks()}
    assert not gone, f"ACCOUNTED lists blocks the README no longer has: {gone}"


def test_the_chaos_recipe_runs_as_written(pytester):
    recipe = block("Recipe: a chaos test that switches profiles at runtime (pytest)", "python")
    pytester.makepyfile(test_chaos_recipe=recipe.body)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)


def test_the_curl_session_runs_as_written(tmp_path):
    from tests.support.servers import running_emulator

    script = block("Quick tour", "bash").body
    with running_emulator("--workers", "1", "--store", f"sqlite:///{tmp_path / 's.db'}") as server:
        out = _bash(script, server.url)
    assert '"valid":true' in out and '"error":"token_consumed"' in out
    assert "X-Captchala-Emulator-Reason: consumed at" in out and '"server_token":"sct_' in out


def test_the_fault_profile_commands_run(tmp_path):
    """The block's control commands, against a running emulator (its `serve` lines start servers
    and are what every other test does; `check-profile` runs on a file named like the block's)."""
    from tests.support.servers import running_emulator

    (tmp_path / "chaos.yaml").write_text("rules: [{name: slow, match: {endpoint: validate}, effect: {latency_ms: 5}}]")
    script = "\n".join(line for line in block("Fault profiles: make the emulator misbehave on purpose", "bash")
                       .body.splitlines() if not line.startswith("captchala-emulator serve"))
    with running_emulator("--workers", "1", "--store", f"sqlite:///{tmp_path / 's.db'}") as server:
        out = _bash(script.replace("profiles/*.yaml", str(README.parent / "profiles" / "*.yaml")), server.url,
                    cwd=tmp_path)
    assert "./chaos.yaml: ok" in out and '"name":"main-down"' in out.replace(" ", "")


def _bash(script: str, url: str, cwd: Path | None = None) -> str:
    port = url.rsplit(":", 1)[1]
    text = script.replace("localhost:8080", f"127.0.0.1:{port}").replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", text], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "CAPTCHALA_EMULATOR_PORT": port})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_apps_file_example_loads(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text(block("Built-in apps", "yaml").body)
    [shop] = load_apps_file(str(path))
    assert shop.app_key == "shop_app" and shop.moderation["spam"] == ("casino", "lottery")


def test_the_schema_outline_and_the_ci_examples_are_yaml():
    outline = yaml.safe_load(block("Schema reference", "yaml").body)
    assert set(outline) == {"name", "description", "seed", "ttl_s", "rules"}
    for ci in [b for b in blocks() if b.key == ("CI examples", "yaml")]:
        assert isinstance(yaml.safe_load(ci.body), dict)


def test_the_json_examples_are_json():
    examples = [json.loads(b.body) for b in blocks() if b.key == ("Control-plane reference (`/_emulator/`)", "json")]
    assert [sorted(e)[:2] for e in examples] == [["action", "app_key"], ["claims", "claims_verified"]]
    assert json.loads(block("Diagnose *captcha incomplete or invalid*", "json").body)["stage"] == "validate"

