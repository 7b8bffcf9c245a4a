"""Plots of a sweep table: Pareto front, heatmap over two parameters, curves along one."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from supernode.sim.outputs import write_atomic  # noqa: E402

from .pareto import pareto_mask  # noqa: E402
from .table import candidates  # noqa: E402

__all__ = ["draw_plots"]

#: Direction assumed for an axis that is not one of the sweep's objectives.
DEFAULT_DIRECTION = {"throughput": "max", "utilisation": "max", "latency": "min",
                     "area": "min", "energy": "min", "time": "min", "clock": "max",
                     "luts": "min", "flip_flops": "min", "dsp_blocks": "min",
                     "bandwidth": "max"}


#: Front points labelled with their parameters, at most.
MAX_LABELS = 12


def _fmt(value) -> str:
    """A parameter value as a short label (``4.9e+10`` rather than ``49000000000.0``)."""
    if isinstance(value, (float, np.floating)):
        return f"{value:g}"
    return str(value)


def _save(fig, out_dir, stem) -> list:
    paths = []
    for ext in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
        paths.append(write_atomic(out_dir / f"{stem}.{ext}", buf.getvalue()))
    plt.close(fig)
    return paths


def _label(spec, objective) -> str:
    return spec.evaluator.OBJECTIVES[objective]


def _pareto(table, spec, plot, out_dir):
    xcol, ycol = _label(spec, plot["x"]), _label(spec, plot["y"])
    ok = table[candidates(table, spec)].dropna(subset=[xcol, ycol])
    if ok.empty:
        return []
    dirs = [spec.objectives.get(o, DEFAULT_DIRECTION[o]) for o in (plot["x"], plot["y"])]
    front2d = pareto_mask(ok[[xcol, ycol]].to_numpy(dtype=float), dirs)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter(ok[xcol], ok[ycol], s=18, color="0.7", label="points")
    if "pareto" in ok:
        full = ok[ok["pareto"]]
        ax.scatter(full[xcol], full[ycol], s=40, facecolors="none", edgecolors="k",
                   label=f"Pareto front ({', '.join(spec.objectives)})")
    f = ok[front2d].sort_values(xcol)
    ax.step(f[xcol], f[ycol], where="post", color="tab:orange", lw=1.5)
    ax.scatter(f[xcol], f[ycol], s=22, color="tab:orange", zorder=3,
               label=f"front of {plot['y']} vs {plot['x']}")
    varied = [p for p in spec.space if len(spec.space[p]) > 1]
    for (x, y), same in list(f.groupby([xcol, ycol], sort=True))[:MAX_LABELS]:
        text = ", ".join(f"{p}={_fmt(same.iloc[0][p])}" for p in varied)
        if len(same) > 1:
            text += f" (+{len(same) - 1} equal)"
        ax.annotate(text, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(xcol)
    ax.set_ylabel(ycol)
    ax.set_title(f"{spec.name}: {plot['y']} vs {plot['x']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out_dir, f"pareto-{plot['y']}-vs-{plot['x']}")


def _heatmap(table, spec, plot, out_dir):
    value = _label(spec, plot["value"])
    ok = table[table["status"] == "ok"].dropna(subset=[value])
    if ok.empty:
        return []
    facet = plot.get("facet")
    groups = list(ok.groupby(facet, sort=True)) if facet else [(None, ok)]
    best = "max" if spec.objectives.get(plot["value"],
                                         DEFAULT_DIRECTION[plot["value"]]) == "max" else "min"
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups) + 1, 4), squeeze=False)
    xs = sorted(ok[plot["x"]].unique())
    ys = sorted(ok[plot["y"]].unique())
    vmin, vmax = ok[value].min(), ok[value].max()
    image = None
    for ax, (name, group) in zip(axes[0], groups):
        grid = group.pivot_table(index=plot["y"], columns=plot["x"], values=value, aggfunc=best)
        grid = grid.reindex(index=ys, columns=xs)
        image = ax.imshow(grid.to_numpy(dtype=float), origin="lower", aspect="auto",
                          vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_xticks(range(len(xs)), [_fmt(x) for x in xs])
        ax.set_yticks(range(len(ys)), [_fmt(y) for y in ys])
        ax.tick_params(axis="x", labelrotation=30)
        for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.3f}" if abs(v) < 10 else f"{v:.3g}", ha="center",
                        va="center", fontsize=7,
                        color="w" if v < (vmin + vmax) / 2 else "k")
        ax.set_xlabel(plot["x"])
        ax.set_ylabel(plot["y"])
        ax.set_title(f"{facet}={_fmt(name)}" if facet else spec.name, fontsize=9)
    others = [p for p in spec.space if p not in (plot["x"], plot["y"], facet)
              and len(spec.space[p]) > 1]
    fig.colorbar(image, ax=axes[0].tolist(), label=value + (f" ({best} over {', '.join(others)})"
                                                            if others else ""))
    fig.suptitle(f"{spec.name}: {plot['value']} over {plot['y']} x {plot['x']}")
    return _save(fig, out_dir, f"heatmap-{plot['value']}-{plot['y']}-{plot['x']}")


def _curves(table, spec, plot, out_dir):
    xcol, ycol = _label(spec, plot["x"]), _label(spec, plot["y"])
    ok = table[table["status"] == "ok"].dropna(subset=[xcol, ycol])
    if ok.empty:
        return []
    along = plot["along"]
    config = [p for p in spec.space if p != along and len(spec.space[p]) > 1]
    groups = list(ok.groupby(config, sort=True)) if config else [((), ok)]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, group in groups:
        name = name if isinstance(name, tuple) else (name,)
        g = group.sort_values(along)
        label = ", ".join(f"{p}={_fmt(v)}" for p, v in zip(config, name)) or spec.name
        ax.plot(g[xcol], g[ycol], marker="o", ms=3, lw=1.2, label=label)
    ax.set_xlabel(xcol)
    ax.set_ylabel(ycol)
    ax.set_title(f"{spec.name}: {plot['y']} vs {plot['x']} along {along}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if len(groups) > 8 else 1)
    return _save(fig, out_dir, f"curves-{plot['y']}-vs-{plot['x']}")


_DRAW = {"pareto": _pareto, "heatmap": _heatmap, "curves": _curves}


def draw_plots(table, spec, out_dir) -> list:
    """Draw every plot of ``spec`` from ``table`` as PNG and SVG; return the paths."""
    files = []
    for plot in spec.plots:
        files += _DRAW[plot["type"]](table, spec, plot, out_dir)
    return files
