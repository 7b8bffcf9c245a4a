"""Serving under a latency limit: the SLO search, its command line and its refusals."""

import json

import pytest

from supernode.fabric.system import load_system
from supernode.fabric.system.slo import latency_of, slo_search
from supernode.rtl.errors import UserError
from supernode.cli import main


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:                     # argparse's own errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cm384():
    return load_system("cloudmatrix384")


def test_the_search_finds_the_largest_batch_within_the_limit(cm384):
    result = slo_search(cm384, "deepseek-r1", phase="decode", limit_s=0.05)
    best = result.best
    assert latency_of(best) <= 0.05
    per_rank = best.batch // best.ranks
    # The next batch up misses the limit or does not fit, and nothing within the limit
    # gives more throughput.
    within = [p for p in result.curve if p.fits and p.latency_s <= 0.05]
    assert max(p.batch_per_rank for p in within) == per_rank
    assert best.tokens_per_s_per_chip >= 0.95 * max(p.tokens_per_s_per_chip for p in within)
    over = [p for p in result.curve if p.batch_per_rank == per_rank + 1]
    assert not over or over[0].latency_s > 0.05 or not over[0].fits
    tighter = slo_search(cm384, "deepseek-r1", phase="decode", limit_s=0.03)
    assert tighter.best.batch < best.batch


def test_prefill_searches_the_time_to_first_token(cm384):
    result = slo_search(cm384, "deepseek-r1", phase="prefill", limit_s=2.0, seq_len=2048)
    assert result.best.step_s <= 2.0 and result.best.phase == "prefill"


def test_an_unreachable_limit_is_one_sentence(cm384):
    with pytest.raises(UserError, match="no batch meets the time per output token limit of "
                                        "1 ms on cloudmatrix384"):
        slo_search(cm384, "deepseek-r1", phase="decode", limit_s=0.001)
    with pytest.raises(UserError, match="latency limit must be a positive time"):
        slo_search(cm384, "deepseek-r1", phase="decode", limit_s=-1)


@pytest.mark.parametrize("system", ["cloudmatrix384", "gb200-nvl72"])
def test_tpot_slo_command_returns_batch_time_and_throughput(capsys, system):
    code, out, _ = run(capsys, "estimate", "--system", system, "--workload", "deepseek-r1",
                       "--phase", "decode", "--tpot-slo", "50ms", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["batch_per_rank"] >= 1 and data["limit_s"] == pytest.approx(0.05)
    assert data["best"]["time_per_output_token_s"] <= 0.05
    assert data["best"]["tokens_per_s_per_chip"] > 0
    assert len(data["curve"]) > 5


def test_ttft_slo_command_and_its_plot(capsys, tmp_path):
    plot = tmp_path / "curve.png"
    code, out, _ = run(capsys, "estimate", "--system", "gb200-nvl72", "--phase", "prefill",
                       "--ttft-slo", "1.5s", "--seq-len", "2048", "--plot", str(plot))
    assert code == 0
    assert "Largest throughput with time to first token <= 1500 ms" in out
    assert "<- chosen" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, words", [
    (["--tpot-slo", "1ms"], ["no batch meets the time per output token limit of 1 ms"]),
    (["--tpot-slo", "50 parsecs"], ["--tpot-slo '50 parsecs' is not a positive time"]),
    (["--tpot-slo=-5ms"], ["is not a positive time"]),
    (["--phase", "prefill", "--tpot-slo", "50ms"], ["--tpot-slo bounds the time per output"]),
    (["--phase", "decode", "--ttft-slo", "2s"], ["--ttft-slo bounds the time to first"]),
    (["--plot", "x.png"], ["--plot draws the curve an SLO search makes"]),
    (["--tpot-slo", "50ms", "--batch", "8"], ["--batch and an SLO both set the batch"]),
    (["--batch", "1000000"], ["do not fit the", "accepted: a smaller batch"]),
    (["--dp", "1000"], ["1000 ranks (500 packages) but cloudmatrix384 has 768 ranks"]),
    (["--expert-precision", "fp4"], ["precision 'fp4' is not supported by ascend-910c",
                                     "accepted: bf16, int8"]),
    (["--mtp-acceptance", "1.5"], ["mtp_acceptance = 1.5 must be a fraction from 0 to 1"]),
    (["--workload", "gemm:8x8x8", "--tpot-slo", "50ms"], ["--tpot-slo applies to LLM"]),
])
def test_bad_estimate_arguments_exit_2_with_one_sentence(capsys, argv, words):
    code, _, err = run(capsys, "estimate", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err


def test_a_failed_plot_leaves_no_file(capsys, tmp_path):
    target = tmp_path / "kept.png"
    target.write_bytes(b"older")
    code, _, err = run(capsys, "estimate", "--tpot-slo", "1ms", "--plot", str(target))
    assert code == 2 and target.read_bytes() == b"older"
    assert not list(tmp_path.glob("*.tmp.png"))
