"""The bench's verdicts (issue 11): ratios to the floor, and for the throughput targets the
median over runs each taken right after a floor run. Pure functions over result dicts."""

from __future__ import annotations

from emulator.bench import report


def run(rps: float, cpu: float, p99: float, starved: int = 0) -> dict:
    return {"rps": rps, "cpu_us_per_request": cpu, "p99_ms": p99, "p50_ms": 1.0, "error_count": 0,
            "starved": starved}


def test_a_pair_compares_the_target_with_the_floor_run_just_before_it():
    got = report.pair(run(8000, 200, 10), run(6000, 300, 5, starved=3))
    assert (got["rps_ratio"], got["cpu_ratio"], got["p99_ratio"]) == (0.75, 1.5, 0.5)
    assert (got["floor_rps"], got["target_rps"], got["target_starved"]) == (8000, 6000, 3)


def test_the_verdict_is_the_median_of_the_pairs_not_any_single_run():
    """A floor run taken in a fast moment makes one pair's ratio low; the median keeps it out."""
    pairs = [report.pair(run(9000, 180, 10), run(5400, 300, 5)),  # 0.6
             report.pair(run(7000, 230, 10), run(5600, 290, 5)),  # 0.8
             report.pair(run(7500, 220, 10), run(5625, 300, 5))]  # 0.75
    summary = report.summarize_pairs(pairs)
    assert summary["rps_ratio_median"] == 0.75
    results = {"throughput": {"floor": run(9000, 180, 10), "issue_sqlite": {**run(5400, 300, 5), "paired": summary}},
               "not_measured": {}}
    issue = next(t for t in report.targets(results) if t["target"].startswith("issue"))
    assert (issue["value"], issue["verdict"]) == (0.75, "MISSED")
    report.add_ratios(results)
    assert results["throughput"]["issue_sqlite"]["rps_vs_floor"] == 0.75
    assert "0.6 0.8 0.75 (median 0.75)" in report.table(results)


def test_an_even_number_of_pairs_takes_the_mean_of_the_middle_two():
    pairs = [report.pair(run(1000, 100, 1), run(r, 100, 1)) for r in (600, 700, 800, 900)]
    assert report.summarize_pairs(pairs)["rps_ratio_median"] == 0.75


def test_without_pairs_a_target_is_compared_with_the_floors_one_run():
    results = {"throughput": {"floor": run(8000, 200, 10), "emulator_redis": run(4000, 400, 20)}, "not_measured": {}}
    redis = next(t for t in report.targets(results) if "Redis" in t["target"])
    assert (redis["value"], redis["verdict"]) == (0.5, "met")


def test_a_pair_missing_a_figure_gives_no_median_rather_than_a_wrong_one():
    pairs = [report.pair(run(1000, 100, 1), run(800, 100, 1)), report.pair({"rps": None}, run(800, 100, 1))]
    assert report.summarize_pairs(pairs)["rps_ratio_median"] is None


def test_a_run_that_ran_out_of_fresh_tokens_is_left_out_of_the_median():
    """Its last requests were cheap rejections: counting it would flatter the emulator."""
    pairs = [report.pair(run(1000, 100, 1), run(600, 100, 1)),
             report.pair(run(1000, 100, 1), run(650, 100, 1)),
             report.pair(run(1000, 100, 1), run(990, 50, 1, starved=4000))]
    summary = report.summarize_pairs(pairs)
    assert (summary["rps_ratio_median"], summary["starved_pairs"]) == (0.625, 1)
    assert report.summarize_pairs(pairs[2:])["rps_ratio_median"] is None


def test_cold_starts_alternate_between_targets_so_drift_falls_on_each_alike(monkeypatch, tmp_path):
    """All emulator starts then all floor starts put a drifting machine's slow minutes on one of
    them (1.43 x in one run, 1.05 x interleaved on the same machine minutes later)."""
    from emulator.bench import runner, targets

    started: list[str] = []

    class Started:
        def __init__(self, name: str, seconds: float) -> None:
            started.append(name)
            self.ready_s = seconds

        def stop(self) -> None:
            pass

    monkeypatch.setattr(targets, "start_emulator", lambda *a, **k: Started("emulator", 0.3))
    monkeypatch.setattr(targets, "start_floor", lambda *a, **k: Started("floor", 0.2))
    bench = runner.Bench(runner.Options(work_dir=tmp_path, cache_dir=tmp_path, cold_runs=3), log=lambda line: None)
    bench.cold_starts()
    assert started == ["emulator", "floor"] * 3
    assert bench.results["cold_start"]["emulator"] == {"median_s": 0.3, "runs_s": [0.3, 0.3, 0.3]}
    assert bench.results["cold_start"]["floor"]["median_s"] == 0.2


