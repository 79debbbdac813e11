"""One benchmark run: every target started in turn on the same gunicorn settings, driven by
wrk, measured, stopped. A section that cannot run is recorded as not measured, with why."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from . import admin, procs, report, targets, wrk
from .minting import mint_tokens
from .peers import Peers, install
from .profiler import profiling
from .spread import sampling

CLOCK_BACK_S = 7200  # tokens are minted and validated with the virtual clock this far back...
TOKEN_TTL_S = 3600  # ...and live this long, so resetting the clock expires every one of them
# The second round's tokens must expire after the purge horizon the first round's purge left
# (the store refuses any expiry at or before it), and still before real time.
ROUND2_CLOCK_BACK_S = CLOCK_BACK_S - TOKEN_TTL_S // 2
PEER_WARMUP_S = 5
PAIR_TOKENS_PER_S = 8000  # fresh tokens minted per second of each paired validate run (above any rate seen)
DEMO = (("BENCH_APP_KEY", "demo_app"), ("BENCH_APP_SECRET", "demo_secret"))


@dataclass(frozen=True)
class Options:
    work_dir: Path
    cache_dir: Path
    duration_s: int = 10
    warmup_s: int = 2
    connections: int = 32
    wrk_threads: int = 2
    workers: int = 2
    threads: int = 64
    worker_class: str = "gevent"
    profile_worker: bool = False
    validations: int = 100_000
    cold_runs: int = 5
    fault_delay_ms: int = 200
    fault_connections: tuple[int, ...] = (64, 256)
    peers: bool = True
    redis: bool = True
    spread_trials: int = 3
    pairs: int = 3


@dataclass
class Tokens:
    """A file of fresh tokens handed out in slices, so no run ever reuses one."""

    path: Path
    total: int
    next: int = 0

    def env(self, limit: int, marker: Path | None = None) -> tuple[tuple[str, str], ...]:
        env = (*DEMO, ("BENCH_TOKENS", str(self.path)), ("BENCH_SKIP", str(self.next)), ("BENCH_LIMIT", str(limit)))
        return env + ((("BENCH_MARKER", str(marker)),) if marker else ())

    def used(self, count: int) -> None:
        self.next = min(self.total, self.next + count)

    @property
    def left(self) -> int:
        return self.total - self.next


@dataclass
class Bench:
    o: Options
    log: Callable[[str], None]
    results: dict = field(default_factory=lambda: {"throughput": {}, "memory": {}, "cold_start": {},
                                                   "not_measured": {}})
    peers: Peers | None = None
    floor_proc: procs.Proc | None = None  # kept running from the floor section on, for the pairs

    # --- the whole run ------------------------------------------------------------
    def run(self) -> dict:
        self.results["meta"] = self.meta()
        if self.o.spread_trials:
            self.section("connection_spread", self.connection_spread)
        try:
            self.section("floor", self.floor)
            self.section("emulator_sqlite", self.emulator_sqlite)
            if self.o.redis:
                self.section("emulator_redis", self.emulator_redis)
        finally:
            if self.floor_proc is not None:
                self.floor_proc.stop()
                self.floor_proc = None
        if self.o.peers:
            self.section("peers", self.install_peers)
            if self.peers:
                self.section("wiremock", lambda: self.peer("wiremock", targets.start_wiremock))
                self.section("mockoon", lambda: self.peer("mockoon", targets.start_mockoon))
        self.section("cold_start", self.cold_starts)
        return self.results

    @property
    def model(self) -> dict:
        """The gunicorn settings every Flask target runs on (the floor's are the emulator's)."""
        return {"workers": self.o.workers, "threads": self.o.threads, "worker_class": self.o.worker_class}

    def section(self, name: str, fn: Callable[[], None]) -> None:
        self.log(f"== {name}")
        try:
            fn()
        except Exception as exc:  # one broken section must not lose the others' figures
            self.results["not_measured"][name] = f"{type(exc).__name__}: {exc}"[:600]
            self.log(f"   not measured: {exc}")

    def meta(self) -> dict:
        wrk_version = subprocess.run([wrk.wrk_path(), "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        import gunicorn

        return {"emulator_version": __version__, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "cpus": os.cpu_count(), "python": platform.python_version(), "gunicorn": gunicorn.__version__,
                "wrk": wrk_version.strip(), "options": {k: str(v) for k, v in asdict(self.o).items()}}

    # --- helpers ------------------------------------------------------------------
    def load(self, proc: procs.Proc, path: str, *, script: str = wrk.STATIC_POST, env=(), duration: int | None = None,
             connections: int | None = None, spread: bool = True, profile: bool = False) -> dict:
        """One timed wrk run: its figures, the server's CPU per request (master and workers, from
        /proc), the connection spread over workers and, with --profile-worker, a py-spy summary."""
        load = wrk.Load(proc.url + path, connections or self.o.connections, self.o.wrk_threads,
                        duration or self.o.duration_s, script, tuple(env))
        pids = proc.tree()
        cpu_before = procs.cpu_seconds(pids)
        with sampling(proc if spread else None) as sampler, \
                profiling(proc, load.duration_s, self.o.work_dir, profile and self.o.profile_worker) as prof:
            result = wrk.run(load, self.o.work_dir)
        cpu = procs.cpu_seconds(pids) - cpu_before
        result["cpu_us_per_request"] = round(cpu * 1e6 / result["requests"]) if result["requests"] else None
        if sampler is not None:
            result["spread"] = sampler.summary()
        if prof is not None:
            result["profile"] = {"pid": prof.pid, **prof.summary}
        return result

    def paired(self, measure: Callable[[bool], dict]) -> dict:
        """The target measured `pairs` times, each run right after a floor run: a machine that
        drifts between the floor's one run and the target's (these move by 10 % and more within
        minutes) moves both runs of a pair alike. With --profile-worker, one more run comes last,
        sampled by py-spy (`measure(True)`): the sampler takes CPU from the same cores, so that run
        is never a pair; its figures stay under `profiled_run` beside its profile. Last, because
        every validate run grows the consumed table the next one works on. Returns the first
        paired run with the pairs and their median ratios under `paired`."""
        first: dict | None = None
        pairs: list[dict] = []
        for _ in range(max(1, self.o.pairs)):
            floor = self.floor_run() if self.floor_proc is not None else None
            result = measure(False)
            first = first or result
            if floor is not None:
                pairs.append(report.pair(floor, result))
        assert first is not None
        if pairs:
            first["paired"] = report.summarize_pairs(pairs)
        profiled = measure(True) if self.o.profile_worker else None
        if profiled is not None:
            first["profiled_run"] = {key: profiled.get(key) for key in ("rps", "cpu_us_per_request")}
            if "profile" in profiled:
                first["profile"] = profiled["profile"]
        return first

    def floor_run(self, *, duration: int | None = None, spread: bool = False) -> dict:
        assert self.floor_proc is not None
        return self.load(self.floor_proc, targets.VALIDATE_PATH, env=self.static_env({"pass_token": "pt_static"}),
                         duration=duration, spread=spread)

    def static_env(self, body: dict) -> tuple:
        return (*DEMO, ("BENCH_BODY", json.dumps(body)))

    def validate_fresh(self, proc: procs.Proc, tokens: Tokens, store_url: str, *, duration: int,
                       limit: int, connections: int | None = None, spread: bool = True, profile: bool = False) -> dict:
        """Timed validate load on fresh tokens; checks every answer consumed a token."""
        before = store_stats(store_url).get("consumed", 0)
        result = self.load(proc, targets.VALIDATE_PATH, script=wrk.FRESH_TOKENS, env=tokens.env(limit),
                           duration=duration, connections=connections, spread=spread, profile=profile)
        tokens.used(result.pop("tokens_sent_upto"))  # the threads' interleaved slices end unevenly
        result["tokens_consumed"] = store_stats(store_url).get("consumed", 0) - before
        return result

    def remember(self, name: str, result: dict, proc: procs.Proc | None = None) -> None:
        self.results["throughput"][name] = result
        if proc is not None:
            self.results["memory"][name] = procs.memory(proc)
        spread = result.get("spread", {}).get("label", "")
        self.log(f"   {name}: {result['rps']:.0f} req/s  p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
                 f"  CPU {result['cpu_us_per_request']} us/req  errors {result['error_count']}"
                 f"  starved {result['starved']}  spread {spread}")
        if result.get("paired"):
            self.log(f"   {name}, {report.pairs_line(result['paired'])}")

    # --- sections -----------------------------------------------------------------
    def floor(self) -> None:
        """The floor's own row; it then stays up, idle, for the targets' pairs."""
        self.floor_proc = proc = targets.start_floor(self.o.work_dir, **self.model)  # run() stops it
        try:
            self.floor_run(duration=self.o.warmup_s)
            self.remember("floor", self.floor_run(spread=True), proc)
        except BaseException:  # a floor that failed its own run pairs with nothing
            self.floor_proc = None
            proc.stop()
            raise

    def connection_spread(self) -> None:
        """The measurement behind server.py's reuse_port: the floor, restarted for each short
        run, with one shared listening socket and with one SO_REUSEPORT socket per worker."""
        models = {"shared_socket": ("--set", "reuse_port=false"), "reuse_port": ()}
        body = self.static_env({"pass_token": "pt_static"})
        out: dict[str, list] = {}
        for model, extra in models.items():
            for _ in range(self.o.spread_trials):
                proc = targets.start_floor(self.o.work_dir, **self.model, extra=extra)
                try:
                    self.load(proc, targets.VALIDATE_PATH, env=body, duration=1, spread=False)
                    run = self.load(proc, targets.VALIDATE_PATH, env=body, duration=3)
                finally:
                    proc.stop()
                out.setdefault(model, []).append({"split": run["spread"]["label"], "rps": run["rps"],
                                                  "busiest_share": run["spread"]["busiest_share"]})
            self.log(f"   {model}: " + "  ".join(f"{r['split']} ({r['rps']:.0f}/s)" for r in out[model]))
        self.results["connection_spread"] = out

    def emulator_sqlite(self) -> None:
        store = f"sqlite:///{self.o.work_dir / 'bench-store.db'}"
        proc = targets.start_emulator(self.o.work_dir, store, **self.model)
        try:
            admin.set_clock_offset(proc.url, -CLOCK_BACK_S)
            count = max(self.o.validations, self.pair_token_budget()) + 5000 + self.fault_token_budget()
            self.log(f"   minting {count} tokens through /_emulator/pass-tokens ...")
            started = time.perf_counter()
            mint_tokens(proc.url, count, self.o.work_dir / "tokens.txt", self.o.work_dir, ttl=TOKEN_TTL_S)
            self.tokens = Tokens(self.o.work_dir / "tokens.txt", count)
            self.results["minting"] = {"tokens": count, "seconds": round(time.perf_counter() - started, 1)}
            reserve = self.fault_token_budget()
            warmup = max(1000, min(20_000, (self.tokens.left - reserve) // 4))  # a small run must not starve
            self.validate_fresh(proc, self.tokens, store, duration=self.o.warmup_s, limit=warmup, spread=False)
            result = self.paired(lambda profile: self.validate_fresh(
                proc, self.tokens, store, duration=self.o.duration_s, limit=max(1000, self.tokens.left - reserve),
                profile=profile))
            self.remember("emulator_sqlite", result, proc)
            self.section("issue_sqlite", lambda: self.issue(proc))
            self.section("latency_fault", lambda: self.latency_fault(proc, store))
            self.section("store_size", lambda: self.store_size(proc, store))
        finally:
            proc.stop()

    def issue(self, proc: procs.Proc) -> None:
        env = self.static_env({"action": "login"})
        self.load(proc, targets.ISSUE_PATH, env=env, duration=self.o.warmup_s, spread=False)
        self.remember("issue_sqlite", self.paired(lambda profile: self.load(proc, targets.ISSUE_PATH, env=env,
                                                                           profile=profile)))

    def pair_token_budget(self) -> int:
        """Fresh tokens for every paired validate run, the profiled run and the warmup before them."""
        runs = max(1, self.o.pairs) + (1 if self.o.profile_worker else 0)
        return (runs * self.o.duration_s + self.o.warmup_s) * PAIR_TOKENS_PER_S

    def fault_token_budget(self) -> int:
        per_s = sum(self.o.fault_connections) * 1000 / self.o.fault_delay_ms
        return int(per_s * self.o.duration_s * 1.5) + 2000

    def latency_fault(self, proc: procs.Proc, store: str) -> None:
        """A latency rule on validate, at each of `fault_connections`: waiting must cost nothing,
        so req/s ~ connections / delay and p50 ~ the configured delay."""
        profile = {"name": "bench-latency", "rules": [
            {"name": "slow", "match": {"endpoint": "validate"}, "effect": {"latency_ms": self.o.fault_delay_ms}}]}
        delay = self.o.fault_delay_ms
        self.results["latency_fault"] = []
        for connections in self.o.fault_connections:
            try:
                admin.put_profile(proc.url, profile)
            except admin.Missing as exc:
                raise RuntimeError(f"no fault profiles in this build ({exc})") from None
            try:
                result = self.validate_fresh(proc, self.tokens, store, duration=self.o.duration_s,
                                             limit=self.fault_token_budget(), connections=connections)
            finally:
                admin.delete_profile(proc.url)
            result["in_app"] = self.in_app_durations(proc)
            result.update(configured_ms=delay, connections=connections,
                          ideal_rps=round(connections * 1000 / delay),
                          p50_error_pct=round((result["p50_ms"] - delay) / delay * 100, 2),
                          p99_error_pct=round((result["p99_ms"] - delay) / delay * 100, 2))
            self.results["latency_fault"].append(result)
            self.log(f"   latency fault {delay} ms @ {connections} conns: {result['rps']:.0f} req/s "
                     f"(ideal {result['ideal_rps']}), p50 {result['p50_ms']:.1f} ms "
                     f"({result['p50_error_pct']:+.1f} %), "
                     f"p99 {result['p99_ms']:.1f} ms, spread {result.get('spread', {}).get('label')}; "
                     f"inside the app: {result['in_app']}")

    def in_app_durations(self, proc: procs.Proc) -> dict:
        """Where the time goes: the journal's own duration (view start to answer, sleep included)
        of the latest faulted validates, against what wrk saw from outside."""
        rows = admin.call(proc.url + "/_emulator/requests?endpoint=validate&limit=1000").get("requests", [])
        durations = sorted(r["duration_ms"] for r in rows if r.get("fault") and r.get("duration_ms") is not None)
        if not durations:
            return {}
        pick = lambda q: round(durations[min(len(durations) - 1, int(q * len(durations)))], 2)  # noqa: E731
        return {"entries": len(durations), "p50_ms": pick(0.5), "p99_ms": pick(0.99)}

    def store_size(self, proc: procs.Proc, store: str) -> None:
        """Validate until the store has seen `validations` consumes, expire them all and purge;
        then a second, smaller round on new tokens: the file must not grow (freed pages are reused)."""
        target = self.o.validations - store_stats(store).get("consumed", 0)
        if target > 0:
            self.log(f"   validating {target} more fresh tokens (store-size phase) ...")
            self.validate_all(proc, self.tokens, min(target, self.tokens.left))
        first = self.expire_and_purge(proc, store)
        count = max(1000, self.o.validations // 5)
        self.log(f"   second round: minting and validating {count} more tokens ...")
        admin.set_clock_offset(proc.url, -ROUND2_CLOCK_BACK_S)
        path = self.o.work_dir / "tokens-round2.txt"
        mint_tokens(proc.url, count, path, self.o.work_dir, ttl=TOKEN_TTL_S)
        self.validate_all(proc, Tokens(path, count), count)
        second = self.expire_and_purge(proc, store)
        self.results["store"] = {"validations": first["full"].get("consumed", 0), "after_validations": first["full"],
                                 "purged_rows": first["purged"], "after_expiry_and_purge": first["after"],
                                 "second_round": {"validations": second["full"].get("consumed", 0), **second}}
        self.log(f"   store after {first['full'].get('consumed')} validations: {first['full']}; after expiry + purge: "
                 f"{first['after']}; second round of {count}: {second['full']} -> {second['after']}")

    def validate_all(self, proc: procs.Proc, tokens: Tokens, count: int) -> None:
        """Validate exactly the next `count` tokens, as fast as wrk goes, then stop."""
        marker = self.o.work_dir / f"fill-{tokens.next}"
        load = wrk.Load(proc.url + targets.VALIDATE_PATH, self.o.connections, self.o.wrk_threads, 900,
                        wrk.FRESH_TOKENS, tokens.env(count, marker))
        argv, env = wrk.command(load, self.o.work_dir)
        wrk.run_until_markers(argv, env, [Path(f"{marker}.{n}") for n in range(self.o.wrk_threads)], 900)
        tokens.used(count)

    def expire_and_purge(self, proc: procs.Proc, store: str) -> dict:
        # requests a latency rule still held when wrk stopped would consume after the purge
        # (47 rows left over in one run); they must answer before anything is counted
        if not admin.wait_quiet(proc.url, quiet_s=max(1.0, 2 * self.o.fault_delay_ms / 1000)):
            raise RuntimeError("the emulator never went quiet: requests kept arriving after wrk stopped")
        full = {**store_stats(store), **file_sizes(store)}
        admin.set_clock_offset(proc.url, 0)  # back to real time: every minted token is now expired
        purged = purge(store)
        return {"full": full, "purged": purged, "after": {**store_stats(store), **file_sizes(store)}}

    def emulator_redis(self) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed")
        if not getattr(self, "tokens", None):
            raise RuntimeError("no tokens (the SQLite section failed)")
        redis = targets.start_redis(self.o.work_dir)
        url = redis.url + "/0"
        try:
            proc = targets.start_emulator(self.o.work_dir, url, **self.model,
                                          name="emulator-redis")
            try:
                admin.set_clock_offset(proc.url, -CLOCK_BACK_S)
                tokens = Tokens(self.tokens.path, self.tokens.total)  # fresh in this store
                warmup = max(1000, min(20_000, tokens.left // 4))
                self.validate_fresh(proc, tokens, url, duration=self.o.warmup_s, limit=warmup, spread=False)
                result = self.paired(lambda profile: self.validate_fresh(
                    proc, tokens, url, duration=self.o.duration_s, limit=tokens.left, profile=profile))
                self.remember("emulator_redis", result, proc)
                self.results["memory"]["redis_server"] = procs.memory(redis)
            finally:
                proc.stop()
        finally:
            redis.stop()

    def install_peers(self) -> None:
        self.peers = install(self.o.cache_dir, self.log)

    def peer(self, name: str, start: Callable) -> None:
        proc = start(self.peers, self.o.work_dir)
        try:
            body = self.static_env({"pass_token": "pt_static"})
            warmup = max(self.o.warmup_s, PEER_WARMUP_S)  # the JVM and V8 need their JIT warm
            self.load(proc, targets.VALIDATE_PATH, env=body, duration=warmup, spread=False)
            self.remember(name, self.load(proc, targets.VALIDATE_PATH, env=body, spread=False), proc)
        finally:
            proc.stop()

    def cold_starts(self) -> None:
        starters: dict[str, Callable[[int], procs.Proc]] = {
            "emulator": lambda n: targets.start_emulator(
                self.o.work_dir, f"sqlite:///{self.o.work_dir / f'cold-{n}.db'}", **self.model, name="emulator-cold"),
            "floor": lambda n: targets.start_floor(self.o.work_dir, **self.model),
        }
        peers = self.peers
        if peers:
            starters["wiremock"] = lambda n: targets.start_wiremock(peers, self.o.work_dir)
            starters["mockoon"] = lambda n: targets.start_mockoon(peers, self.o.work_dir)
        times: dict[str, list[float]] = {name: [] for name in starters}
        for n in range(self.o.cold_runs):  # one start of each in turn: a slow minute falls on all alike
            for name, start in starters.items():
                proc = start(n)
                assert proc.ready_s is not None  # set once the process answered healthy
                times[name].append(proc.ready_s)
                proc.stop()
        for name, runs in times.items():
            self.results["cold_start"][name] = {"median_s": round(statistics.median(runs), 3),
                                                "runs_s": [round(t, 3) for t in runs]}
            self.log(f"   cold start {name}: median {statistics.median(runs):.3f} s")


def store_stats(url: str) -> dict:
    from ..store import open_store

    store = open_store(url)
    try:
        return store.stats()
    finally:
        store.close()


def file_sizes(url: str) -> dict:
    """The SQLite database file and its WAL, in MiB (pages freed by a purge are reused, not returned)."""
    path = Path(url[len("sqlite:///"):])
    return {f"{label}_mib": round(p.stat().st_size / 2**20, 2)
            for label, p in (("db", path), ("wal", Path(f"{path}-wal"))) if p.exists()}


def purge(url: str) -> int:
    """What a worker's janitor does, run once now (it purges on its own at most every 30 s)."""
    from ..domain.clock import Clock
    from ..domain.janitor import Janitor
    from ..store import open_store

    store = open_store(url)
    try:
        return Janitor(store, Clock(store)).purge()
    finally:
        store.close()
