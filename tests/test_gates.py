"""The gates: one test command for people and CI (install what is missing, ruff, mypy, pytest),
and a pytest configuration that turns warnings into errors and refuses unknown markers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(script: Path) -> list[str]:
    """The script's command lines, comments and blank lines left out."""
    lines = [line.strip() for line in script.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    assert commands(ROOT / ".ci" / "run")[-1] == "exec scripts/test"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    two_commands = readme.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert "scripts/test" in two_commands and "captchala-emulator serve" in two_commands


def test_the_test_command_installs_what_is_missing_then_runs_ruff_mypy_and_pytest():
    steps = [line for line in commands(ROOT / "scripts" / "test") if not line.startswith(("set ", "cd "))]
    assert [step.split("  #")[0] for step in steps] == [
        "scripts/install-test-deps --check || scripts/install-test-deps",
        "python3 -m ruff check .", "python3 -m mypy", 'python3 -m pytest "$@"']
    assert os.access(ROOT / "scripts" / "test", os.X_OK)


def test_the_dependency_check_names_what_is_missing(tmp_path):
    """`install-test-deps --check` reads the test extra from pyproject.toml and installs nothing."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install-test-deps", tmp_path / "scripts")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = ", ".join(f'"{r}"' for r in [*project["optional-dependencies"]["test"], "no-such-dist-for-this-test"])
    deps = ", ".join(f'"{r}"' for r in project["dependencies"])
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "{project["name"]}"\ndependencies = [{deps}]\n'
                                             f"[project.optional-dependencies]\ntest = [{extra}]\n")
    check = subprocess.run([str(tmp_path / "scripts" / "install-test-deps"), "--check"], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 1 and "no-such-dist-for-this-test" in check.stderr, check.stderr
    assert subprocess.run([str(ROOT / "scripts" / "install-test-deps"), "--check"], capture_output=True,
                          timeout=60).returncode == 0


def test_pytest_turns_warnings_into_errors_and_refuses_unknown_markers():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert options["filterwarnings"] == ["error"]
    assert "--strict-markers" in options["addopts"].split()


def test_the_gate_tools_and_stubs_are_in_the_test_extra():
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]["test"]
    names = {r.split(">")[0].split("=")[0].strip() for r in test_extra}
    assert {"ruff", "mypy", "types-PyYAML"} <= names
