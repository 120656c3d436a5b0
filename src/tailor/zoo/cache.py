"""Build-once folders in the user's cache (converted checkpoints, tokenizers).

A converted model is built once per cache key into ``$TAILOR_CACHE`` (default
``~/.cache/tailor``) and reused by every later run. The key names the source package and its
installed version, so upgrading an asset package rebuilds its conversion.

A build goes into a temporary sibling folder; a manifest (every file's size and sha256) is written
last and the folder is renamed into place, so an entry either has a manifest or is a leftover of a
crashed build. On use, sizes are always checked and hashes once per process (or whenever
``verify=True``); a partial or corrupted entry is logged, removed and rebuilt. An exclusive lock
file per entry (POSIX ``flock``) keeps concurrent processes from building the same entry twice;
where ``flock`` is missing, a lost rename race is resolved by keeping the winner's folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the rename race below still keeps entries consistent
    fcntl = None

log = logging.getLogger(__name__)

MANIFEST = "tailor-manifest.json"
_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*")
_hash_checked: set[Path] = set()  # entries whose hashes were verified in this process


def cache_root() -> Path:
    """The cache folder: ``$TAILOR_CACHE`` if set, else ``~/.cache/tailor``."""
    return Path(os.environ.get("TAILOR_CACHE") or Path.home() / ".cache" / "tailor").expanduser()


def asset_key(name: str, *packages: str, revision: int = 1) -> str:
    """Cache key of ``name`` converted from the installed ``packages``.

    ``revision`` is bumped when the conversion code changes what it writes.
    Raises ``importlib.metadata.PackageNotFoundError`` when a package is not installed.
    """
    sources = "_".join(f"{package}-{version(package)}" for package in packages)
    return f"{name}/{sources}-r{revision}"


def entry_path(key: str) -> Path:
    """Where the entry for ``key`` lives (it may not exist yet)."""
    if not _KEY_PATTERN.fullmatch(key):
        raise ValueError(
            f"invalid cache key {key!r}: use '/'-separated parts of letters, digits and ._+- "
            "(each part starting with a letter or digit)"
        )
    return cache_root().joinpath(*key.split("/"))


def is_cached(key: str) -> bool:
    """Whether a complete entry for ``key`` exists (manifest present, sizes match)."""
    return _problem(entry_path(key), check_hashes=False) is None


def cached_folder(key: str, build: Callable[[Path], None], *, verify: bool | None = None) -> Path:
    """Return the folder for ``key``, calling ``build(tmp_folder)`` first if needed.

    ``build`` writes the files into the folder it is given. ``verify=True`` re-hashes every file,
    ``False`` checks sizes only, ``None`` (default) hashes on the first use in this process.
    """
    dest = entry_path(key)
    check_hashes = verify if verify is not None else dest not in _hash_checked
    if _problem_checked(dest, check_hashes) is None:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _locked(dest):
        problem = _problem_checked(dest, check_hashes)  # another process may have built it
        if problem is None:
            return dest
        if dest.exists():
            log.warning("cache entry %s is unusable (%s); removing it to rebuild", dest, problem)
            shutil.rmtree(dest)
        _build(key, dest, build)
        _hash_checked.add(dest)
    return dest


def _problem_checked(dest: Path, check_hashes: bool) -> str | None:
    """``_problem``, remembering entries whose hashes passed in this process."""
    problem = _problem(dest, check_hashes)
    if problem is None and check_hashes:
        _hash_checked.add(dest)
    return problem


def _build(key: str, dest: Path, build: Callable[[Path], None]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        start = time.perf_counter()
        log.info("building cache entry %s", key)
        build(tmp)
        _write_manifest(tmp, key)
        try:
            os.rename(tmp, dest)
        except OSError:  # lost a race with a process that holds no lock: keep its complete entry
            if _problem(dest, check_hashes=True) is not None:
                raise
        log.info("built cache entry %s in %.1f s", dest, time.perf_counter() - start)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(dest.parent / f".{dest.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_manifest(folder: Path, key: str) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    entries = {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in files}
    manifest = {"key": key, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": entries}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _problem(dest: Path, check_hashes: bool) -> str | None:
    """Why the entry at ``dest`` cannot be used, or None if it can."""
    if not dest.is_dir():
        return "missing"
    try:
        files = json.loads((dest / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return "no manifest: a partial build"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"unreadable manifest ({err})"
    for name, meta in files.items():
        path = dest / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != meta["size"]:
            return f"{name} has {path.stat().st_size} bytes, the manifest says {meta['size']}"
        if check_hashes and _sha256(path) != meta["sha256"]:
            return f"{name} does not match its sha256"
    return None
