"""Command-line surface of `foreman` and `rt-probe`: every command's `--help` opens with a
one-line description, and the global options work before and after the command."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from foreman import cli, probe


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def _help(
    main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def _description(help_text: str) -> str:
    """The paragraph after the usage lines, which argparse fills from `description`."""
    usage, description, *_ = help_text.split("\n\n")
    assert usage.startswith("usage: ")
    assert "\n" not in description.strip(), f"more than one line:\n{description}"
    assert not description.startswith(("positional arguments:", "options:")), help_text
    return description.strip()


FOREMAN_COMMANDS = [c for c in _commands(cli.build_parser()) if c != "mock-realtime"]


@pytest.mark.parametrize("argv", [[], *([c] for c in FOREMAN_COMMANDS)])
def test_every_foreman_command_describes_itself(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(_description(_help(cli.main, argv, capsys))) > 10


@pytest.mark.parametrize("argv", [[], *([c] for c in _commands(probe.build_parser()))])
def test_every_rt_probe_command_describes_itself(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(_description(_help(probe.main, argv, capsys))) > 10


def test_the_command_lists_name_every_command() -> None:
    assert set(FOREMAN_COMMANDS) == {
        "serve",
        "init",
        "call",
        "fake-call",
        "tui",
        "chat",
        "history",
        "mock-chat",
        "devices",
    }
    assert set(_commands(probe.build_parser())) == {"status", "start", "stop", "say"}


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "x.toml", "--log-level", "debug", "serve"],
        ["serve", "--config", "x.toml", "--log-level", "debug"],
        ["--config", "x.toml", "serve", "--log-level", "debug"],
        ["--log-level", "debug", "call", "+15550100000", "--config", "x.toml"],
    ],
)
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.build_parser().parse_args(argv)
    assert args.config == "x.toml" and args.log_level == "debug"


def test_the_command_does_not_reset_options_given_before_it() -> None:
    args = cli.build_parser().parse_args(["serve"])
    assert args.config is None and args.log_level == "info"
    args = cli.build_parser().parse_args(["--config", "a.toml", "serve", "--config", "b.toml"])
    assert args.config == "b.toml"  # the later one wins, as usual


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_a_bad_port_is_refused_by_the_parser(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["serve", "--port", port])
    assert exited.value.code == 2 and "--port" in capsys.readouterr().err
