"""The `captchala-emulator` command: serve, healthcheck, mint (more subcommands register here)."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request

import click

from . import __version__
from .cli_diagnose import attach as attach_diagnose
from .errors import ConfigError, StoreUnavailable
from .settings import ENV_PREFIX, Settings

EXIT_CONFIG = 2


def env(name: str) -> str:
    return ENV_PREFIX + name.upper().replace("-", "_")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="captchala-emulator")
def main() -> None:
    """A local, wire-compatible fake of the CaptchaLa CAPTCHA service."""


def serve_options(fn):
    options = [
        click.option("--host", envvar=env("host"), default="127.0.0.1", show_default=True, help="Interface to bind."),
        click.option("--port", envvar=env("port"), type=int, default=8080, show_default=True, help="Port; 0 picks a free one."),
        click.option("--workers", envvar=env("workers"), type=click.IntRange(1, 64), default=2, show_default=True),
        click.option("--threads", envvar=env("threads"), type=click.IntRange(1, 1024), default=64, show_default=True,
                     help="Threads per worker (latency faults block a thread, not the worker)."),
        click.option("--apps", envvar=env("apps"), type=click.Path(dir_okay=False), help="YAML file of extra apps."),
        click.option("--no-builtin-apps", envvar=env("no_builtin_apps"), is_flag=True, help="Leave out the seven built-in test apps."),
        click.option("--profile", envvar=env("profile"), help="Fault profile: a built-in name or a YAML file."),
        click.option("--store", envvar=env("store"), help="memory://, sqlite:///path.db (default) or redis://host:port/db."),
        click.option("--secret", envvar=env("secret"), help="Token signing secret (default: generated once, kept in the store)."),
        click.option("--seed", envvar=env("seed"), type=int, default=0, show_default=True, help="Seed of every fault decision."),
        click.option("--admin-token", envvar=env("admin_token"), help="Protect /_emulator/ with Authorization: Bearer <token>."),
        click.option("--trust-proxy", envvar=env("trust_proxy"), is_flag=True, help="Take the caller IP from X-Forwarded-For."),
        click.option("--tls", envvar=env("tls"), type=click.Choice(["auto"]), help="auto: make a local CA and a certificate for the real host names."),
        click.option("--tls-cert", envvar=env("tls_cert"), type=click.Path(dir_okay=False)),
        click.option("--tls-key", envvar=env("tls_key"), type=click.Path(dir_okay=False)),
        click.option("--tls-dir", envvar=env("tls_dir"), type=click.Path(file_okay=False),
                     help="Where --tls auto keeps its CA and certificate (default: tls/ beside the SQLite state)."),
        click.option("--http-status-errors", envvar=env("http_status_errors"), is_flag=True,
                     help="Send request-level errors with HTTP status = code (default: HTTP 200)."),
        click.option("--max-server-token-ttl", envvar=env("max_server_token_ttl"), type=click.IntRange(1), default=3600, show_default=True),
        click.option("--journal-size", envvar=env("journal_size"), type=click.IntRange(1), default=1000, show_default=True),
        click.option("--log-format", envvar=env("log_format"), type=click.Choice(["text", "json"]), default="text", show_default=True),
        click.option("--quiet", envvar=env("quiet"), is_flag=True, help="No banner."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command()
@serve_options
def serve(**options) -> None:
    """Run the emulator (gunicorn, threaded workers)."""
    from .server import GunicornServer, prepare

    settings = Settings.from_env({}, **options)
    if settings.store.startswith("memory:") and settings.workers > 1:
        fail("--store memory:// keeps state per process: use it with --workers 1, or use sqlite:/// or redis://")
    try:
        from .tls import configure_tls

        settings, _ = configure_tls(settings)
        rt = prepare(settings)
    except (ConfigError, StoreUnavailable) as exc:
        fail(str(exc))
    GunicornServer(settings, on_ready=lambda host, port: banner(rt, host, port)).run()


def banner(rt, host: str, port: int) -> None:
    s = rt.settings
    scheme = "https" if s.tls_cert else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"{scheme}://{shown}:{port}"
    lines = [
        f"captchala-emulator {__version__} listening on {base}  (bound {host}:{port}, {s.workers} workers x {s.threads} threads)",
        f"  validate   POST {base}/v1/validate      backup POST {base}/api/validate",
        f"  issue      POST {base}/v1/server/challenge/issue",
        f"  loader     {base}/captchala-loader.js",
        f"  control    {base}/_emulator/  (dashboard, health, reset, pass-tokens)"
        + ("  [admin token required]" if s.admin_token else ""),
        f"  store      {rt.store.url}",
        f"  profile    {_profile_line(rt)}   seed {s.seed}",
        "  apps       " + "  ".join(f"{a.app_key}/{a.app_secret}" for a in rt.apps),
    ]
    if s.tls == "auto":
        from .tls import CA_FILE, HOST_NAMES, tls_dir

        lines.append(f"  tls        trust the CA {tls_dir(s) / CA_FILE} (certificate for {', '.join(HOST_NAMES)})")
    if not s.quiet:
        print("\n".join(lines), flush=True)
    else:
        print(f"captchala-emulator listening on {base}", flush=True)


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


def fail(message: str) -> None:
    click.echo(f"captchala-emulator: error: {message}", err=True)
    sys.exit(EXIT_CONFIG)


@main.command()
@click.option("--url", envvar=env("healthcheck_url"), default=None,
              help="Base URL (default: http://127.0.0.1:$CAPTCHALA_EMULATOR_PORT).")
@click.option("--timeout", type=float, default=3.0, show_default=True)
def healthcheck(url: str | None, timeout: float) -> None:
    """Exit 0 when the emulator answers healthy (for Docker HEALTHCHECK; no curl needed)."""
    import os
    import ssl

    if url is None:
        scheme = "https" if os.environ.get(env("tls")) or os.environ.get(env("tls_cert")) else "http"
        url = f"{scheme}://127.0.0.1:{os.environ.get(env('port'), '8080')}"
    request = urllib.request.Request(url.rstrip("/") + "/_emulator/health")
    token = os.environ.get(env("admin_token"))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl._create_unverified_context() if url.startswith("https") else None  # local self-check only
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        click.echo(f"unhealthy: HTTP {exc.code}", err=True)
        sys.exit(1)
    except (OSError, ValueError) as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(1)
    if body.get("status") != "ok":
        click.echo(f"unhealthy: {body}", err=True)
        sys.exit(1)
    click.echo("healthy")


@main.command("mint")
@click.option("--url", envvar=env("url"), default="http://127.0.0.1:8080", show_default=True)
@click.option("--app-key", default="demo_app", show_default=True)
@click.option("--action", default="default", show_default=True)
@click.option("--kind", type=click.Choice(["pass", "degraded", "offline"]), default="pass", show_default=True)
@click.option("--client-ip")
@click.option("--uid")
@click.option("--referer")
@click.option("--ttl", type=int)
@click.option("--admin-token", envvar=env("admin_token"))
def mint_command(url: str, admin_token: str | None, **fields) -> None:
    """Print a pass token minted by a running emulator."""
    body = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    request = urllib.request.Request(url.rstrip("/") + "/_emulator/pass-tokens", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    if admin_token:
        request.add_header("Authorization", f"Bearer {admin_token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            click.echo(json.loads(response.read())["pass_token"])
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}")
        fail(f"HTTP {exc.code}: {detail.get('message', detail)}")
    except OSError as exc:
        fail(f"cannot reach {url}: {exc}")


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
