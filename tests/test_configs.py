"""Hardware, workload and mapping files: shipped files load and carry sources; bad files fail in one sentence."""

import tomllib

import pytest

from supernode.fabric.system.config import CONFIG_DIR, parse_quantity
from supernode.fabric.system.hardware import load_chip, load_system
from supernode.fabric.system.mapping import load_mapping
from supernode.fabric.system.workload import load_workload
from supernode.rtl.errors import UserError

HARDWARE = sorted(p.stem for p in (CONFIG_DIR / "hardware").glob("*.toml"))
WORKLOADS = sorted(p.stem for p in (CONFIG_DIR / "workloads").glob("*.toml"))
MAPPINGS = sorted(p.stem for p in (CONFIG_DIR / "mappings").glob("*.toml"))
TAGS = ("[P]", "[P*]", "[S]", "[D]")


def _load_hardware(name):
    path = CONFIG_DIR / "hardware" / f"{name}.toml"
    kind = tomllib.loads(path.read_text())["kind"]
    return load_chip(path) if kind == "chip" else load_system(path)


def test_required_files_are_shipped():
    assert {"ascend-910c", "b200", "cloudmatrix384", "gb200-nvl72"} <= set(HARDWARE)
    assert {"deepseek-r1", "llama3-70b"} <= set(WORKLOADS)


@pytest.mark.parametrize("name", HARDWARE)
def test_hardware_loads(name):
    assert _load_hardware(name).name == name


@pytest.mark.parametrize("name", WORKLOADS)
def test_workload_loads(name):
    assert load_workload(name).name == name


@pytest.mark.parametrize("name", MAPPINGS)
def test_mapping_loads(name):
    assert load_mapping(name).name == name


def _sourced_leaves(table, prefix=""):
    """Every ``{value, source|assumption}`` entry and every bare number of a TOML tree."""
    for key, value in table.items():
        where = f"{prefix}{key}"
        if isinstance(value, dict) and "value" in value:
            yield where, value
        elif isinstance(value, dict):
            yield from _sourced_leaves(value, where + ".")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _sourced_leaves(item, f"{where}[{i}].")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield where, value


@pytest.mark.parametrize("name", HARDWARE)
def test_every_hardware_number_names_its_source_or_is_an_assumption(name):
    data = tomllib.loads((CONFIG_DIR / "hardware" / f"{name}.toml").read_text())
    leaves = list(_sourced_leaves(data))
    assert leaves
    for where, entry in leaves:
        assert isinstance(entry, dict), f"{name}: {where} is a bare number with no source"
        if "assumption" in entry:
            assert entry["assumption"].strip(), where
            continue
        assert any(tag in entry["source"] for tag in TAGS), (
            f"{name}: {where} source {entry['source']!r} carries no reference tag")


@pytest.mark.parametrize("name", WORKLOADS)
def test_every_model_fact_cites_the_model_card_or_paper(name):
    data = tomllib.loads((CONFIG_DIR / "workloads" / f"{name}.toml").read_text())
    for key, entry in data["model"].items():
        assert isinstance(entry, dict) and entry.get("source"), f"{name}: {key} has no source"
        assert ("arXiv" in entry["source"] or "config.json" in entry["source"]
                or "model card" in entry["source"]), (name, key)


def test_unassumed_hardware_is_marked_as_assumption():
    chip = load_chip("ascend-910c")
    assert chip.core.sources["clock_hz"].assumption          # 910C clock is not published
    assert not chip.sources["hbm_bandwidth_bytes_per_s"].assumption
    system = load_system("cloudmatrix384")
    assert system.sources["switch_clock_hz"].assumption      # the brief: an assumption


@pytest.mark.parametrize("text, key, expected", [
    ("3.2 TB/s", "hbm_bandwidth_bytes_per_s", 3.2e12),
    ("400 Gbps", "scale_out_bandwidth_bytes_per_s", 50e9),
    ("128 GB", "hbm_capacity_bytes", 128e9),
    ("512 KiB", "local_buffer_bytes", 512 * 1024),
    ("1.9124 GHz", "clock_hz", 1.9124e9),
    ("559 kW", "power_w", 559e3),
    ("752 TFLOPS", "bf16_dense_flops", 752e12),
    ("1.2 us", "endpoint_latency_ns", 1200.0),
    ("16", "tiles_per_core", 16.0),
])
def test_quantities_convert_to_the_unit_of_the_key(text, key, expected):
    assert parse_quantity(text, key, "here") == pytest.approx(expected)


@pytest.mark.parametrize("text, key, expected", [
    ("400 Gb/s", "scale_out_bandwidth_bytes_per_s", 50e9),       # bits, not bytes
    ("400 GB/s", "scale_out_bandwidth_bytes_per_s", 400e9),
    ("1 mW", "power_w", 1e-3),                                    # milli, not mega
    ("1 MW", "power_w", 1e6),
    ("1 kB", "local_buffer_bytes", 1e3),
    ("1 KiB", "local_buffer_bytes", 1024.0),
])
def test_units_are_case_sensitive_bits_and_bytes_apart(text, key, expected):
    assert parse_quantity(text, key, "here") == pytest.approx(expected)


