"""`foreman devices`: the sound devices PortAudio sees on this machine, and which ones the
desk assistant would use (`[audio] input_device` / `output_device`). Without PortAudio or a
device it says, in one line, what to install or choose (exit 1)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from foreman.config import load_settings
from foreman.exceptions import ConfigError
from foreman.io.sound import Device, SoundUnavailable, list_devices, resolve_device


def register(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add `devices` with `command(name, summary)`, the CLI's subcommand factory."""
    parser = command("devices", "List the sound devices and the ones the desk assistant uses.")
    parser.set_defaults(func=cmd_devices)


def cmd_devices(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(getattr(args, "config", None))
    except ConfigError as exc:
        print(f"foreman devices: {exc}", file=sys.stderr)
        return 1
    return show(settings.audio.input_device, settings.audio.output_device, sys.stdout)


def show(input_choice: int | str, output_choice: int | str, out: TextIO) -> int:
    try:
        devices = list_devices()
    except SoundUnavailable as exc:
        print(f"foreman devices: {exc}", file=sys.stderr)
        return 1
    if not devices:
        print(
            "foreman devices: no sound devices found (on a server without a sound card, "
            "PulseAudio's null sink gives one)",
            file=sys.stderr,
        )
        return 1
    chosen: dict[str, Device | str] = {}
    for kind, choice in (("input", input_choice), ("output", output_choice)):
        try:
            chosen[kind] = resolve_device(choice, kind, devices)  # type: ignore[arg-type]
        except SoundUnavailable as exc:
            chosen[kind] = str(exc)
    out.write(" idx  in  out  rate   host API  name\n")
    for d in devices:
        marks = ("<" if chosen["input"] == d else " ") + (">" if chosen["output"] == d else " ")
        out.write(
            f"{marks}{d.index:3d} {d.inputs:3d} {d.outputs:4d} {d.default_rate:6d}  "
            f"{d.host_api:8.8s}  {d.name}\n"
        )
    for kind, what in chosen.items():
        line = f"{what.name} (#{what.index})" if isinstance(what, Device) else f"none: {what}"
        out.write(f"{kind}: {line}\n")
    return 0 if all(isinstance(c, Device) for c in chosen.values()) else 1
