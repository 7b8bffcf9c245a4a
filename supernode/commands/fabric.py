"""``supernode fabric``: traffic on the two-tier Clos RTL beside the network model."""

from .router import (add_router_params, add_traffic_params, sim_command, sweep_command,
                     _load_list)


def register(subparsers):
    fabric = subparsers.add_parser("fabric", help="the two-tier Clos switch fabric")
    sub = fabric.add_subparsers(dest="fabric_command", required=True)
    for name, helptext in (("sim", "run traffic on the Clos RTL and the model, compare them"),
                           ("sweep", "latency against offered load on the Clos")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--endpoints-per-leaf", type=int, default=4,
                       help="endpoints on each leaf switch (default 4)")
        p.add_argument("--leaves", type=int, default=4, help="leaf switches (default 4)")
        p.add_argument("--spines", type=int, default=2, help="spine switches (default 2)")
        p.add_argument("--up-routing", default="deterministic",
                       help="deterministic (spine = dest mod spines) or balanced "
                            "(per-packet round-robin)")
        add_router_params(p, ports=False)
        add_traffic_params(p, pattern="all_to_all")
        if name == "sim":
            p.add_argument("--load", type=float, default=0.3,
                           help="offered load, flits/cycle/endpoint (default 0.3)")
            p.add_argument("--waves", action="store_true", help="write a waveform (FST)")
            p.set_defaults(func=sim_command, design="clos")
        else:
            p.add_argument("--loads", type=_load_list, default=None,
                           help="comma-separated offered loads (default 0.1,...,1.0)")
            p.add_argument("--model-only", action="store_true", help="skip the RTL runs")
            p.add_argument("--plot", help="write the latency-load plot to this PNG")
            p.set_defaults(func=sweep_command, design="clos")
        p.add_argument("--json", action="store_true", help="print one JSON object")
