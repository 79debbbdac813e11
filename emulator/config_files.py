"""Read one configuration file (apps, fault profile) safely: a regular file, at most
MAX_FILE_BYTES, UTF-8 text. A FIFO, a device such as /dev/zero or a directory is refused
without blocking and without reading it."""

from __future__ import annotations

import os
import re
import stat
from typing import Any

import yaml

from .domain.json_codec import LONE_SURROGATE, lone_surrogate
from .errors import CaptchalaEmulatorError

MAX_FILE_BYTES = 1024 * 1024


class FileRefused(CaptchalaEmulatorError):
    """Why a file cannot be read as configuration; `missing` when it does not exist."""

    def __init__(self, problem: str, *, missing: bool = False):
        super().__init__(problem)
        self.problem, self.missing = problem, missing


def read_text(path: str) -> tuple[str, int]:
    """The file's text and its mtime (ns), or FileRefused with a one-line problem."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise FileRefused("no such file", missing=True) from None
    except (OSError, ValueError) as exc:
        raise FileRefused(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        info = os.fstat(fd)
        _check_regular(info)
        data = os.read(fd, MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(f"larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8"), info.st_mtime_ns
    except UnicodeDecodeError:
        raise FileRefused("not UTF-8 text") from None


def directory_problem(path: str) -> str | None:
    """Why `path` cannot be a directory of configuration files, if it cannot (one stat, no open)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "no such directory"
    except (OSError, ValueError) as exc:
        return f"cannot read: {getattr(exc, 'strerror', None) or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    return None


def _check_regular(info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise FileRefused("is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused("not a regular file (a FIFO, socket or device is never read)")
    if info.st_size > MAX_FILE_BYTES:
        raise FileRefused(f"larger than {MAX_FILE_BYTES // 1024} KiB")


MAX_YAML_DEPTH = 64  # no configuration needs more; PyYAML's flow scanner is quadratic in depth


_OPENING_RUN = re.compile(r"[\[{](?:\s*[\[{]){" + str(MAX_YAML_DEPTH) + "}")


class YamlTooDeep(yaml.YAMLError, CaptchalaEmulatorError):
    """A YAML document nested deeper than MAX_YAML_DEPTH."""

    def __str__(self) -> str:
        return "nested too deeply"


class YamlNotText(yaml.YAMLError, CaptchalaEmulatorError):
    """A YAML document with a string that is not text (a lone UTF-16 surrogate) at `where`."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {LONE_SURROGATE}"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_YAML_DEPTH levels (before the scanner has read
    further), so a deep document costs neither quadratic time nor a RecursionError."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlTooDeep()
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_load_yaml(text: str) -> Any:
    """yaml.safe_load with a nesting limit: YamlTooDeep (a YAMLError) past MAX_YAML_DEPTH, and
    YamlNotText for a string that is not text (a "\\ud800" escape makes one)."""
    if _OPENING_RUN.search(text):  # refused before PyYAML's scanner reads the whole run ahead
        raise YamlTooDeep()
    loader = _BoundedLoader(text)
    try:
        doc = loader.get_single_data()
    except RecursionError:
        raise YamlTooDeep() from None
    finally:
        loader.dispose()
    where = lone_surrogate(doc)
    if where is not None:
        raise YamlNotText(where)
    return doc
