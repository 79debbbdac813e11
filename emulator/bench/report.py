"""Turn one run's figures into ratios, target verdicts, a table for stdout and a JSON file.

Every speed figure is read as a ratio to a baseline measured in the same run: these
machines are too noisy for absolute numbers to mean anything across runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from . import profiler

ROWS = (("floor", "(a) bare Flask floor, static JSON"), ("emulator_sqlite", "(b) emulator validate, SQLite"),
        ("emulator_redis", "(c) emulator validate, Redis"), ("issue_sqlite", "(d) emulator issue sct_, SQLite"),
        ("wiremock", "(e) WireMock 3.13 static stub"), ("mockoon", "(e) Mockoon CLI static route"))


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


# What a pair compares: the target's run to the floor's run just before it (issue 11's figures).
PAIRED = (("rps", "rps"), ("cpu", "cpu_us_per_request"), ("p99", "p99_ms"))


def pair(floor: dict, target: dict) -> dict:
    """One floor run and the target run right after it: both runs' figures and their ratios."""
    out: dict[str, Any] = {}
    for name, key in PAIRED:
        out[f"floor_{name}"], out[f"target_{name}"] = floor.get(key), target.get(key)
        out[f"{name}_ratio"] = ratio(target.get(key), floor.get(key))
    out["target_starved"] = target.get("starved", 0)  # a run out of fresh tokens answers faster: shown, never hidden
    return out


def summarize_pairs(pairs: list[dict]) -> dict:
    """The pairs and, per figure, the median of their ratios (the middle one of an odd count, the
    mean of the middle two of an even one); None when a pair lacks the figure. A run that ran out
    of fresh tokens answered its last requests with a cheap rejection, so it measured nothing:
    such pairs are left out of the medians (and counted)."""
    counted = [p for p in pairs if not p.get("target_starved")]
    out: dict[str, Any] = {"pairs": pairs, "starved_pairs": len(pairs) - len(counted)}
    for name, _ in PAIRED:
        values = [p[f"{name}_ratio"] for p in counted]
        out[f"{name}_ratio_median"] = round(statistics.median(values), 3) \
            if values and None not in values else None
    return out


def pairs_line(paired: dict) -> str:
    """A target's pairs in one line: each pair's ratios and their median, per figure."""
    return (f"each run right after a floor run ({len(paired['pairs'])} pairs): " + "; ".join(
        f"{name} x " + " ".join(_fmt(p[f'{name}_ratio']) for p in paired["pairs"])
        + f" (median {_fmt(paired[f'{name}_ratio_median'])})" for name, _ in PAIRED)
        + (f"; {paired['starved_pairs']} run(s) out of fresh tokens left out" if paired.get("starved_pairs") else ""))


def vs_floor(throughput: dict, key: str, figure: str) -> float | None:
    """A target's figure as a ratio to the floor's: the median over its alternating pairs when it
    has them, else against the floor's one run."""
    paired = get(throughput, key, "paired")
    name = {k: n for n, k in PAIRED}.get(figure)
    if paired and name:
        return paired.get(f"{name}_ratio_median")
    return ratio(get(throughput, key, figure), get(throughput, "floor", figure))


