"""Which config file is used: --config / $FOREMAN_CONFIG (must exist) > ./config/foreman.toml >
the user's foreman.toml (XDG) > the packaged defaults, from any working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from foreman.config import (
    PACKAGED_SOURCE,
    PACKAGED_TOOLS_DIR,
    PROJECT_CONFIG_PATH,
    find_config_file,
    load_settings,
    user_config_dir,
)
from foreman.exceptions import ConfigError
from foreman.tools.spec import load_tool_specs


def _write(path: Path, port: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"[server]\nport = {port}\n")
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An empty working directory and an empty home, nothing else."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    return {"work": work, "home": home}


def test_each_place_wins_over_the_ones_after_it(places: dict[str, Path]) -> None:
    env = {"HOME": str(places["home"])}
    s = load_settings(env=env)
    assert s.source == PACKAGED_SOURCE and s.server.port == 8765

    user = _write(places["home"] / ".config" / "foreman" / "foreman.toml", 1001)
    assert load_settings(env=env).server.port == 1001
    assert load_settings(env=env).source == str(user)

    project = _write(places["work"] / PROJECT_CONFIG_PATH, 1002)
    assert load_settings(env=env).server.port == 1002
    assert Path(load_settings(env=env).source).resolve() == project.resolve()

    named = _write(places["work"] / "elsewhere" / "named.toml", 1003)
    assert load_settings(env={**env, "FOREMAN_CONFIG": str(named)}).server.port == 1003

    explicit = _write(places["work"] / "explicit.toml", 1004)
    both = {**env, "FOREMAN_CONFIG": str(named)}
    assert load_settings(explicit, env=both).server.port == 1004


def test_a_named_file_must_exist_even_when_others_would_be_found(places: dict[str, Path]) -> None:
    _write(places["work"] / PROJECT_CONFIG_PATH, 1002)
    missing = places["work"] / "missing.toml"
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings(missing, env={})
    with pytest.raises(ConfigError, match=r"missing\.toml: config file not found"):
        load_settings(env={"FOREMAN_CONFIG": str(missing)})
    # Set but empty is not set: the search goes on.
    assert load_settings(env={"FOREMAN_CONFIG": ""}).server.port == 1002


def test_xdg_config_home_moves_the_user_folder_and_a_relative_one_is_ignored(
    places: dict[str, Path],
) -> None:
    home, xdg = places["home"], places["work"].parent / "xdg"
    assert user_config_dir({"HOME": str(home)}) == home / ".config" / "foreman"
    assert user_config_dir({"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}) == xdg / "foreman"
    relative = {"HOME": str(home), "XDG_CONFIG_HOME": "relative/dir"}
    assert user_config_dir(relative) == home / ".config" / "foreman"

    _write(home / ".config" / "foreman" / "foreman.toml", 1001)
    _write(xdg / "foreman" / "foreman.toml", 1005)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    assert find_config_file(env=env) == xdg / "foreman" / "foreman.toml"
    assert load_settings(env=env).server.port == 1005


def test_the_packaged_defaults_bring_the_packaged_tools_from_any_folder(
    places: dict[str, Path],
) -> None:
    s = load_settings(env={"HOME": str(places["home"])})
    assert Path(s.tools.dir) == PACKAGED_TOOLS_DIR
    specs = load_tool_specs(Path(s.tools.dir))
    assert {"end_call", "get_time", "send_sms", "send_email", "calendar_list"} <= set(specs)


def test_a_config_file_without_a_tools_dir_gets_the_packaged_tools(places: dict[str, Path]) -> None:
    cfg = _write(places["work"] / "mine.toml", 1006)
    assert Path(load_settings(cfg, env={}).tools.dir) == PACKAGED_TOOLS_DIR
