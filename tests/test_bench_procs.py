"""The benchmark starts Python targets as installed: with the package's bytecode written, as
`pip install` does, even where PYTHONDONTWRITEBYTECODE is set (otherwise each cold start of
`serve` compiled its own ~60 modules from source and the cold-start ratio measured the compiler)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from emulator.bench import procs


def test_a_python_target_starts_with_the_package_compiled(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    module = package / "mod.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.setattr(procs, "PACKAGE_DIR", package)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    proc = procs.start("target", [sys.executable, "-c", "import signal; signal.pause()"], "http://127.0.0.1:1", "",
                       tmp_path, health_check=lambda: True)
    proc.stop()
    assert Path(importlib.util.cache_from_source(str(module))).exists()


def test_other_targets_leave_the_package_alone(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(procs, "PACKAGE_DIR", package)
    proc = procs.start("target", ["tail", "-f", "/dev/null"], "http://127.0.0.1:1", "", tmp_path,
                       health_check=lambda: True)
    proc.stop()
    assert not (package / "__pycache__").exists()