def get(results: dict, *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def add_ratios(results: dict) -> None:
    t = results["throughput"]
    if t.get("floor"):
        for key, row in t.items():
            row["rps_vs_floor"] = vs_floor(t, key, "rps")
            row["p99_vs_floor"] = vs_floor(t, key, "p99_ms")


def targets(results: dict) -> list[dict]:
    """Issue 11's acceptance, each with the measured value, the limit and a verdict."""
    t = results["throughput"]
    faults = {f["connections"]: f for f in results.get("latency_fault") or []}
    checks = [
        ("validate req/s >= 0.7 x floor (SQLite)", vs_floor(t, "emulator_sqlite", "rps"), 0.7, ">="),
        ("validate CPU/request <= 1.5 x floor", vs_floor(t, "emulator_sqlite", "cpu_us_per_request"), 1.5, "<="),
        ("validate p99 <= 1.5 x floor p99", vs_floor(t, "emulator_sqlite", "p99_ms"), 1.5, "<="),
        ("validate req/s >= 0.5 x floor (Redis)", vs_floor(t, "emulator_redis", "rps"), 0.5, ">="),
        ("issue req/s >= 0.8 x floor", vs_floor(t, "issue_sqlite", "rps"), 0.8, ">="),
    ]
    for connections, fault in sorted(faults.items()):
        checks.append((f"latency fault @{connections}: p50 within +5 %", _div100(fault.get("p50_error_pct")), 0.05,
                       "<=+-"))
        if connections >= 256:
            checks.append((f"latency fault @{connections}: req/s >= 0.8 x ideal",
                           ratio(fault.get("rps"), fault.get("ideal_rps")), 0.8, ">="))
    checks += [
        ("cold start <= 1.2 x floor", ratio(get(results, "cold_start", "emulator", "median_s"),
                                            get(results, "cold_start", "floor", "median_s")), 1.2, "<="),
        ("PSS <= 0.3 x WireMock", ratio(get(results, "memory", "emulator_sqlite", "pss_mib"),
                                        get(results, "memory", "wiremock", "pss_mib")), 0.3, "<="),
        ("store rows flat after expiry + purge", get(results, "store", "after_expiry_and_purge", "consumed"), 0, "=="),
        ("store file flat over a second round (x round 1)",
         ratio(get(results, "store", "second_round", "after", "db_mib"),
               get(results, "store", "after_expiry_and_purge", "db_mib")), 1.05, "<="),
    ]
    out = [{"target": name, "value": value, "limit": limit, "verdict": _verdict(value, limit, op)}
           for name, value, limit, op in checks]
    out.append({"target": "validate req/s vs WireMock static stub (info)",
                "value": ratio(get(t, "emulator_sqlite", "rps"), get(t, "wiremock", "rps")), "limit": None,
                "verdict": "info"})
    return out


def _verdict(value: float | None, limit: float, op: str) -> str:
    if value is None:
        return "not measured"
    ok = {">=": value >= limit, "<=": value <= limit, "<=+-": -limit <= value <= limit}.get(op, value == limit)
    return "met" if ok else "MISSED"


def _div100(value: float | None) -> float | None:
    return None if value is None else round(value / 100, 4)


def table(results: dict) -> str:
    t = results["throughput"]
    lines = ["", f"{'target':<38} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x floor':>8} {'p99 x fl':>8} "
                 f"{'errors':>6} {'CPU us':>7} {'PSS MiB':>8}  spread"]
    for key, label in ROWS:
        row = t.get(key)
        if row is None:
            reason = results["not_measured"].get(key, "not run")
            lines.append(f"{label:<38} not measured: {reason[:70]}")
            continue
        pss = get(results, "memory", key, "pss_mib")
        lines.append(f"{label:<38} {row['rps']:>8.0f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                     f"{_fmt(row.get('rps_vs_floor')):>8} {_fmt(row.get('p99_vs_floor')):>8} "
                     f"{row['error_count'] + row.get('starved', 0):>6} {_fmt(row.get('cpu_us_per_request'), 'd'):>7} "
                     f"{_fmt(pss, '.1f'):>8}  "
                     f"{row.get('spread', {}).get('label', '-')}")
    lines += _extras(results)
    lines.append("")
    lines.append(f"{'target (issue 11)':<46} {'value':>10} {'limit':>8}  verdict")
    for check in results.get("targets", []):
        lines.append(f"{check['target']:<46} {_fmt(check['value']):>10} {_fmt(check['limit']):>8}  {check['verdict']}")
    for name, why in results["not_measured"].items():
        lines.append(f"not measured: {name}: {why[:160]}")
    return "\n".join(lines)


def profiled_run_lines(label: str, row: dict) -> list[str]:
    """The py-spy run's own figures: what sampling costs, next to the pairs it stayed out of."""
    run = row.get("profiled_run")
    if not run or run.get("rps") is None:
        return []
    return [f"{label}, profiled run (not one of the pairs): {run['rps']:.0f} req/s, "
            f"CPU {run['cpu_us_per_request']} us/req"]


def _extras(results: dict) -> list[str]:
    lines = [""]
    for key, label in ROWS:
        paired = get(results, "throughput", key, "paired")
        if paired and paired["pairs"]:
            lines.append(f"{label}, {pairs_line(paired)}")
    for model, runs in (results.get("connection_spread") or {}).items():
        lines.append(f"connection spread over workers, floor, {model:<13}: " +
                     "  ".join(f"{r['split']} ({r['rps']:.0f}/s)" for r in runs))
    for fault in results.get("latency_fault") or []:
        lines.append(f"latency fault {fault['configured_ms']} ms @ {fault['connections']} connections: "
                     f"{fault['rps']:.0f} req/s (ideal {fault['ideal_rps']}), "
                     f"p50 {fault['p50_ms']:.1f} ms ({fault['p50_error_pct']:+.1f} %), p99 {fault['p99_ms']:.1f} ms "
                     f"({fault['p99_error_pct']:+.1f} %), spread {fault.get('spread', {}).get('label', '-')}")
        inside = fault.get("in_app") or {}
        if inside:
            lines.append(f"  the same requests timed inside the app (journal duration_ms, view start to answer): "
                         f"p50 {inside['p50_ms']:.1f} ms, p99 {inside['p99_ms']:.1f} ms "
                         f"over {inside['entries']} entries")
    for key in ("emulator_sqlite", "emulator_redis"):
        row = results["throughput"].get(key)
        if row and "tokens_consumed" in row:
            lines.append(f"fresh-token check, {key}: {row['requests']} answered requests consumed "
                         f"{row['tokens_consumed']} tokens (in-flight requests at the end are consumed but not counted)"
                         + ("" if row["tokens_consumed"] >= row["requests"] else
                            "  WARNING: some answers consumed no fresh token"))
    for key in ("floor", "emulator_sqlite"):
        rss = get(results, "memory", key, "rss_mib_per_process")
        if rss:
            lines.append(f"RSS per process after the load, {key} (master first): " +
                         ", ".join(f"{v:.1f}" for v in rss.values()) + " MiB")
    for key, label in ROWS:
        lines += profiled_run_lines(label, get(results, "throughput", key) or {})
        lines += profiler.lines(label, get(results, "throughput", key, "profile") or {})
    cold = results.get("cold_start") or {}
    if cold:
        lines.append("cold start (process start -> healthy, median of runs): " +
                     ", ".join(f"{k} {v['median_s']:.3f} s" for k, v in cold.items()))
    redis = get(results, "memory", "redis_server", "pss_mib")
    if redis is not None:
        lines.append(f"redis-server PSS (not included above): {redis:.1f} MiB")
    store = results.get("store")
    if store:
        lines.append(f"store after {store['validations']} validations: {store['after_validations']}")
        lines.append(f"  after they expire and a purge: {store['after_expiry_and_purge']}")
        second = store.get("second_round")
        if second:
            lines.append(f"  a second round of {second['validations']} validations: {second['full']}; "
                         f"after expiry + purge: {second['after']}")
    return lines


def _fmt(value, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def write(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path
