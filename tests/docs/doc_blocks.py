"""The shell blocks of the Markdown docs, and the bash script that runs them as written.

Conventions (README.md says them too):

* Fenced blocks tagged `bash`, `sh`, `shell` or `console` are shell blocks (in `console`
  blocks only the lines that start with `$ ` are commands). Every fenced block carries a
  language tag, so no command hides in an untagged one.
* `<!-- not run: REASON -->` on the line before a block keeps it from running; the reason
  says why (a Twilio account, the package index, minutes of benchmark).
* Every other shell block runs, in document order, in one bash session per document, in a
  fresh working directory, as a reader would paste it.
* A command that starts a server (`foreman serve`, `foreman mock-realtime`) keeps running, as
  in a terminal of its own: it is started in the background (a trailing `&` means the same)
  and the next command waits until it prints that it is ready. The servers stop when the
  document's script ends.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)\1")
GLOBAL_OPTIONS = frozenset({"--config", "--log-level"})
# What each server prints once it accepts connections.
READY = {"serve": r"serving on https?://", "mock-realtime": r"^wss?://"}


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: str | None  # the reason, when marked

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


@dataclass(frozen=True)
class Command:
    where: str
    text: str
    ready: str | None  # the server's ready pattern, for a command that starts a server


def blocks(doc: str, markdown: str) -> list[Block]:
    """Every fenced block of a Markdown document, with the marker line before it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise ValueError(f"{doc}:{i + 1}: a fenced block that never closes")
        marker = NOT_RUN.match(lines[i - 1].strip()) if i > 0 else None
        language = opening["info"].split()[0] if opening["info"].strip() else ""
        found.append(
            Block(doc, i + 1, language, "\n".join(body), marker["reason"] if marker else None)
        )
        i = j + 1
    return found


def commands(block: Block) -> list[Command]:
    """The block's commands, one per shell command line (continued lines and here-documents
    stay with their command); comments and blank lines are dropped."""
    lines = block.text.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    found: list[Command] = []
    i = 0
    while i < len(lines):
        start = i
        text = lines[i]
        i += 1
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        while text.endswith("\\") and i < len(lines):
            text += "\n" + lines[i]
            i += 1
        heredoc = HEREDOC.search(text)
        if heredoc is not None:
            while i < len(lines) and lines[i].strip() != heredoc["word"]:
                text += "\n" + lines[i]
                i += 1
            if i == len(lines):
                raise ValueError(f"{block.where}: here-document {heredoc['word']} never ends")
            text += "\n" + lines[i]
            i += 1
        where = f"{block.doc}:{block.line + 1 + start}"
        found.append(Command(where, text, server_ready(text)))
    return found


def server_ready(text: str) -> str | None:
    """The ready pattern when `text` starts a server (`foreman serve`, `foreman
    mock-realtime`, `./scripts/serve`), else None."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError:
        return None
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value before the command
    if not words:
        return None
    program = os.path.basename(words[0])
    if program == "serve" and words[0].endswith("scripts/serve"):
        return READY["serve"]
    if program != "foreman":
        return None
    rest = words[1:]
    while rest and (rest[0] in GLOBAL_OPTIONS or rest[0].split("=")[0] in GLOBAL_OPTIONS):
        rest = rest[2:] if rest[0] in GLOBAL_OPTIONS else rest[1:]
    return READY.get(rest[0]) if rest else None


def script(doc: str, commands: list[Command]) -> str:
    """A bash script that runs `commands` in order and stops at the first that fails.

    Each command is echoed as `$ command`, then run as written; a server command runs in the
    background with its output in `.docs-server-N.log`, and the script waits (up to 60 s) for
    its ready line. `__DOCS_RAN__ N` follows each command that succeeded; a failure prints
    `__DOCS_FAILED__ WHERE STATUS` and every server's log."""
    out = [
        "set -u",
        "__fail() {",
        '  echo "__DOCS_FAILED__ $1 exit $2"',
        "  for log in .docs-server-*.log; do",
        '    [ -e "$log" ] && { echo "--- $log"; cat "$log"; }',
        "  done",
        "  exit 1",
        "}",
        "__ready() {  # pid, log, pattern, where",
        '  timeout 60 grep -m1 -qE "$3" <(tail -F -n +1 --pid="$1" "$2" 2>/dev/null) \\',
        '    || __fail "$4 (the server never said it was ready)" 1',
        "}",
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
    ]
    for n, command in enumerate(commands):
        shown = command.text.splitlines()[0]
        out.append(f"printf '%s\\n' {shlex.quote('$ ' + shown)}")
        if command.ready is None:
            out.append(command.text)
            out.append(f"__rc=$?; [ $__rc -eq 0 ] || __fail {shlex.quote(command.where)} $__rc")
        else:
            if "\n" in command.text:
                raise ValueError(f"{command.where}: a server command must be one line")
            log = f".docs-server-{n}.log"
            # Not in a { group }: then $! is the server itself, and the EXIT trap's kill
            # reaches it.
            out.append(f"{background(command.text)} > {log} 2>&1 &")
            pattern = shlex.quote(command.ready)
            out.append(f"__ready $! {log} {pattern} {shlex.quote(command.where)}")
        out.append(f"echo __DOCS_RAN__ {n}")
    return "\n".join(out) + "\n"


def background(text: str) -> str:
    """A one-line server command without its comment and trailing `&`."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            text = text[:i]
            break
    text = text.rstrip()
    if text.endswith("&") and not text.endswith("&&"):
        text = text[:-1].rstrip()
    return text


def docs(root: Path) -> list[Path]:
    """The documents whose commands are run: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]
