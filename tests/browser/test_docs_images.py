"""Issue 13 item 11: running the tests leaves `git status` clean. The README screenshots are
taken by the suite, but written into docs/images/ only by scripts/readme-screenshots (which sets
CAPTCHALA_SCREENSHOT_DIR); a normal run writes them to a temporary folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_TESTS = [
    "tests/browser/test_products.py::test_widget_screenshot_for_the_readme",
    "tests/browser/test_dashboard.py::test_the_dashboard_lists_apps_logs_switches_profiles_and_explains",
    "tests/browser/test_diagnosis_panels.py",
]


def _digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((ROOT / "docs" / "images").glob("*"))}


def test_the_screenshot_tests_leave_docs_images_untouched():
    before = _digests()
    env = {k: v for k, v in os.environ.items() if k != "CAPTCHALA_SCREENSHOT_DIR"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *SCREENSHOT_TESTS],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert _digests() == before
