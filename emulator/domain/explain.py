"""Explain a token (docs/compatibility.md §14): what it is, whether it is genuine, its state now and its history.

Pure (no Flask). The verdicts come from running the real `validate` in dry-run mode
(`keep_token`), so explain can never disagree with what /v1/validate would answer."""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode, TokenRejected
from ..store.base import Store
from .apps import App, AppRegistry
from .clock import iso
from .journal import VALIDATE_ENDPOINTS, Journal, JournalQuery, token_fingerprint
from .server_tokens import use_key
from .timeline import token_timeline
from .tokens import Kind, Token, TokenSigner, readable_claims
from .validation import ValidateRequest, validate

_STATE_BY_ERROR = {ErrorCode.TOKEN_EXPIRED.value: "expired", ErrorCode.TOKEN_CONSUMED.value: "consumed",
                   ErrorCode.APP_DISABLED.value: "app_disabled"}


def explain_token(raw: str, *, signer: TokenSigner, apps: AppRegistry, store: Store, journal: Journal,
                  now: float) -> dict[str, Any]:
    """Everything the emulator knows about a token string, in words and in fields."""
    raw = raw.strip()
    kind, claims, signed = signer.peek(raw) if raw else (None, None, False)
    verified = _verified(raw, signer)
    out: dict[str, Any] = {
        "fingerprint": token_fingerprint(raw), "preview": preview(raw), "length": len(raw),
        "kind": kind.label if kind else None, "prefix": kind.value if kind else None,
        "signature_valid": bool(signed), "claims_verified": verified is not None,
        "claims": readable_claims(claims) if isinstance(claims, dict) else None,
    }
    if verified is None:
        out.update(_not_genuine(raw, kind, claims, bool(signed), signer))
    else:
        out.update(_genuine(raw, verified, apps.get(verified.app_key), signer, store, now))
    out["history"] = history(journal, out["fingerprint"], verified.token_id if verified else None)
    out["timeline"] = token_timeline(journal, fingerprint=out["fingerprint"],
                                     token_id=verified.token_id if verified else None,
                                     challenge=_challenge_of(verified),
                                     expires_at=verified.expires_at if verified else None)
    out["summary"] = _summary(out)
    return out


def _challenge_of(token: Token | None) -> str | None:
    """The public id of the browser challenge a pass token solved (None for minted tokens)."""
    return "ch_" + token.claims["ch"] if token and token.claims.get("ch") else None


def preview(raw: str) -> str:
    """A token shortened for display and logs: prefix and first characters only."""
    return raw if len(raw) <= 24 else raw[:20] + "…"


def _verified(raw: str, signer: TokenSigner) -> Token | None:
    try:
        return signer.load(raw, tuple(Kind)) if raw else None
    except TokenRejected:
        return None


def _not_genuine(raw: str, kind: Kind | None, claims: Any, signed: bool, signer: TokenSigner) -> dict[str, Any]:
    if not raw:
        return {"state": "empty", "reason": "the token is empty: validate answers empty_token",
                "validate": {"error": ErrorCode.EMPTY_TOKEN.value, "valid": False}}
    try:
        signer.load(raw, tuple(Kind))
        why = "signed payload is not a token"
    except TokenRejected as err:
        why = err.reason
    if kind is None:
        why = (f"not an emulator token: it does not start with {', '.join(k.value for k in Kind)} "
               "(a real CaptchaLa token, a test placeholder, or a truncated value?)")
    elif not signed and isinstance(claims, dict) and claims.get("app"):
        why = (f"tampered or from another emulator: the payload claims app {claims.get('app')}, action "
               f"{claims.get('act')!r}, but the signature does not match this emulator's secret "
               "(edited after minting, or minted by an emulator with a different --secret)")
    verdict = {"valid": False, "error": ErrorCode.INVALID_TOKEN.value, "reason": why}
    return {"state": "forged", "reason": why, "validate": verdict}


def _genuine(raw: str, token: Token, app: App | None, signer: TokenSigner, store: Store,
             now: float) -> dict[str, Any]:
    timing = {"issued_at": iso(token.claims.get("iat")), "expires_at": iso(token.expires_at),
              "expires_in_s": round(token.expires_at - now, 3)}
    if app is None:
        why = (f"signed by this emulator for app {token.app_key}, which it no longer knows "
               "(apps file changed?): validate answers invalid_app_key or invalid_token")
        return {"state": "unknown_app", "reason": why, "app_key": token.app_key, **timing,
                "validate": {"valid": False, "error": ErrorCode.INVALID_TOKEN.value, "reason": why}}
    if token.kind is Kind.SERVER:
        return {**timing, "app_key": app.app_key, **_server_token(raw, token, app, signer, store, now)}
    main = _would_answer(raw, app, signer, store, now, backup=False)
    backup = _would_answer(raw, app, signer, store, now, backup=True)
    home = backup if token.kind is Kind.OFFLINE else main
    state = _state(token, app, home)
    return {"state": state, "reason": _state_reason(state, token, home), "app_key": app.app_key, **timing,
            "validate": main, "backup_validate": backup}


