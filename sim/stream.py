"""cocotb driver, sink and monitor for valid/ready streams, with pause generators.

In the manner of cocotbext-axi's AXI-Stream classes: a :class:`StreamSource` sends
payloads queued with :meth:`StreamSource.send`, a :class:`StreamSink` takes them and hands
them back with :meth:`StreamSink.recv`, a :class:`StreamMonitor` watches a stream without
driving it and checks the stream contract. Each endpoint idles on the cycles its pause
generator says (``set_pause_generator(itertools.cycle([0, 0, 1]))``), which is how idle and
back-pressure patterns are swept. Ports are found by the names Amaranth's Verilog export
gives them (``a__valid``, ``a__ready``, ``a__payload``); :class:`PayloadLayout` packs and
unpacks payloads with the field layout written beside the export (``supernode.rtl.interface``).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supernode.rtl.errors import UserError

if TYPE_CHECKING:
    from cocotb.handle import HierarchyObject, LogicObject, ValueObjectBase
    from cocotb.task import Task

    #: A port of the simulated design.
    Handle = ValueObjectBase[Any, Any]

__all__ = ["PayloadLayout", "StreamSource", "StreamSink", "StreamMonitor", "StreamProtocolError",
           "load_interface"]


class StreamProtocolError(AssertionError):
    """A stream broke its contract: valid fell, or the payload changed, before the beat was taken."""


def load_interface(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The interface description written beside an exported ``.v`` (``tile.json``)."""
    path = Path(path)
    if path.suffix == ".v":
        path = path.with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"interface description {str(path)!r} does not exist; give the "
                        f"JSON file that 'supernode tile export' writes beside the Verilog") \
            from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: is not a JSON interface description ({exc}); give the "
                        f"file that 'supernode tile export' writes") from None


class PayloadLayout:
    """Packs nested values (``{"data": [1, -2], "last": 1}``) into a payload integer and back.

    Parameters
    ----------
    fields : list of dict
        The ``fields`` of one stream in an interface description: ``name``, ``path``,
        ``offset``, ``width``, ``signed`` of every leaf.
    """

    def __init__(self, fields: list[dict[str, Any]]) -> None:
        self.fields = list(fields)
        self.width = max((f["offset"] + f["width"] for f in self.fields), default=0)

    @classmethod
    def of_stream(cls, interface: dict, stream: str) -> "PayloadLayout":
        """The payload layout of ``stream`` in an interface description."""
        try:
            return cls(interface["streams"][stream]["fields"])
        except KeyError:
            known = ", ".join(interface.get("streams", {}))
            raise UserError(f"the interface has no stream named {stream!r}; it has {known}") \
                from None

    def pack(self, value: Any) -> int:
        """The payload integer of nested ``value`` (dicts by field name, lists by index)."""
        word = 0
        for field in self.fields:
            leaf = value
            for part in field["path"]:
                leaf = leaf[part]
            leaf = int(leaf)
            lo, hi = (-(1 << (field["width"] - 1)), (1 << (field["width"] - 1)) - 1) \
                if field["signed"] else (0, (1 << field["width"]) - 1)
            if not lo <= leaf <= hi:
                raise UserError(f"field {field['name'] or 'payload'} holds {lo}..{hi}, not {leaf}")
            word |= (leaf & ((1 << field["width"]) - 1)) << field["offset"]
        return word

    def unpack(self, word: int) -> Any:
        """Nested values of a payload integer (the inverse of :meth:`pack`)."""
        out: dict[str, Any] = {}
        for field in self.fields:
            leaf = (int(word) >> field["offset"]) & ((1 << field["width"]) - 1)
            if field["signed"] and leaf >> (field["width"] - 1):
                leaf -= 1 << field["width"]
            if not field["path"]:
                return leaf
            node: Any = out
            for part, after in zip(field["path"], field["path"][1:] + [None]):
                if after is None:
                    _store(node, part, leaf)
                else:
                    node = _child(node, part, list if isinstance(after, int) else dict)
        return out


def _child(node: list[Any] | dict[str, Any], key: Any, kind: type[list] | type[dict]) -> Any:
    if isinstance(node, list):
        while len(node) <= key:
            node.append(None)
        if node[key] is None:
            node[key] = kind()
        return node[key]
    return node.setdefault(key, kind())


def _store(node: list[Any] | dict[str, Any], key: Any, value: int) -> None:
    if isinstance(node, list):
        while len(node) <= key:
            node.append(None)
        node[key] = value
    else:
        node[key] = value


def _high(handle: Handle) -> bool:
    """A one-bit signal reads 1 (x and z, before a reset, read as low)."""
    return str(handle.value) == "1"


