"""Read VCD and FST waveforms, summarise their valid/ready streams and draw timelines."""

# reader: a file into traces; streams: handshakes, stalls and FSM states counted on them;
# plot: a timeline picture. GTKWave save files are written by supernode.sim.gtkw.

from .plot import default_plot_signals, plot_timeline
from .reader import UNKNOWN, Trace, Waveform, find_signal, load, parse_time
from .streams import Interface, find_fsms, find_interfaces, summarize

__all__ = [
    "Trace", "Waveform", "load", "summarize", "find_interfaces", "find_fsms",
    "parse_time", "plot_timeline", "default_plot_signals", "Interface", "UNKNOWN",
    "find_signal",
]
