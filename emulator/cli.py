"""The `captchala-emulator` command: serve, healthcheck, mint (more subcommands register here)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__, cli_control
from .cli_diagnose import attach as attach_diagnose
from .client import answer_json
from .errors import ConfigError, StoreUnavailable
from .options import load_settings, settings_options

if TYPE_CHECKING:
    from .settings import Settings

EXIT_CONFIG = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="captchala-emulator")
def main() -> None:
    """A local, wire-compatible fake of the CaptchaLa CAPTCHA service."""


@main.command()
@settings_options("serve")
@click.pass_context
def serve(ctx: click.Context, **options: Any) -> None:
    """Run the emulator (gunicorn, threaded workers)."""
    from .server import GunicornServer, prepare

    settings = load_settings(ctx, options)
    if settings.store.startswith("memory:") and settings.workers > 1:
        fail("--store memory:// keeps state per process: use it with --workers 1, or use sqlite:/// or redis://")
    try:
        from .tls import configure_tls

        settings, _ = configure_tls(settings)
        rt = prepare(settings)
    except (ConfigError, StoreUnavailable) as exc:
        fail(str(exc))
    try:
        GunicornServer(settings, on_ready=lambda host, port: banner(rt, host, port)).run()
    finally:
        _remove_throwaway_store(settings)


def _remove_throwaway_store(settings: Settings) -> None:
    """`--port 0` without --store: the state file is this process's own (see default_store_url), so
    no later start can use it; it goes with the server rather than piling up."""
    from .settings import default_store_url

    # default_store_url(0) names the calling process: a forked worker leaving through this frame
    # (gunicorn raises SystemExit in the child) never matches the master's file
    if settings.port != 0 or settings.store != default_store_url(0):
        return
    from .store.sqlite import remove_database

    remove_database(settings.store[len("sqlite:///"):])


def banner(rt, host: str, port: int) -> None:
    s = rt.settings
    scheme = "https" if s.tls_cert else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"{scheme}://{shown}:{port}"
    lines = [
        f"captchala-emulator {__version__} listening on {base}  (bound {host}:{port}, {_worker_model(s)})",
        f"  validate   POST {base}/v1/validate      backup POST {base}/api/validate",
        f"  issue      POST {base}/v1/server/challenge/issue",
        f"  loader     {base}/captchala-loader.js",
        f"  control    {base}/_emulator/  (dashboard, health, reset, pass-tokens)"
        + ("  [admin token required]" if s.admin_token else ""),
        f"  store      {rt.store.url}",
        f"  profile    {_profile_line(rt)}   seed {s.seed}",
        "  apps       " + "  ".join(_app_pair(a, s.show_secrets) for a in rt.apps),
    ]
    if s.tls == "auto":
        from .tls import CA_FILE, HOST_NAMES, tls_dir

        lines.append(f"  tls        trust the CA {tls_dir(s) / CA_FILE} (certificate for {', '.join(HOST_NAMES)})")
    if not s.quiet:
        print("\n".join(lines), flush=True)
    else:
        print(f"captchala-emulator listening on {base}", flush=True)


def _app_pair(app, show_secrets: bool) -> str:
    """Built-in secrets are public test values; an apps file's secrets show only with --show-secrets."""
    return f"{app.app_key}/{app.app_secret if app.builtin or show_secrets else '***'}"


def _worker_model(s: Settings) -> str:
    if s.worker_class == "gthread":
        return f"{s.workers} workers x {s.threads} threads"
    return f"{s.workers} {s.worker_class} worker{'s' if s.workers != 1 else ''}"


def _profile_line(rt) -> str:
    """The active fault profile for the banner; read in the master before workers fork, then let go."""
    try:
        name = rt.active_profile_name()
    finally:
        rt.store.close()
    spec = rt.settings.profile
    if not name:
        return "none"
    return f"{name} (file {spec}, reloaded on change)" if spec and spec != name else name


def fail(message: str, code: int = EXIT_CONFIG) -> NoReturn:
    click.echo(f"captchala-emulator: error: {message}", err=True)
    sys.exit(code)


