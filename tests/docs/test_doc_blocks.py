"""The docs runner itself: how blocks are found, split into commands and run."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from doc_blocks import Block, Command, background, blocks, commands, script, server_ready

from foreman.testing.timeouts import unit

MARKDOWN = """\
# Title

<!-- not run: needs a Twilio account -->
```bash
foreman call +14155550123
```

```sh
cat > a.toml <<'EOF'
[server]
port = 8765
EOF
foreman fake-call \\
    --config a.toml   # a comment
# a comment line

echo done
```

```console
$ rt-probe status
active  model=x
```

```text
not a command
```
"""


def test_blocks_carry_their_language_line_and_marker() -> None:
    found = blocks("doc.md", MARKDOWN)
    assert [(b.line, b.language, b.not_run) for b in found] == [
        (4, "bash", "needs a Twilio account"),
        (8, "sh", None),
        (20, "console", None),
        (25, "text", None),
    ]
    assert [b.is_shell for b in found] == [True, True, True, False]
    with pytest.raises(ValueError, match="never closes"):
        blocks("doc.md", "```bash\nls\n")


def test_commands_keep_here_documents_and_continued_lines_together() -> None:
    _, sh, console, _ = blocks("doc.md", MARKDOWN)
    assert [(c.where, c.text) for c in commands(sh)] == [
        ("doc.md:9", "cat > a.toml <<'EOF'\n[server]\nport = 8765\nEOF"),
        ("doc.md:13", "foreman fake-call \\\n    --config a.toml   # a comment"),
        ("doc.md:17", "echo done"),
    ]
    assert [c.text for c in commands(console)] == ["rt-probe status"]


@pytest.mark.parametrize(
    ("line", "server"),
    [
        (".venv/bin/foreman serve", "serve"),
        ("TWILIO_AUTH_TOKEN=x foreman --config a.toml serve --port 9000 &", "serve"),
        ("foreman --log-level=debug mock-realtime --port 9100 &  # the model", "mock-realtime"),
        ("./scripts/serve", "serve"),
        ("foreman fake-call --config a.toml", None),
        ("rt-probe start ws://127.0.0.1:9100/v1/realtime", None),
        ("echo foreman serve", None),
    ],
)
def test_server_commands_are_recognised(line: str, server: str | None) -> None:
    ready = server_ready(line)
    assert (ready is not None) is (server is not None)
    if server == "serve":
        assert ready is not None and "serving on" in ready


def test_a_server_command_loses_its_ampersand_and_comment_only() -> None:
    assert background("foreman mock-realtime --port 9100 &   # it's the model") == (
        "foreman mock-realtime --port 9100"
    )
    assert background("foreman serve --config 'a #1.toml'") == "foreman serve --config 'a #1.toml'"
    assert background("a && b") == "a && b"


def run(commands: list[Command], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "doc.sh"
    path.write_text(script("doc.md", commands))
    return subprocess.run(
        ["bash", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=unit(60),
        check=False,
    )


def test_the_first_failing_command_stops_the_script_and_is_named(tmp_path: Path) -> None:
    result = run(
        [
            Command("doc.md:3", "true", None),
            Command("doc.md:4", "(exit 3)", None),
            Command("doc.md:5", "echo never", None),
        ],
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "$ true",
        "__DOCS_RAN__ 0",
        "$ (exit 3)",
        "__DOCS_FAILED__ doc.md:4 exit 3",
    ]


def test_servers_run_in_the_background_until_ready_and_stop_at_the_end(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        [
            Command(
                "doc.md:1",
                "sh -c 'echo $$ > pid; echo starting; sleep 0.3; echo ws://here; exec sleep 600' &",
                "^ws://",
            ),
            Command("doc.md:2", "cat .docs-server-0.log", None),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stdout
    assert "starting\nws://here\n__DOCS_RAN__ 1" in result.stdout
    assert time.monotonic() - started < unit(30)
    with pytest.raises(ProcessLookupError):  # the 600 s server stopped with the script
        os.kill(int((tmp_path / "pid").read_text()), 0)


def test_a_server_that_exits_before_it_is_ready_fails_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run([Command("doc.md:7", "echo port in use; exit 2", "^ws://")], tmp_path)
    assert result.returncode == 1
    assert "__DOCS_FAILED__ doc.md:7 (the server never said it was ready)" in result.stdout
    assert "port in use" in result.stdout  # its log
    assert time.monotonic() - started < unit(20)


def test_block_where_names_document_and_line() -> None:
    assert Block("docs/x.md", 12, "sh", "", None).where == "docs/x.md:12"
