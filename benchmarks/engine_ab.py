"""The compiled engine against another revision of its own source: CPU seconds per run of the same traffic, the two runs interleaved in one process.

The machine is shared, so two benchmark processes run minutes apart see different loads;
interleaving the two engines run by run puts them under the same load. The other revision's
``fabric/network/engine.py`` is loaded beside this checkout's (as
``supernode.fabric.network.engine_<rev>``, with this checkout's traffic, model and checks), so it must
fit them: a revision near this one.
"""

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from supernode.fabric.network import engine                           # noqa: E402
from supernode.fabric.network.traffic import TrafficSpec               # noqa: E402
from router_speed import DESIGNS, LARGE                      # noqa: E402


def _load_revision(rev, where):
    """``fabric/network/engine.py`` at git revision ``rev``, imported as a sibling module."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:fabric/network/engine.py"],
                            check=True, capture_output=True, text=True).stdout
    name = "engine_" + "".join(c if c.isalnum() else "_" for c in rev)
    path = Path(where) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"supernode.fabric.network.{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD",
                    help="git revision of the engine to compare with (default HEAD)")
    ap.add_argument("--rounds", type=int, default=15,
                    help="runs of each engine per design, interleaved (default 15)")
    ap.add_argument("--measure", type=int, default=4000)
    args = ap.parse_args(argv)
    spec = TrafficSpec(pattern="uniform", load=0.5, packet_length=4, warmup=200,
                       measure=args.measure, seed=5)
    with tempfile.TemporaryDirectory() as where:
        engines = {args.rev: _load_revision(args.rev, where), "this checkout": engine}
        print(f"uniform traffic, 4-flit packets, offered load 0.5, {spec.measure} measured "
              f"cycles; CPU ms per run over {args.rounds} interleaved runs (min / median)")
        print(f"{'design':36} " + " ".join(f"{label:>22}" for label in engines) +
              f" {'this / rev':>12}")
        for label, design in {**DESIGNS, **LARGE}.items():
            results = {name: e.simulate(design.model(), design.endpoints(spec))
                       for name, e in engines.items()}     # first calls: compile or load
            first, second = results.values()
            assert first == second, f"the two engines disagree on {label}"
            seconds = {name: [] for name in engines}
            for round_ in range(args.rounds):
                # Each engine goes first in every other round: the second run of a round
                # pays for the first's garbage, which would otherwise fall on one side.
                order = list(engines.items())
                for name, e in (order if round_ % 2 == 0 else order[::-1]):
                    eps, net = design.endpoints(spec), design.model()
                    start = time.process_time()
                    e.simulate(net, eps)
                    seconds[name].append(time.process_time() - start)
            lows = [min(s) for s in seconds.values()]
            print(f"{label:36} " + " ".join(
                f"{min(s) * 1e3:>10.1f} / {statistics.median(s) * 1e3:>9.1f}"
                for s in seconds.values()) + f" {lows[1] / lows[0]:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