@main.command()
@settings_options("healthcheck")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds to wait for the answer.")
@click.pass_context
def healthcheck(ctx: click.Context, timeout: float, **options: Any) -> None:
    """Exit 0 when the emulator answers healthy (for Docker HEALTHCHECK; no curl needed)."""
    import ssl

    settings = load_settings(ctx, options)
    url = settings.healthcheck_url or settings.local_url()
    try:
        request = urllib.request.Request(url.rstrip("/") + "/_emulator/health")
    except ValueError as exc:
        fail(f"--url {url}: {exc}")
    if settings.admin_token:
        request.add_header("Authorization", f"Bearer {settings.admin_token}")
    context = ssl._create_unverified_context() if url.startswith("https") else None  # local self-check only
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        click.echo(f"unhealthy: HTTP {exc.code}{_health_reason(exc)}", err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(1)
    if body.get("status") != "ok":
        click.echo(f"unhealthy: {body}", err=True)
        sys.exit(1)
    click.echo("healthy")


def _health_reason(answer: urllib.error.HTTPError) -> str:
    """What a 503 from health says: the store's error, or how many workers listen yet."""
    try:
        body = json.loads(answer.read(4096))
    except (OSError, ValueError):
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return ""
    workers = body.get("workers")
    if body["status"] == "starting" and isinstance(workers, dict):
        return f" starting: {workers.get('listening')} of {workers.get('expected')} workers listen"
    return f" {body['status']}: {body['error']}" if isinstance(body.get("error"), str) else f" {body['status']}"


@main.command("mint")
@settings_options("mint")
@click.option("--app-key", default="demo_app", show_default=True, help="The app the token is for.")
@click.option("--action", default="default", show_default=True, help="The action the token carries.")
@click.option("--kind", type=click.Choice(["pass", "degraded", "offline"]), default="pass", show_default=True,
              help="Token kind.")
@click.option("--client-ip", help="The client IP the token is bound to.")
@click.option("--uid", help="The user id the token carries.")
@click.option("--referer", help="The page the token was solved on.")
@click.option("--ttl", type=int, help="Seconds the token stays valid (default: the emulator's).")
@click.pass_context
def mint_command(ctx: click.Context, url: str | None, admin_token: str | None, **fields: Any) -> None:
    """Print a pass token minted by a running emulator."""
    settings = load_settings(ctx, {"url": url, "admin_token": admin_token})
    base = settings.url or settings.local_url()
    body = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    request = urllib.request.Request(base.rstrip("/") + "/_emulator/pass-tokens", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    if settings.admin_token:
        request.add_header("Authorization", f"Bearer {settings.admin_token}")
    try:  # refused or unreachable: one line and exit 1, as every control command
        with urllib.request.urlopen(request, timeout=5) as response:
            click.echo(json.loads(response.read())["pass_token"])
    except urllib.error.HTTPError as exc:
        detail = answer_json(exc.read())
        fail(f"HTTP {exc.code}: {detail.get('message', detail) if isinstance(detail, dict) else detail}",
             cli_control.EXIT_REFUSED)
    except OSError as exc:
        fail(f"cannot reach {base}: {exc}", cli_control.EXIT_REFUSED)
    except (ValueError, KeyError, TypeError):
        fail(f"{base} answered something that is not an emulator's mint answer", cli_control.EXIT_REFUSED)


@main.command("check-profile")
@click.argument("profiles", nargs=-1, required=True, metavar="FILE...")
def check_profile(profiles: tuple[str, ...]) -> None:
    """Check fault profile files (or built-in names): exit 0 if all are valid, else 2 with
    the file, the key path and the problem for each bad one."""
    from .faults.loader import load
    from .faults.profile import ProfileError

    bad = 0
    for spec in profiles:
        try:
            loaded = load(spec)
        except ProfileError as exc:
            click.echo(f"captchala-emulator: error: {exc}", err=True)
            bad += 1
            continue
        p = loaded.profile
        click.echo(f"{spec}: ok (profile {p.name!r}, {len(p.rules)} rule{'s' if len(p.rules) != 1 else ''}: "
                   f"{', '.join(r.name for r in p.rules)})")
    sys.exit(EXIT_CONFIG if bad else 0)


attach_diagnose(main)  # doctor and audit (cli_diagnose.py)
cli_control.register(main)  # reset, profile, requests, explain, clock, apps
