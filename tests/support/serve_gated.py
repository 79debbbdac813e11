"""`python -m tests.support.serve_gated serve ...`: the real `captchala-emulator serve`, whose master
waits, before it forks the second worker, until the test opens the gate: a named pipe at
$SERVE_GATE that the master reads until the test writes to it and closes it (no polling). Until
then the first worker serves alone and the second has no socket.

The banner waits for every worker, so the address is printed first, as `bound <host>:<port>`.
serve's own pre_fork hook still runs before each fork."""

from __future__ import annotations

import os
from typing import Any

from emulator import server
from emulator.cli import main


def gated(load_config: Any) -> Any:
    def load_config_gated(self: server.GunicornServer) -> None:
        load_config(self)
        print("bound", self.cfg.bind[0], flush=True)
        forking = self.cfg.pre_fork

        def pre_fork(arbiter: Any, worker: Any) -> None:
            if worker.age == 2:  # gunicorn numbers the workers it spawns from 1
                with open(os.environ["SERVE_GATE"]) as gate:
                    gate.read()
            forking(arbiter, worker)

        self.cfg.set("pre_fork", pre_fork)

    return load_config_gated


if __name__ == "__main__":
    server.GunicornServer.load_config = gated(server.GunicornServer.load_config)  # type: ignore[method-assign]
    main()
