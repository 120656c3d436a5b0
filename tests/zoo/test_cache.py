"""Build-once cache: manifest checks, rebuild of partial/corrupted entries, version-aware keys."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tailor.zoo import cache


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_hash_checked", set())
    return tmp_path / "cache"


class CountingBuild:
    """A build that writes two files and counts how often it ran."""

    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay

    def __call__(self, dest: Path) -> None:
        self.calls += 1
        time.sleep(self.delay)
        (dest / "weights.bin").write_bytes(bytes(range(256)) * 4)
        (dest / "sub").mkdir()
        (dest / "sub" / "config.json").write_text('{"a": 1}')


def test_builds_once_and_writes_manifest(tmp_cache):
    build = CountingBuild()
    first = cache.cached_folder("m/pkg-1.0-r1", build)
    second = cache.cached_folder("m/pkg-1.0-r1", build)
    assert first == second == tmp_cache / "m" / "pkg-1.0-r1"
    assert build.calls == 1
    manifest = json.loads((first / cache.MANIFEST).read_text())
    assert manifest["files"]["weights.bin"]["size"] == 1024
    assert set(manifest["files"]) == {"weights.bin", "sub/config.json"}
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".partial")]


def test_partial_entry_without_manifest_is_rebuilt(tmp_cache, caplog):
    leftover = tmp_cache / "m" / "pkg-1.0-r1"
    leftover.mkdir(parents=True)
    (leftover / "weights.bin").write_bytes(b"half")
    build = CountingBuild()
    folder = cache.cached_folder("m/pkg-1.0-r1", build)
    assert build.calls == 1
    assert (folder / "weights.bin").stat().st_size == 1024
    assert "no manifest" in caplog.text


def test_truncated_file_is_detected_without_hashing(tmp_cache, caplog):
    build = CountingBuild()
    folder = cache.cached_folder("m/pkg-1.0-r1", build)
    (folder / "weights.bin").write_bytes(b"truncated")
    cache.cached_folder("m/pkg-1.0-r1", build, verify=False)
    assert build.calls == 2
    assert "bytes, the manifest says 1024" in caplog.text


def test_same_size_corruption_is_caught_by_hash(tmp_cache, caplog):
    build = CountingBuild()
    folder = cache.cached_folder("m/pkg-1.0-r1", build)
    (folder / "weights.bin").write_bytes(bytes(1024))  # same size, different content
    cache.cached_folder("m/pkg-1.0-r1", build, verify=False)
    assert build.calls == 1  # sizes match: not detected without hashing
    cache.cached_folder("m/pkg-1.0-r1", build, verify=True)
    assert build.calls == 2
    assert "sha256" in caplog.text
    assert (folder / "weights.bin").read_bytes() == bytes(range(256)) * 4


def test_hashes_checked_on_first_use_per_process(tmp_cache, monkeypatch):
    build = CountingBuild()
    folder = cache.cached_folder("m/pkg-1.0-r1", build)
    (folder / "weights.bin").write_bytes(bytes(1024))
    monkeypatch.setattr(cache, "_hash_checked", set())  # a new process
    cache.cached_folder("m/pkg-1.0-r1", build)
    assert build.calls == 2


def test_failed_build_leaves_no_entry(tmp_cache):
    def broken(dest: Path) -> None:
        (dest / "weights.bin").write_bytes(b"x")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        cache.cached_folder("m/pkg-1.0-r1", broken)
    assert not cache.is_cached("m/pkg-1.0-r1")
    assert [p.name for p in (tmp_cache / "m").iterdir()] == [".pkg-1.0-r1.lock"]


def test_concurrent_callers_build_once(tmp_cache):
    build = CountingBuild(delay=0.3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.cached_folder("m/k", build))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert build.calls == 1
    assert len(set(results)) == 1 and len(results) == 3


def test_key_changes_with_installed_version(monkeypatch):
    import pytest as pytest_module

    assert cache.asset_key("m", "pytest") == f"m/pytest-{pytest_module.__version__}-r1"
    monkeypatch.setattr(cache, "version", lambda package: "99.0")
    assert cache.asset_key("m", "pytest") == "m/pytest-99.0-r1"
    assert cache.asset_key("m", "pytest", revision=2) == "m/pytest-99.0-r2"
    assert cache.asset_key("m", "pytest", "pyyaml") == "m/pytest-99.0_pyyaml-99.0-r1"


def test_missing_package_and_bad_key_fail_clearly():
    from importlib.metadata import PackageNotFoundError

    with pytest.raises(PackageNotFoundError):
        cache.asset_key("m", "no-such-package-tailor")
    with pytest.raises(ValueError, match="invalid cache key '../escape'"):
        cache.cached_folder("../escape", CountingBuild())


def test_cache_root_from_environment(tmp_cache, monkeypatch):
    assert cache.cache_root() == tmp_cache
    monkeypatch.delenv("TAILOR_CACHE")
    assert cache.cache_root() == Path.home() / ".cache" / "tailor"
