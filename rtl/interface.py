"""A JSON description of an exported component: ports, payload bit layouts, streams, timing.

Written beside the Verilog by ``supernode tile export`` and ``supernode router export`` so
that a bench in any language can drive the module without reading the Amaranth source:
every port with its Verilog name, direction and width; every payload's fields with their
bit offsets; the valid/ready streams; and the timing facts the component publishes
(latencies, intervals). Amaranth's own ``Component.metadata`` is included as it is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from typing import TYPE_CHECKING, Any

from amaranth.hdl import Shape, ShapeCastable, ShapeLike
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

if TYPE_CHECKING:
    from .router import Router
    from .tile import SystolicTile

__all__ = ["SCHEMA", "describe", "layout_fields", "write_interface", "interface_path",
           "tile_interface", "router_interface"]

#: Changes when the file's structure does.
SCHEMA = "supernode-interface/1"

#: The contract every valid/ready stream of the project keeps (docs/verification.md).
STREAM_RULES = [
    "a beat moves on a rising clock edge where valid and ready are both high",
    "valid never depends on ready in the same cycle",
    "a beat once valid stays valid, its payload unchanged, until it is taken",
]


def layout_fields(shape: ShapeLike) -> list[dict[str, Any]]:
    """The leaf fields of a payload shape, lowest bit first.

    Each is ``{"name": "data[1]", "path": ["data", 1], "offset": 8, "width": 8,
    "signed": true}``; a plain shape is one field named ``""``.
    """
    out = []

    def walk(shape, path, offset):
        if isinstance(shape, data.StructLayout):
            for name, field in shape:
                walk(field.shape, path + [name], offset + field.offset)
        elif isinstance(shape, data.ArrayLayout):
            width = Shape.cast(shape.elem_shape).width
            for index in range(shape.length):
                walk(shape.elem_shape, path + [index], offset + index * width)
        else:
            cast = Shape.cast(shape)
            name = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p)
                           for i, p in enumerate(path))
            out.append({"name": name, "path": path, "offset": offset, "width": cast.width,
                        "signed": cast.signed})

    walk(shape, [], 0)
    return out


def _port_name(path) -> str:
    return "__".join(str(part) for part in path)


def describe(component: wiring.Component, *, name: str, parameters: dict, timing: dict,
             clock: str = "clk", reset: str = "rst") -> dict:
    """The interface description of ``component`` exported as Verilog module ``name``.

    ``parameters`` are the values it was built with; ``timing`` the timing facts it
    publishes, each ``{"value": ..., "meaning": "..."}``.
    """
    ports: list[dict[str, Any]] = [
        {"name": clock, "direction": "in", "width": 1, "meaning": "clock, rising edge"},
        {"name": reset, "direction": "in", "width": 1,
         "meaning": "synchronous reset, active high"},
    ]
    by_name = {}
    for path, member, _ in component.signature.flatten(component):
        shape = member.shape
        port = {"name": _port_name(path), "direction": "in" if member.flow == In else "out",
                "width": Shape.cast(shape).width}
        if isinstance(shape, ShapeCastable) and not isinstance(shape, Shape):
            port["fields"] = layout_fields(shape)
        ports.append(port)
        by_name[port["name"]] = port
    streams = {}
    for port in ports:
        if not port["name"].endswith("__valid"):
            continue
        base = port["name"][:-len("__valid")]
        ready, payload = by_name.get(f"{base}__ready"), by_name.get(f"{base}__payload")
        if ready is None or payload is None:
            continue
        streams[base] = {
            "direction": port["direction"], "valid": port["name"], "ready": ready["name"],
            "payload": payload["name"], "width": payload["width"],
            "fields": payload.get("fields", layout_fields(payload["width"])),
        }
    return {
        "schema": SCHEMA, "module": name, "clock": clock, "reset": reset,
        "parameters": parameters, "ports": ports, "streams": streams,
        "stream_rules": STREAM_RULES if streams else [], "timing": timing,
        "amaranth_metadata": component.metadata.as_json(),
    }


def interface_path(verilog_path: str | os.PathLike[str]) -> Path:
    """Where the description of ``tile.v`` goes: ``tile.json`` beside it."""
    return Path(verilog_path).with_suffix(".json")


def write_interface(description: dict, verilog_path: str | os.PathLike[str]) -> Path:
    """Write ``description`` beside ``verilog_path`` atomically; return its path."""
    out = interface_path(verilog_path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(description, indent=1, default=str) + "\n")
    os.replace(tmp, out)
    return out


def _facts(source, meanings: dict) -> dict:
    return {key: {"value": getattr(source, key), "meaning": text}
            for key, text in meanings.items()}


#: The tile's published timing (supernode.rtl.tile_params.TileParams), in the words of its docstring.
TILE_TIMING = {
    "stages": "advancing cycles from accepting an operand beat to writing the last result "
              "row it completes into the result queue",
    "fill_latency": "cycles from accepting an operand beat to offering the first result it "
                    "completes (os: from a fold's last beat to its first result row; ws: from "
                    "an emitting a beat to its result row)",
    "drain_latency": "cycles from accepting a fold's final beat to offering its final result row",
    "fold_interval": "os: fewest cycles between the last beats of consecutive folds",
    "weight_release_latency": "ws: cycles from a fold's last a beat to its weight bank being free",
    "peak_macs_per_cycle": "multiply-accumulates per cycle with every cell busy",
    "result_queue_depth": "entries of the result queue; c.ready low for longer stalls the array",
}

#: The router's published timing (supernode.rtl.router_params.RouterParams).
ROUTER_TIMING = {
    "latency": "zero-load cycles from a flit valid on an input to valid on an output",
    "credit_round_trip": "cycles from spending a credit to being able to spend it again",
}


def tile_interface(tile: SystolicTile, *, name: str) -> dict:
    """The description of a :class:`~supernode.rtl.tile.SystolicTile` exported as module ``name``."""
    params = tile.params
    description = describe(tile, name=name, parameters=params.as_dict(),
                           timing=_facts(params, TILE_TIMING))
    description["operands"] = (
        "a GEMM is cut into folds (supernode.fabric.tile_model.fold_schedule); "
        + ("os: each fold streams k beats on a (a column of A, rows values) paired with k "
           "beats on b (a row of B, cols values), last on the fold's final beat; c carries "
           "the fold's rows result rows, last on the final one"
           if params.dataflow == "os" else
           "ws: each fold loads rows beats of weights on b (rows of B, cols values), then "
           "streams beats on a (a row of A over the fold's k range); accumulate adds the kept "
           "partial sums, emit sends the row to c, last ends the fold"))
    return description


def router_interface(router: Router, *, name: str) -> dict:
    """The description of a :class:`~supernode.rtl.router.Router` exported as module ``name``."""
    return describe(router, name=name, parameters=router.params.as_dict(),
                    timing=_facts(router.params, ROUTER_TIMING))
