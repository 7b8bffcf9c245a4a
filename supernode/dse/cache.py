"""Result cache of a sweep: one JSON file per evaluated point, keyed by the point's hash."""

import hashlib
import json
from pathlib import Path

from supernode.rtl.errors import UserError
from supernode.sim.outputs import write_atomic

__all__ = ["ResultCache", "point_key", "write_atomic"]


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
        #: (path, reason) of every entry :meth:`get` found and did not trust.
        self.rejected = []

    @property
    def directory(self) -> Path:
        return self._dir

    def _path(self, key: str) -> Path:
        return self._dir / f"{key}.json"

    def get(self, key: str, required=()):
        """The stored record of ``key``, or ``None`` when there is none to trust.

        An unreadable entry, one whose key, status or metrics are wrong, or one lacking
        a metric named in ``required``, counts as missing; the reason is kept in
        :attr:`rejected` so that the sweep can say why it evaluates the point again. A
        directory where the entry should be is refused: nothing could replace it.
        """
        path = self._path(key)
        if path.is_dir():
            raise UserError(f"sweep cache entry {str(path)!r} is a directory, not a result "
                            f"file; remove it or give another --out")
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._reject(path, f"unreadable ({exc.__class__.__name__})")
        if not isinstance(record, dict) or record.get("key") != key:
            return self._reject(path, "it holds another key")
        if record.get("status") != "ok":
            return self._reject(path, f"its status is {record.get('status')!r}, not 'ok'")
        metrics = record.get("metrics")
        if not isinstance(metrics, dict) or not metrics:
            return self._reject(path, "it holds no metrics")
        missing = [m for m in required if metrics.get(m) is None]
        if missing:
            return self._reject(path, f"it lacks the metric(s) {', '.join(missing)}")
        return record

    def _reject(self, path: Path, reason: str):
        self.rejected.append((path, reason))
        return None

    def put(self, key: str, record: dict):
        """Store ``record`` (which must carry ``key``) atomically."""
        if record.get("key") != key:
            raise ValueError(f"cache record carries key {record.get('key')!r}, not {key!r}")
        self._dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(key), json.dumps(record, default=str))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None
