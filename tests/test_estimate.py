"""The estimate and compare commands, the Python API and the demo table, end to end."""

import csv
import io
import json
import subprocess
import sys

import pytest

from supernode.fabric import estimate, load_system
from supernode.fabric.system.report import demo_table
from supernode.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_python_api_from_the_package_root():
    system = load_system("cloudmatrix384")
    e = estimate(system, "deepseek-r1", phase="decode", batch=320 * 32)
    assert (e.chips, e.ranks) == (160, 320) and e.tokens_per_s > 0


def test_estimate_json_has_time_throughput_breakdown_bound_and_roofline(capsys):
    code, out, _ = run(capsys, "estimate", "--system", "cloudmatrix384", "--workload",
                       "deepseek-r1", "--phase", "decode", "--batch", "12288", "--json")
    assert code == 0
    data = json.loads(out)
    for key in ("step_s", "tokens_per_s", "tokens_per_s_per_chip", "time_per_output_token_s",
                "compute_s", "memory_s", "comm_s", "comm_exposed_s", "comm_overlapped_s",
                "bound", "utilization", "roofline_s", "roofline_bound", "blocks",
                "network_source", "extrapolation"):
        assert key in data
    assert data["batch"] == 12288 and data["chips"] == 160 and data["ranks"] == 320
    assert data["time_per_output_token_s"] == pytest.approx(
        data["step_s"] / data["tokens_per_sequence"])
    assert data["roofline_s"] <= data["step_s"]
    kinds = {op["type"] for b in data["blocks"] for op in b["ops"]}
    assert kinds == {"gemm", "comm"}


def test_estimate_text_shows_breakdown_and_extrapolation(capsys):
    code, out, _ = run(capsys, "estimate", "--system", "gb200-nvl72", "--workload",
                       "llama3-70b", "--phase", "prefill", "--seq-len", "2048")
    assert code == 0
    for words in ("step time", "Per layer kind", "Roofline beside", "Collectives",
                  "Network figures:", "all-reduce (tp)"):
        assert words in out
    # Tensor-parallel groups of 8 fit the 32-endpoint Clos modelled for the NVL72.
    assert "Extrapolation:" not in out and "extrapolated" not in out
    # Expert parallelism over all 72 GPUs does not: the carry-over is stated.
    code, out, _ = run(capsys, "estimate", "--system", "gb200-nvl72", "--workload",
                       "deepseek-r1", "--phase", "decode")
    assert code == 0 and "Extrapolation: " in out and "extrapolated" in out
    # CloudMatrix 384's model is a whole UB sub-plane: nothing is carried over.
    code, out, _ = run(capsys, "estimate", "--system", "cloudmatrix384", "--workload",
                       "deepseek-r1", "--phase", "decode")
    assert code == 0 and "768-endpoint folded Clos" in out
    assert "Extrapolation:" not in out and "extrapolated" not in out


