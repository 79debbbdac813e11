"""Subcommands that talk to a running emulator (the `awslocal` / WireMock admin equivalent):
reset, profile, requests, explain, clock and apps (`mint` is in cli.py). Every one finds the emulator the same
way (`resolve_url`) and sends `--admin-token` / CAPTCHALA_EMULATOR_ADMIN_TOKEN when given.

Exit codes: 0 done, 1 the emulator refused or could not be reached, 2 bad local input."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import click

from .client import ControlPlaneError, EmulatorClient
from .errors import ConfigError
from .settings import ENV_PREFIX, Settings

URL_ENV = ENV_PREFIX + "URL"
PORT_ENV = ENV_PREFIX + "PORT"
ADMIN_TOKEN_ENV = ENV_PREFIX + "ADMIN_TOKEN"
DEFAULT_PORT = 8080
EXIT_REFUSED, EXIT_INPUT = 1, 2
FOLLOW_WAIT_S = 30.0


def resolve_url(url: str | None, environ: Mapping[str, str] | None = None) -> str:
    """--url, else CAPTCHALA_EMULATOR_URL, else http(s)://127.0.0.1:$CAPTCHALA_EMULATOR_PORT, else port 8080
    (the same resolution as `mint`, `doctor` and `audit`: Settings reads the environment)."""
    settings = Settings.from_env(environ)
    return (url or settings.url or settings.local_url()).rstrip("/")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"captchala-emulator: error: {message}", err=True)
    sys.exit(code)


def control_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Add --url and --admin-token, build the client, and turn its failures into one line."""

    @click.option("--url", default=None, metavar="URL",
                  help=f"Emulator base URL (default: ${URL_ENV}, else http://127.0.0.1:${PORT_ENV}, "
                       f"else http://127.0.0.1:{DEFAULT_PORT}).")
    @click.option("--admin-token", default=None,
                  help=f"Bearer token of the control plane (serve --admin-token; env {ADMIN_TOKEN_ENV}).")
    @wraps(fn)
    def wrapper(url: str | None, admin_token: str | None, **options: Any) -> None:
        try:
            base = resolve_url(url)
            token = admin_token or Settings.from_env().admin_token
        except ConfigError as exc:
            _fail(str(exc), EXIT_INPUT)
        client = EmulatorClient(base, admin_token=token or None)
        try:
            fn(client, **options)
        except ControlPlaneError as exc:
            _fail(f"HTTP {exc.status} {exc.error}: {exc.message}", EXIT_REFUSED)
        except OSError as exc:
            _fail(f"cannot reach {client.url}: {getattr(exc, 'reason', None) or exc}", EXIT_REFUSED)

    return wrapper


@click.command("reset")
@click.option("--app-key", default=None, help="Reset only this app's tokens, counters and journal entries.")
@control_command
def reset_command(client: EmulatorClient, app_key: str | None) -> None:
    """Forget consumed tokens, counters and the journal (and the clock offset, on a full reset)."""
    client.reset(app_key)
    click.echo(f"reset app {app_key}" if app_key else "reset everything")


@click.command("profile")
@click.argument("name_or_file", required=False, metavar="[NAME|FILE]")
@click.option("--off", is_flag=True, help="Switch the active fault profile off.")
@control_command
def profile_command(client: EmulatorClient, name_or_file: str | None, off: bool) -> None:
    """Show the active fault profile, switch to a built-in NAME or a local YAML FILE, or --off."""
    if off and name_or_file:
        _fail("give a profile or --off, not both", EXIT_INPUT)
    if off:
        answer = client.clear_profile()
    elif name_or_file:
        answer = client.use_profile(_profile_request(name_or_file))
    else:
        answer = client.profile()
    click.echo(_describe_profile(answer))


def _profile_request(spec: str) -> str | dict[str, Any]:
    """A built-in name goes as a name; a local file is checked here (file, key path, problem) and sent inline,
    so it works with an emulator in a container too."""
    if not (Path(spec).is_file() or spec.endswith((".yaml", ".yml"))):
        return spec
    from .faults.loader import load_file
    from .faults.profile import ProfileError

    try:
        return dict(load_file(spec).profile.doc)
    except ProfileError as exc:
        _fail(str(exc), EXIT_INPUT)


