"""Result cache of a sweep: one JSON file per evaluated point, keyed by the point's hash."""

import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["ResultCache", "point_key", "write_atomic"]


def write_atomic(path, data) -> Path:
    """Write ``data`` (str or bytes) to ``path`` through a temporary file and ``os.replace``.

    A reader sees either the old file or the complete new one, never a torn write, even
    when the process is killed half-way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def point_key(payload: dict) -> str:
    """Hash of everything that decides a point's result (parameters, workload, checks, code)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ResultCache:
    """Finished points of sweeps, stored as ``<dir>/<key>.json``.

    Only successful evaluations are stored: a point that failed (a model/RTL disagreement
    or an error) is evaluated again on the next run.

    Parameters
    ----------
    directory : path
        Where the entries live; created on first write.
    """

    def __init__(self, directory):
        self._dir = Path(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, key: str) -> Path:
        return self._dir / f"{key}.json"

    def get(self, key: str):
        """The stored record of ``key`` or ``None``; an unreadable entry counts as missing."""
        path = self._path(key)
        try:
            record = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return record

    def put(self, key: str, record: dict):
        """Store ``record`` (which must carry ``key``) atomically."""
        if record.get("key") != key:
            raise ValueError(f"cache record carries key {record.get('key')!r}, not {key!r}")
        write_atomic(self._path(key), json.dumps(record, default=str))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
