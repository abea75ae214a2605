"""The protocol package stays sans-I/O: no asyncio, sockets, threads or clock reads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import foreman.protocols.realtime as pkg

FORBIDDEN = {"asyncio", "socket", "threading", "time", "selectors", "websockets", "httpx"}
SRC = Path(pkg.__file__).parent


def test_no_io_imports_in_the_protocol_package() -> None:
    files = sorted(SRC.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_importing_the_package_does_not_load_asyncio() -> None:
    code = "import sys, foreman.protocols.realtime; print('asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(SRC.parents[2]), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "False"
