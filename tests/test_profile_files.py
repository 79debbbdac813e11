"""Profile names are not file paths on the server (issue 10, item 7): over the API only a
built-in name or a file in --profiles-dir; every file read is a regular file under a size cap."""

from __future__ import annotations

import os

import pytest

from emulator.app import create_app
from emulator.config_files import MAX_FILE_BYTES
from emulator.domain.apps import load_apps_file
from emulator.errors import ConfigError
from emulator.faults.loader import load, load_file
from emulator.faults.profile import ProfileError
from emulator.runtime import build_runtime
from emulator.server import prepare
from emulator.settings import Settings

SECRET_YAML = "db_password: hunter2\nrules: [{name: r, effect: {latency_ms: 1}}]\n"
GOOD_YAML = "rules: [{name: slow, effect: {latency_ms: 1}}]\n"


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return str(path)


def test_a_path_is_never_read_through_the_api(client, tmp_path):
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(SECRET_YAML)
    for name in (str(leaky), "../../etc/passwd", "/etc/passwd", "/dev/zero", "./x.yaml", "a/b"):
        response = client.put("/_emulator/profile", json={"name": name})
        assert 400 <= response.status_code < 500, (name, response.json)
        assert "db_password" not in response.get_data(as_text=True), name
        assert "root:" not in response.get_data(as_text=True), name
    assert client.get("/_emulator/profile").json["active"] is False


def test_a_fifo_is_refused_at_once_through_the_api(client, fifo):
    response = client.put("/_emulator/profile", json={"name": fifo})
    assert 400 <= response.status_code < 500


def test_profiles_dir_files_load_by_name(tmp_path, settings, fake_time):
    (tmp_path / "mine.yaml").write_text(GOOD_YAML)
    rt = build_runtime(settings.replace(profiles_dir=str(tmp_path)), real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    response = client.put("/_emulator/profile", json={"name": "mine"})
    assert response.status_code == 200, response.json
    assert response.json["name"] == "mine"
    assert client.put("/_emulator/profile", json={"name": "main-down"}).status_code == 200  # built-ins still work
    assert client.put("/_emulator/profile", json={"name": "../mine"}).status_code == 422
    rt.store.close()


@pytest.mark.parametrize("kind", ["fifo", "file", "missing"])
def test_a_profiles_dir_that_is_no_directory_is_refused_at_start(tmp_path, fifo, kind):
    """Named at start, not when a PUT first looks in it: a FIFO or a file passed click's check
    for a directory, and a typo only showed as "no such profile" later."""
    path = {"fifo": fifo, "file": str(tmp_path / "plain.yaml"), "missing": str(tmp_path / "nowhere")}[kind]
    if kind == "file":
        (tmp_path / "plain.yaml").write_text(GOOD_YAML)
    problem = "no such directory" if kind == "missing" else "not a directory"
    with pytest.raises(ConfigError, match=f"^--profiles-dir {path}: {problem}"):
        prepare(Settings(port=0, store=f"sqlite:///{tmp_path / 'state.db'}", profiles_dir=path))


def test_without_profiles_dir_a_name_is_only_a_built_in(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(GOOD_YAML)
    assert client.put("/_emulator/profile", json={"name": "mine"}).status_code == 404
    assert client.put("/_emulator/profile", json={"name": "mine.yaml"}).status_code == 404


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "fifo", "dir"])
def test_the_command_line_reads_only_regular_files(special, fifo, tmp_path):
    path = {"fifo": fifo, "dir": str(tmp_path)}.get(special, special)
    with pytest.raises(ProfileError) as caught:
        load_file(path)
    assert "regular file" in str(caught.value) or "directory" in str(caught.value)
    with pytest.raises(ConfigError):
        load_apps_file(path)


def test_a_file_over_the_cap_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_FILE_BYTES + "\n" + GOOD_YAML)
    with pytest.raises(ProfileError, match="larger than"):
        load(str(big))
    with pytest.raises(ConfigError, match="larger than"):
        load_apps_file(str(big))


def test_a_nul_in_a_command_line_profile_is_a_profile_error():
    with pytest.raises(ProfileError, match="NUL"):
        load("a\x00b")


def test_files_the_operator_named_can_be_put_back_by_path(tmp_path, settings, fake_time):
    """GET /_emulator/profile shows a watched file's path; that path (and only such a path) works."""
    named, elsewhere = tmp_path / "dir", tmp_path / "elsewhere"
    named.mkdir(), elsewhere.mkdir()
    (named / "mine.yaml").write_text(GOOD_YAML)
    (elsewhere / "cli.yaml").write_text(GOOD_YAML)
    (elsewhere / "other.yaml").write_text(SECRET_YAML)
    rt = build_runtime(settings.replace(profiles_dir=str(named), profile=str(elsewhere / "cli.yaml")),
                       real_time=fake_time)
    client = create_app(runtime=rt).test_client()
    for path in (str(named / "mine.yaml"), str(elsewhere / "cli.yaml")):
        response = client.put("/_emulator/profile", json={"name": path})
        assert response.status_code == 200 and response.json["watching"] == path, response.json
    for path in (str(elsewhere / "other.yaml"), str(named / ".." / "elsewhere" / "other.yaml")):
        response = client.put("/_emulator/profile", json={"name": path})
        assert response.status_code == 422 and "db_password" not in response.get_data(as_text=True)
    rt.store.close()
