"""``supernode demo``: the whole story, from the tile's RTL up."""

import io
import json
import time

from supernode.fabric.system import demo_table
from supernode.fabric.tile_model import reference_gemm
from supernode.sim.tile.run import random_operands, run_gemm


def register(subparsers):
    demo = subparsers.add_parser("demo", help="the whole story: the tile RTL on both "
                                 "simulators, its cycle model, the chip, the 384-NPU supernode "
                                 "and the comparison with the GB200 NVL72")
    demo.add_argument("--json", action="store_true",
                      help="print one JSON object: each RTL run, and the system report as text")
    demo.set_defaults(func=demo_command)


#: (simulator, rows, cols, dataflow, m, k, n): GEMM shapes that are not multiples of the
#: array, both dataflows, both simulators.
DEMO_GEMMS = [("icarus", 4, 4, "os", 10, 24, 9), ("icarus", 4, 4, "ws", 10, 24, 9),
              ("verilator", 4, 4, "os", 10, 24, 9)]


def demo_command(args):
    say = (lambda *a, **k: None) if args.json else print
    say("Systolic tile on the RTL: every result checked bit for bit against numpy,")
    say("measured cycles against the cycle model (supernode.fabric.tile_model).\n")
    header = (f"{'sim':<10} {'tile':<8} {'flow':<5} {'GEMM':<10} {'exact':<6} "
              f"{'measured':>9} {'model':>7} {'util':>6} {'wall':>6}")
    say(header)
    say("-" * len(header))
    ok = True
    runs = []
    for sim, rows, cols, dataflow, m, k, n in DEMO_GEMMS:
        params = {"rows": rows, "cols": cols, "dataflow": dataflow}
        A, B = random_operands(m, k, n, in_width=8, signed=True, seed=7)
        start = time.monotonic()
        run = run_gemm(params, A, B, sim=sim)
        exact = bool((run.C == reference_gemm(A, B, acc_width=32, signed=True)).all())
        match = run.measured_cycles == run.model.total_cycles
        ok &= exact and match
        wall = time.monotonic() - start
        runs.append({"sim": sim, **params, "m": m, "k": k, "n": n, "exact": exact,
                     "measured_cycles": run.measured_cycles,
                     "model_cycles": run.model.total_cycles,
                     "utilization": run.utilization, "wall_s": round(wall, 3)})
        say(f"{sim:<10} {f'{rows}x{cols}':<8} {dataflow:<5} {f'{m}x{k}x{n}':<10} "
            f"{'yes' if exact else 'NO':<6} {run.measured_cycles:>9} "
            f"{run.model.total_cycles:>7} {run.utilization:>6.2f} "
            f"{wall:>5.1f}s", flush=True)
    if args.json:
        report = io.StringIO()
        if ok:
            demo_table(report)
        print(json.dumps({"passed": ok, "rtl_runs": runs, "report": report.getvalue()}))
        return 0 if ok else 1
    if not ok:
        print("\nMISMATCH between the RTL and the cycle model: see above")
        return 1
    print("\nMeasured cycles equal the model's, so the model carries the tile upwards.\n")

    demo_table()
    return 0
