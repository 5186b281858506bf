"""Write outputs so that a failed or interrupted stage leaves every earlier output as it was.

Every writer goes to a temporary file in the destination's own folder (so the final
``os.replace`` is an atomic rename on the same file system). Inside `all_or_nothing` (which
`cli.run_stage` wraps around every stage) the renames wait until the stage has finished, so a
stage that fails half-way replaces none of its outputs, not just none half-written. The stage
outputs are declared `persist: true` in dvc.yaml, so DVC does not delete them before the run.
An operating-system error while writing (a full disk, a file-size limit, no permission) becomes
an `OutputError` that names the output and the cause, which the stage prints as one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mnist_vae.errors import UserError

# mkstemp creates files readable by the owner only; outputs should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(UserError, RuntimeError):
    """An output that could not be written, e.g. 'cannot write models/vae.pt: File too large'."""


def _cannot_write(path: Path, error: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {error.strerror or error}")


# (temporary, final) pairs waiting for the end of the enclosing `all_or_nothing`, or None.
_pending: list[tuple[Path, Path]] | None = None


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Defer every `atomic_path` rename in the block to its successful end, then do them all.

    On any exception (KeyboardInterrupt too) the temporary files go and no output changes.
    The renames themselves run with SIGINT and SIGTERM held back, so a signal cannot split them.
    """
    global _pending
    if _pending is not None:
        raise RuntimeError("all_or_nothing blocks do not nest")
    _pending = []
    try:
        yield
        with _signals_held():
            for tmp, path in _pending:
                try:
                    os.replace(tmp, path)
                except OSError as error:
                    raise _cannot_write(path, error) from None
    finally:
        for tmp, _ in _pending:
            tmp.unlink(missing_ok=True)
        _pending = None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks, renames are quick
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it takes ``path``'s place only if the block
    succeeds (at once, or at the end of the enclosing `all_or_nothing`)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        tmp.chmod(0o666 & ~_UMASK)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        yield tmp
    except OSError as error:  # the writing in the block failed
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, error) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if _pending is None:
        try:
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise _cannot_write(path, error) from None
    else:
        _pending.append((tmp, path))


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def write_json(path: str | os.PathLike, data: dict) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)
