"""Sweep specifications: a TOML file naming the space, workload, objectives and RTL checks."""

import itertools
import json
import math
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from supernode.rtl.errors import UserError
from supernode.sim.implement import DEFAULT_DEVICE, DEFAULT_SEED, DEVICES

from .cache import point_key
from .evaluators import KINDS, load_evaluator

__all__ = ["SweepSpec", "load_spec", "MAX_POINTS"]

#: A space larger than this is almost certainly a typo in a range; refuse it.
MAX_POINTS = 100_000

_SECTIONS = ("sweep", "space", "workload", "objectives", "rtl", "plots")
_SWEEP_KEYS = ("name", "kind", "description", "implement", "device", "seed")
_PLOT_TYPES = ("pareto", "heatmap", "curves")


@dataclass(frozen=True)
class SweepSpec:
    """One design-space sweep, as read from its TOML file.

    Members
    -------
    path : Path
        The file it was read from (named in every error about it).
    name : str
        Sweep name (``[sweep] name``, else the file's stem); names the default output folder.
    kind : str
        Which evaluator scores each point: ``"tile"``, ``"router"`` or ``"system"``.
    description : str
        Free text, copied into the output manifest.
    space : dict
        Parameter name -> tuple of values; the points are their Cartesian product, in
        the order the file declares them.
    workload : dict
        The workload and mapping, checked and normalised by the evaluator.
    objectives : dict
        Objective name (``throughput``, ``latency``, ``utilisation``, ``area``, ``energy``)
        -> ``"max"`` or ``"min"``.
    spot_checks : int
        How many points also run on the RTL.
    rtl_seed : int
        Seed of the draw of those points (``[rtl] seed``).
    rtl : dict
        Options of the RTL check (simulator, tolerance, ...), checked by the evaluator.
    plots : tuple of dict
        Plots to draw; ``[[plots]]`` tables, or the evaluator's defaults.
    implement : dict or None
        ``{"device": ..., "seed": ...}`` when every point is also placed and routed on an
        FPGA (``[sweep] implement = true``, or an objective or plot that needs its
        figures); None otherwise.
    """
    path: Path
    name: str
    kind: str
    description: str
    space: dict
    workload: dict
    objectives: dict
    spot_checks: int
    rtl_seed: int
    rtl: dict
    plots: tuple = field(default=())
    implement: "dict | None" = None

    @property
    def evaluator(self):
        return load_evaluator(self.kind)

    def points(self) -> list:
        """Every point of the space as a parameter dict, in a fixed order."""
        names = list(self.space)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.space.values())]

    def spot_check_indices(self) -> frozenset:
        """Indices (into :meth:`points`) of the points that also run on the RTL."""
        count = len(self.points())
        picked = random.Random(self.rtl_seed).sample(range(count), min(self.spot_checks, count))
        return frozenset(picked)

    def tasks(self, fingerprint: str) -> list:
        """One evaluation task per point: what a worker needs plus the point's cache key.

        ``fingerprint`` identifies the evaluator's code, so a changed model never
        answers from a stale cache entry.
        """
        checked = self.spot_check_indices()
        used = set(self.objectives) | {p.get(r) for p in self.plots for r in ("x", "y", "value")}
        need_area = bool({"area", "energy"} & used)
        out = []
        for index, params in enumerate(self.points()):
            rtl = dict(self.rtl) if index in checked else None
            task = {"kind": self.kind, "params": params, "workload": self.workload,
                    "rtl": rtl, "area": need_area}
            if self.implement is not None:
                task["implement"] = self.implement
            out.append({**task, "index": index, "key": point_key({**task, "code": fingerprint})})
        return out

    def digest(self) -> str:
        """Hash of the spec's content (not its path): tells whether a resume matches."""
        content = {"kind": self.kind, "space": {k: list(v) for k, v in self.space.items()},
                   "workload": self.workload, "objectives": self.objectives,
                   "spot_checks": self.spot_checks, "rtl_seed": self.rtl_seed, "rtl": self.rtl}
        if self.implement is not None:
            content["implement"] = self.implement
        return point_key(content)


def _bad(path, key, value, accepted) -> UserError:
    shown = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return UserError(f"{path}: {key} = {shown} is not accepted; expected {accepted}")


