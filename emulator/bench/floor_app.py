"""The framework floor: a bare Flask app answering a static validate-shaped JSON.

Served by the emulator's own GunicornServer class, so it runs on exactly the worker model
and settings that `captchala-emulator serve` uses; whatever it costs is Flask + gunicorn,
and whatever the emulator costs on top of it is ours.

    python -m emulator.bench.floor_app --port 8099 --workers 2 --worker-class gevent
"""

from __future__ import annotations

from typing import cast

import click
from flask import Flask, jsonify

from ..server import GunicornServer
from ..settings import Settings, WorkerClass

STATIC_ANSWER = {
    "code": 0, "msg": "ok",
    "data": {"valid": True, "challenge_id": "ch_0123456789abcdef", "action": "login", "uid": None,
             "captcha_args": {"platform": "web", "user_ip": "127.0.0.1", "referer": None, "pkg": None,
                              "solved_at": 1800000000, "risk_score": 10}},
}


def create_floor_app() -> Flask:
    """POST /v1/validate answers the same JSON every time; GET /health for readiness."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # the DefaultJSONProvider

    @app.post("/v1/validate")
    def validate():
        return jsonify(STATIC_ANSWER)

    @app.get("/health")
    def health():
        return jsonify({"status": "ok"})

    return app


class FloorServer(GunicornServer):
    """GunicornServer's options, the floor's app."""

    def load(self) -> Flask:
        return create_floor_app()


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", type=int, required=True)
@click.option("--workers", type=int, default=Settings.workers)
@click.option("--threads", type=int, default=Settings.threads)
@click.option("--worker-class", type=click.Choice(["gevent", "gthread"]), default=Settings.worker_class)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one gunicorn setting (experiments, e.g. --set reuse_port=true).")
def main(host: str, port: int, workers: int, threads: int, worker_class: str, overrides: tuple[str, ...]) -> None:
    settings = Settings(host=host, port=port, workers=workers, threads=threads,
                        worker_class=cast(WorkerClass, worker_class), quiet=True)
    FloorServer(settings, gunicorn_options=dict(_parse(o) for o in overrides)).run()


def _parse(override: str) -> tuple[str, object]:
    key, _, raw = override.partition("=")
    value: object = {"true": True, "false": False}.get(raw.lower(), raw)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return key.strip(), value


if __name__ == "__main__":  # pragma: no cover
    main()
