"""Issue 13 item 6: the wheel, built from this checkout and installed into a fresh venv, carries
the built-in profiles, the static files and the dashboard (and not the benchmark), and a small
external pytest project that only installs it can use the plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

EXTERNAL_PROJECT = '''
import importlib.util
import os

import requests


def test_the_plugin_mints_and_validates(captchala_emulator):
    emu = captchala_emulator
    answer = requests.post(emu.validate_url, json={"pass_token": emu.mint(action="login")}, headers=emu.headers,
                           timeout=10).json()
    assert answer["data"]["valid"] is True


def test_a_builtin_profile_comes_with_the_wheel(captchala_emulator):
    captchala_emulator.use_profile("validate-503")
    answer = requests.post(captchala_emulator.validate_url, json={"pass_token": "pt_x"},
                           headers=captchala_emulator.headers, timeout=10)
    assert answer.status_code == 503


def test_static_files_and_the_dashboard_come_with_the_wheel(captchala_emulator):
    for path in ("/captchala-loader.js", "/captchala.js", "/captchala.css", "/_emulator/", "/_emulator/openapi.json"):
        assert requests.get(captchala_emulator.url + path, timeout=10).status_code == 200, path


def test_it_runs_from_the_venv_and_without_the_benchmark():
    import emulator

    assert emulator.__file__.startswith(os.environ["VENV_DIR"]), emulator.__file__
    assert importlib.util.find_spec("emulator.bench") is None
'''


def _source_copy(dest: Path) -> Path:
    """The files a build reads, symlinks resolved (as an sdist would have them), so that the
    build leaves the checkout untouched."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "emulator", dest / "emulator", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def readme_install_lines() -> list[str]:
    """The README's install block (section 'Installing into your own project'), one command a line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Installing into your own project", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built with the README's own `pip wheel` line, run as written (with this checkout's path)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = _source_copy(tmp / "src")
    [build] = [line for line in readme_install_lines() if line.startswith("pip wheel")]
    command = build.replace("/path/to/captchala-emulator", str(source)).split()
    _run([sys.executable, "-m", *command], cwd=tmp)
    [built] = (tmp / "dist").glob("captchala_emulator-*.whl")
    return built


def test_the_wheel_carries_profiles_static_files_and_dashboard_but_not_the_benchmark(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    profiles = {n for n in names if n.startswith("emulator/profiles/") and n.endswith(".yaml")}
    assert {f"emulator/profiles/{p.name}" for p in (ROOT / "emulator" / "profiles").glob("*.yaml")} == profiles
    assert {f"emulator/web/static/{p.name}" for p in (ROOT / "emulator" / "web" / "static").iterdir()} <= names
    assert "emulator/web/templates/dashboard.html" in names
    assert "emulator/web/openapi/openapi.yaml" in names
    assert not [n for n in names if n.startswith("emulator/bench")]


def test_an_external_project_uses_the_plugin_from_a_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    [install] = [line for line in readme_install_lines() if line.startswith("pip install dist/")]
    shutil.copytree(wheel.parent, tmp_path / "dist")
    # expand the glob as a shell would
    args = [str(m) for a in install.split() for m in (sorted(tmp_path.glob(a)) if "*" in a else [a])]
    _run([python, "-m", *args, "pytest", "requests"], cwd=tmp_path)
    project = tmp_path / "shop"
    project.mkdir()
    (project / "test_captcha.py").write_text(EXTERNAL_PROJECT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
           and not k.startswith(("CAPTCHALA_EMULATOR_", "PYTEST_"))}
    env["VENV_DIR"] = str(venv)
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "4 passed" in done.stdout