def _expand(path, name, raw) -> list:
    """Values of one space dimension: a list, a scalar, or a {start, stop, step|factor} range."""
    key = f"[space] {name}"
    if isinstance(raw, list):
        if not raw:
            raise _bad(path, key, raw, "a non-empty list of values")
        return list(raw)
    if isinstance(raw, dict):
        if set(raw) == {"values"}:
            return _expand(path, name, raw["values"])
        allowed = ({"start", "stop", "step"}, {"start", "stop", "factor"})
        if set(raw) not in allowed:
            raise _bad(path, key, raw, "a list, {values = [...]}, {start, stop, step} or "
                                      "{start, stop, factor}")
        start, stop = raw["start"], raw["stop"]
        nums = [v for v in raw.values()]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in nums):
            raise _bad(path, key, raw, "finite numeric start, stop and step or factor")
        if "step" in raw:
            step = raw["step"]
            if step <= 0 or stop < start:
                raise _bad(path, key, raw, "a positive step and stop >= start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
        else:
            factor = raw["factor"]
            if factor <= 1 or start <= 0 or stop < start:
                raise _bad(path, key, raw, "factor > 1, start > 0 and stop >= start")
            count = int(math.floor(math.log(stop / start) / math.log(factor) + 1e-9)) + 1
        # Counted before a single value is made: a typo of a billion points is refused at once.
        if count > MAX_POINTS:
            raise _bad(path, key, raw, f"a range of at most {MAX_POINTS} values, not {count}")
        if "step" in raw:
            values = [start + i * step for i in range(count)]
        else:
            values, v = [], start
            while v <= stop * (1 + 1e-9):
                values.append(v)
                v = v * factor
        return values
    return [raw]


#: The example specs shipped with the package (the checkout's examples/ folder).
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example_names() -> list:
    """Names of the shipped example specs, which :func:`load_spec` takes instead of a path."""
    return sorted(p.stem for p in EXAMPLES.glob("*.toml"))


def load_spec(path) -> SweepSpec:
    """Read and check a sweep spec (a TOML file, or the name of a shipped example such as
    ``tile_array_shapes``); any problem is one :class:`UserError` sentence."""
    path = Path(path)
    if not path.exists() and path.name == str(path) and path.stem in example_names():
        path = EXAMPLES / f"{path.stem}.toml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"sweep spec {str(path)!r} does not exist; give the path of a TOML file "
                        f"or the name of a shipped example ({', '.join(example_names())})")
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"sweep spec {str(path)!r} cannot be read ({exc.__class__.__name__}); "
                        f"give a readable UTF-8 TOML file")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: is not valid TOML ({exc}); fix the syntax")
    return parse_spec(doc, path)


def _table(doc, path, name) -> dict:
    value = doc.get(name, {})
    if not isinstance(value, dict):
        raise _bad(path, f"[{name}]", value, "a table")
    return value


def parse_spec(doc: dict, path) -> SweepSpec:
    """Check a parsed TOML document (``path`` only names it in errors)."""
    path = Path(path)
    for section in doc:
        if section not in _SECTIONS:
            raise _bad(path, "section", section, f"one of {', '.join(_SECTIONS)}")
    sweep = _table(doc, path, "sweep")
    for key in sweep:
        if key not in _SWEEP_KEYS:
            raise _bad(path, "[sweep] key", key, ", ".join(_SWEEP_KEYS))
    kind = sweep.get("kind")
    if kind not in KINDS:
        raise _bad(path, "[sweep] kind", kind, f"one of {', '.join(KINDS)}")
    name = sweep.get("name", path.stem)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ \t") \
            or name.startswith("."):
        raise _bad(path, "[sweep] name", name, "a non-empty name without spaces or slashes")
    description = sweep.get("description", "")
    if not isinstance(description, str):
        raise _bad(path, "[sweep] description", description, "a string")
    evaluator = load_evaluator(kind)

    space_raw = _table(doc, path, "space")
    if not space_raw:
        raise _bad(path, "[space]", space_raw, "at least one parameter to sweep")
    accepted = evaluator.parameters()
    space = {}
    for pname, raw in space_raw.items():
        if pname not in accepted:
            raise _bad(path, "[space] parameter", pname,
                       f"one of {', '.join(sorted(accepted))} for a {kind} sweep")
        values = []
        for value in _expand(path, pname, raw):
            try:
                values.append(accepted[pname](value))
            except UserError as exc:
                raise _bad(path, f"[space] {pname}", value, str(exc))
        if len(set(map(repr, values))) != len(values):
            raise _bad(path, f"[space] {pname}", raw, "values that are all different")
        space[pname] = tuple(values)
    total = math.prod(len(v) for v in space.values())
    if total > MAX_POINTS:
        raise _bad(path, "[space]", f"{total} points", f"at most {MAX_POINTS} points")
    check_point = getattr(evaluator, "check_point", None)
    if check_point is not None:
        names = list(space)
        for combo in itertools.product(*space.values()):
            params = dict(zip(names, combo))
            try:
                check_point(params)
            except UserError as exc:
                raise UserError(f"{path}: [space] point {json.dumps(params)} is not accepted: "
                                f"{exc}")

    try:
        workload = evaluator.check_workload(_table(doc, path, "workload"), set(space))
    except UserError as exc:
        raise UserError(f"{path}: [workload] is not accepted: {exc}")

    objectives_raw = _table(doc, path, "objectives")
    if not objectives_raw:
        raise _bad(path, "[objectives]", objectives_raw,
                   f"at least one of {', '.join(evaluator.OBJECTIVES)} set to \"max\" or \"min\"")
    objectives = {}
    for oname, direction in objectives_raw.items():
        if oname not in evaluator.OBJECTIVES:
            raise _bad(path, "[objectives] name", oname,
                       f"one of {', '.join(evaluator.OBJECTIVES)} for a {kind} sweep")
        if direction not in ("max", "min"):
            raise _bad(path, f"[objectives] {oname}", direction, '"max" or "min"')
        objectives[oname] = direction

    rtl_raw = dict(_table(doc, path, "rtl"))
    spot_checks = rtl_raw.pop("spot_checks", 0)
    if isinstance(spot_checks, bool) or not isinstance(spot_checks, int) or spot_checks < 0:
        raise _bad(path, "[rtl] spot_checks", spot_checks, "a non-negative integer")
    if spot_checks > total:
        raise _bad(path, "[rtl] spot_checks", spot_checks, f"at most the {total} points of the space")
    if spot_checks and not evaluator.RTL_CHECKS:
        raise _bad(path, "[rtl] spot_checks", spot_checks,
                   f"0, as {kind} points have no RTL spot-check yet")
    seed = rtl_raw.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _bad(path, "[rtl] seed", seed, "an integer")
    try:
        rtl = evaluator.check_rtl(rtl_raw)
    except UserError as exc:
        raise UserError(f"{path}: [rtl] is not accepted: {exc}")

    plots_raw = doc.get("plots")
    if plots_raw is None:
        plots = tuple(p for p in evaluator.default_plots(set(space), set(objectives)))
    else:
        if not isinstance(plots_raw, list) or not all(isinstance(p, dict) for p in plots_raw):
            raise _bad(path, "plots", plots_raw, "an array of [[plots]] tables")
        plots = tuple(_check_plot(path, i, p, set(space), evaluator) for i, p in
                      enumerate(plots_raw))
    implement = _implementation(path, sweep, kind, evaluator, objectives, plots)
    return SweepSpec(path=path, name=name, kind=kind, description=description, space=space,
                     workload=workload, objectives=objectives, spot_checks=spot_checks,
                     rtl_seed=seed, rtl=rtl, plots=plots, implement=implement)


