"""`python -m emulator.bench`: the whole benchmark in one run (see the README's bench section)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

from . import report
from .peers import default_cache_dir
from .runner import Bench, Options


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--duration", "duration_s", type=click.IntRange(1, 120), default=10, show_default=True,
              help="Seconds of timed wrk load per target.")
@click.option("--warmup", "warmup_s", type=click.IntRange(1, 60), default=2, show_default=True)
@click.option("--connections", type=click.IntRange(1, 512), default=32, show_default=True)
@click.option("--workers", type=click.IntRange(1, 16), default=2, show_default=True,
              help="gunicorn workers for the floor and the emulator alike.")
@click.option("--threads", type=click.IntRange(1, 256), default=64, show_default=True,
              help="Threads per worker with --worker-class gthread.")
@click.option("--worker-class", type=click.Choice(["gevent", "gthread"]), default="gevent", show_default=True,
              help="gunicorn worker model for the floor and the emulator alike (the `serve` default: gevent).")
@click.option("--fault-connections", type=click.IntRange(1, 1024), multiple=True, default=(64, 256),
              show_default=True, help="Connection counts of the latency-fault runs (repeat the option).")
@click.option("--profile-worker", is_flag=True,
              help="Sample one emulator worker with py-spy during each timed emulator run; print where it spends time.")
@click.option("--validations", type=click.IntRange(1000, 1_000_000), default=100_000, show_default=True,
              help="Validations before the store size is measured.")
@click.option("--cold-runs", type=click.IntRange(1, 20), default=5, show_default=True)
@click.option("--spread-trials", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Short floor runs per worker model (shared socket vs reuse_port) to show the connection spread.")
@click.option("--pairs", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Runs of each throughput target, each right after a floor run; ratios are their median.")
@click.option("--no-peers", is_flag=True, help="Skip WireMock and Mockoon.")
@click.option("--no-redis", is_flag=True, help="Skip the Redis store.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where npm installs the peers [default: ~/.cache/captchala-emulator-bench].")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file [default: bench-results/bench-<timestamp>.json].")
def main(no_peers: bool, no_redis: bool, cache_dir: Path | None, output: Path | None,
         fault_connections: tuple[int, ...], **numbers) -> None:
    """Benchmark the emulator against a bare-Flask floor and its peers; print ratios."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output = output or Path("bench-results") / f"bench-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="captchala-bench-") as work:
        options = Options(work_dir=Path(work), cache_dir=cache_dir or default_cache_dir(), peers=not no_peers,
                          redis=not no_redis, fault_connections=tuple(fault_connections), **numbers)
        results = Bench(options, log=lambda line: print(line, file=sys.stderr, flush=True)).run()
    report.add_ratios(results)
    results["targets"] = report.targets(results)
    print(report.table(results))
    print(f"\nJSON: {report.write(results, output)}")


if __name__ == "__main__":  # pragma: no cover
    main()
