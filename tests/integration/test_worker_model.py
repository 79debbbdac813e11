"""`--worker-class`: gevent by default, gthread on request, anything else refused before start."""

from __future__ import annotations

from typing import Any, cast

import pytest

from emulator.errors import ConfigError
from emulator.server import GTHREAD_WORKER, prepare, worker_options
from emulator.settings import Settings
from tests.support.servers import running_emulator

pytestmark = pytest.mark.integration


def test_gevent_is_the_default_and_gthread_keeps_its_threads():
    assert worker_options(Settings())["worker_class"] == "emulator.gevent_worker.GeventWorker"  # gunicorn's, faster
    assert worker_options(Settings(worker_class="gthread", threads=8)) == {"worker_class": GTHREAD_WORKER, "threads": 8}


def test_an_unknown_worker_class_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match="--worker-class 'eventlet': expected gevent or gthread"):
        prepare(Settings(worker_class=cast(Any, "eventlet"), port=0, store=f"sqlite:///{tmp_path / 's.db'}"))


def test_gthread_still_serves_and_says_so_in_the_banner(tmp_path):
    with running_emulator("--worker-class", "gthread", "--threads", "4", "--store",
                          f"sqlite:///{tmp_path / 's.db'}") as server:
        token = server.mint()
        assert server.api("/v1/validate", {"pass_token": token}).json()["data"]["valid"] is True
        assert server.api("/v1/validate", {"pass_token": token}).json()["data"]["error"] == "token_consumed"
    assert "2 workers x 4 threads" in "".join(server.output)
