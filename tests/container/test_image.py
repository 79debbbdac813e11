"""The Docker image, proven with podman: it builds from the repository's Dockerfile, becomes
healthy through its own HEALTHCHECK, serves mint + validate through a mapped port, runs as
non-root with a read-only root filesystem, has no curl, and stops within 5 s of SIGTERM.

No registry is reachable in CI, so `scripts/build-base-image` makes the Dockerfile's base
(python:3.11-slim) locally from Debian's packages when that tag is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.resolve import resolve_to

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim"
IMAGE_TAG = "localhost/captchala-emulator:smoke-test"
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
# runc, and ulimits within this machine's hard limits (podman's defaults exceed them).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """Run podman with this test's own containers.conf (nothing hand-edited under /etc)."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run scripts/install-test-deps")
    conf = tmp_path_factory.mktemp("containers") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def image(podman, tmp_path_factory) -> str:
    """Build the image (the base first, if this machine has none); returns the image id."""
    base = subprocess.run([str(ROOT / "scripts" / "build-base-image"), BASE_IMAGE], env=podman.env,
                          capture_output=True, text=True, timeout=900)
    assert base.returncode == 0, f"build-base-image failed:\n{base.stdout[-2000:]}\n{base.stderr[-3000:]}"
    iidfile = tmp_path_factory.mktemp("image") / "iid"
    previous = podman("image", "inspect", "--format", "{{.Id}}", IMAGE_TAG, check=False).stdout.strip()
    # --layers=false: no intermediate images pile up on the machine; pip dominates the build anyway
    podman("build", "--format", "docker", "--pull=never", "--layers=false", *_host_ca_volume(),
           "--iidfile", str(iidfile), "-t", IMAGE_TAG, str(ROOT), timeout=900)
    built = iidfile.read_text().strip().removeprefix("sha256:")
    if previous and previous != built:  # the tag moved: drop our own older build
        podman("rmi", previous, check=False)
    return built


def _host_ca_volume() -> list[str]:
    """Builds here reach PyPI through this machine's TLS setup: lend its CA bundle to the build
    steps only (a build-time volume is not part of the image)."""
    bundle = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt"
    return ["--volume", f"{bundle}:/etc/ssl/certs/ca-certificates.crt:ro"] if Path(bundle).is_file() else []


@pytest.fixture
def container(podman, image):
    name = f"captchala-smoke-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--name", name, "--read-only", "--publish", "127.0.0.1::8080", image)
    try:
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def mapped_url(podman, name: str) -> str:
    port = podman("port", name, "8080/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1]
    return f"http://127.0.0.1:{port}"


def wait_healthy(podman, name: str, timeout: float = 90) -> None:
    """Run the image's own HEALTHCHECK until it passes (no systemd here to run it on a timer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if podman("healthcheck", "run", name, check=False).returncode == 0:
            return
        time.sleep(0.25)  # polling for readiness
    logs = podman("logs", name, check=False)
    raise AssertionError(f"container never became healthy:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


def inspect(podman, name: str) -> dict:
    return json.loads(podman("inspect", name).stdout)[0]


def test_the_image_becomes_healthy_serves_validate_runs_as_non_root_and_stops_fast(podman, container):
    wait_healthy(podman, container)
    state = inspect(podman, container)
    assert state["State"]["Health"]["Status"] == "healthy"
    assert state["Config"]["User"] == "10001:10001"
    assert podman("exec", container, "id", "-u").stdout.strip() == "10001"
    assert podman("exec", container, "sh", "-c", "command -v curl", check=False).returncode != 0  # no curl needed

    url = mapped_url(podman, container)
    minted = requests.post(url + "/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login"}, timeout=10)
    assert minted.status_code == 201, minted.text
    token = minted.json()["pass_token"]
    first = requests.post(url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=10).json()
    assert first["code"] == 0 and first["data"]["valid"] is True and first["data"]["action"] == "login"
    again = requests.post(url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=10).json()
    assert again["data"] == {"valid": False, "error": "token_consumed"}
    health = requests.get(url + "/_emulator/health", timeout=10).json()
    assert health["status"] == "ok" and health["store"] == "sqlite:////data/state.db"
    # package data made it into the wheel: the browser SDK and the built-in fault profiles
    assert "loadCaptchala" in requests.get(url + "/captchala-loader.js", timeout=10).text
    profile = requests.put(url + "/_emulator/profile", json={"name": "token-expired"}, timeout=10)
    assert profile.status_code == 200, profile.text

    with requests.Session() as keep_alive:  # an idle keep-alive connection must not delay the stop
        keep_alive.get(url + "/_emulator/health", timeout=10)
        started = time.monotonic()
        podman("stop", "--time", "10", container)
        took = time.monotonic() - started
    assert took < 5, f"stop took {took:.1f} s"
    stopped = inspect(podman, container)["State"]
    assert stopped["ExitCode"] == 0, stopped  # a graceful exit, not SIGKILL (137)


def test_the_healthcheck_fails_while_nothing_listens(podman, image):
    """The HEALTHCHECK is honest: with the server replaced by `sleep`, it reports unhealthy."""
    name = f"captchala-smoke-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--name", name, "--entrypoint", "sleep", image, "60")
    try:
        check = podman("healthcheck", "run", name, check=False)
        assert check.returncode != 0
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_tls_auto_on_443_answers_for_the_production_host_names(podman, image, tmp_path):
    """The drop-in set-up for a network alias: `--tls auto` on port 443 as the non-root user
    (Docker allows low ports in containers by default; podman needs the sysctl), healthy over
    HTTPS, and the CA copied out of /data/tls verifies apiv1.captcha.la."""
    name = f"captchala-smoke-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--name", name, "--read-only", "--sysctl", "net.ipv4.ip_unprivileged_port_start=443",
           "--env", "CAPTCHALA_EMULATOR_PORT=443", "--env", "CAPTCHALA_EMULATOR_TLS=auto",
           "--publish", "127.0.0.1::443", image)
    try:
        wait_healthy(podman, name)
        ca = tmp_path / "ca.pem"
        podman("cp", f"{name}:/data/tls/ca.pem", str(ca))
        port = int(podman("port", name, "443/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1])
        with resolve_to({("apiv1.captcha.la", 443): ("127.0.0.1", port)}):
            health = requests.get("https://apiv1.captcha.la/_emulator/health", verify=str(ca), timeout=10)
        assert health.json()["status"] == "ok"
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
