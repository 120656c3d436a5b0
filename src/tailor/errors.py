"""One paragraph for every failure a user can fix; the CLI prints it instead of a traceback.

`describe(exc)` walks the exception and its causes (libraries such as `datasets` wrap the real
error) and turns the known kinds into a message saying what failed, on which file, and what to do:
tailor's own ConfigError (as raised), disk full, permissions, missing files, text that is not
UTF-8, unreadable images, the offline hub. Whatever is echoed is capped, so a hostile input cannot
flood the terminal. Anything else is an internal error: a short message and `--debug` for the
traceback.
"""

from __future__ import annotations

import errno
import os

from .config import ConfigError

MAX_MESSAGE = 2000  # characters of a message shown to the user


class NonFiniteError(RuntimeError):
    """Training produced NaN/inf; the message names the step and what to change (raised by engine.guards)."""


def cap(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else f"{text[:limit]} ... [{len(text) - limit} more characters cut]"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _filename(e: BaseException) -> str:
    name = getattr(e, "filename", None)
    return f" '{name}'" if name else ""


def describe(exc: BaseException) -> str | None:
    """A one-paragraph message for a known failure, or None for an unexpected one."""
    for e in _chain(exc):
        if isinstance(e, (ConfigError, NonFiniteError)):
            return cap(str(e))
    for e in _chain(exc):
        text = str(e)
        if (
            isinstance(e, OSError)
            and e.errno == errno.ENOSPC
            or "No space left" in text
            or "iostream error" in text
            or "PytorchStreamWriter failed" in text
        ):
            return cap(
                f"the disk is full (or a write failed) while writing{_filename(e)}: {text}. "
                "Free some space or point --runs (or $TAILOR_CACHE) at a disk with room, then re-run: "
                "finished stages are kept and the unfinished one resumes."
            )
        if isinstance(e, PermissionError):
            return cap(
                f"permission denied{_filename(e)}: {e.strerror or text}. Check that you may read and "
                "write there, or choose another folder (--runs)."
            )
        if isinstance(e, UnicodeDecodeError):
            return cap(
                f"a file is not UTF-8 text ({text}); re-save it as UTF-8 "
                "(e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)."
            )
        if isinstance(e, FileNotFoundError):
            return cap(f"file not found{_filename(e)}: {e.strerror or text}")
        if (
            type(e).__name__ in ("UnidentifiedImageError", "DecompressionBombError")
            or "image file is truncated" in text
        ):
            return cap(
                f"an image could not be read ({type(e).__name__}: {text}); remove or replace the damaged "
                "file (`python -c \"from PIL import Image; Image.open('F').load()\"` finds it)."
            )
        if type(e).__name__ in ("OfflineModeIsEnabled", "LocalEntryNotFoundError") or (
            os.environ.get("HF_HUB_OFFLINE") == "1" and "offline" in text.lower()
        ):
            return cap(
                f"the Hugging Face hub is not reachable (HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}): "
                f"{text}. Use a zoo name (`tailor models`, `tailor datasets`) or a local path, or go online."
            )
    return None
