"""`captchala-emulator doctor` (the passive diagnosis) and `captchala-emulator audit` (does your
app fail open?): both talk to a running emulator through its control plane."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .client import EmulatorClient
from .options import load_settings, settings_options

EXIT_FINDINGS = 1
EXIT_USAGE = 2


def _client(ctx: click.Context, url: str | None, admin_token: str | None) -> EmulatorClient:
    """--url, else CAPTCHALA_EMULATOR_URL, else http://127.0.0.1:$CAPTCHALA_EMULATOR_PORT (8080)."""
    settings = load_settings(ctx, {"url": url, "admin_token": admin_token})
    return EmulatorClient(settings.url or settings.local_url(), admin_token=settings.admin_token)


def _unreachable(url: str, exc: Exception) -> None:
    click.echo(f"captchala-emulator: error: cannot talk to the emulator at {url}: {exc}", err=True)
    sys.exit(EXIT_USAGE)


@click.command()
@settings_options("doctor")
@click.option("--app-key", help="Only this app's findings.")
@click.option("--since", help="Only what happened from then on: epoch seconds or 2026-12-02T10:00:00Z (virtual time).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def doctor(ctx: click.Context, url: str | None, app_key: str | None, since: str | None, as_json: bool,
           admin_token: str | None) -> None:
    """Explain "captcha incomplete or invalid" from what the emulator saw: exit 0 when there is
    nothing to report, 1 with findings."""
    from .client import ControlPlaneError

    client = _client(ctx, url, admin_token)
    try:
        findings = client.diagnosis(app_key, since)
    except ControlPlaneError as exc:
        click.echo(f"captchala-emulator: error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        _unreachable(client.url, exc)
    click.echo(json.dumps(findings, indent=2) if as_json else render_findings(findings))
    sys.exit(EXIT_FINDINGS if findings else 0)


def render_findings(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "No findings: nothing in the journal looks like \"captcha incomplete or invalid\"."
    blocks = []
    for f in findings:
        lines = [f"{f['id']} ×{f['count']}: {f['title']}", f"  cause:   {f['cause']}",
                 f"  inspect: {f['inspect']}", f"  fix:     {f['fix']}"]
        lines += [f"  #{e['journal_id']} {e['at']}: {e['note']}" for e in f["examples"]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx=ctx, param=param)
        pairs[key] = rest
    return pairs


@click.command()
@settings_options("audit")
@click.option("--target", required=True, metavar="APP_URL", help="Where your app receives the form (its login URL).")
@click.option("--method", default="POST", show_default=True, type=click.Choice(["POST", "PUT", "PATCH", "GET"]),
              help="The HTTP method of your app's form submission.")
@click.option("--form", multiple=True, callback=_pairs, metavar="KEY=VALUE", help="Extra form fields.")
@click.option("--json-field", "json_fields", multiple=True, callback=_pairs, metavar="KEY=VALUE",
              help="Send a JSON body with these fields instead of a form.")
@click.option("--token-field", required=True, metavar="NAME", help="The field that carries the pass token.")
@click.option("--accept-status", multiple=True, required=True, type=click.IntRange(100, 599), metavar="CODE",
              help="A status that means the user got in (repeatable).")
@click.option("--app-key", default="demo_app", show_default=True, help="The app whose tokens the cases use.")
@click.option("--action", help="The action your app expects (enables wrong_action_rejected).")
@click.option("--degraded", type=click.Choice(["accept", "reject"]), help="Your declared policy for degraded tokens.")
@click.option("--fail-open", is_flag=True, help="Declare that your app lets users in when CaptchaLa is down.")
@click.option("--max-wait", type=click.FloatRange(0.1, 600), default=5.0, show_default=True,
              help="Seconds your app may take to answer while the API hangs.")
@click.option("--report-json", type=click.Path(dir_okay=False, writable=True), help="Write the report as JSON.")
@click.option("--junit", type=click.Path(dir_okay=False, writable=True), help="Write the report as JUnit XML.")
@click.pass_context
def audit(ctx: click.Context, url: str | None, target: str, method: str, form: dict[str, str],
          json_fields: dict[str, str], token_field: str, accept_status: tuple[int, ...], app_key: str,
          action: str | None, degraded: str | None, fail_open: bool, max_wait: float, report_json: str | None,
          junit: str | None, admin_token: str | None) -> None:
    """Drive your app through the audit's cases and print a verdict table: exit 0 when every case
    passes, 1 when one fails, 2 on a usage error."""
    from .audit import report as reports
    from .audit.driver import HttpTarget
    from .client import ControlPlaneError

    submit = HttpTarget(target, token_field, accept_status, method, form, json_fields, timeout=max(max_wait * 2, 30))
    client = _client(ctx, url, admin_token)
    try:
        result = client.audit(submit, app_key=app_key, action=action, degraded=degraded,
                                                 fail_open=fail_open, max_wait=max_wait)
    except ControlPlaneError as exc:
        click.echo(f"captchala-emulator: error: the emulator refused: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        _unreachable(client.url, exc)
    click.echo(reports.table(result))
    if report_json:
        reports.write(report_json, reports.to_json(result))
    if junit:
        reports.write(junit, reports.junit(result))
    sys.exit(0 if result["summary"]["ok"] else EXIT_FINDINGS)


def attach(group: click.Group) -> None:
    group.add_command(doctor)
    group.add_command(audit)
