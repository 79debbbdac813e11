"""Real gunicorn, 4 workers: the virtual clock and every reset reach all workers at once, and
--admin-token guards every control endpoint while the real API keeps working without it."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from emulator.app import create_app
from emulator.settings import Settings
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration
DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
AUTO = {"X-App-Key": "auto_pass_app", "X-App-Secret": "auto_pass_secret"}
WORKERS = 4
PARALLEL = 16


@pytest.fixture(scope="module")
def four_workers(tmp_path_factory):
    db = tmp_path_factory.mktemp("control") / "state.db"
    with running_emulator("--workers", str(WORKERS), "--threads", "8", "--store", f"sqlite:///{db}") as server:
        yield server


@pytest.fixture
def emu(four_workers):
    requests.post(four_workers.url + "/_emulator/reset", timeout=10).raise_for_status()
    return four_workers


def concurrently(calls: list) -> list:
    """Run the calls at the same moment, each on its own connection, so they spread over the workers."""
    barrier = Barrier(len(calls))

    def run(call):
        barrier.wait(10)
        with requests.Session() as session:
            return call(session)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def clock_on_every_worker(url: str, rounds: int = 10) -> dict[int, float]:
    """The clock offset as each worker sees it; bounded rounds of concurrent reads until all answered."""
    seen: dict[int, set[float]] = {}
    for _ in range(rounds):
        answers = concurrently([lambda s: s.get(url + "/_emulator/clock", timeout=10).json()] * PARALLEL)
        for a in answers:
            seen.setdefault(a["worker_pid"], set()).add(a["offset"])
        if len(seen) == WORKERS:
            break
    assert len(seen) == WORKERS, f"only {len(seen)} workers answered"
    assert all(len(offsets) == 1 for offsets in seen.values()), seen
    return {pid: offsets.pop() for pid, offsets in seen.items()}


def validate_all(url: str, tokens: list[str], headers=DEMO) -> list[dict]:
    calls = [lambda s, t=t: s.post(url + "/v1/validate", json={"pass_token": t}, headers=headers, timeout=10).json()
             for t in tokens]
    return [a["data"] for a in concurrently(calls)]


def test_clock_offset_and_advance_reach_every_worker_at_once(emu):
    assert set(clock_on_every_worker(emu.url).values()) == {0.0}
    requests.put(emu.url + "/_emulator/clock", json={"offset": 1000}, timeout=10).raise_for_status()
    assert set(clock_on_every_worker(emu.url).values()) == {1000.0}

    tokens = [emu.mint(ttl=60) for _ in range(PARALLEL)]
    requests.post(emu.url + "/_emulator/clock/advance", json={"seconds": 61}, timeout=10).raise_for_status()
    assert set(clock_on_every_worker(emu.url).values()) == {1061.0}
    answers = validate_all(emu.url, tokens)
    assert all(a == {"valid": False, "error": "token_expired"} for a in answers), answers
    entries = requests.get(emu.url + "/_emulator/requests?code=token_expired", timeout=10).json()["requests"]
    assert len(entries) == PARALLEL and len({e["worker_pid"] for e in entries}) >= 2
    assert all(re.fullmatch(r"token expired \d+ s ago \(lifetime 60 s\)", e["reason"]) for e in entries)


def test_a_full_reset_reaches_every_worker_at_once(emu):
    tokens = [emu.mint() for _ in range(PARALLEL)]
    assert all(a["valid"] for a in validate_all(emu.url, tokens))
    requests.post(emu.url + "/_emulator/clock/advance", json={"seconds": 30}, timeout=10).raise_for_status()
    assert set(clock_on_every_worker(emu.url).values()) == {30.0}

    requests.post(emu.url + "/_emulator/reset", timeout=10).raise_for_status()
    assert set(clock_on_every_worker(emu.url).values()) == {0.0}
    journals = concurrently([lambda s: s.get(emu.url + "/_emulator/requests", timeout=10).json()] * PARALLEL)
    assert all(j["requests"] == [] for j in journals)
    again = validate_all(emu.url, tokens)  # consumed ids were forgotten by every worker
    assert all(a["valid"] for a in again), again
    workers = {e["worker_pid"] for e in requests.get(emu.url + "/_emulator/requests?endpoint=validate",
                                                     timeout=10).json()["requests"]}
    assert len(workers) >= 2


def test_a_scoped_reset_reaches_every_worker_and_spares_other_apps(emu):
    demo = [emu.mint() for _ in range(PARALLEL // 2)]
    auto = [emu.mint(app_key="auto_pass_app") for _ in range(PARALLEL // 2)]
    validate_all(emu.url, demo)
    validate_all(emu.url, auto, AUTO)
    requests.put(emu.url + "/_emulator/clock", json={"offset": 5}, timeout=10).raise_for_status()

    requests.post(emu.url + "/_emulator/reset?app_key=demo_app", timeout=10).raise_for_status()
    assert all(a["valid"] for a in validate_all(emu.url, demo))
    assert all(a.get("error") == "token_consumed" for a in validate_all(emu.url, auto, AUTO))
    assert set(clock_on_every_worker(emu.url).values()) == {5.0}  # the clock is global: a scoped reset keeps it


# --- admin token ------------------------------------------------------------------------

def control_routes() -> list[tuple[str, str]]:
    """Every (method, path) under /_emulator/ that this build serves, placeholders filled in."""
    app = create_app(Settings(store="memory://", secret="x", quiet=True))
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/_emulator"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", lambda m: "dashboard.js" if m.group(1) == "filename" else "pt_x",
                      rule.rule)
        routes += [(method, path) for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return routes


def test_the_route_list_covers_the_whole_control_plane():
    paths = {path for _, path in control_routes()}
    assert {"/_emulator/", "/_emulator/health", "/_emulator/reset", "/_emulator/pass-tokens", "/_emulator/apps",
            "/_emulator/requests", "/_emulator/requests/wait", "/_emulator/tokens/pt_x", "/_emulator/clock",
            "/_emulator/clock/advance"} <= paths


def test_admin_token_guards_every_control_endpoint_but_not_the_real_api(tmp_path):
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with running_emulator("--workers", "2", "--store", db, "--admin-token", "s3cret") as server:
        url = server.url
        for method, path in control_routes():
            for headers, query in (({}, ""), ({"Authorization": "Bearer wrong"}, ""), ({}, "?admin_token=wrong"),
                                   ({"Authorization": "Basic czNjcmV0"}, "")):
                response = requests.request(method, url + path + query, headers=headers, timeout=10)
                assert response.status_code == 401, (method, path, headers, query, response.text)
                assert response.json()["error"] == "unauthorized"
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            quick = "?timeout=0" if path.endswith("/wait") else ""  # do not long-poll here
            allowed = requests.request(method, url + path + quick, headers={"Authorization": "Bearer s3cret"},
                                       json={} if method != "GET" else None, timeout=10)
            assert allowed.status_code != 401 and allowed.status_code < 500, (method, path, allowed.text)

        token = server.mint()  # sends the admin token
        body = requests.post(url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=10).json()
        assert body["data"]["valid"] is True
        issued = requests.post(url + "/v1/server/challenge/issue", json={"action": "login"}, headers=DEMO,
                               timeout=10).json()
        assert issued["data"]["server_token"].startswith("sct_")
        moderation = requests.post(url + "/v1/moderation/text", json={"text": "hello"}, headers=DEMO, timeout=10).json()
        assert moderation["code"] == 0
        assert requests.get(url + "/_emulator/?admin_token=s3cret", timeout=10).status_code == 200


def test_gunicorn_workers_log_one_redacted_json_line_per_api_request(tmp_path):
    db = f"sqlite:///{tmp_path / 'state.db'}"
    with running_emulator("--workers", "2", "--store", db, "--log-format", "json") as server:
        token = server.mint()
        for _ in range(2):
            requests.post(server.url + "/v1/validate", json={"pass_token": token}, headers=DEMO, timeout=10)
        entries = requests.get(server.url + "/_emulator/requests?endpoint=validate", timeout=10).json()["requests"]
        fp = entries[0]["token_fp"]
        lines = wait_for_lines(server, lambda line: fp in line, count=2)
    records = [json.loads(line) for line in lines]
    assert [(r["path"], r["outcome"], r.get("code")) for r in records] == [
        ("/v1/validate", "valid", None), ("/v1/validate", "rejected", "token_consumed")]
    log = "".join(line for line in server.output if line.startswith("{"))
    assert log.count("\n") == 2, "one line per API request (the control plane is not request-logged)"
    assert token not in log and token[3:30] not in log and "demo_secret" not in log


def wait_for_lines(server, match, count: int, timeout: float = 10) -> list[str]:
    """The server's output lines that match, once `count` of them were printed (bounded polling)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in list(server.output) if match(line)]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)  # polling for output to be flushed, not waiting for time to pass
    raise AssertionError(f"expected {count} log lines, got: {''.join(server.output)[-2000:]}")
