"""`foreman.stores` sits below sessions, tools, backends and the API: it must import none
of them, directly or through what it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import foreman.stores

FORBIDDEN = ("foreman.session", "foreman.tools", "foreman.backends", "foreman.api")
ALLOWED = (
    "foreman.stores",
    "foreman.policy",
    "foreman.protocols",
    "foreman.audio",
    "foreman.exceptions",
    "foreman.clock",
)
PACKAGE = Path(foreman.stores.__file__).parent


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_package_imports_only_allowed_layers() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 5
    wrong = {
        f"{src.relative_to(PACKAGE)}: {name}"
        for src in sources
        for name in _imports(src)
        if name.split(".")[0] == "foreman" and not name.startswith(ALLOWED)
    }
    assert wrong == set()


def test_importing_the_package_loads_no_higher_layer() -> None:
    probe = (
        "import sys, foreman.stores\n"
        f"print('\\n'.join(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
