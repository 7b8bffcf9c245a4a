"""Files a user asks for: the destination checked before the work, the file written atomically.

Every output option of the CLI (``--out``, ``--plot``, ``--png``, ``--gtkw``) goes through
:func:`check_output` before anything slow runs, and the file is then written through
:func:`atomic_output` or :func:`write_atomic`: a temporary file in the same directory,
renamed over the destination once complete. A reader sees the old file or the whole new
one; a failed write leaves no temporary file behind. Missing parent directories are never
created: a mistyped path is refused instead of growing a tree somewhere unexpected.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from supernode.rtl.errors import UserError

__all__ = ["check_output", "check_output_dir", "atomic_output", "write_atomic"]


def _probe_writable(directory: Path, flag: str, shown: str) -> None:
    """Create and remove a file in ``directory``, or raise one sentence saying why not.

    Permission bits alone do not tell (root ignores them; /proc and /sys refuse anyway),
    so the only sure test is to try.
    """
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".supernode-probe-", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"{flag} {shown}: cannot write in directory {str(directory)!r} "
                        f"({exc.strerror or exc.__class__.__name__}); give a writable place") \
            from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | os.PathLike[str], *, flag: str,
                 suffixes: Collection[str] | None = None) -> Path:
    """The destination ``path`` of ``flag``, or :class:`UserError` naming what is wrong.

    Refused: a directory, a missing or non-directory parent, a place that cannot be
    written, and (when ``suffixes`` is given) a name with another ending. Nothing is
    created or changed.
    """
    out = Path(path)
    shown = repr(str(path))
    if out.is_dir():
        raise UserError(f"{flag} {shown} is a directory; give a file path in it")
    if suffixes and out.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {shown} must name a {' or '.join(suffixes)} file")
    parent = out.parent
    if not parent.exists():
        raise UserError(f"{flag} {shown}: directory {str(parent)!r} does not exist; "
                        f"create it first or give another path")
    if not parent.is_dir():
        raise UserError(f"{flag} {shown}: {str(parent)!r} is a file, not a directory")
    if out.exists() and not out.is_file():
        raise UserError(f"{flag} {shown} exists and is not a regular file")
    _probe_writable(parent, flag, shown)
    return out


def check_output_dir(path: str | os.PathLike[str], *, flag: str) -> Path:
    """An output directory: existing and writable, or to be created in an existing parent."""
    out = Path(path)
    shown = repr(str(path))
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{flag} {shown} is a file; give a directory")
        _probe_writable(out, flag, shown)
        return out
    parent = out.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {shown}: directory {str(parent)!r} does not exist; "
                        f"create it first or give another path")
    _probe_writable(parent, flag, shown)
    return out


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the destination's suffix, so writers that choose a format by
    it (matplotlib) still do. On any failure the temporary file is removed and ``path``
    keeps its old content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _file_mode(path: Path) -> int:
    """The permissions ``path`` has, or those a plain ``open(path, "w")`` would give it
    (a temporary file is created private, and the rename would keep that)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], data: str | bytes | bytearray) -> Path:
    """Write ``data`` (str or bytes) to ``path`` through :func:`atomic_output`; the parent
    directory must exist. The data is flushed to disk before the rename, so a reader sees
    the old file or the complete new one even after a crash."""
    path = Path(path)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with atomic_output(path) as tmp:
        with open(tmp, mode) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    return path
