"""TOML loading with units in key names, a source beside every number, and one-sentence errors."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernode.rtl.errors import UserError

__all__ = ["Provenance", "Table", "parse_quantity", "read_toml", "CONFIG_DIR", "find_config"]

class _Required:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()

#: Where the shipped hardware, workload and mapping files live.
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# Unit of a key, read from the end of its name: (suffix, unit name, {spelling: factor}).
# Spellings are case-sensitive: B is a byte and b a bit, M mega and m milli. Decimal
# prefixes are SI (kB = 1,000 B), binary ones IEC (KiB = 1,024 B); "KB", which is used for
# both, is refused rather than guessed.
_UNITS = (
    ("_bytes_per_s", "bytes per second", {
        "B/s": 1.0, "kB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9, "TB/s": 1e12, "PB/s": 1e15,
        "KiB/s": 2.0 ** 10, "MiB/s": 2.0 ** 20, "GiB/s": 2.0 ** 30, "TiB/s": 2.0 ** 40,
        "b/s": 1 / 8, "kb/s": 1e3 / 8, "Mb/s": 1e6 / 8, "Gb/s": 1e9 / 8, "Tb/s": 1e12 / 8,
        "bps": 1 / 8, "kbps": 1e3 / 8, "Mbps": 1e6 / 8, "Gbps": 1e9 / 8, "Tbps": 1e12 / 8,
        "kbit/s": 1e3 / 8, "Mbit/s": 1e6 / 8, "Gbit/s": 1e9 / 8, "Tbit/s": 1e12 / 8}),
    ("_bytes", "bytes", {
        "B": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
        "KiB": 2.0 ** 10, "MiB": 2.0 ** 20, "GiB": 2.0 ** 30, "TiB": 2.0 ** 40}),
    ("_hz", "hertz", {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9}),
    ("_flops", "FLOP per second", {
        "FLOPS": 1.0, "GFLOPS": 1e9, "TFLOPS": 1e12, "PFLOPS": 1e15, "EFLOPS": 1e18,
        "FLOP/s": 1.0, "GFLOP/s": 1e9, "TFLOP/s": 1e12, "PFLOP/s": 1e15, "EFLOP/s": 1e18}),
    ("_w", "watts", {"mW": 1e-3, "W": 1.0, "kW": 1e3, "MW": 1e6}),
    ("_ns", "nanoseconds", {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}),
)

_QUANTITY = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9].*?)?\s*$")


def unit_of(key: str):
    """The (unit name, spellings) that ``key`` is measured in, or ``None`` for a plain number."""
    for suffix, name, spellings in _UNITS:
        if key.endswith(suffix):
            return name, spellings
    return None


def parse_quantity(text: str, key: str, where: str) -> float:
    """Turn ``"3.2 TB/s"`` into a number in the unit of ``key`` (bytes per second here).

    Raises
    ------
    UserError
        When the text is not a number with a unit, or the unit does not fit ``key``.
    """
    unit = unit_of(key)
    match = _QUANTITY.match(text)
    if match is None:
        raise UserError(f"{where}: {key} = {text!r} is not a number (write e.g. 1.5 or "
                        f"\"1.5 {_example_unit(unit)}\")")
    number, spelled = float(match.group(1)), (match.group(2) or "").strip()
    if not spelled:
        return number
    if unit is None:
        raise UserError(f"{where}: {key} = {text!r} carries unit {spelled!r} but {key} is a "
                        f"plain number; write the number alone")
    name, spellings = unit
    factor = spellings.get(spelled.replace(" ", ""))
    if factor is None:
        close = [u for u in spellings if u.lower() == spelled.replace(" ", "").lower()]
        hint = (f" (units are case-sensitive: did you mean {' or '.join(close)}?)" if close
                else "")
        raise UserError(f"{where}: {key} = {text!r} has unit {spelled!r}, which is not a unit "
                        f"of {name}{hint}; accepted: {', '.join(spellings)}")
    return number * factor


def _example_unit(unit) -> str:
    return "" if unit is None else next(iter(unit[1]))


@dataclass(frozen=True)
class Provenance:
    """Where one number comes from.

    Members
    -------
    text : str
        The source as written in the file (a paper section, a datasheet, or the reason
        for an assumption).
    assumption : bool
        ``True`` when the number is not published and was chosen by the modeller.
    """
    text: str
    assumption: bool

    def label(self) -> str:
        """``"assumption: ..."`` or ``"source: ..."`` for printing."""
        return f"{'assumption' if self.assumption else 'source'}: {self.text}"


def read_toml(path: Path) -> dict:
    """Parse one TOML file, turning every failure into a :class:`UserError` naming the file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"config file {str(path)!r} cannot be read ({exc.__class__.__name__}); "
                        f"give a readable UTF-8 TOML file") from None


def find_config(kind: str, name_or_path: str) -> Path:
    """Resolve a shipped config name (``"cloudmatrix384"``) or a file path to a path.

    ``kind`` is the sub-directory of :data:`CONFIG_DIR` (``"hardware"``, ``"workloads"``,
    ``"mappings"``).
    """
    text = str(name_or_path)
    candidate = Path(text)
    if text.endswith(".toml") or candidate.is_file():
        if not candidate.is_file():
            raise UserError(f"{kind} file {text!r} does not exist")
        return candidate
    shipped = CONFIG_DIR / kind / f"{text}.toml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in (CONFIG_DIR / kind).glob("*.toml"))
    raise UserError(f"unknown {kind.rstrip('s')} {text!r}; accepted: {', '.join(known)} "
                    f"or a path to a .toml file")


