"""The package as a user gets it: build the sdist and, from it, the wheel; install the wheel
into a fresh virtualenv (dependencies from the package index); run `foreman serve` from an
empty folder with an empty HOME. It must come up on the packaged defaults, offer `end_call`
to the model, and stop on SIGTERM.

Needs the package index (as `pip install` does). Deselect with `-m "not wheel"` offline.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import httpx
import pytest

from foreman import DISTRIBUTION, __version__
from foreman.testing.mock_realtime import MockRealtimeServer
from foreman.testing.server import free_port
from foreman.testing.timeouts import unit

REPO = Path(__file__).resolve().parents[1]
# Read before any fixture swaps HOME: pip keeps its cache and its own config under the real one.
BUILD_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith(("FOREMAN_", "OPENAI_"))},
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
BUILD_ENV.pop("PYTHONPATH", None)

SHIPPED = {
    "foreman/py.typed",
    "foreman/defaults/foreman.toml",
    # The offline engine's VAD model and its licence: the 'offline' extra alone must suffice.
    "foreman/audio/silero_vad.onnx",
    "foreman/audio/silero_vad.LICENSE",
    *(
        f"foreman/defaults/tools.d/{p.name}"
        for p in (REPO / "src/foreman/defaults/tools.d").glob("*.json")
    ),
}

pytestmark = [pytest.mark.wheel, pytest.mark.e2e, pytest.mark.timeout(300)]


def run(*argv: str | Path, cwd: Path | None = None) -> None:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=BUILD_ENV,
        capture_output=True,
        text=True,
        timeout=unit(240),
        check=False,
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist first, then the wheel built from the unpacked sdist (what `python -m build` does
    without flags): a file missing from the sdist is missing from the wheel too."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, REPO)
    name = DISTRIBUTION.replace("-", "_")
    (sdist,) = out.glob(f"{name}-{__version__}.tar.gz")
    (built,) = out.glob(f"{name}-{__version__}-py3-none-any.whl")
    prefix = f"{name}-{__version__}/"
    with tarfile.open(sdist) as archive:
        in_sdist = {m.name.removeprefix(prefix) for m in archive.getmembers()}
    assert {"LICENSE", *(f"src/{p}" for p in SHIPPED)} <= in_sdist
    with zipfile.ZipFile(built) as archive:
        in_wheel = set(archive.namelist())
        metadata = archive.read(f"{name}-{__version__}.dist-info/METADATA").decode()
    assert {*SHIPPED, f"{name}-{__version__}.dist-info/licenses/LICENSE"} <= in_wheel
    assert f"Name: {DISTRIBUTION}\n" in metadata and "License-Expression: Apache-2.0" in metadata
    assert "Requires-Dist: caldav" in metadata and "extra == 'calendar'" in metadata
    return built


async def test_the_installed_wheel_serves_the_packaged_defaults_from_anywhere(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # No pip of its own (seconds saved): this test's pip installs into it.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", wheel)

    empty_cwd, empty_home = tmp_path / "cwd", tmp_path / "home"
    empty_cwd.mkdir()
    empty_home.mkdir()
    env = {
        k: v
        for k, v in BUILD_ENV.items()
        if k not in ("XDG_CONFIG_HOME", "VIRTUAL_ENV") and not k.startswith("PIP_")
    }
    env["HOME"] = str(empty_home)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        venv / "bin" / "foreman",
        "serve",
        "--port",
        str(port),
        cwd=empty_cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    seen: list[str] = []
    try:
        assert server.stdout is not None
        async with asyncio.timeout(unit(30)):
            while "serving on" not in (seen[-1] if seen else ""):
                line = (await server.stdout.readline()).decode()
                assert line, "foreman serve exited:\n" + "".join(seen)
                seen.append(line)
        assert "(config: <packaged defaults>)" in seen[-1]

        base = f"http://127.0.0.1:{port}"
        async with (
            MockRealtimeServer() as mock,
            httpx.AsyncClient(base_url=base, timeout=unit(20)) as api,
        ):
            health = await api.get("/api/health")
            assert health.status_code == 200 and health.json()["version"] == __version__
            tools = (await api.get("/api/tools")).json()
            assert tools["config"] == "<packaged defaults>"
            # The installed copy, not this checkout's.
            assert Path(tools["tools_dir"]).is_relative_to(venv)
            assert "end_call" in {t["name"] for t in tools["available"]}

            start = await api.post("/api/realtime/start", json={"endpoint": mock.url})
            assert start.status_code == 200, start.text
            update = await mock.wait_for_client_event("session.update", timeout=unit(10))
            assert "end_call" in {t["name"] for t in update["session"]["tools"]}
            assert (await api.post("/api/realtime/stop")).status_code == 200

        server.send_signal(signal.SIGTERM)
        async with asyncio.timeout(unit(15)):
            output = "".join(seen) + (await server.stdout.read()).decode()
            # uvicorn shuts down cleanly, then ends by the signal it was sent (as it should).
            assert await server.wait() in (0, -signal.SIGTERM), output
        assert "Traceback" not in output
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
