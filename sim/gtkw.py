"""Write GTKWave save files that group each stream's valid/ready/payload and the FSM states."""

from __future__ import annotations

import io
import re
import os
from pathlib import Path
from typing import TYPE_CHECKING

from amaranth.hdl import Fragment, Signal
from vcd.gtkw import GTKWSave

# The streams and FSMs are the ones supernode.sim.waves finds in the file; the state names come
# from the Amaranth design (fsm_state_names), which keeps this module beside the runner
# rather than inside the waveform package, which reads files and needs no design.
from .outputs import write_atomic
from .waves import find_fsms, find_interfaces, find_signal, load

if TYPE_CHECKING:
    from amaranth.hdl import Elaboratable

    from .waves.reader import Waveform

__all__ = ["fsm_state_names", "write_gtkw"]

#: State names are written only for registers this narrow (a translate file lists every value).
_MAX_STATE_BITS = 8


def fsm_state_names(component: Elaboratable) -> dict[str, dict[int, str]]:
    """State names of every FSM (and enum-typed signal) in an Amaranth design.

    Returns ``{"sub.path.fsm_state": {0: "IDLE", 1: "RUN", ...}}``, the path relative
    to the top module, as the Verilog export names it.
    """
    found = {}

    def walk(frag, path):
        stmts = []
        for domain_stmts in frag.statements.values():
            stmts.extend(domain_stmts)
        for sig in _assigned_signals(stmts):
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


def _assigned_signals(stmts):
    """The signals that ``stmts`` assign, in order, each once per assignment.

    Read through the statements' public properties (an assignment's ``lhs``, a switch's
    ``cases``; a slice's ``value``, a concatenation's ``parts``), not Amaranth internals.
    """
    for stmt in stmts:
        if hasattr(stmt, "lhs"):
            yield from _signals_in(stmt.lhs)
        elif hasattr(stmt, "cases"):
            for case in stmt.cases:
                yield from _assigned_signals(case[1])


def _signals_in(value):
    """The signals an assignment target is made of."""
    if isinstance(value, Signal):
        yield value
    elif hasattr(value, "parts"):
        for part in value.parts:
            yield from _signals_in(part)
    elif hasattr(value, "value"):
        yield from _signals_in(value.value)


def _ident(name: str, width: int) -> str:
    return f"{name}[{width - 1}:0]" if width > 1 else name


def write_gtkw(wave_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
               state_names: dict[str, dict[int, str]] | None = None,
               wave: Waveform | None = None) -> Path:
    """Write ``<wave>.gtkw`` beside a waveform and return its path.

    Groups, in order: clock and reset; one group per valid/ready stream (valid, ready,
    payload in hex); the FSM state registers, shown by state name where
    ``state_names`` (from :func:`fsm_state_names`) knows them, through a GTKWave
    translate-filter file written beside the save file. Written with pyvcd's
    :class:`~vcd.gtkw.GTKWSave` (pyvcd comes with Amaranth).
    """
    wave_path = Path(wave_path).resolve()
    wave = wave if wave is not None else load(wave_path)
    out = Path(out) if out is not None else wave_path.with_suffix(".gtkw")
    out = out.resolve()        # in an existing directory: never created here
    state_names = state_names or {}

    text = io.StringIO()
    save = GTKWSave(text)
    save.comment("written by supernode: streams grouped by interface, FSM states by name")
    save.dumpfile(str(wave_path))
    save.savefile(str(out))
    save.timestart(0)
    save.size(1400, 760)
    save.pos(-1, -1)
    save.signals_width(280)
    save.sst_expanded(True)
    for top in sorted({n.split(".", 1)[0] for n in wave.names() if "$" not in n.split(".", 1)[0]}):
        save.treeopen(top)

    def trace(name, **kwargs):
        kwargs.setdefault("datafmt", "bin" if wave[name].width == 1 else "hex")
        save.trace(_ident(name, wave[name].width), **kwargs)

    def group(title, names):
        if names:
            with save.group(title):
                for name in names:
                    trace(name)

    group("clock and reset", [n for n in (find_signal(wave, leaf) for leaf in ("clk", "rst"))
                              if n is not None])
    for itf in find_interfaces(wave):
        group(f"stream {itf.name}",
              [itf.valid] + ([itf.ready] if itf.ready else []) + list(itf.payload))

    fsms = find_fsms(wave)
    if fsms:
        with save.group("FSM states"):
            for index, name in enumerate(fsms, start=1):
                names = next((v for k, v in state_names.items()
                              if name == k or name.endswith("." + k)), None)
                if not names:
                    trace(name, datafmt="dec")
                    continue
                table = out.with_name(f"{out.stem}.{name.rsplit('.', 1)[-1]}.{index}.states")
                write_atomic(table, "".join(f"{v} {s}\n" for v, s in sorted(names.items())))
                trace(name, datafmt="dec", translate_filter_file=str(table))
    save.pattern_trace(True)
    save.pattern_trace(False)

    write_atomic(out, text.getvalue())
    return out
