"""The interface description beside an exported .v, and the payload packing that reads it."""

import json
import re

import pytest

from supernode.rtl.router_params import RouterParams
from supernode.rtl.tile_params import TileParams
from supernode.sim.stream import PayloadLayout, load_interface
from supernode.cli import main


def _verilog_ports(text, module) -> dict:
    """``{name: (direction, width)}`` of the port declarations of ``module``."""
    text = text[text.index(f"module {module}("):]
    text = text[:text.index("endmodule")]
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);",
                                           text, re.M):
        ports[name] = ("in" if direction == "input" else "out", int(msb or 0) + 1)
    return ports


def _fields_tile_the_width(fields, width):
    bits = sorted((f["offset"], f["offset"] + f["width"]) for f in fields)
    assert bits[0][0] == 0 and bits[-1][1] == width
    assert all(a[1] == b[0] for a, b in zip(bits, bits[1:]))     # no gap, no overlap


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_tile_export_describes_every_port_field_and_timing_fact(tmp_path, capsys, dataflow):
    out = tmp_path / "tile.v"
    assert main(["tile", "export", "--rows", "3", "--cols", "2", "--dataflow", dataflow,
                 "--out", str(out)]) == 0
    assert f"wrote {out} and its interface description {tmp_path / 'tile.json'}" in \
        capsys.readouterr().out
    described = load_interface(out)
    verilog = _verilog_ports(out.read_text(), "systolic_tile")
    assert {p["name"]: (p["direction"], p["width"]) for p in described["ports"]} == verilog
    params = TileParams(rows=3, cols=2, dataflow=dataflow)
    assert set(described["streams"]) == {"a", "b", "c"}
    assert described["streams"]["c"]["direction"] == "out"
    for stream in described["streams"].values():
        _fields_tile_the_width(stream["fields"], stream["width"])
    a_fields = {f["name"] for f in described["streams"]["a"]["fields"]}
    assert a_fields == {"data[0]", "data[1]", "data[2]", "last"} | (
        {"accumulate", "emit"} if dataflow == "ws" else set())
    for key, fact in described["timing"].items():
        assert fact["value"] == getattr(params, key) and fact["meaning"]
    assert described["parameters"] == params.as_dict()


def test_router_export_describes_its_flit_layout_and_timing(tmp_path):
    out = tmp_path / "router.v"
    assert main(["router", "export", "--ports", "3", "--out", str(out)]) == 0
    described = json.loads(out.with_suffix(".json").read_text())
    assert {p["name"]: (p["direction"], p["width"]) for p in described["ports"]} == \
        _verilog_ports(out.read_text(), "router")
    router = RouterParams(ports=3)
    payload = next(p for p in described["ports"] if p["name"] == "inp__0__payload")
    _fields_tile_the_width(payload["fields"], payload["width"])
    assert {f["name"] for f in payload["fields"]} >= {"first", "last", "vc", "dest", "data"}
    assert described["timing"]["latency"]["value"] == router.latency
    assert described["timing"]["credit_round_trip"]["value"] == router.credit_round_trip


def test_payload_layout_round_trips_and_names_a_value_out_of_range(tmp_path):
    out = tmp_path / "tile.v"
    assert main(["tile", "export", "--rows", "2", "--cols", "2", "--dataflow", "os",
                 "--out", str(out)]) == 0
    described = load_interface(out)
    c = PayloadLayout.of_stream(described, "c")
    value = {"data": [-5, 2**31 - 1], "last": 1}
    assert c.unpack(c.pack(value)) == value
    assert c.pack({"data": [-1, 0], "last": 0}) == 2**32 - 1
    with pytest.raises(ValueError, match=r"^field data\[1\] holds -2147483648\.\.2147483647, "
                                         r"not 2147483648$"):
        c.pack({"data": [0, 2**31], "last": 0})
    with pytest.raises(ValueError, match=r"^the interface has no stream named 'd'; it has a, b, c$"):
        PayloadLayout.of_stream(described, "d")
