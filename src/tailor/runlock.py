"""One process per run folder: an exclusive `filelock` lock held for the whole run.

The lock is an OS file lock (flock), so a process killed with `kill -9` releases it with its
death: the next run takes it over and says whose stale holder record it replaced. The holder
(pid, host, start time) is written beside the lock, because the lock file itself is truncated by
every process that tries it; a refused run names that holder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .config import ConfigError
from .files import atomic_write_text

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"
HOLDER_FILE = ".lock-holder.json"


class RunFolderBusy(ConfigError):
    """Another live process holds the run folder."""


@contextmanager
def run_lock(run_dir: Path):
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    holder_file = run_dir / HOLDER_FILE
    lock = FileLock(str(run_dir / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read(holder_file)
        raise RunFolderBusy(
            f"run folder '{run_dir}' is in use by another tailor process (pid {holder.get('pid', '?')} on host "
            f"{holder.get('host', '?')}, since {holder.get('started', '?')}); wait for it to finish or stop it, "
            "then run again (it resumes)"
        ) from None
    try:
        stale = _read(holder_file)
        if stale:
            log.warning(
                "run folder %s: taking over the lock of pid %s on host %s (that process is gone)",
                run_dir,
                stale.get("pid"),
                stale.get("host"),
            )
        atomic_write_text(
            holder_file,
            json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            ),
        )
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()
        if {p.name for p in run_dir.iterdir()} <= {LOCK_FILE}:  # failed before any work: leave no stub folder
            shutil.rmtree(run_dir, ignore_errors=True)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