@pytest.mark.parametrize("text, key, words", [
    ("256 KB", "local_buffer_bytes", ["unit 'KB'", "accepted: B, kB"]),
    ("3.2 tb/s", "hbm_bandwidth_bytes_per_s", ["unit 'tb/s'", "case-sensitive: did you mean "
                                                              "TB/s or Tb/s?"]),
    ("1 ghz", "clock_hz", ["did you mean GHz?"]),
    ("5 furlongs", "clock_hz", ["not a unit of hertz"]),
])
def test_ambiguous_or_miscased_units_are_refused(text, key, words):
    with pytest.raises(UserError) as info:
        parse_quantity(text, key, "here")
    for word in words:
        assert word in str(info.value)


# --- bad files -------------------------------------------------------------------------

def _copy_system(tmp_path, edit_system=None, edit_chip=None):
    """A copy of cloudmatrix384 + ascend-910c in ``tmp_path``, optionally edited."""
    chip_text = (CONFIG_DIR / "hardware" / "ascend-910c.toml").read_text()
    sys_text = (CONFIG_DIR / "hardware" / "cloudmatrix384.toml").read_text()
    sys_text = sys_text.replace('chip = "ascend-910c"', 'chip = "my-chip.toml"')
    if edit_chip:
        chip_text = edit_chip(chip_text)
    if edit_system:
        sys_text = edit_system(sys_text)
    (tmp_path / "my-chip.toml").write_text(chip_text)
    path = tmp_path / "my-system.toml"
    path.write_text(sys_text)
    return path


def test_a_copied_and_edited_system_loads(tmp_path):
    path = _copy_system(tmp_path, edit_chip=lambda t: t.replace(
        'clock_hz = { value = "1.9124 GHz"', 'clock_hz = { value = "0.9562 GHz"'))
    system = load_system(path)
    assert system.chip.peak_flops() == pytest.approx(376e12, rel=1e-3)


BAD_CHIP = [
    # (edit, words the error must contain)
    (lambda t: t.replace("dies = {", "dice = {"), ["missing key 'dies'", "'dice' a misspelling"]),
    (lambda t: t.replace('hbm_capacity_bytes = { value = "128 GB"', 'hbm_capacity_bytes = { value = "128 GHz"'),
     ["hbm_capacity_bytes", "128 GHz", "not a unit of bytes"]),
    (lambda t: t.replace("cores_per_die = { value = 24", "cores_per_die = { value = -24"),
     ["cores_per_die", "-24", "greater than 0"]),
    (lambda t: t.replace("cores_per_die = { value = 24", "cores_per_die = { value = 24.5"),
     ["cores_per_die", "24.5", "whole number"]),
    (lambda t: t.replace('dies = { value = 2, source = "[P*] paper section 3; [S] The Register" }', "dies = 2"),
     ["dies", "source"]),
    (lambda t: t.replace('tile_dataflow = { value = "os"', 'tile_dataflow = { value = "rs"'),
     ["tile_dataflow", "'rs'", "os, ws"]),
    (lambda t: t.replace('int8 = { value = 2', 'int4 = { value = 2'), ["int4", "bf16, fp8, int8"]),
    (lambda t: t.replace('hbm_bandwidth_bytes_per_s = { value = "3.2 TB/s", source',
                         'hbm_bandwidth_bytes_per_s = { value = "3.2 TB/s", assumption = "x", source'),
     ["hbm_bandwidth_bytes_per_s", "exactly one"]),
    (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("hbm_capacity_bytes")),
     ["missing key", "hbm_capacity_bytes"]),
    (lambda t: t + "\n[chip\n", ["not valid TOML"]),
    (lambda t: t.replace("[chip]", "[chip]\ncolour = 3"), ["unknown key 'colour'"]),
]


@pytest.mark.parametrize("edit, words", BAD_CHIP)
def test_bad_chip_file_is_one_sentence_naming_file_key_and_value(tmp_path, edit, words):
    path = _copy_system(tmp_path, edit_chip=edit)
    with pytest.raises(UserError) as info:
        load_system(path)
    message = str(info.value)
    assert "my-chip.toml" in message
    assert "\n" not in message
    for word in words:
        assert word in message


