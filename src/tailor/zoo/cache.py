"""Cache folder for converted and generated models (placeholder; the zoo branch replaces it)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def cache_root() -> Path:
    return Path(os.environ.get("TAILOR_CACHE", Path.home() / ".cache" / "tailor"))


def cached_folder(key: str, build: Callable[[Path], None]) -> Path:
    dest = cache_root() / key
    if (dest / "MANIFEST").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    build(tmp)
    (tmp / "MANIFEST").write_text("\n".join(sorted(p.name for p in tmp.iterdir())))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest
