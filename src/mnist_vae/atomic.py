"""Write outputs so that a failed or interrupted stage leaves every earlier output as it was.

Every writer goes to a temporary file in the destination's own folder (so the final
``os.replace`` is an atomic rename on the same file system). Inside `all_or_nothing` (which
`cli.run_stage` wraps around every stage) the renames wait until the stage has finished, so a
stage that fails half-way replaces none of its outputs, not just none half-written; and if one
of those final renames fails, or SIGINT or SIGTERM arrives during them, the outputs already
renamed get their previous files back. The stage outputs are declared `persist: true` in
dvc.yaml, so DVC does not delete them before the run. An operating-system error while writing
(a full disk, a file-size limit, no permission) becomes an `OutputError` that names the output
and the cause, which the stage prints as one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from mnist_vae.errors import UserError

# mkstemp creates files readable by the owner only; outputs should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputError(UserError, RuntimeError):
    """An output that could not be written, e.g. 'cannot write models/vae.pt: File too large'."""


def _cannot_write(path: Path, error: OSError) -> OutputError:
    cause = error.strerror or str(error)
    # A folder on the way can be the cause (a file where the folder should be): name it. Our
    # own temporary names, beside the output, would say nothing to the reader.
    named = error.filename
    if named is not None and Path(named).absolute().parent != path.absolute().parent:
        cause = f"{named}: {cause}"
    return OutputError(f"cannot write {path}: {cause}")


# (temporary, final) pairs waiting for the end of the enclosing `all_or_nothing`, or None.
_pending: list[tuple[Path, Path]] | None = None


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Defer every `atomic_path` rename in the block to its successful end, then do them all.

    On any exception (KeyboardInterrupt too) the temporary files go and no output changes; if
    a final rename fails, or SIGINT or SIGTERM arrives during them, the outputs already
    renamed get their previous files back (`_rename_all`). Use it in the main thread, where
    Python lets a program set signal handlers.
    """
    global _pending
    if _pending is not None:
        raise RuntimeError("all_or_nothing blocks do not nest")
    _pending = []
    try:
        yield
        _rename_all(_pending)
    except BaseException:
        for tmp, _ in _pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _pending = None


def _rename_all(pending: list[tuple[Path, Path]]) -> None:
    """Rename every temporary file into place, or leave every output as it was.

    Each previous file is first moved aside (to `.NAME.*.old` beside it), so that a failed
    rename can be undone by renaming back. What no process can undo is its own SIGKILL or a
    power cut between two renames: that can leave some outputs new, some old, and previous
    files beside them; dvc.lock still names the previous outputs then, so `dvc status` shows
    the stage changed and `dvc repro` runs it again.
    """
    undo: list[Callable[[], None]] = []  # each puts one output back as it was, last first
    aside: list[Path] = []
    with _signals_noted() as interrupted:
        try:
            for tmp, path in pending:
                if path.is_file() or path.is_symlink():  # not a folder in the way: that fails
                    previous = tmp.with_suffix(".old")
                    os.replace(path, previous)
                    aside.append(previous)
                    undo.append(lambda path=path, previous=previous: os.replace(previous, path))
                    os.replace(tmp, path)
                else:
                    os.replace(tmp, path)
                    undo.append(path.unlink)
            if interrupted():
                raise KeyboardInterrupt  # (the signal's own handler may raise its own below)
        except BaseException as error:
            for put_back in reversed(undo):
                with contextlib.suppress(OSError):  # put the others back all the same
                    put_back()
            if isinstance(error, OSError):
                raise _cannot_write(path, error) from None
            raise
        for previous in aside:
            with contextlib.suppress(OSError):  # every output is new: a leftover harms nothing
                previous.unlink()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_noted() -> Iterator[Callable[[], bool]]:
    """In the block, SIGINT and SIGTERM are only noted, and `interrupted()` says whether one
    came that its handler will not ignore; after the block, the handlers act on them.

    A signal mask would not do: it holds a signal back from one thread, the kernel hands a
    process's signal to any thread that does not block it (torch starts several), and Python
    then runs the handler in the main thread all the same.
    """
    noted: list[int] = []
    handlers = {s: signal.signal(s, lambda signum, _: noted.append(signum)) for s in _SIGNALS}
    try:
        yield lambda: any(handlers[signum] is not signal.SIG_IGN for signum in noted)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in noted:
            signal.raise_signal(signum)


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
    except OSError as error:
        tmp.unlink(missing_ok=True)
        # Writing the output failed (a full disk, a size limit: its handle's errors name no
        # file). An error about another file, an input read in the block, is not one.
        if error.filename is not None and Path(error.filename) != tmp:
            raise
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
