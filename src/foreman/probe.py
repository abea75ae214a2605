"""`rt-probe`: a small dev harness for a running `foreman serve`.

    rt-probe status | start [ENDPOINT] [--model M] | stop | say TEXT
Server URL from --server or $FOREMAN_URL (default http://127.0.0.1:8765); token from
$FOREMAN_API_TOKEN. `--json` prints raw JSON. Errors: one line on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:8765"


class ProbeError(Exception):
    pass


class Probe:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ProbeError(
                f"cannot reach foreman at {self.server} (is `foreman serve` running?)"
            ) from None
        except httpx.HTTPError as exc:
            raise ProbeError(f"{self.server}: {exc}") from None
        if resp.status_code >= 400:
            raise ProbeError(f"HTTP {resp.status_code}: {_detail(resp)}")
        return resp.json()  # type: ignore[no-any-return]

    def say(self, text: str, out: Any, as_json: bool) -> int:
        try:
            with self.client.stream("POST", "/api/realtime/say", json={"text": text}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise ProbeError(f"HTTP {resp.status_code}: {_detail(resp)}")
                status = "completed"
                for line in resp.iter_lines():
                    if not line.strip():
                        continue
                    piece = json.loads(line)
                    if as_json:
                        out.write(line + "\n")
                    elif "delta" in piece:
                        out.write(piece["delta"])
                    elif "tool" in piece:
                        out.write(f"\n[tool call: {piece['tool']}]\n")
                    out.flush()
                    if piece.get("done"):
                        status = piece.get("status", "completed")
                        if piece.get("error"):
                            raise ProbeError(f"session ended: {piece['error']}")
                if not as_json:
                    out.write("\n")
                return 0 if status == "completed" else 1
        except httpx.ConnectError:
            raise ProbeError(
                f"cannot reach foreman at {self.server} (is `foreman serve` running?)"
            ) from None


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return resp.text[:200] or resp.reason_phrase
    if isinstance(detail, list):  # FastAPI validation errors: name the fields
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail)


def _print_status(st: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(st))
        return
    state = "active" if st.get("active") else "inactive"
    line = f"{state}  model={st.get('model')}  mode={st.get('mode')}"
    if st.get("session_id"):
        line += f"  session={st['session_id']}  since={st.get('since')}"
    if st.get("endpoint_host"):
        line += f"  endpoint={st['endpoint_host']}"
    print(line)
    if st.get("last_error"):
        print(f"last_error: {st['last_error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-probe", description=__doc__.split("\n")[1])
    parser.add_argument("--server", default=os.environ.get("FOREMAN_URL", DEFAULT_SERVER))
    parser.add_argument("--json", action="store_true", help="print raw JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    start = sub.add_parser("start")
    start.add_argument("endpoint", nargs="?")
    start.add_argument("--model")
    start.add_argument("--voice")
    start.add_argument("--instructions")
    start.add_argument("--out-format")
    sub.add_parser("stop")
    say = sub.add_parser("say")
    say.add_argument("text", nargs="+")
    args = parser.parse_args(argv)
    probe = Probe(args.server, os.environ.get("FOREMAN_API_TOKEN"))
    try:
        if args.command == "status":
            _print_status(probe.request("GET", "/api/realtime/status"), args.json)
        elif args.command == "start":
            body: dict[str, Any] = {}
            for key in ("endpoint", "model", "voice", "instructions"):
                if getattr(args, key):
                    body[key] = getattr(args, key)
            if args.out_format:
                body["audio"] = {"out_format": args.out_format}
            _print_status(probe.request("POST", "/api/realtime/start", json=body), args.json)
        elif args.command == "stop":
            _print_status(probe.request("POST", "/api/realtime/stop"), args.json)
        elif args.command == "say":
            return probe.say(" ".join(args.text), sys.stdout, args.json)
    except ProbeError as exc:
        print(f"rt-probe: {exc}", file=sys.stderr)
        return 1
    return 0
