"""Real emulator processes for integration tests: `captchala-emulator serve` under gunicorn.

Start with `running_emulator(...)` (a context manager); it picks a free port with --port 0,
reads the bound port from the banner and waits until /_emulator/health answers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests
from urllib3.exceptions import InsecureRequestWarning

BANNER = re.compile(r"listening on (https?://[^\s]+)")


@dataclass
class EmulatorProcess:
    proc: subprocess.Popen
    url: str
    output: list[str] = field(default_factory=list)
    admin_token: str | None = None  # from --admin-token: sent on control-plane calls
    reader: threading.Thread | None = None  # copies the output into `output` until the process is gone

    @property
    def control_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def api(self, path: str, body=None, *, app_key="demo_app", app_secret="demo_secret", **kw) -> requests.Response:
        headers = {"X-App-Key": app_key, "X-App-Secret": app_secret, **kw.pop("headers", {})}
        return requests.post(self.url + path, json=body, headers=headers, timeout=kw.pop("timeout", 10), **kw)

    def mint(self, **claims) -> str:
        r = requests.post(self.url + "/_emulator/pass-tokens", json={"app_key": "demo_app", "action": "login",
                                                                      **claims},
                          headers=self.control_headers, timeout=10)
        r.raise_for_status()
        return r.json()["pass_token"]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def address(url: str) -> tuple[str, int]:
    """(host, port) of a server URL such as the banner's `http://127.0.0.1:PORT`."""
    host, port = url.rsplit("//", 1)[1].split(":")
    return host, int(port)


def raw_api_request(path: str, body: bytes, *, length: int | None = None,
                    content_type: str = "application/json") -> bytes:
    """The bytes of a POST to an API path with the demo app's credentials (`length`: a
    Content-Length other than the body's, for a client that promises more than it sends)."""
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"X-App-Key: demo_app\r\nX-App-Secret: demo_secret\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n\r\n").encode() + body


def read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP answer with a Content-Length, read whole off a raw socket: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length]


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed `sock` (end of stream or a reset); False when the socket's
    own timeout ran out first."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def answering_worker(server: EmulatorProcess) -> int:
    """The pid of the worker that answers a validate on a fresh connection (the journal's newest
    entry: the caller makes sure nothing else calls the server meanwhile)."""
    server.api("/v1/validate", {"pass_token": "pt_probe"})
    newest = requests.get(server.url + "/_emulator/requests", params={"limit": 1}, timeout=10).json()["requests"]
    return int(newest[0]["worker_pid"])


def wait_until_held(server: EmulatorProcess, held: int = 1, *, verify: str | bool = True,
                    timeout: float = 20) -> bool:
    """Whether `held` requests (at most 128: the old thread model never let more in) reached the app
    under the active profile's rules within `timeout`: its rules count every request they match
    (readiness polling, bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            rules = requests.get(server.url + "/_emulator/profile", verify=verify, timeout=5).json().get("rules")
            if sum(int(rule.get("matched") or 0) for rule in rules or []) >= min(held, 128):
                return True
        time.sleep(0.05)  # polling for readiness, not waiting for time to pass
    return False


def start_emulator(*args: str, env: dict | None = None, cwd: str | Path | None = None,
                   ready_timeout: float = 30, entry: str = "emulator", banner: re.Pattern = BANNER,
                   healthy: bool = True) -> EmulatorProcess:
    """Start `python -m emulator serve --port 0 <args>` and wait until it is healthy (`entry`: another
    module that runs the same command line, e.g. tests.support.serve_probe; `banner`: the line that
    gives its address, the first group a URL; `healthy=False`: do not wait for health)."""
    cmd = [sys.executable, "-m", entry, "serve", "--port", "0", *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                            cwd=cwd, start_new_session=True)
    output: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def pump() -> None:
        with proc.stdout:  # closed at EOF, when the server and its workers are gone
            for line in proc.stdout:
                output.append(line)
                match = banner.search(line)
                if match and "url" not in found:
                    found["url"] = match.group(1)
                    ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not ready.wait(ready_timeout) or "url" not in found:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {''.join(output)[-3000:]}")
    admin = args[args.index("--admin-token") + 1] if "--admin-token" in args[:-1] else None
    server = EmulatorProcess(proc, found["url"], output, admin, reader)
    if healthy:
        wait_for_health(server, timeout=ready_timeout)
    return server


def wait_for_health(server: EmulatorProcess, *, status: int | None = 200, timeout: float = 30) -> requests.Response:
    """Health's first answer with `status` (None: its first answer at all), polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"emulator exited: {''.join(server.output)[-3000:]}")
        with contextlib.suppress(requests.RequestException), warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)  # readiness only: TLS is checked by the tests
            answer = requests.get(server.url + "/_emulator/health", headers=server.control_headers, timeout=1,
                                  verify=False)
            if status is None or answer.status_code == status:
                return answer
        time.sleep(0.05)  # polling for readiness, not waiting for time to pass
    raise RuntimeError(f"health never answered {status or 'at all'}")


@contextlib.contextmanager
def running_emulator(*args: str, **kwargs):
    server = start_emulator(*args, **kwargs)
    try:
        yield server
    finally:
        server.stop()
