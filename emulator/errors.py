"""The real CaptchaLa wire error codes, the control plane's codes, and every error the package
raises: one tree under CaptchalaEmulatorError (itsdangerous's single-root idea).

    CaptchalaEmulatorError
    ├── EmulatorError            a wire code: RequestError, TokenRejected, ChallengeError
    ├── ControlError             a control-plane refusal: ControlCode + HTTP status
    ├── StoreUnavailable         answered as service_unavailable (web/answers.py)
    └── ConfigError              one line, exit code 2
        └── ProfileError         source, key path, problem
            └── UnknownProfile"""

from __future__ import annotations

from enum import Enum, StrEnum


class ErrorCode(str, Enum):
    """Error code strings exactly as they travel on the wire (docs/compatibility.md §5)."""

    # token-level answers of validate (HTTP 200, code 0, data.valid false)
    EMPTY_TOKEN = "empty_token"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_CONSUMED = "token_consumed"
    BINDING_MISMATCH = "binding_mismatch"
    # request-level answers (non-zero code)
    INVALID_APP_KEY = "invalid_app_key"
    INVALID_APP_SECRET = "invalid_app_secret"
    APP_DISABLED = "app_disabled"
    INVALID_ACTION = "invalid_action"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    INVALID_REQUEST = "invalid_request"  # emulator choice: malformed body or field
    NOT_FOUND = "not_found"  # emulator choice: unknown path
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SERVICE_UNAVAILABLE = "service_unavailable"  # emulator choice: store down
    INTERNAL_ERROR = "internal_error"
    # moderation (local-only in the SDKs, also answered by us)
    EMPTY_INPUT = "empty_input"
    EMPTY_TEXT = "empty_text"
    # browser side (onError codes, docs/compatibility.md §5)
    SERVER_TOKEN_REQUIRED = "server_token_required"
    SERVER_TOKEN_INVALID = "server_token_invalid"
    SERVER_TOKEN_EXPIRED = "server_token_expired"
    SERVER_TOKEN_EXHAUSTED = "server_token_exhausted"
    SERVER_TOKEN_APP_MISMATCH = "server_token_app_mismatch"
    SERVER_TOKEN_BINDING_MISMATCH = "server_token_binding_mismatch"
    CHALLENGE_EXPIRED = "challenge_expired"
    SESSION_EXPIRED = "session_expired"
    QUOTA_EXHAUSTED = "quota_exhausted"

    def __str__(self) -> str:  # so f"{code}" prints the wire string
        return self.value


# Envelope `code` for request-level errors (emulator choice, docs/compatibility.md §9).
REQUEST_ERROR_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.INVALID_ACTION: 400,
    ErrorCode.EMPTY_INPUT: 400,
    ErrorCode.EMPTY_TEXT: 400,
    ErrorCode.INVALID_APP_KEY: 401,
    ErrorCode.INVALID_APP_SECRET: 401,
    ErrorCode.APP_DISABLED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.RATE_LIMIT_EXCEEDED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
}

