"""Run a test's script in a fresh interpreter and read the JSON it prints.

A fresh interpreter because gevent must patch before anything imports threading's primitives,
and a fork or a patch must not leak into the test process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


def run_json_script(script: str, *args: str, timeout: float = 60) -> Any:
    """`python -c script args...` with this checkout importable; what it printed, parsed as JSON."""
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