def test_estimate_with_a_mapping_file_and_overrides(capsys, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('name = "mine"\ndescription = "x"\n[parallel]\ntp = 4\nep = 1\n'
                       'dp = 2\npp = 1\n[tier]\ntp = "supernode"\n')
    code, out, _ = run(capsys, "estimate", "--system", "cloudmatrix384", "--workload",
                       "llama3-70b", "--mapping", str(mapping), "--dp", "4", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mapping"] == "mine" and data["ranks"] == 16 and data["chips"] == 8
    tiers = {op["tier"] for b in data["blocks"] for op in b["ops"] if op["type"] == "comm"}
    assert tiers == {"supernode"}


def test_estimate_gemm_and_collective_workloads(capsys):
    code, out, _ = run(capsys, "estimate", "--workload", "gemm:4096x7168x2048:int8", "--json")
    assert code == 0 and json.loads(out)["flops"] == 2 * 4096 * 7168 * 2048
    code, out, _ = run(capsys, "estimate", "--system", "gb200-nvl72", "--workload",
                       "all_to_all:16MB:72", "--json")
    data = json.loads(out)
    assert code == 0 and data["bound"] == "fabric" and data["comm_s"] > 0


@pytest.mark.parametrize("argv, words", [
    (["estimate", "--system", "cm999"], ["unknown hardware 'cm999'", "cloudmatrix384"]),
    (["estimate", "--workload", "gpt5"], ["unknown workload 'gpt5'", "deepseek-r1"]),
    (["estimate", "--precision", "fp8"], ["'fp8' is not supported by ascend-910c", "int8"]),
    (["estimate", "--batch", "0"], ["--batch", "expected a positive integer, not '0'"]),
    (["estimate", "--tp", "8", "--dp", "384", "--workload", "llama3-70b"],
     ["3072 ranks (1536 packages)", "768 ranks (384 packages)"]),
    (["estimate", "--workload", "gemm:12x34"], ["gemm:MxKxN"]),
    (["estimate", "--workload", "all_reduce:1MB:1"], ["at least 2 packages"]),
    (["estimate", "--workload", "gemm:8x8x8", "--batch", "4"], ["--batch applies to LLM"]),
    (["compare", "cloudmatrix384"], ["at least two systems"]),
    (["compare", "cloudmatrix384", "gb200-nvl72", "--plot", "x.svg"], ["must name a .png"]),
    (["compare", "cloudmatrix384", "gb200-nvl72", "--plot", "/nonexistent/x.png"],
     ["does not exist"]),
])
def test_bad_arguments_exit_2_with_one_sentence(capsys, argv, words):
    try:
        code = main(argv)
    except SystemExit as exc:                     # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


def test_bad_system_file_exits_2_through_the_installed_command(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "system"\nname = "x"\n')
    proc = subprocess.run([sys.executable, "-m", "supernode", "estimate", "--system", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "bad.toml" in proc.stderr and "missing key 'description'" in proc.stderr


def test_compare_prints_both_tables_with_ratio_and_sources(capsys):
    code, out, _ = run(capsys, "compare", "cloudmatrix384", "gb200-nvl72", "--workload",
                       "deepseek-r1", "--phase", "decode")
    assert code == 0
    for words in ("System level:", "Workload level", "cloudmatrix384/gb200-nvl72",
                  "BF16 dense", "HBM capacity", "scale-up bandwidth", "power (all-in)",
                  "BF16 per watt", "time per output token", "fabric exposed",
                  "Sources for cloudmatrix384", "Sources for gb200-nvl72", "ASSUMPTION",
                  "[P] SemiAnalysis"):
        assert words in out
    assert "49.2" in out and "1,228.8" in out and "576.0" in out


def test_compare_json_csv_and_plot(capsys, tmp_path):
    plot = tmp_path / "roof.png"
    code, out, _ = run(capsys, "compare", "cloudmatrix384", "gb200-nvl72", "--workload",
                       "deepseek-r1", "--phase", "decode", "--json", "--plot", str(plot))
    assert code == 0
    data = json.loads(out)
    rows = {r["quantity"]: r for r in data["system_table"]}
    assert rows["HBM capacity"]["ratio"] == pytest.approx(49.152 / 13.824)
    assert data["plot"] == str(plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "core.clock_hz" in data["sources"]["cloudmatrix384"]
    code, out, _ = run(capsys, "compare", "cloudmatrix384", "gb200-nvl72", "--workload",
                       "llama3-70b", "--phase", "prefill", "--csv")
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["table", "quantity", "unit", "cloudmatrix384", "gb200-nvl72", "ratio",
                        "note"]
    assert {row[0] for row in table[1:]} == {"system", "workload"}


def test_a_failed_plot_leaves_an_older_file_untouched(capsys, tmp_path, monkeypatch):
    plot = tmp_path / "roof.png"
    plot.write_bytes(b"older")

    def broken(*args, **kwargs):
        raise ValueError("plot failed on purpose")
    # Patched where the command looks it up: it imports the function by name.
    monkeypatch.setattr("supernode.commands.estimate.roofline_plot", broken)
    code, _, err = run(capsys, "compare", "cloudmatrix384", "gb200-nvl72", "--workload",
                       "deepseek-r1", "--phase", "decode", "--plot", str(plot))
    # A plotter that breaks is an internal error (3), not bad input; the old file stays.
    assert code == 3 and "internal error: ValueError: plot failed on purpose" in err
    assert plot.read_bytes() == b"older"


def test_demo_table_tells_the_story():
    out = io.StringIO()
    demo_table(out)
    text = out.getvalue()
    assert "RTL-checked cycle model" in text
    assert "NO" not in text.split()                 # every derived figure matches
    assert "time per output token" in text and "cloudmatrix384/gb200-nvl72" in text


def test_gemm_and_collective_reports_speak_of_flops_and_bandwidth(capsys):
    code, out, _ = run(capsys, "estimate", "--workload", "gemm:4096x4096x4096",
                       "--precision", "int8")
    assert code == 0 and "TFLOP/s" in out and "tokens/s" not in out and "(int8)" in out
    code, out, _ = run(capsys, "estimate", "--workload", "all_reduce:64MB:384")
    assert code == 0 and "algorithm bandwidth" in out and "tier supernode" in out


def test_expert_placement_is_a_command_line_choice(capsys):
    def busiest(*extra):
        code, out, _ = run(capsys, "estimate", "--system", "cloudmatrix384", "--workload",
                           "deepseek-r1", "--phase", "prefill", "--batch", "64", "--json",
                           *extra)
        assert code == 0
        data = json.loads(out)
        note = next(n for n in data["notes"] if n.startswith("MoE:"))
        return float(note.split("busiest rank ")[1].split(" x")[0]), note, data["step_s"]
    index, index_note, index_s = busiest("--expert-placement", "index")
    load, load_note, load_s = busiest("--expert-placement", "load")
    perfect, perfect_note, perfect_s = busiest("--expert-placement", "perfect")
    assert "in index order" in index_note and "placed by load" in load_note
    assert "every copy equally loaded" in perfect_note and perfect == 1.0
    assert index > load > perfect and index_s > load_s > perfect_s
    with pytest.raises(SystemExit) as exit_:
        main(["estimate", "--expert-placement", "best"])
    assert exit_.value.code == 2 and "invalid choice: 'best'" in capsys.readouterr().err
