"""`foreman init [DIR]`: write editable copies of the packaged config and tools.d.

The default folder is the user's config folder (`~/.config/foreman`, or
`$XDG_CONFIG_HOME/foreman`), where `foreman serve` finds the file by itself. A file that is
already there is never overwritten: it is listed as kept, so running `init` again after an
upgrade adds only the tool files that are new.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from foreman.config import (
    CONFIG_FILE_NAME,
    PACKAGED_CONFIG,
    PACKAGED_TOOLS_DIR,
    find_config_file,
    user_config_dir,
)
from foreman.exceptions import ConfigError, ForemanError

TOOLS_DIR_NAME = "tools.d"  # what the packaged foreman.toml's `[tools] dir` names


@dataclass
class InitResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # already there, left as they were


class InitError(ForemanError):
    """The folder cannot take the files; the message says which path and why, `done` what
    was written before that."""

    def __init__(self, message: str, done: InitResult) -> None:
        super().__init__(message)
        self.done = done


def packaged_files() -> list[tuple[Path, Path]]:
    """(packaged file, path relative to the target folder) for everything `init` writes."""
    files = [(PACKAGED_CONFIG, Path(CONFIG_FILE_NAME))]
    for spec in sorted(PACKAGED_TOOLS_DIR.glob("*.json")):
        files.append((spec, Path(TOOLS_DIR_NAME) / spec.name))
    return files


def write_defaults(folder: Path) -> InitResult:
    """Copy the packaged config and tool specs into `folder`, creating it; never overwrite.
    Raises InitError naming the path that could not be written."""
    result = InitResult(folder)
    for source, relative in packaged_files():
        target = folder / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"cannot create the folder {target.parent}: {_why(exc)}"
            raise InitError(message, result) from None
        try:
            # "x": create, or fail if anything is there, even if it appeared a moment ago.
            with target.open("xb") as out:
                out.write(source.read_bytes())
        except FileExistsError:
            result.kept.append(target)
            continue
        except OSError as exc:
            raise InitError(f"cannot write {target}: {_why(exc)}", result) from None
        result.written.append(target)
    return result


def _why(exc: OSError) -> str:
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return "a file is in the way"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def next_command(config_file: Path) -> str:
    """What to run so that `foreman serve` uses `config_file`: plain `foreman serve` when the
    search would find it from here, else with --config."""
    try:
        found = find_config_file()
    except ConfigError:  # $FOREMAN_CONFIG names a missing file: only --config is certain
        found = None
    if found is not None and found.resolve() == config_file.resolve():
        return "foreman serve"
    return f"foreman serve --config {shlex.quote(str(config_file))}"


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir).expanduser() if args.dir else user_config_dir()
    try:
        result = write_defaults(folder)
    except InitError as exc:
        _list(exc.done)
        print(f"foreman init: {exc}", file=sys.stderr)
        return 2
    _list(result)
    config_file = folder / CONFIG_FILE_NAME
    print(f"\nYour configuration: {config_file}")
    print(f"Edit it (tools: {folder / TOOLS_DIR_NAME}), then run:\n  {next_command(config_file)}")
    return 0


def _list(result: InitResult) -> None:
    for path in result.written:
        print(f"wrote {path}")
    for path in result.kept:
        print(f"kept  {path} (already there, not overwritten)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `init` to the `foreman` command's subcommands."""
    summary = "Write editable copies of the default config and tools.d (never overwrites)."
    init = subparsers.add_parser("init", help=summary, description=summary)
    init.add_argument(
        "dir",
        nargs="?",
        metavar="DIR",
        help=f"folder to write to (default: {_display(user_config_dir())})",
    )
    init.set_defaults(func=cmd_init)


def _display(path: Path) -> str:
    """`path` with the home folder shown as ~ (help text should not show a user's name)."""
    home = os.path.expanduser("~")
    text = str(path)
    return "~" + text[len(home) :] if text == home or text.startswith(home + os.sep) else text