def _would_answer(raw: str, app: App, signer: TokenSigner, store: Store, now: float, *,
                  backup: bool) -> dict[str, Any]:
    """What validate would answer now with the app's own credentials (a dry run: nothing consumed)."""
    if app.disabled:
        return {"valid": False, "error": ErrorCode.APP_DISABLED.value, "reason": f"app {app.app_key} is disabled"}
    try:
        result = validate(ValidateRequest(raw, keep_token=True), app, signer=signer, store=store, now=now,
                          request_key="", caller_ip="", backup=backup)
    except TokenRejected as err:
        return {"valid": False, "error": err.code.value, "reason": err.reason}
    if result.data.get("degraded"):
        return {"valid": False, "degraded": True, "reason": result.reason}
    return {"valid": True, "error": None, "reason": "would be accepted (and consumed, unless keep_token)"}


def _state(token: Token, app: App, home: dict[str, Any]) -> str:
    if home.get("error") in _STATE_BY_ERROR:
        return _STATE_BY_ERROR[home["error"]]
    if home.get("error") and app.always_fail:
        return "always_fail"
    if home.get("degraded"):
        return "degraded"
    if token.kind is Kind.OFFLINE:
        return "offline"
    return "valid" if home.get("valid") else "invalid"


def _state_reason(state: str, token: Token, home: dict[str, Any]) -> str:
    if state == "valid":
        return f"valid: genuine, unexpired and unused; validate accepts it once with app {token.app_key}'s secret"
    if state == "offline":
        return ("an offline_ token (the widget's fallback when the main API is down): only the backup endpoint "
                "/api/validate accepts it; /v1/validate answers invalid_token")
    if state == "degraded":
        return ("a degraded dg_ token (quota exhausted): validate answers valid:false, degraded:true, "
                "reason quota_exhausted until it expires; your backend decides whether to let the user in")
    return home.get("reason") or state


def _server_token(raw: str, token: Token, app: App, signer: TokenSigner, store: Store, now: float) -> dict[str, Any]:
    uses = store.uses(use_key(token.token_id))
    max_uses = int(token.claims.get("max", 1))
    details = {"uses": uses, "max_uses": max_uses, "binding_ip": token.claims.get("bip")}
    wrong_kind = (f"a server token (sct_) for app {app.app_key}: it belongs in the browser SDK's serverToken "
                  "option (challenge init), not in validate, which wants the pass token (pt_) from onSuccess "
                  "and answers invalid_token")
    if now >= token.expires_at:
        why = f"server token expired {int(now - token.expires_at)} s ago; also: {wrong_kind}"
        state = "expired"
    elif uses >= max_uses:
        why = (f"server token used {uses} of {max_uses} time(s): challenge init answers server_token_exhausted; "
               f"also: {wrong_kind}")
        state = "exhausted"
    else:
        why, state = wrong_kind, "wrong_kind"
    verdict = _would_answer(raw, app, signer, store, now, backup=False)
    return {"state": state, "reason": why, "server_token": details, "validate": verdict}


def history(journal: Journal, fingerprint: str | None, token_id: str | None) -> list[dict[str, Any]]:
    """Every journaled request that carried this token (or, for a genuine token, its id), oldest first."""
    if not fingerprint:
        return []
    rows = {e["id"]: e for e in journal.query(JournalQuery(token_fp=fingerprint, limit=journal.capacity))}
    if token_id:
        rows.update((e["id"], e) for e in journal.query(JournalQuery(token_id=token_id, limit=journal.capacity)))
    return [_history_item(rows[i], fingerprint) for i in sorted(rows)]


def _history_item(entry: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    item = {key: entry.get(key) for key in ("id", "endpoint", "caller_ip", "app_key", "outcome", "code",
                                            "reason", "status", "fault", "client_ip")}
    item["at"] = iso(entry.get("virtual_ts"))
    if entry.get("token_fp") not in (None, fingerprint):
        item["note"] = "same token id, different string (a copy that was edited?)"
    item["text"] = describe_entry(entry)
    return item


def describe_entry(entry: dict[str, Any]) -> str:
    """One journal entry as a sentence:
    '#17 12:03:04 validate from 10.0.0.5 (demo_app): rejected token_consumed — …'."""
    at = iso(entry.get("virtual_ts"))
    clock = at[11:19] if at else "?"
    who = f" ({entry['app_key']})" if entry.get("app_key") else ""
    result = entry.get("outcome") or "?"
    if entry.get("code"):
        result += f" {entry['code']}"
    why = f" — {entry['reason']}" if entry.get("reason") else ""
    fault = f" [fault {entry['fault']}]" if entry.get("fault") else ""
    where = f"{entry.get('endpoint')} from {entry.get('caller_ip')}"
    return f"#{entry.get('id')} {clock} {where}{who}: {result}{why}{fault}"


def _summary(out: dict[str, Any]) -> str:
    what = "token"
    if out.get("kind"):
        what = f"{out['kind']} token"
    claims = out.get("claims") or {}
    if out.get("claims_verified"):
        what += f" for {claims.get('app_key')} (action {claims.get('action')!r})"
    validations = [h for h in out["history"] if h["endpoint"] in VALIDATE_ENDPOINTS]
    seen = f"; validated {len(validations)} time(s), last: {validations[-1]['text']}" if validations else ""
    return f"{what}: {out['state']} — {out['reason']}{seen}"
