"""The diagnosis's findings in words: each fixed id with its title, likely cause, what to inspect
and the fix, in the words of the "captcha incomplete or invalid" troubleshooting advice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    cause: str
    inspect: str
    fix: str


RULES = [
    Rule("challenge_abandoned", "Incomplete: a challenge was opened but never solved",
         "the challenge was abandoned: the user left, the widget was reset or hidden, or it failed to load its step",
         "the challenge_init entries without a challenge_solve, the page (referer) and the browser console",
         "render the widget where users see it; on expiry or error reset it and let the user try again"),
    Rule("token_never_validated", "Incomplete: a token was issued but never validated",
         "the callback never fired or the form never carried the token to your backend",
         "onSuccess wiring, the hidden form field, and your backend's validate call",
         "put the pass token from onSuccess into the form and validate it on every submit"),
    Rule("submitted_before_token", "Incomplete: the form was submitted before the token arrived",
         "the form was submitted before the token was available (empty or missing pass_token)",
         "the submit handler: does it wait for onSuccess? is the submit button enabled too early?",
         "disable submit until onSuccess fires; refuse an empty token before calling validate"),
    Rule("token_expired_before_validation", "Invalid: the token expired before it was validated",
         "the token sat too long between solve and validate (slow form, long-lived page, queued submit)",
         "the solve → validate age against the token's lifetime in each example",
         "refresh the challenge before submit: reset the widget on expiry and validate at submit time"),
    Rule("duplicate_submit", "Invalid: the same token was submitted twice (double submit)",
         "a double click or a duplicated request sent one token twice within seconds",
         "the submit button and any client-side retry; the second answer is token_consumed",
         "disable the button after the first submit; validate each token exactly once"),
    Rule("retry_with_same_token", "Invalid: a retry reused the token",
         "a retry after a failed, timed-out or earlier attempt sent the same token again; a token is single-use",
         "your backend's retry logic around validate, and the first attempt's answer",
         "on a failed validate ask the user to solve again (reset the widget) instead of retrying with the same token"),
    Rule("token_replayed", "Invalid: one token was validated by different callers",
         "the token was replayed from another machine, or two services validate the same token",
         "the caller IPs of each validate of the token",
         "validate in one place only; treat a token_consumed from another caller as a replay"),
    Rule("credentials_mismatch", "Invalid: wrong app key or secret",
         "staging and production crossing wires: the secret of another app, or an app key the service does not know",
         "X-App-Key / X-App-Secret your backend sends, and the app key the frontend renders",
         "use one key pair per environment, from the same configuration for frontend and backend"),
    Rule("token_of_other_app", "Invalid: a token of another app",
         "the frontend renders one app key and the backend validates with another "
         "(staging and production crossing wires)",
         "the app key in the page versus X-App-Key at validate",
         "render and validate with the same app's key pair"),
    Rule("client_ip_looks_like_proxy", "Invalid risk: the client_ip sent is not the user's",
         "the client IP is seen through a proxy: the backend sends its proxy's or load balancer's address",
         "the client_ip sent at validate against the IP that solved the challenge",
         "send the user's IP from X-Forwarded-For (trusted proxies only), or do not send client_ip"),
    Rule("server_token_rejected", "Incomplete: challenge init refused the server token",
         "the server token (sct_) was expired, used up or bound to another IP when the widget started",
         "when the sct_ was issued, its ttl, max_uses and binding_ip, and the init's IP",
         "issue a fresh server token for each page view, with a ttl longer than the page's life"),
    Rule("upstream_faults", "Outage: requests broken by the active fault profile",
         "the captcha service (here: a fault profile) failed or was slow; "
         "check whether your app retried and failed closed",
         "the fault label on each entry and GET /_emulator/profile",
         "fail closed on errors and timeouts, bound the validate timeout, and clear the profile when done"),
]
RULES_BY_ID = {rule.id: rule for rule in RULES}