# Short human messages for `msg` (paraphrasing the PHP SDK's Errors map, docs/compatibility.md §5).
MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.EMPTY_TOKEN: "pass token is empty",
    ErrorCode.INVALID_TOKEN: "verification did not pass",
    ErrorCode.TOKEN_EXPIRED: "token expired",
    ErrorCode.TOKEN_CONSUMED: "token already used",
    ErrorCode.BINDING_MISMATCH: "token was solved from a different network",
    ErrorCode.INVALID_APP_KEY: "invalid app key",
    ErrorCode.INVALID_APP_SECRET: "invalid app secret",
    ErrorCode.APP_DISABLED: "captcha is disabled for this app",
    ErrorCode.INVALID_ACTION: "invalid action",
    ErrorCode.RATE_LIMIT_EXCEEDED: "rate limit",
    ErrorCode.INVALID_REQUEST: "bad request",
    ErrorCode.NOT_FOUND: "not found",
    ErrorCode.METHOD_NOT_ALLOWED: "method not allowed",
    ErrorCode.SERVICE_UNAVAILABLE: "service temporarily unavailable",
    ErrorCode.INTERNAL_ERROR: "internal error",
    ErrorCode.EMPTY_INPUT: "input is empty",
    ErrorCode.EMPTY_TEXT: "text is empty",
    ErrorCode.SERVER_TOKEN_REQUIRED: "a server token is required",
    ErrorCode.SERVER_TOKEN_INVALID: "server token is invalid",
    ErrorCode.SERVER_TOKEN_EXPIRED: "server token expired",
    ErrorCode.SERVER_TOKEN_EXHAUSTED: "server token has no uses left",
    ErrorCode.SERVER_TOKEN_APP_MISMATCH: "server token belongs to another app",
    ErrorCode.SERVER_TOKEN_BINDING_MISMATCH: "server token is bound to another IP",
    ErrorCode.CHALLENGE_EXPIRED: "challenge expired",
    ErrorCode.SESSION_EXPIRED: "session expired",
    ErrorCode.QUOTA_EXHAUSTED: "quota exhausted",
}


class ControlCode(StrEnum):
    """The `error` of a control-plane answer `{"error", "message"}` (docs/compatibility.md §14)."""

    UNAUTHORIZED = "unauthorized"
    HOST_NOT_ALLOWED = "host_not_allowed"
    CROSS_ORIGIN = "cross_origin"
    UNKNOWN_APP = "unknown_app"
    UNKNOWN_PROFILE = "unknown_profile"
    INVALID_PROFILE = "invalid_profile"
    INVALID_APP = "invalid_app"
    APP_EXISTS = "app_exists"
    APP_NOT_REMOVABLE = "app_not_removable"


def message(code: ErrorCode) -> str:
    return MESSAGES.get(code, code.value.replace("_", " "))


class CaptchalaEmulatorError(Exception):
    """The root of every error this package raises."""


class EmulatorError(CaptchalaEmulatorError):
    """A domain error with a wire code and a human reason.

    `reason` is the emulator's explanation (journal, X-Captchala-Emulator-Reason),
    never sent in the body so the wire format stays the real one."""

    def __init__(self, code: ErrorCode, reason: str | None = None, *, retry_after: int | None = None):
        super().__init__(reason or message(code))
        self.code = code
        self.reason = reason or message(code)
        self.retry_after = retry_after


class RequestError(EmulatorError):
    """A request-level failure: non-zero envelope `code` (docs/compatibility.md §9)."""

    @property
    def status(self) -> int:
        return REQUEST_ERROR_STATUS.get(self.code, 400)


class TokenRejected(EmulatorError):
    """A token-level failure: code 0, data.valid false, data.error (docs/compatibility.md §3)."""


class ChallengeError(EmulatorError):
    """A browser-side failure reported to the widget's onError (docs/compatibility.md §7)."""


class ControlError(CaptchalaEmulatorError):
    """A control-plane refusal: its code, its HTTP status and a human message."""

    def __init__(self, code: ControlCode, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.status, self.message, self.headers = code, status, message, headers or {}


class StoreUnavailable(CaptchalaEmulatorError):
    """The shared store cannot be reached; answered as service_unavailable."""


class ConfigError(CaptchalaEmulatorError):
    """Bad configuration (apps file, profile, store URL): one clear line, exit code 2."""


class ProfileError(ConfigError):
    """A profile was refused: `source` (file or API), `path` (key path) and `problem`."""

    def __init__(self, source: str, path: str, problem: str):
        self.source, self.path, self.problem = source, path, problem
        super().__init__(f"{source}: {path}: {problem}" if path else f"{source}: {problem}")

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "path": self.path, "problem": self.problem, "message": str(self)}


class UnknownProfile(ProfileError):
    """Neither a built-in profile name nor an existing file."""