BAD_SYSTEM = [
    (lambda t: t.replace('power_w = { value = "559 kW"', 'power_w = { value = "559 kB"'),
     ["power_w", "559 kB", "watts"]),
    (lambda t: t.replace("name = \"supernode\"\nplane = \"ub\"\nspan_chips = { value = 384",
                         "name = \"supernode\"\nplane = \"ub\"\nspan_chips = { value = 4"),
     ["span_chips", "larger"]),
    (lambda t: t.replace("nodes = { value = 48", "nodes = { value = 96"),
     ["must span all 768"]),
    (lambda t: t.replace('kind = "system"', 'kind = "chip"'), ["describes a chip"]),
    (lambda t: t.replace("oversubscription = { value = 1, source = \"[P*] paper: non-blocking",
                         "oversubscription = { value = 0.5, source = \"[P*] paper: non-blocking"),
     ["oversubscription", "0.5", "at least 1"]),
    (lambda t: t.replace("ep = { value = 32,", "ep = { value = 12,", 1),
     ["[moe.bulk, row 3]", "ep = 12", "larger than", "16", "growing group size"]),
    (lambda t: t.replace('dispatch_bytes_per_s = { value = "57 GB/s"',
                         'dispatch_bytes_per_s = { value = "57 GHz"'),
     ["[moe.bulk, row 5]", "dispatch_bytes_per_s", "57 GHz"]),
    (lambda t: t.replace("[[moe.bulk]]\n", "[[moe.bulk]]\ncolour = 3\n", 1),
     ["[moe.bulk, row 1]", "unknown key 'colour'"]),
]


@pytest.mark.parametrize("edit, words", BAD_SYSTEM)
def test_bad_system_file_is_one_sentence(tmp_path, edit, words):
    path = _copy_system(tmp_path, edit_system=edit)
    with pytest.raises(UserError) as info:
        load_system(path)
    message = str(info.value)
    assert "my-system.toml" in message and "\n" not in message
    for word in words:
        assert word in message


def test_unknown_names_list_what_is_accepted():
    with pytest.raises(UserError, match="unknown hardware 'cm999'; accepted: .*cloudmatrix384"):
        load_system("cm999")
    with pytest.raises(UserError, match="does not exist"):
        load_system("/nonexistent/x.toml")


def test_bad_workload_and_mapping_files(tmp_path):
    text = (CONFIG_DIR / "workloads" / "deepseek-r1.toml").read_text()
    bad = tmp_path / "w.toml"
    bad.write_text(text.replace("active_experts = { value = 8", "active_experts = { value = 300"))
    with pytest.raises(UserError, match="active_experts = 300 exceeds routed_experts = 256"):
        load_workload(bad)
    bad.write_text(text.replace('precision = "8bit"', 'precision = "fp6"', 1))
    with pytest.raises(UserError, match="'fp6' is not accepted"):
        load_workload(bad)
    bad.write_text(text.replace("[routing]", "[routes]"))
    with pytest.raises(UserError, match="needs a \\[routing\\] table"):
        load_workload(bad)
    mapping = (CONFIG_DIR / "mappings" / "cloudmatrix384-dense.toml").read_text()
    bad.write_text(mapping.replace("tp = 8", "tp = 0"))
    with pytest.raises(UserError, match="tp = 0 must be greater than 0"):
        load_mapping(bad)
    bad.write_text(mapping.replace("[tier]\ntp", "[tier]\nxp"))
    with pytest.raises(UserError, match="unknown group 'xp'"):
        load_mapping(bad)
    deploy = (CONFIG_DIR / "mappings" / "cloudmatrix384-moe-decode.toml").read_text()
    for edit, words in (
            (("two_batch_overlap = { value = false", "two_batch_overlap = { value = 1"),
             "two_batch_overlap = 1 must be true or false"),
            (('value = "routed"', 'value = "everywhere"'),
             "shared_expert = 'everywhere' is not accepted"),
            (("mtp_acceptance = { value = 0.7", "mtp_acceptance = { value = 1.5"),
             "mtp_acceptance = 1.5 must be a fraction"),
            (("[deployment]", "[deployment]\noverlap = 1.0"), "unknown key 'overlap'"),
            (("shared_expert_ranks = { value = 32", "shared_expert_ranks = { value = 0"),
             "shared_expert_ranks = 0 must be positive exactly when")):
        bad.write_text(deploy.replace(*edit))
        with pytest.raises(UserError, match=words):
            load_mapping(bad)


def test_shipped_files_are_not_changed_by_loading():
    before = {p: p.read_bytes() for p in CONFIG_DIR.rglob("*.toml")}
    for name in HARDWARE:
        _load_hardware(name)
    assert before == {p: p.read_bytes() for p in CONFIG_DIR.rglob("*.toml")}


def test_groups_go_to_the_smallest_tier_that_holds_them():
    system = load_system("cloudmatrix384")
    assert system.smallest_tier(8).name == "node"
    assert system.smallest_tier(9).name == "supernode"
    assert system.smallest_tier(384).name == "supernode"
    with pytest.raises(UserError, match="a group of 385 packages does not fit"):
        system.smallest_tier(385)
    ranks = system.per_rank()                      # a 910C is two ranks of half its links
    assert ranks.chips == 768 and ranks.smallest_tier(16).name == "node"
    assert ranks.tier("node").bandwidth_bytes_per_s == 196e9
    assert ranks.chip.hbm_capacity_bytes == 64e9 and ranks.chip.cores == 24
    cluster = load_system("h800-cluster")          # past the node, the InfiniBand plane
    assert cluster.smallest_tier(8).name == "node" and cluster.smallest_tier(9).name == "cluster"
    assert [t.name for t in system.scale_up_tiers] == ["node", "supernode"]
    assert system.chips == 384 and system.node.l1_switches_per_node * system.nodes == 336
