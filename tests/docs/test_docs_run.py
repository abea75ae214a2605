"""Every shell command in README.md and docs/*.md runs as written (see doc_blocks.py for the
conventions), against the real `foreman serve` and `foreman mock-realtime` the docs start.

Each document's commands run in one bash session, in an empty working directory whose
`.venv/bin` holds this checkout's commands (the `[project.scripts]` of pyproject.toml, run
from `src/`), with a private HOME. Where the system allows it (a user and network namespace,
`unshare`), the session gets a network of its own, so the ports the docs show (8765, 9100)
are free whatever runs on this machine and documents run side by side; elsewhere the
documents take turns on this machine's loopback.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import doc_blocks
import pytest
from doc_blocks import Block

from foreman.config import ServerConfig
from foreman.testing.timeouts import unit

ROOT = Path(__file__).resolve().parents[2]
DOCS = doc_blocks.docs(ROOT)


def _blocks() -> list[Block]:
    return [b for doc in DOCS for b in doc_blocks.blocks(_name(doc), doc.read_text())]


def _name(doc: Path) -> str:
    return doc.relative_to(ROOT).as_posix()


def _runnable(doc: Path) -> list[doc_blocks.Command]:
    return [
        command
        for block in doc_blocks.blocks(_name(doc), doc.read_text())
        if block.is_shell and block.not_run is None
        for command in doc_blocks.commands(block)
    ]


RUNNABLE = [doc for doc in DOCS if _runnable(doc)]


# --- what every document promises ----------------------------------------------------------
def test_every_fenced_block_names_its_language() -> None:
    untagged = [b.where for b in _blocks() if not b.language]
    assert not untagged, f"tag these blocks (```text for plain text): {untagged}"


def test_every_shell_block_runs_or_says_why_not() -> None:
    for block in _blocks():
        if block.not_run is not None:
            assert block.is_shell, f"{block.where}: 'not run' marks a block that never runs"
            assert len(block.not_run) >= 10, f"{block.where}: say why it is not run"
    assert {_name(d) for d in RUNNABLE} >= {"README.md", "docs/phone.md"}


def test_no_path_of_a_machine_in_the_docs() -> None:
    machine = re.compile(r"(?<![\w.~])/(?:home|Users|root|work|tmp|opt|mnt|srv)/")
    for doc in DOCS:
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            assert not machine.search(line), f"{_name(doc)}:{n}: {line}"


def test_no_example_port_collides_with_serve() -> None:
    serve_port = str(ServerConfig().port)
    for doc in DOCS:
        text = doc.read_text()
        for m in re.finditer(r"mock-realtime[^\n`]*?--port[ =](\d+)", text):
            assert m[1] != serve_port, f"{_name(doc)}: {m[0]}"
        assert f":{serve_port}/v1/realtime" not in text, _name(doc)  # a mock on serve's port


# --- running them ----------------------------------------------------------------------------
LOOPBACK_UP_AND_EXEC = """
import fcntl, os, socket, struct, sys
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
if len(sys.argv) > 1:
    os.execvp(sys.argv[1], sys.argv[1:])
"""


@functools.cache
def _private_network() -> list[str]:
    """The prefix that runs a command on a network of its own ([] when the system has none)."""
    prefix = ["unshare", "--net", "--map-root-user", sys.executable, "-c", LOOPBACK_UP_AND_EXEC]
    if shutil.which("unshare") is None:
        return []
    probe = subprocess.run(prefix, capture_output=True, timeout=30, check=False)
    return prefix if probe.returncode == 0 else []


@contextlib.contextmanager
def _network() -> Iterator[list[str]]:
    """A network for one document: its own, or this machine's loopback, one document at a
    time (across test processes)."""
    prefix = _private_network()
    if prefix:
        yield prefix
        return
    with open(Path(tempfile.gettempdir()) / "foreman-docs-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield []


def _commands_dir(venv: Path) -> None:
    """`.venv/bin` with this checkout's commands, as an install would name them."""
    venv.mkdir(parents=True)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    shims = {"python": f'exec {sys.executable} "$@"'}
    for name, target in scripts.items():
        module, function = target.split(":")
        code = f"import sys; from {module} import {function} as f; sys.exit(f())"
        shims[name] = f'exec {sys.executable} -c "{code}" "$@"'
    for name, body in shims.items():
        path = venv / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)


def _env(work: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "FOREMAN_", "TWILIO_", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(work.parent / "home"),
        PATH=f"{work / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT / "src"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("doc", RUNNABLE, ids=[_name(d) for d in RUNNABLE])
def test_the_shell_commands_of_each_doc_run_as_written(doc: Path, tmp_path: Path) -> None:
    commands = _runnable(doc)
    work = tmp_path / "work"
    _commands_dir(work / ".venv" / "bin")
    (tmp_path / "home").mkdir()
    script = tmp_path / "doc.sh"
    script.write_text(doc_blocks.script(_name(doc), commands))
    with _network() as prefix:
        proc = subprocess.Popen(
            [*prefix, "bash", str(script)],
            cwd=work,
            env=_env(work),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: everything it left running ends
        )
        try:
            output, _ = proc.communicate(timeout=unit(240))
        finally:
            with contextlib.suppress(ProcessLookupError):  # the group has ended already
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    ran = {int(n) for n in re.findall(r"^__DOCS_RAN__ (\d+)$", output, re.MULTILINE)}
    assert proc.returncode == 0 and ran == set(range(len(commands))), output
