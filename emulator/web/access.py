"""Who may use the control plane /_emulator/ (issue 10, item 13): one before-request guard.

1. The Host must be a name this server answers to: loopback names, the bound host, the real
   host names under --tls auto, and --allowed-host values (DNS rebinding defence, like
   Django's ALLOWED_HOSTS). A browser page on a rebound name is refused: 403.
2. A state-changing request a browser marks as cross-site (`Sec-Fetch-Site: cross-site`, or an
   `Origin` that is not this server's own) is refused: 403. curl, the Python client and the
   CLI send no Origin; the dashboard sends its own.
3. With --admin-token, `Authorization: Bearer <token>` (or `?admin_token=`)."""

from __future__ import annotations

import hmac
import ipaddress

from flask import request

from ..errors import ControlCode, ControlError
from ..settings import Settings
from .context import runtime

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def guard() -> None:
    """The control plane's before_request: returns to let the request through, else raises
    ControlError (answered by web/answers.py like every control-plane error)."""
    settings = runtime().settings
    host = host_name(request.host)
    if not host_allowed(host, settings):
        shown = host[:64].encode("ascii", "backslashreplace").decode("ascii")
        raise ControlError(ControlCode.HOST_NOT_ALLOWED, 403, f"Host {shown!r} is not a name this emulator answers "
                                                              "to; start it with --allowed-host NAME to allow one")
    if request.method not in SAFE_METHODS and cross_site():
        raise ControlError(ControlCode.CROSS_ORIGIN, 403, "cross-site requests cannot change the emulator's "
                                                          "state (Origin is not this server's own)")
    _admin_token(settings)


def host_name(host: str) -> str:
    """`Host` without its port, lower case, without a trailing dot; `[::1]:80` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def allowed_names(settings: Settings) -> set[str]:
    names = set(LOOPBACK_NAMES)
    if settings.host not in WILDCARD_BINDS:
        names.add(host_name(settings.host))
    if settings.tls == "auto":
        from ..tls import HOST_NAMES

        names.update(HOST_NAMES)
    names.update(extra_hosts(settings))
    return names


def extra_hosts(settings: Settings) -> list[str]:
    """--allowed-host: comma-separated names (`*` allows every name)."""
    return [host_name(n) for n in (settings.allowed_host or "").split(",") if n.strip()]


def host_allowed(host: str, settings: Settings) -> bool:
    if host.endswith(".localhost") or _is_loopback_ip(host):
        return True
    names = allowed_names(settings)
    return "*" in names or host in names


def cross_site() -> bool:
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return origin.rstrip("/").lower() != request.host_url.rstrip("/").lower()


def _is_loopback_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _admin_token(settings: Settings) -> None:
    expected = settings.admin_token
    if not expected:
        return
    given = request.headers.get("Authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else request.args.get("admin_token", "")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ControlError(ControlCode.UNAUTHORIZED, 401, "control plane needs Authorization: Bearer <admin token>",
                           {"WWW-Authenticate": 'Bearer realm="captchala-emulator"'})