class Table:
    """One TOML table being read: checks keys, units, signs and records provenance.

    Every read marks its key as used; :meth:`finish` then rejects any key nobody read,
    so a misspelt key is an error rather than silently ignored.

    Members
    -------
    data : dict
        The raw table.
    where : str
        ``"<file> [section]"``, the prefix of every error.
    sources : dict
        Key -> :class:`Provenance` of every sourced number read so far.
    """

    def __init__(self, data: dict, *, path: Path, section: str) -> None:
        if not isinstance(data, dict):
            raise UserError(f"{path}: [{section}] must be a table, not {data!r}")
        self.data = data
        self.path = path
        self.section = section
        self.where = f"{path} [{section}]" if section else str(path)
        self.sources: dict[str, Provenance] = {}
        self._used: set[str] = set()

    def sub(self, key: str, *, required: bool = True) -> "Table | None":
        """The sub-table ``key`` (``[section.key]``)."""
        if key not in self.data:
            if required:
                raise UserError(f"{self.where}: missing table {key!r}")
            self._used.add(key)
            return None
        self._used.add(key)
        section = f"{self.section}.{key}" if self.section else key
        return Table(self.data[key], path=self.path, section=section)

    def mark_used(self, key: str) -> None:
        """Count ``key`` as read (for entries another reader validates)."""
        self._used.add(key)

    def keys(self) -> list[str]:
        return list(self.data)

    def has(self, key: str) -> bool:
        return key in self.data

    def _raw(self, key: str, default: Any) -> tuple[Any, bool]:
        if key not in self.data:
            if default is _REQUIRED:
                close = difflib.get_close_matches(key, [k for k in self.data
                                                        if k not in self._used], n=1)
                hint = f" (is {close[0]!r} a misspelling?)" if close else ""
                raise UserError(f"{self.where}: missing key {key!r}{hint}")
            return default, True
        self._used.add(key)
        return self.data[key], False

    def text(self, key: str, *, choices: Sequence[str] | None = None, default: Any = None,
             required: bool = True) -> str:
        """A string, optionally one of ``choices``."""
        raw, missing = self._raw(key, _REQUIRED if required else default)
        if missing:
            return raw
        value = raw["value"] if isinstance(raw, dict) and "value" in raw else raw
        if isinstance(raw, dict):
            self._provenance(key, raw)
        if not isinstance(value, str):
            raise UserError(f"{self.where}: {key} = {value!r} must be a string")
        if choices is not None and value not in choices:
            raise UserError(f"{self.where}: {key} = {value!r} is not accepted; accepted: "
                            f"{', '.join(choices)}")
        return value

    def number(self, key: str, *, sourced: bool = True, integer: bool = False,
               minimum: float = 0.0, strict: bool = True, default: Any = None,
               required: bool = True, unit_key: str | None = None) -> float:
        """A number in the unit of ``key``; with ``sourced``, written ``{value=, source=}``.

        ``sourced="optional"`` accepts a bare number or the sourced form.

        ``strict`` means the number must be greater than ``minimum``; otherwise at least it.
        ``unit_key`` names the key whose unit applies, when it is not ``key`` itself.
        """
        raw, missing = self._raw(key, _REQUIRED if required else default)
        if missing:
            return raw
        if sourced == "optional":
            if isinstance(raw, dict):
                self._provenance(key, raw)
                raw = raw.get("value")
        elif sourced:
            if not isinstance(raw, dict) or "value" not in raw:
                raise UserError(f"{self.where}: {key} = {raw!r} must be written "
                                f"{{ value = ..., source = \"...\" }} (or assumption = "
                                f"\"...\" when the number is not published)")
            self._provenance(key, raw)
            raw = raw["value"]
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise UserError(f"{self.where}: {key} = {raw!r} must be a number")
        value = (parse_quantity(raw, unit_key or key, self.where) if isinstance(raw, str)
                 else float(raw))
        if value != value or value in (float("inf"), float("-inf")):
            raise UserError(f"{self.where}: {key} = {raw!r} must be a finite number")
        if integer and value != int(value):     # int() of nan or inf would raise, so after
            raise UserError(f"{self.where}: {key} = {raw!r} must be a whole number")
        if (value <= minimum) if strict else (value < minimum):
            bound = f"greater than {minimum:g}" if strict else f"at least {minimum:g}"
            raise UserError(f"{self.where}: {key} = {raw!r} must be {bound}")
        return int(value) if integer else value

    def _provenance(self, key: str, raw: dict) -> None:
        extra = set(raw) - {"value", "source", "assumption"}
        if extra:
            raise UserError(f"{self.where}: {key} has unknown field {sorted(extra)[0]!r}; "
                            f"accepted: value, source, assumption")
        has_source, has_assumption = "source" in raw, "assumption" in raw
        if has_source == has_assumption:
            raise UserError(f"{self.where}: {key} needs exactly one of source = \"...\" "
                            f"(published) or assumption = \"...\" (not published)")
        text = raw["source"] if has_source else raw["assumption"]
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{self.where}: the source of {key} must be a non-empty string")
        self.sources[key] = Provenance(text=text.strip(), assumption=has_assumption)

    def finish(self) -> None:
        """Reject keys that were never read (misspelt or unsupported)."""
        unknown = [k for k in self.data if k not in self._used]
        if unknown:
            raise UserError(f"{self.where}: unknown key {unknown[0]!r}; check the spelling "
                            f"against the shipped files in {CONFIG_DIR}")
