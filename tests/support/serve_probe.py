"""`python -m tests.support.serve_probe serve ...`: the real `captchala-emulator serve`, plus a probe
in every worker that writes, after each request it answers, the modules it holds, those it imported
since its fork, and whether the app's code was frozen (gc.freeze) in the master before the fork.

Reports go to $SERVE_PROBE_DIR/<worker pid>.json. Only a gunicorn hook the emulator does not use
(post_request) is added, and serve's post_fork is extended; everything else is `serve` as a user runs it."""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from types import FunctionType
from typing import Any

from emulator import server
from emulator.cli import main


def probed(load_config: Any) -> Any:
    def load_config_with_probe(self: server.GunicornServer) -> None:
        load_config(self)
        at_fork: set[str] = set()
        forked = self.cfg.post_fork  # serve's own hook, kept

        def post_fork(arbiter: Any, worker: Any) -> None:
            forked(arbiter, worker)
            at_fork.update(sys.modules)

        self.cfg.set("post_fork", post_fork)
        self.cfg.set("post_request", lambda worker, req, environ, resp: report(at_fork))

    return load_config_with_probe


def report(at_fork: set[str]) -> None:
    from emulator.app import create_app

    facts = {"modules": sorted(sys.modules), "imported_after_fork": sorted(set(sys.modules) - at_fork),
             "app_code_frozen": not any(obj is create_app for obj in gc.get_objects()),
             "frozen_objects": gc.get_freeze_count(), "unpatched_bindings": unpatched_bindings()}
    target = Path(os.environ["SERVE_PROBE_DIR"]) / f"{os.getpid()}.json"
    partial = target.with_suffix(".partial")  # the test reads *.json while workers write: never half a file
    partial.write_text(json.dumps(facts))
    os.replace(partial, target)


def unpatched_bindings() -> list[str]:
    """Names in emulator modules bound to a primitive gevent replaced (time.sleep, threading.Lock,
    socket.socket, ...) as it was before patching: a module imported in the master before the
    fork that bound one at import time (a global, a default argument, a class attribute) would
    block the whole worker where it should yield."""
    monkey = sys.modules["gevent.monkey"]
    originals = {id(value): f"{module}.{name}" for module, attrs in monkey.saved.items()
                 for name, value in attrs.items() if callable(value)}
    found = []
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] == "emulator":
            found += [f"{module_name}.{where} is {originals[id(value)]}" for where, value in bindings(module)
                      if id(value) in originals]
    return found


def bindings(module: Any) -> list[tuple[str, Any]]:
    """(where, value) of a module's globals, the classes' attributes, and every function's defaults."""
    found: list[tuple[str, Any]] = []
    for name, value in vars(module).items():
        found.append((name, value))
        if type(value) is type and value.__module__ == module.__name__:  # type(): no proxy is asked anything
            found += [(f"{name}.{attr}", v) for attr, v in vars(value).items()]
    for where, value in list(found):
        function = value.__func__ if type(value) in (staticmethod, classmethod) else value
        if type(function) is FunctionType:
            found += [(f"{where}(default)", d) for d in (*(function.__defaults__ or ()),
                                                          *(function.__kwdefaults__ or {}).values())]
    return found


if __name__ == "__main__":
    server.GunicornServer.load_config = probed(server.GunicornServer.load_config)  # type: ignore[method-assign]
    main()
