"""Find a profile by built-in name (the packaged `emulator/profiles/`) or by file path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config_files import FileRefused, read_text
from ..errors import ProfileError, UnknownProfile
from .profile import NAME, Profile, load_yaml

__all__ = ["Loaded", "ProfileError", "UnknownProfile", "builtin_names", "load", "load_file", "load_named"]

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
SUFFIXES = (".yaml", ".yml")


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
    """From the command line: a built-in name (`flaky-validate`) or a path to a YAML file."""
    if "\x00" in spec:
        raise ProfileError(_shown(spec), "", "a profile name or path cannot contain a NUL character")
    if os.path.exists(spec) or not NAME.match(spec) or spec.endswith(SUFFIXES):
        return load_file(spec)
    return _builtin(spec)


def load_named(name: str, profiles_dir: str | None, command_line: str | None = None) -> Loaded:
    """Over the API: a built-in name, or `<name>.yaml` in the directory the operator named
    (--profiles-dir). A name is never a path, with two exceptions the operator named already:
    the --profile file itself, and the absolute path of a file directly in --profiles-dir (so a
    watched profile can be put back by the path GET /_emulator/profile shows)."""
    operator_file = _operator_file(name, profiles_dir, command_line)
    if operator_file is not None:
        return load(operator_file) if operator_file == command_line else load_file(operator_file)
    if not NAME.match(name):
        raise ProfileError(_shown(name), "", "not a profile name (1-64 letters, digits, '-', '_' or '.'): "
                                             "files load only from the command line or --profiles-dir")
    for suffix in SUFFIXES if profiles_dir else ():
        path = Path(profiles_dir or ".") / (name if name.endswith(SUFFIXES) else name + suffix)
        if path.exists():
            return load_file(str(path), source=f"{name} (in --profiles-dir)")
    return _builtin(name)


def _operator_file(name: str, profiles_dir: str | None, command_line: str | None) -> str | None:
    """`name` if it is the command line's profile file or an absolute path of a YAML file
    directly inside --profiles-dir; None otherwise (then it must be a plain name)."""
    if "\x00" in name or not os.path.isabs(name) and name != command_line:
        return None
    if command_line and not NAME.match(command_line) and name in (command_line, os.path.abspath(command_line)):
        return command_line
    if profiles_dir and name.endswith(SUFFIXES) and os.path.isabs(name):
        inside = os.path.realpath(os.path.dirname(name)) == os.path.realpath(profiles_dir)
        return name if inside and os.path.basename(name) == Path(name).name else None
    return None


def _builtin(name: str) -> Loaded:
    path = builtin_path(name)
    if not NAME.match(name) or not path.is_file():
        known = ", ".join(builtin_names())
        raise UnknownProfile(_shown(name), "", f"no built-in profile with this name and no such file "
                                               f"(built-ins: {known})")
    loaded = load_file(str(path), source=f"profiles/{name}.yaml")
    return Loaded(loaded.profile, name)  # built-ins are never watched: they change only with the package


def load_file(path: str, source: str | None = None) -> Loaded:
    """Read and check one YAML file (a regular file of at most MAX_FILE_BYTES); the profile's
    name defaults to the file's stem."""
    source = source or _shown(path)
    try:
        text, mtime_ns = read_text(path)
    except FileRefused as exc:
        raise (UnknownProfile if exc.missing else ProfileError)(source, "", exc.problem) from None
    profile = load_yaml(text, source, default_name=_stem(path))
    return Loaded(profile, source, os.path.abspath(path), mtime_ns)


def _shown(spec: str) -> str:
    """A name or path as it may appear in a message: printable, bounded."""
    text = spec[:200]
    return text if text.isprintable() else repr(text)


def _stem(path: str) -> str:
    stem = Path(path).stem
    return stem if NAME.match(stem) else "custom"