def _describe_profile(answer: Mapping[str, Any]) -> str:
    if not answer.get("name"):
        return "no fault profile active"
    state = "active" if answer.get("active") else "expired"
    lines = [f"{answer['name']} ({state}, seed {answer.get('seed')})"]
    for rule in answer.get("rules", []):
        lines.append(f"  {rule['name']}: {', '.join(rule['endpoints']) or 'any endpoint'} -> {rule['effect']}"
                     f"  (fired {rule['matched']} times)")
    return "\n".join(lines)


@click.command("requests")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries as they arrive (Ctrl-C stops).")
@click.option("--endpoint", help="validate, issue, challenge_init, challenge_solve, mint, ...")
@click.option("--app-key", help="Only this app's entries.")
@click.option("--outcome", help="valid, rejected, error, degraded, fault, ok or minted.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="How many recent entries first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@control_command
def requests_command(client: EmulatorClient, follow: bool, limit: int, as_json: bool, **filters: Any) -> None:
    """Print the request journal (oldest first), optionally filtered and followed."""
    from .domain.explain import describe_entry

    show = (lambda e: json.dumps(e, separators=(",", ":"))) if as_json else describe_entry
    for entry in _entries(client, {k: v for k, v in filters.items() if v}, limit, follow):
        click.echo(show(entry))


def _entries(client: EmulatorClient, filters: dict[str, Any], limit: int, follow: bool) -> Iterator[dict[str, Any]]:
    rows = client.requests(limit=limit, **filters)
    yield from rows
    after = rows[-1]["id"] if rows else 0  # nothing matched yet: any match that comes is new
    while follow:
        entry = client.wait_for_request(timeout=FOLLOW_WAIT_S, after=after or 0, **filters)
        if entry is not None:
            after = entry["id"]
            yield entry


@click.command("explain")
@click.argument("token")
@control_command
def explain_command(client: EmulatorClient, token: str) -> None:
    """Why a token is (in)valid: its kind, claims, state and history (JSON)."""
    click.echo(json.dumps(client.explain(token), indent=2))


@click.command("clock")
@click.option("--advance", type=float, metavar="S", help="Move virtual time forward by S seconds.")
@click.option("--offset", type=float, metavar="S", help="Set virtual time to real time + S seconds.")
@control_command
def clock_command(client: EmulatorClient, advance: float | None, offset: float | None) -> None:
    """Show the shared virtual clock, or move it (every worker at once)."""
    if advance is not None and offset is not None:
        _fail("give --advance or --offset, not both", EXIT_INPUT)
    if advance is not None:
        answer = client.advance_clock(advance)
    elif offset is not None:
        answer = client.set_clock(offset)
    else:
        answer = client.clock()
    click.echo(f"{answer['now_iso']}  offset {answer['offset']:g} s  (real {answer['real_iso']})")


@click.command("apps")
@click.option("--add", "add_file", type=click.Path(dir_okay=False), help="Add the apps of this apps file at run time.")
@click.option("--remove", "remove_key", metavar="KEY", help="Remove the runtime app KEY (and its state).")
@control_command
def apps_command(client: EmulatorClient, add_file: str | None, remove_key: str | None) -> None:
    """List the apps, add runtime apps from an apps file, or remove one."""
    if add_file:
        from .domain.apps import load_apps_file
        from .errors import ConfigError

        try:
            load_apps_file(add_file)  # the same validator, with the file's name in the message
            with open(add_file, encoding="utf-8") as fh:
                items = _app_items(fh.read())
        except ConfigError as exc:
            _fail(str(exc), EXIT_INPUT)
        for item in items:
            click.echo(f"added {client.add_app(**item)['app_key']}")
    if remove_key:
        client.remove_app(remove_key)
        click.echo(f"removed {remove_key}")
    if not add_file and not remove_key:
        for app in client.apps():
            origin = "built-in" if app.get("builtin") else "runtime" if app.get("runtime") else "file"
            click.echo(f"{app['app_key']}/{app['app_secret']}  ({origin}) {app.get('name') or ''}".rstrip())


def _app_items(text: str) -> list[dict[str, Any]]:
    import yaml

    doc = yaml.safe_load(text)
    return list(doc["apps"] if isinstance(doc, dict) else doc)


COMMANDS = (reset_command, profile_command, requests_command, explain_command, clock_command,
            apps_command)


def register(group: click.Group) -> None:
    for command in COMMANDS:
        group.add_command(command)