def _implementation(path, sweep, kind, evaluator, objectives, plots) -> "dict | None":
    """``{"device", "seed"}`` of the FPGA implementation every point gets, or None.

    ``[sweep] implement = true`` asks for it; an objective or a plot axis among the
    evaluator's ``IMPLEMENTATION_OBJECTIVES`` (time, clock, LUTs) needs it.
    """
    asked = sweep.get("implement", False)
    if not isinstance(asked, bool):
        raise _bad(path, "[sweep] implement", asked, "true or false")
    needing = set(getattr(evaluator, "IMPLEMENTATION_OBJECTIVES", ()))
    used = set(objectives) | {p.get(r) for p in plots for r in ("x", "y", "value")}
    if not (asked or needing & used):
        for key in ("device", "seed"):
            if key in sweep:
                raise _bad(path, f"[sweep] {key}", sweep[key],
                           "no value unless implement = true (it is the FPGA's)")
        return None
    if not needing:
        raise _bad(path, "[sweep] implement", asked,
                   f"false, as {kind} points have no FPGA implementation")
    device = sweep.get("device", DEFAULT_DEVICE)
    if device not in DEVICES:
        raise _bad(path, "[sweep] device", device, f"one of {', '.join(DEVICES)}")
    seed = sweep.get("seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 31:
        raise _bad(path, "[sweep] seed", seed, "an integer from 0 to 2147483647")
    return {"device": device, "seed": seed}


_PLOT_KEYS = {"pareto": {"x", "y"}, "heatmap": {"x", "y", "value", "facet"},
              "curves": {"x", "y", "along"}}
_PLOT_REQUIRED = {"pareto": {"x", "y"}, "heatmap": {"x", "y", "value"},
                  "curves": {"x", "y", "along"}}


def _check_plot(path, i, plot, params, evaluator) -> dict:
    kind = plot.get("type")
    where = f"[[plots]] #{i + 1}"
    if kind not in _PLOT_TYPES:
        raise _bad(path, f"{where} type", kind, f"one of {', '.join(_PLOT_TYPES)}")
    keys = set(plot) - {"type"}
    if not keys <= _PLOT_KEYS[kind] or not _PLOT_REQUIRED[kind] <= keys:
        raise _bad(path, f"{where} keys", sorted(keys),
                   f"{', '.join(sorted(_PLOT_REQUIRED[kind]))} (and optionally facet for a heatmap)"
                   if kind == "heatmap" else ", ".join(sorted(_PLOT_REQUIRED[kind])))
    metrics = set(evaluator.OBJECTIVES)
    roles = {"pareto": {"x": metrics, "y": metrics},
             "heatmap": {"x": params, "y": params, "value": metrics, "facet": params},
             "curves": {"x": metrics, "y": metrics, "along": params}}[kind]
    for key, allowed in roles.items():
        if key in plot and plot[key] not in allowed:
            raise _bad(path, f"{where} {key}", plot[key],
                       f"one of {', '.join(sorted(allowed)) or '(none)'}")
    return dict(plot)