class _Endpoint:
    """Shared by source, sink and monitor: the three handles of one stream, and its pauses."""

    def __init__(self, dut: HierarchyObject, name: str, clock: LogicObject,
                 reset: Handle | None = None) -> None:
        self.name = name
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock, self.reset = clock, reset
        self._pause: Iterator[Any] | None = None
        self._task: Task[None] | None = None

    def set_pause_generator(self, generator: Iterator[Any] | None = None) -> None:
        """Idle on each cycle the generator yields a true value for (None: never idle)."""
        self._pause = generator

    def _paused(self) -> bool:
        return bool(next(self._pause, False)) if self._pause is not None else False

    def _in_reset(self) -> bool:
        return self.reset is not None and _high(self.reset)

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> None:
        import cocotb
        self._task = cocotb.start_soon(coroutine)

    def stop(self) -> None:
        """Stop driving or watching the stream."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


class StreamSource(_Endpoint):
    """Drives ``<name>__valid`` and ``<name>__payload``, reads ``<name>__ready``.

    A beat, once offered, stays valid with the same payload until it is taken; the pause
    generator only idles the source between beats, as the stream contract asks.

    Parameters
    ----------
    dut : cocotb handle
        The module that has the stream's ports.
    name : str
        The stream's name: the port prefix (``a`` for ``a__valid``).
    clock, reset : cocotb handles
        The clock; an active-high reset during which nothing is offered (optional).
    """

    def __init__(self, dut: HierarchyObject, name: str, clock: LogicObject,
                 reset: Handle | None = None) -> None:
        super().__init__(dut, name, clock, reset)
        from cocotb.triggers import Event
        self.queue: deque[int] = deque()
        self.sent = 0
        self._idle = Event()
        self._idle.set()
        self.valid.value = 0
        self._start(self._run())

    def send_nowait(self, payload: int) -> None:
        """Queue one payload (an integer; see :class:`PayloadLayout`)."""
        self.queue.append(int(payload))
        self._idle.clear()

    async def send(self, payload: int) -> None:
        """Queue one payload."""
        self.send_nowait(payload)

    def count(self) -> int:
        """Payloads queued and not yet taken."""
        return len(self.queue)

    def empty(self) -> bool:
        return not self.queue

    async def wait(self) -> None:
        """Until every queued payload has been taken."""
        await self._idle.wait()

    async def _run(self) -> None:
        from cocotb.triggers import RisingEdge
        offered = False
        while True:
            await RisingEdge(self.clock)
            if self._in_reset():
                self.valid.value = 0
                offered = False
                continue
            if offered and _high(self.ready):
                self.queue.popleft()
                self.sent += 1
                offered = False
                if not self.queue:
                    self._idle.set()
            paused = self._paused()
            if not offered and self.queue and not paused:
                self.payload.value = self.queue[0]
                offered = True
            self.valid.value = int(offered)


class StreamSink(_Endpoint):
    """Drives ``<name>__ready``, takes each beat on a clock edge where valid and ready are high.

    Parameters
    ----------
    dut, name, clock, reset
        As for :class:`StreamSource`.
    """

    def __init__(self, dut: HierarchyObject, name: str, clock: LogicObject,
                 reset: Handle | None = None) -> None:
        super().__init__(dut, name, clock, reset)
        self.queue: deque[int] = deque()
        self.ready.value = 0
        self._start(self._run())

    def count(self) -> int:
        """Payloads received and not yet taken with :meth:`recv`."""
        return len(self.queue)

    def empty(self) -> bool:
        return not self.queue

    def recv_nowait(self) -> int:
        """The oldest payload received (raises IndexError when there is none)."""
        return self.queue.popleft()

    async def recv(self, timeout_cycles: int | None = None) -> int:
        """The next payload; with ``timeout_cycles``, fail instead of waiting for ever."""
        from cocotb.triggers import RisingEdge
        waited = 0
        while not self.queue:
            if timeout_cycles is not None and waited >= timeout_cycles:
                raise TimeoutError(f"stream {self.name}: no beat in {timeout_cycles} cycles")
            await RisingEdge(self.clock)
            waited += 1
        return self.queue.popleft()

    async def _run(self) -> None:
        from cocotb.triggers import RisingEdge
        while True:
            await RisingEdge(self.clock)
            if self._in_reset():
                self.ready.value = 0
                continue
            if _high(self.ready) and _high(self.valid):
                self.queue.append(self.payload.value.to_unsigned())
            self.ready.value = 0 if self._paused() else 1


class StreamMonitor(_Endpoint):
    """Watches a stream without driving it: records every beat and checks the contract.

    Members
    -------
    beats : list of int
        Every payload taken, in order.
    stalls, idles : int
        Cycles with valid high and ready low, and with valid low.
    errors : list of str
        Contract violations seen (valid falling, or the payload changing, before a beat
        was taken); :meth:`check` raises on the first.
    """

    def __init__(self, dut: HierarchyObject, name: str, clock: LogicObject,
                 reset: Handle | None = None) -> None:
        super().__init__(dut, name, clock, reset)
        self.beats: list[int] = []
        self.stalls, self.idles = 0, 0
        self.errors: list[str] = []
        self._start(self._run())

    def check(self) -> None:
        """Raise :class:`StreamProtocolError` if the stream ever broke its contract."""
        if self.errors:
            raise StreamProtocolError(self.errors[0])

    async def _run(self) -> None:
        from cocotb.triggers import RisingEdge
        waiting: int | None = None           # payload offered and not taken at the previous edge
        cycle = 0
        while True:
            await RisingEdge(self.clock)
            cycle += 1
            if self._in_reset():
                waiting = None
                continue
            valid, ready = _high(self.valid), _high(self.ready)
            payload: int | None = self.payload.value.to_unsigned() if valid else None
            if waiting is not None and (not valid or payload != waiting):
                what = "valid fell" if not valid else "the payload changed"
                self.errors.append(f"stream {self.name}, cycle {cycle}: {what} before the "
                                   f"beat {waiting:#x} was taken")
            if payload is not None and ready:      # payload is None exactly when not valid
                self.beats.append(payload)
                waiting = None
            elif payload is not None:
                self.stalls += 1
                waiting = payload
            else:
                self.idles += 1
                waiting = None