def test_the_profiled_run_is_an_extra_run_after_the_pairs_and_never_one_of_them(tmp_path):
    """py-spy takes CPU from the same two cores: the run it samples is slower (0.643 x against 0.783
    and 0.696 x for issue in one bench), so it must not be a pair; its own figures are shown. It
    comes after the pairs: every validate run grows the consumed table, and the pairs measure
    validate on the table they always did."""
    from emulator.bench import runner

    calls: list[bool] = []
    target_rps = iter([6000, 6100, 6200, 3000])  # the pairs' runs, then the profiled run

    def measure(profile: bool) -> dict:
        calls.append(profile)
        out = run(next(target_rps), 300, 5)
        if profile:
            out["profile"] = {"pid": 1, "samples": 10}
        return out

    bench = runner.Bench(runner.Options(work_dir=tmp_path, cache_dir=tmp_path, profile_worker=True, pairs=3),
                         log=lambda line: None)
    bench.floor_proc = object()  # type: ignore[assignment]  # anything not None: floor_run is replaced
    bench.floor_run = lambda **kw: run(8000, 200, 10)  # type: ignore[method-assign]
    got = bench.paired(measure)
    assert calls == [False, False, False, True]
    assert [p["target_rps"] for p in got["paired"]["pairs"]] == [6000, 6100, 6200]
    assert got["paired"]["rps_ratio_median"] == 0.762
    assert got["rps"] == 6000 and got["profile"] == {"pid": 1, "samples": 10}
    assert got["profiled_run"] == {"rps": 3000, "cpu_us_per_request": 300}
    assert "profiled run (not one of the pairs): 3000 req/s" in "\n".join(
        report.profiled_run_lines("(d) issue", got))


def test_without_profiling_every_run_is_a_pair(tmp_path):
    from emulator.bench import runner

    calls: list[bool] = []
    bench = runner.Bench(runner.Options(work_dir=tmp_path, cache_dir=tmp_path, pairs=2), log=lambda line: None)
    bench.floor_proc = object()  # type: ignore[assignment]  # anything not None: floor_run is replaced
    bench.floor_run = lambda **kw: run(8000, 200, 10)  # type: ignore[method-assign]
    def measure(profile: bool) -> dict:
        calls.append(profile)
        return run(6000, 300, 5)

    got = bench.paired(measure)
    assert calls == [False, False] and len(got["paired"]["pairs"]) == 2 and "profiled_run" not in got


def test_the_store_is_counted_only_once_requests_held_by_a_latency_rule_have_answered(monkeypatch):
    """wrk stops with requests still sleeping in a 200 ms latency rule; they consume afterwards.
    Counted and purged before they land, they left 47 rows behind a purge in one run."""
    from emulator.bench import admin

    latest = iter([10, 14, 15, 15, 15, 15, 15, 15])
    now = [0.0]
    polled: list[str] = []
    def call(url: str, *args, **kwargs) -> dict:
        polled.append(url)
        return {"latest_id": next(latest)}

    monkeypatch.setattr(admin, "call", call)
    settled = admin.wait_quiet("http://emu", quiet_s=0.5, poll_s=0.125, clock=lambda: now[0],
                               sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert settled and len(polled) == 7  # 10, 14, 15 (moved at t=0.25), then quiet until t=0.75
    assert polled[0] == "http://emu/_emulator/requests?limit=1"


def test_waiting_for_quiet_gives_up_on_a_server_that_never_settles(monkeypatch):
    from emulator.bench import admin

    counter = iter(range(10_000))
    now = [0.0]
    monkeypatch.setattr(admin, "call", lambda url, *a, **k: {"latest_id": next(counter)})
    assert not admin.wait_quiet("http://emu", quiet_s=0.4, timeout_s=5, poll_s=0.1, clock=lambda: now[0],
                                sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert now[0] < 5.2
