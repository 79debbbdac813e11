"""Command-line flags generated from the Settings fields: name, type, default, help and env twin are
declared once in `emulator.settings`. Click never reads the environment itself: a command passes the
flags that were given on the command line to `Settings.from_env`, the only reader of the environment."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from .errors import ConfigError
from .settings import Settings, Spec, specs

F = TypeVar("F", bound=Callable[..., Any])


class EnvTwinOption(click.Option):
    """A flag whose --help names its env twin (read by Settings, not by click)."""

    def __init__(self, *args: Any, env_twin: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env_twin = env_twin

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        extra["envvars"] = (self.env_twin,)
        return extra


def settings_options(command: str) -> Callable[[F], F]:
    """Decorate a click command with a flag for every Settings field that `command` takes."""

    def decorate(fn: F) -> F:
        for spec in reversed([s for s in specs() if command in s.meta.commands]):
            fn = _option(spec)(fn)
        return fn

    return decorate


def _option(spec: Spec) -> Callable[[F], F]:
    kwargs: dict[str, Any] = {"help": spec.meta.help, "env_twin": spec.env, "cls": EnvTwinOption}
    if spec.kind is bool:
        return click.option(spec.flag, spec.name, is_flag=True, default=False, **kwargs)
    shown = spec.meta.shown_default
    return click.option(spec.flag, spec.name, type=_click_type(spec), default=spec.default,
                        show_default=shown or spec.default is not None, **kwargs)


def _click_type(spec: Spec) -> click.ParamType:
    if spec.choices is not None:
        return click.Choice(spec.choices)
    if spec.kind is int:
        bounded = spec.meta.low is not None or spec.meta.high is not None
        return click.IntRange(spec.meta.low, spec.meta.high) if bounded else click.INT
    if spec.meta.path is not None:
        return click.Path(dir_okay=spec.meta.path == "dir", file_okay=spec.meta.path == "file")
    return click.STRING


def settings_from(ctx: click.Context, options: dict[str, Any]) -> Settings:
    """Settings from the environment, overridden by the flags actually given on the command line."""
    given = {name: value for name, value in options.items()
             if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    return Settings.from_env(**given)


def load_settings(ctx: click.Context, options: dict[str, Any]) -> Settings:
    """settings_from, with a bad env value as one line naming the variable, exit 2."""
    try:
        return settings_from(ctx, options)
    except ConfigError as exc:
        click.echo(f"captchala-emulator: error: {exc}", err=True)
        sys.exit(2)
