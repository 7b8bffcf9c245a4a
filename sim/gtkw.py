"""Write GTKWave save files that group each stream's valid/ready/payload and the FSM states."""

import re
from pathlib import Path

from amaranth.hdl import Fragment

# The streams and FSMs are the ones sim.waves finds in the file; the state names come
# from the Amaranth design (fsm_state_names), which keeps this module beside the runner
# rather than inside the waveform package, which reads files and needs no design.
from .outputs import write_atomic
from .waves import find_fsms, find_interfaces, find_signal, load

__all__ = ["fsm_state_names", "write_gtkw"]

# GTKWave trace flags (gtkwave's TR_* bits).
_HEX, _DEC, _BIN, _RJUSTIFY, _BLANK, _FTRANSLATED = 0x2, 0x4, 0x8, 0x20, 0x200, 0x2000
_GRP_BEGIN, _GRP_END, _CLOSED = 0x800000, 0x1000000, 0x400000

#: State names are written only for registers this narrow (a translate file lists every value).
_MAX_STATE_BITS = 8


def fsm_state_names(component) -> dict:
    """State names of every FSM (and enum-typed signal) in an Amaranth design.

    Returns ``{"sub.path.fsm_state": {0: "IDLE", 1: "RUN", ...}}``, the path relative
    to the top module, as the Verilog export names it.
    """
    found = {}

    def walk(frag, path):
        stmts = []
        for domain_stmts in frag.statements.values():
            stmts.extend(domain_stmts)
        for stmt in stmts:
            for sig in stmt._lhs_signals():
                decoder = getattr(sig, "decoder", None)
                if decoder is None or len(sig) > _MAX_STATE_BITS:
                    continue
                names = {}
                for value in range(1 << len(sig)):
                    try:
                        text = decoder(value)
                    except Exception:  # a decoder is arbitrary user code
                        continue
                    text = re.sub(rf"/{value}$", "", str(text))
                    if text != str(value):
                        names[value] = text
                if names:
                    found[".".join(path + [sig.name])] = names
        for item in frag.subfragments:
            sub, name = item[0], item[1]
            walk(sub, path + [name] if name else path)

    walk(Fragment.get(component, None), [])
    return found


def _ident(name: str, width: int) -> str:
    return f"{name}[{width - 1}:0]" if width > 1 else name


def write_gtkw(wave_path, out=None, *, state_names: "dict | None" = None, wave=None) -> Path:
    """Write ``<wave>.gtkw`` beside a waveform and return its path.

    Groups, in order: clock and reset; one group per valid/ready stream (valid, ready,
    payload in hex); the FSM state registers, shown by state name where
    ``state_names`` (from :func:`fsm_state_names`) knows them, through a GTKWave
    translate-filter file written beside the save file.
    """
    wave_path = Path(wave_path).resolve()
    wave = wave if wave is not None else load(wave_path)
    out = Path(out) if out is not None else wave_path.with_suffix(".gtkw")
    out = out.resolve()        # in an existing directory: never created here
    state_names = state_names or {}

    lines = [
        "[*] written by supernode: streams grouped by interface, FSM states by name",
        f'[dumpfile] "{wave_path}"',
        f'[savefile] "{out}"',
        "[timestart] 0",
        "[size] 1400 760",
        "[pos] -1 -1",
        "[sst_width] 240",
        "[signals_width] 280",
        "[sst_expanded] 1",
        "[sst_vpaned_height] 200",
    ]
    tops = sorted({n.split(".", 1)[0] for n in wave.names() if "$" not in n.split(".", 1)[0]})
    lines += [f"[treeopen] {t}." for t in tops]

    def group(title, members):
        if not members:
            return
        lines.append(f"@{_GRP_BEGIN | _BLANK:x}")
        lines.append(f"-{title}")
        for flags, name, extra in members:
            lines.append(f"@{flags:x}")
            lines.extend(extra)
            lines.append(_ident(name, wave[name].width))
        lines.append(f"@{_GRP_END | _BLANK:x}")
        lines.append(f"-{title}")

    def fmt(name):
        return _RJUSTIFY | (_BIN if wave[name].width == 1 else _HEX)

    basics = []
    for leaf in ("clk", "rst"):
        n = find_signal(wave, leaf)
        if n is not None:
            basics.append((fmt(n), n, []))
    group("clock and reset", basics)

    for itf in find_interfaces(wave):
        members = [(fmt(itf.valid), itf.valid, [])]
        if itf.ready:
            members.append((fmt(itf.ready), itf.ready, []))
        members += [(fmt(p), p, []) for p in itf.payload]
        group(f"stream {itf.name}", members)

    fsm_members, filters = [], 0
    for name in find_fsms(wave):
        names = next((v for k, v in state_names.items()
                      if name == k or name.endswith("." + k)), None)
        if names:
            filters += 1
            table = out.with_name(f"{out.stem}.{name.rsplit('.', 1)[-1]}.{filters}.states")
            write_atomic(table, "".join(f"{v} {s}\n" for v, s in sorted(names.items())))
            fsm_members.append((_FTRANSLATED | _RJUSTIFY | _DEC, name, [f"^{filters} {table}"]))
        else:
            fsm_members.append((_RJUSTIFY | _DEC, name, []))
    group("FSM states", fsm_members)

    lines.append("[pattern_trace] 1")
    lines.append("[pattern_trace] 0")
    write_atomic(out, "\n".join(lines) + "\n")
    return out
