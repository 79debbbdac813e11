"""`serve`'s gevent worker patches without re-reading every package's entry points (issue 11, line 4:
cold start). gevent asks importlib.metadata for its plugins 25 times while it patches; each ask read
every installed distribution again, about 250 ms per worker. Counted, not timed: the patch runs in
a fresh interpreter (monkey-patching cannot be undone) with the worker class `serve` configures."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

from emulator.gevent_worker import entry_points_read_once

PATCH_AND_COUNT = """
import json
from importlib import metadata

from gunicorn.util import load_class

from emulator.server import worker_options
from emulator.settings import Settings

reads = []
real = metadata.entry_points
metadata.entry_points = lambda **selection: reads.append(sorted(selection.items())) or real(**selection)
worker_class = load_class(worker_options(Settings())["worker_class"])
worker = worker_class.__new__(worker_class)  # patch() needs only the (here: no) listening sockets
worker.sockets = []
worker.patch()
print(json.dumps({"reads": len(reads), "distinct": len({repr(r) for r in reads}),
                  "restored": metadata.entry_points.__name__ == "<lambda>"}))
"""


def test_the_serve_worker_reads_each_entry_point_group_once_while_gevent_patches():
    done = subprocess.run([sys.executable, "-c", PATCH_AND_COUNT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    counted = json.loads(done.stdout)
    assert counted["reads"] > 0, "gevent asked for no plugins: this test no longer measures anything"
    assert counted["reads"] == counted["distinct"]
    assert counted["restored"], "importlib.metadata.entry_points was not put back after the patch"


def test_entry_points_are_read_for_real_again_outside_the_patch():
    real = metadata.entry_points
    with entry_points_read_once():
        assert metadata.entry_points is not real
        assert metadata.entry_points(group="console_scripts") is metadata.entry_points(group="console_scripts")
    assert metadata.entry_points is real
