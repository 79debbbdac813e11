"""Apps: the seven built-ins and strict loading of an apps file."""

import pytest

from emulator.domain.apps import BUILTIN_APPS, load_apps_file, load_registry
from emulator.errors import ConfigError


def test_seven_builtin_apps_with_fixed_pairs():
    pairs = {(a.app_key, a.app_secret) for a in BUILTIN_APPS}
    assert pairs == {("demo_app", "demo_secret"), ("auto_pass_app", "auto_pass_secret"),
                     ("always_fail_app", "always_fail_secret"), ("server_token_app", "server_token_secret"),
                     ("strict_ip_app", "strict_ip_secret"), ("degraded_app", "degraded_secret"),
                     ("disabled_app", "disabled_secret")}
    registry = load_registry(None)
    assert registry.get("server_token_app").server_token_required
    assert registry.get("strict_ip_app").ip_binding == "strict"
    assert registry.get("disabled_app").disabled
    assert registry.get("auto_pass_app").widget.solve == "auto"
    assert registry.get("degraded_app").quota == 0


def test_apps_file_adds_and_overrides(tmp_path):
    path = tmp_path / "apps.yaml"
    path.write_text("apps:\n  - app_key: shop\n    app_secret: shop_secret\n    widget: {solve: auto, delay_ms: 50}\n"
                    "  - {app_key: demo_app, app_secret: rotated}\n")
    registry = load_registry(str(path))
    assert registry.get("shop").widget.delay_ms == 50
    assert registry.get("demo_app").app_secret == "rotated"
    assert load_registry(str(path), include_builtin=False).get("auto_pass_app") is None


@pytest.mark.parametrize("text,problem", [
    ("- {app_key: a, app_secret: b, colour: red}", "apps[0].colour: unknown key"),
    ("- {app_key: a}", "apps[0].app_secret: required"),
    ("- {app_key: a, app_secret: b, pass_token_ttl: soon}", "apps[0].pass_token_ttl: expected int"),
    ("- {app_key: a, app_secret: b, ip_binding: loose}", "apps[0].ip_binding: must be one of"),
    ("- {app_key: a, app_secret: b, widget: {solve: maybe}}", "apps[0].widget.solve: must be one of"),
    ("- {app_key: a, app_secret: b, widget: {speed: 1}}", "apps[0].widget.speed: unknown key"),
    ("- {app_key: a, app_secret: b, risk_score: 101}", "apps[0].risk_score: must be between"),
    ("- {app_key: a, app_secret: b, moderation: {spam: casino}}", "apps[0].moderation.spam: expected a list"),
    ("{app_key: a", "invalid YAML"),
    ("just a string", "expected a list"),
])
def test_bad_apps_file_names_file_key_and_problem(tmp_path, text, problem):
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_apps_file(str(path))
    assert str(exc.value).startswith(str(path))
    assert problem in str(exc.value)


def test_missing_apps_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_apps_file(str(tmp_path / "nope.yaml"))
