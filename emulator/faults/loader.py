"""Find a profile by built-in name (the packaged `emulator/profiles/`) or by file path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .profile import NAME, Profile, ProfileError, load_yaml

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
SUFFIXES = (".yaml", ".yml")


class UnknownProfile(ProfileError):
    """Neither a built-in profile name nor an existing file."""


@dataclass(frozen=True)
class Loaded:
    """A profile and where it came from (`file` is set when it can be watched for changes)."""

    profile: Profile
    source: str
    file: str | None = None
    mtime_ns: int | None = None


def builtin_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def builtin_path(name: str) -> Path:
    return PROFILES_DIR / f"{name}.yaml"


def describe_builtin(name: str) -> str:
    """A built-in profile's header comment (what it reproduces), as one line."""
    lines = []
    for line in builtin_path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(x for x in lines if x)


def load(spec: str) -> Loaded:
    """A built-in name (`flaky-validate`) or a path to a YAML file; ProfileError otherwise."""
    if os.path.exists(spec) or not NAME.match(spec) or spec.endswith(SUFFIXES):
        return load_file(spec)
    path = builtin_path(spec)
    if not path.is_file():
        known = ", ".join(builtin_names())
        raise UnknownProfile(spec, "", f"no built-in profile with this name and no such file (built-ins: {known})")
    loaded = load_file(str(path), source=f"profiles/{spec}.yaml")
    return Loaded(loaded.profile, spec)  # built-ins are never watched: they change only with the package


def load_file(path: str, source: str | None = None) -> Loaded:
    """Read and check one YAML file; the profile's name defaults to the file's stem."""
    source = source or path
    try:
        mtime_ns = os.stat(path).st_mtime_ns
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise UnknownProfile(source, "", "no such file") from None
    except IsADirectoryError:
        raise ProfileError(source, "", "is a directory, not a profile file") from None
    except UnicodeDecodeError:
        raise ProfileError(source, "", "not UTF-8 text") from None
    except OSError as exc:
        raise ProfileError(source, "", f"cannot read: {exc.strerror}") from None
    profile = load_yaml(text, source, default_name=_stem(path))
    return Loaded(profile, source, os.path.abspath(path), mtime_ns)


def _stem(path: str) -> str:
    stem = Path(path).stem
    return stem if NAME.match(stem) else "custom"
