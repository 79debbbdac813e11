"""captchala-emulator: a local, wire-compatible fake of the CaptchaLa CAPTCHA service."""

__version__ = "0.1.0"


def create_app(settings=None):
    """Build the Flask app (lazy import keeps `import emulator` cheap for the CLI)."""
    from .app import create_app as _create_app

    return _create_app(settings)


__all__ = ["__version__", "create_app"]
