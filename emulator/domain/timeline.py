"""A token's life as a timeline: the server token behind it, the challenge inits, the solve and
every validate attempt, each with the time since the stage before.

Pure (no Flask): it reads the journal through `Journal.query` and takes `now` as an argument."""

from __future__ import annotations

from typing import Any

from .challenges import CHALLENGE_TTL
from .clock import iso
from .journal import VALIDATE_ENDPOINTS, Journal, JournalQuery

SOLVE_ENDPOINTS = ("challenge_solve", "challenge_offline")
STAGE_NAMES = {"issue": "server_token_issued", "challenge_init": "challenge_init", "challenge_solve": "solved",
               "challenge_offline": "offline_token", "mint": "minted", "validate": "validate",
               "backup_validate": "backup_validate"}
FAILING_OUTCOMES = ("rejected", "error", "fault")
SLOW_REQUEST_MS = 1000.0  # one request slower than this is marked slow whatever the stage
SLOW_FRACTION = 0.5  # a gap longer than this share of the previous thing's lifetime is marked slow


def token_timeline(journal: Journal, *, fingerprint: str | None, token_id: str | None,
                   challenge: str | None, expires_at: float | None = None) -> list[dict[str, Any]]:
    """The stages of one token's life, oldest first (see `stage`)."""
    if not fingerprint:
        return []
    rows = _chain(journal, fingerprint, token_id, challenge)
    stages: list[dict[str, Any]] = []
    for entry in rows:
        previous = stages[-1] if stages else None
        stages.append(stage(entry, previous, expires_at))
    return stages


def is_failing(entry: dict[str, Any]) -> bool:
    """A request that did not do what the caller wanted: refused, errored, or cut off by a fault."""
    status = entry.get("status") or 200
    return entry.get("outcome") in FAILING_OUTCOMES or status >= 500 or status == 444


def stage(entry: dict[str, Any], previous: dict[str, Any] | None, expires_at: float | None) -> dict[str, Any]:
    """One journal entry as a timeline stage: `at`, `stage`, `outcome`, `detail`, `since_previous_s`."""
    ts = float(entry.get("virtual_ts") or 0.0)
    gap = round(ts - previous["ts"], 3) if previous else None
    outcome = entry.get("outcome") or "?"
    if entry.get("code"):
        outcome += " " + entry["code"]
    item = {"at": iso(ts), "ts": ts, "stage": STAGE_NAMES.get(entry.get("endpoint") or "", entry.get("endpoint")),
            "outcome": outcome, "detail": _detail(entry, expires_at), "since_previous_s": gap,
            "journal_id": entry.get("id"), "caller_ip": entry.get("caller_ip"),
            "duration_ms": entry.get("duration_ms"), "failing": is_failing(entry)}
    for key in ("client_ip", "keep_token", "product", "page", "fault", "ttl", "max_uses", "binding_ip"):
        if entry.get(key) is not None:
            item[key] = entry[key]
    item["slow"] = _slow(entry, previous, gap, expires_at)
    return item


def _chain(journal: Journal, fingerprint: str, token_id: str | None, challenge: str | None) -> list[dict[str, Any]]:
    """Every entry of the chain: the token's own requests, its challenge's inits, the server token's issue."""
    found: dict[int, dict[str, Any]] = {}
    for entry in journal.query(JournalQuery(token_fp=fingerprint, limit=journal.capacity)):
        found[entry["id"]] = entry
    if token_id:
        found.update((e["id"], e) for e in journal.query(JournalQuery(token_id=token_id, limit=journal.capacity)))
    challenges = {challenge} if challenge else set()
    challenges |= {e["challenge_id"] for e in found.values()
                   if e.get("endpoint") in SOLVE_ENDPOINTS and e.get("challenge_id")}
    if challenges:
        inits = [e for e in journal.query(JournalQuery(endpoint="challenge_init", limit=journal.capacity))
                 if e.get("challenge_id") in challenges]
        found.update((e["id"], e) for e in inits)
        for sct_id in {e["token_id"] for e in inits if e.get("token_id")}:
            found.update((e["id"], e) for e in journal.query(JournalQuery(token_id=sct_id, limit=journal.capacity)))
    return [found[i] for i in sorted(found)]


def _detail(entry: dict[str, Any], expires_at: float | None) -> str:
    endpoint = entry.get("endpoint")
    who = f"from {entry.get('caller_ip') or '?'}"
    why = entry.get("reason") or ""
    fault = f" [fault {entry['fault']}]" if entry.get("fault") else ""
    if endpoint == "issue":
        binding = entry.get("binding_ip") or "none"
        return f"sct_ ttl {entry.get('ttl', '?')} s, max_uses {entry.get('max_uses', '?')}, binding {binding}{fault}"
    if endpoint == "challenge_init":
        return f"{who}, page {entry.get('page') or 'unknown'}, product {entry.get('product') or '?'}: {why}{fault}"
    if endpoint in VALIDATE_ENDPOINTS:
        sent = entry.get("client_ip") or "not sent"
        keep = ", keep_token" if entry.get("keep_token") else ""
        left = ""
        if expires_at is not None and entry.get("virtual_ts") is not None:
            left_s = round(expires_at - float(entry["virtual_ts"]))
            left = f", {left_s} s before expiry" if left_s >= 0 else f", {-left_s} s after expiry"
        return f"{who}, client_ip {sent}{keep}{left}: {why}{fault}"
    return f"{who}: {why}{fault}"


def _slow(entry: dict[str, Any], previous: dict[str, Any] | None, gap: float | None,
          expires_at: float | None) -> bool:
    if float(entry.get("duration_ms") or 0.0) >= SLOW_REQUEST_MS or entry.get("fault_latency_ms"):
        return True
    if previous is None or gap is None:
        return False
    if previous["stage"] == "challenge_init":
        return gap > CHALLENGE_TTL * SLOW_FRACTION
    if previous["stage"] in ("solved", "offline_token", "minted") and expires_at is not None:
        return gap > (expires_at - previous["ts"]) * SLOW_FRACTION
    return False
