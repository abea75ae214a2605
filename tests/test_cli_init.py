"""`foreman init [DIR]`: editable copies of the packaged config and tools.d, never overwriting,
and the command that will use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from foreman import cli
from foreman.config import PACKAGED_CONFIG, PACKAGED_TOOLS_DIR, load_settings
from foreman.tools.spec import load_tool_specs

TOOL_FILES = sorted(p.name for p in PACKAGED_TOOLS_DIR.glob("*.json"))


def init(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["init", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def test_writes_copies_of_everything_packaged_and_names_the_command(
    tmp_path: Path, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    code, out, err = init(capsys, str(target))
    assert code == 0 and err == ""
    assert (target / "foreman.toml").read_bytes() == PACKAGED_CONFIG.read_bytes()
    assert sorted(p.name for p in (target / "tools.d").iterdir()) == TOOL_FILES
    for name in TOOL_FILES:
        assert (target / "tools.d" / name).read_bytes() == (PACKAGED_TOOLS_DIR / name).read_bytes()
        assert f"wrote {target / 'tools.d' / name}" in out
    # Not on the search path: the command names the file.
    assert out.rstrip().endswith(f"foreman serve --config {target / 'foreman.toml'}")

    settings = load_settings(target / "foreman.toml", env={})
    assert settings.tools.dir == str(target / "tools.d")  # its own copy, not the package's
    assert set(load_tool_specs(Path(settings.tools.dir))) >= {"end_call", "send_sms"}


def test_existing_files_are_kept_and_only_missing_ones_written(
    tmp_path: Path, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "mine"
    init(capsys, str(target))
    edited = '[server]\nport = 9000\n[tools]\ndir = "tools.d"\n'
    (target / "foreman.toml").write_text(edited)
    (target / "tools.d" / TOOL_FILES[0]).unlink()

    code, out, _ = init(capsys, str(target))
    assert code == 0
    assert (target / "foreman.toml").read_text() == edited
    assert [line for line in out.splitlines() if line.startswith("wrote")] == [
        f"wrote {target / 'tools.d' / TOOL_FILES[0]}"
    ]
    kept = [line for line in out.splitlines() if line.startswith("kept")]
    assert len(kept) == len(TOOL_FILES) and f"{target / 'foreman.toml'} (already there" in kept[0]


def test_the_default_folder_is_the_users_and_serve_finds_it(
    empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = Path.home() / ".config" / "foreman"  # HOME is this test's own (conftest)
    code, out, _ = init(capsys)
    assert code == 0 and (user / "foreman.toml").is_file()
    assert out.rstrip().endswith("\n  foreman serve")
    settings = load_settings()
    assert settings.source == str(user / "foreman.toml")
    assert settings.tools.dir == str(user / "tools.d")


def test_a_project_config_folder_is_found_from_that_folder(
    empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = init(capsys, "config")
    assert code == 0 and out.rstrip().endswith("\n  foreman serve")
    assert Path(load_settings().source).resolve() == (empty_cwd / "config" / "foreman.toml")


def test_a_file_in_the_way_is_one_line(
    tmp_path: Path, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = init(capsys, str(blocker))
    assert code == 2 and out == ""
    assert err == f"foreman init: cannot create the folder {blocker}: a file is in the way\n"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tools.d").write_text("")
    code, out, err = init(capsys, str(tmp_path / "mine"))
    assert code == 2 and out == f"wrote {tmp_path / 'mine' / 'foreman.toml'}\n"
    assert err.splitlines() == [
        f"foreman init: cannot create the folder {tmp_path / 'mine' / 'tools.d'}: "
        "a file is in the way"
    ]
