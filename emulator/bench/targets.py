"""How to start each thing the benchmark measures, all on loopback and free ports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import procs
from .peers import Peers

BENCH_SECRET = "captchala-emulator-bench-secret"
VALIDATE_PATH = "/v1/validate"
ISSUE_PATH = "/v1/server/challenge/issue"


def gunicorn_args(workers: int, threads: int, worker_class: str) -> list[str]:
    return ["--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class]


def start_floor(log_dir: Path, *, workers: int, threads: int, worker_class: str, port: int | None = None,
                extra: tuple[str, ...] = ()) -> procs.Proc:
    """(a) the bare Flask floor under the emulator's own gunicorn settings."""
    port = port or procs.free_port()
    argv = [sys.executable, "-m", "emulator.bench.floor_app", "--port", str(port),
            *gunicorn_args(workers, threads, worker_class), *extra]
    return procs.start("floor", argv, f"http://127.0.0.1:{port}", "/health", log_dir)


def start_emulator(log_dir: Path, store_url: str, *, workers: int, threads: int, worker_class: str,
                   name: str = "emulator", port: int | None = None, extra: tuple[str, ...] = ()) -> procs.Proc:
    """(b)/(c)/(d) `captchala-emulator serve` exactly as a user starts it, with a fixed secret."""
    port = port or procs.free_port()
    argv = [sys.executable, "-m", "emulator", "serve", "--port", str(port), "--store", store_url,
            "--secret", BENCH_SECRET, "--quiet", *gunicorn_args(workers, threads, worker_class), *extra]
    return procs.start(name, argv, f"http://127.0.0.1:{port}", "/_emulator/health", log_dir)


def start_redis(log_dir: Path, *, port: int | None = None) -> procs.Proc:
    """A throwaway redis-server: loopback only, no persistence, its own port."""
    port = port or procs.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(log_dir)]
    proc = procs.start("redis", argv, f"redis://127.0.0.1:{port}", "", log_dir, health_check=_redis_ping(port))
    return proc


def _redis_ping(port: int):
    def check() -> bool:
        import socket

        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    return check


def start_wiremock(peers: Peers, log_dir: Path, *, port: int | None = None) -> procs.Proc:
    """(e) WireMock standalone serving one static validate stub (journal bounded like ours)."""
    port = port or procs.free_port()
    root = log_dir / "wiremock"
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "mappings" / "validate.json").write_text(json.dumps(wiremock_stub()))
    argv = [peers.java, "-jar", str(peers.wiremock_jar), "--port", str(port), "--bind-address", "127.0.0.1",
            "--root-dir", str(root), "--disable-banner", "--max-request-journal-entries", "1000"]
    return procs.start("wiremock", argv, f"http://127.0.0.1:{port}", "/__admin/health", log_dir)


def start_mockoon(peers: Peers, log_dir: Path, *, port: int | None = None) -> procs.Proc:
    """(e) Mockoon CLI with one static validate route."""
    port = port or procs.free_port()
    data = log_dir / "mockoon-env.json"
    data.write_text(json.dumps(mockoon_environment(port)))
    argv = [peers.node, str(peers.mockoon_cli), "start", "--data", str(data), "--port", str(port),
            "--hostname", "127.0.0.1", "--disable-log-to-file", "--disable-admin-api"]
    return procs.start("mockoon", argv, f"http://127.0.0.1:{port}", "/health", log_dir,
                       env={"HOME": str(log_dir)})


def static_answer() -> dict:
    from .floor_app import STATIC_ANSWER

    return STATIC_ANSWER


def wiremock_stub() -> dict:
    return {"request": {"method": "POST", "url": VALIDATE_PATH},
            "response": {"status": 200, "jsonBody": static_answer(),
                         "headers": {"Content-Type": "application/json"}}}


def mockoon_environment(port: int) -> dict:
    """A minimal Mockoon data file (schema of @mockoon/commons, migration 33)."""
    def route(uuid: str, method: str, endpoint: str, body: str) -> dict:
        return {"uuid": uuid, "type": "http", "documentation": "", "method": method, "endpoint": endpoint,
                "responses": [{"uuid": uuid + "-r", "body": body, "latency": 0, "statusCode": 200, "label": "",
                               "headers": [{"key": "Content-Type", "value": "application/json"}],
                               "bodyType": "INLINE", "filePath": "", "databucketID": "", "sendFileAsBody": False,
                               "rules": [], "rulesOperator": "OR", "disableTemplating": True,
                               "fallbackTo404": False, "default": True, "crudKey": "id", "callbacks": []}],
                "responseMode": None, "streamingMode": None, "streamingInterval": 0}

    routes = [route("bench-validate", "post", VALIDATE_PATH.lstrip("/"), json.dumps(static_answer())),
              route("bench-health", "get", "health", '{"status":"ok"}')]
    return {"uuid": "captchala-emulator-bench", "lastMigration": 33, "name": "bench", "endpointPrefix": "",
            "latency": 0, "port": port, "hostname": "127.0.0.1", "folders": [], "routes": routes,
            "rootChildren": [{"type": "route", "uuid": r["uuid"]} for r in routes], "proxyMode": False,
            "proxyHost": "", "proxyRemovePrefix": False,
            "tlsOptions": {"enabled": False, "type": "CERT", "pfxPath": "", "certPath": "", "keyPath": "",
                           "caPath": "", "passphrase": ""},
            "cors": False, "headers": [], "proxyReqHeaders": [], "proxyResHeaders": [], "data": [],
            "callbacks": []}
