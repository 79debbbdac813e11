"""The peers a user would pick instead (WireMock, Mockoon), installed with npm into a cache
directory at bench time: never committed, never in the test run."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WIREMOCK_NPM = "wiremock@3.13.2"  # bundles wiremock-standalone-3.13.2.jar
MOCKOON_NPM = "@mockoon/cli@9.9.0"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "captchala-emulator-bench"


@dataclass(frozen=True)
class Peers:
    java: str
    node: str
    wiremock_jar: Path
    mockoon_cli: Path


def install(cache: Path, log) -> Peers:
    """npm-install the peers once into `cache`; later runs reuse them."""
    java, node, npm = shutil.which("java"), shutil.which("node"), shutil.which("npm")
    if not (java and node and npm):
        raise RuntimeError("peers need java (17+), node and npm on PATH")
    cache.mkdir(parents=True, exist_ok=True)
    jar = _find_jar(cache)
    cli = cache / "node_modules" / "@mockoon" / "cli" / "bin" / "run.js"
    if jar is None or not cli.exists():
        log(f"installing {WIREMOCK_NPM} and {MOCKOON_NPM} into {cache} (npm) ...")
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(cache),
                        WIREMOCK_NPM, MOCKOON_NPM], check=True, capture_output=True, text=True, timeout=600)
        jar = _find_jar(cache)
    if jar is None or not cli.exists():
        raise RuntimeError(f"npm install did not provide the WireMock jar and the Mockoon CLI in {cache}")
    return Peers(java, node, jar, cli)


def _find_jar(cache: Path) -> Path | None:
    jars = sorted((cache / "node_modules" / "wiremock").glob("**/wiremock-standalone-*.jar"))
    return jars[-1] if jars else None
