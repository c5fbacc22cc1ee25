"""Edit any state at any step of an existing nn.LSTM (nn.GRU, nn.RNN), and see what follows.

    from lstm_states import Edit, capture, record
    # unit 33's cell state set to 0 in layer 0 from step 100 on
    st = capture(lstm, x, edits=[Edit("c", 0, slice(100, None), unit=33, set=0.0)])
    # the model's forward runs with layer 1's forget gate shut at step 7
    with record(model, edits={"lstm": [Edit("f", 1, 7, set=0.0)]}) as rec:
        logits = model(tokens)

Shape legend: L layers, D directions, T steps, B batch, H hidden size, H_out = proj_size or H.

Semantics, within one step of one layer and direction: the gates (i, f, g, o) are edited after
their activations; then c_t = f_t * c_{t-1} + i_t * g_t; then c edits; then
h_t = o_t * tanh(c_t) (times W_hr with proj_size); then h edits.
An nn.GRU's step: r and z after their activations, then r and z edits; then
n = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn)) from the edited r; then n edits; then
h_t = (1 - z_t) * n_t + z_t * h_{t-1} from the edited z and n; then h edits. An nn.RNN's:
h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (relu with nonlinearity="relu"); then h
edits. The recurrence goes on from the edited values and the next layer reads the edited h. Several edits of one state apply in list
order. Steps are input positions (as in ``states.h[l, d, t]``), for the reverse direction too;
for packed input an edit at a position past a sequence's end leaves that sequence alone.

How: the edits route (``route``) runs every layer without edits by the route capture would take
anyway. In an edited layer each direction runs the fused kernel up to its first edited step,
steps through the edited steps one by one (the cell's ``steps_in_place`` / ``steps_autograd``
with the edits applied), and goes on with the fused kernel from the edited state between and after
them; the gates and c of the kernel's stretches are replayed from its h as capture does.
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from dataclasses import KW_ONLY, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from . import cells, routes
from .routes import LayerRun, LayerStates, Seq

__all__ = ["Edit", "EDIT_FIELDS", "plan", "route"]

EDIT_FIELDS = ("h", "c", "i", "f", "g", "o", "r", "z", "n")  # LSTM: h c i f g o; GRU: h r z n
OPERATIONS = ("set", "add", "scale", "fn")

# Stretches without edits shorter than this run step by step rather than through the fused
# kernel and a replay (each stretch costs a kernel call and a few products).
MIN_KERNEL_STRETCH = 8


@dataclass(frozen=True)
class Edit:
    """One change to one state of an LSTM (GRU, RNN): which state, where, and how.

    Args:
        field: "h", "c", or a gate after its activation: "i", "f", "g", "o" (an nn.LSTM);
            "h", "r", "z", "n" (an nn.GRU); "h" (an nn.RNN).
        layer: 0..num_layers-1.
        step: input position(s): an int (negative counts from the end), a slice, or a list.
        unit: None (every unit), an int, or a list of ints.
        direction: 0, or 1 for the reverse direction of a bidirectional LSTM.
        set / add / scale: exactly one of these, a number or a tensor broadcastable to
            (B, number of units): the new value, what to add, what to multiply by.
        fn: or a callable from the selected values (B, number of units) to their replacement.

    Gradients flow through an edit to the input, the parameters and to a tensor given as value.
    """

    field: str
    layer: int
    step: Union[int, slice, Sequence[int]]
    unit: Union[None, int, Sequence[int]] = None
    direction: int = 0
    _: KW_ONLY
    set: Any = None
    add: Any = None
    scale: Any = None
    fn: Optional[Callable[[Tensor], Tensor]] = None

    def __post_init__(self):
        if self.field not in EDIT_FIELDS:
            raise ValueError(f"Edit field must be one of {EDIT_FIELDS} (h, c, or a gate after its"
                             f" activation), got {self.field!r}")
        given = [name for name in OPERATIONS if getattr(self, name) is not None]
        if len(given) != 1:
            what = "no operation" if not given else f"{len(given)} operations ({', '.join(given)})"
            raise ValueError(f"an Edit needs exactly one of set=, add=, scale=, fn=; got {what}")
        for name in ("layer", "direction"):
            if not _is_int(getattr(self, name)):
                raise TypeError(f"Edit {name} must be an int, got {getattr(self, name)!r}")
        if not (isinstance(self.step, slice) or _is_int(self.step) or _int_list(self.step)):
            raise TypeError(f"Edit step must be an int, a slice or a list of ints (input"
                            f" positions), got {self.step!r}")
        if not (self.unit is None or _is_int(self.unit) or _int_list(self.unit)):
            raise TypeError(f"Edit unit must be None, an int or a list of ints, got {self.unit!r}")
        if self.fn is not None and not callable(self.fn):
            raise TypeError(f"Edit fn must be callable, got {type(self.fn).__name__}")
        for name in ("set", "add", "scale"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (numbers.Real, Tensor)):
                raise TypeError(f"Edit {name}= must be a number or a tensor, got"
                                f" {type(value).__name__}")

    @property
    def operation(self) -> Tuple[str, Any]:
        """(name, value) of the one operation."""
        return next((n, getattr(self, n)) for n in OPERATIONS if getattr(self, n) is not None)

    def replace(self, selected: Tensor) -> Tensor:
        """The new values of the selected states (B, number of units)."""
        name, value = self.operation
        if name == "fn":
            new = value(selected)
            if not isinstance(new, Tensor) or new.shape != selected.shape:
                got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
                raise ValueError(f"{self}: fn must return a tensor of the selected values' shape"
                                 f" {tuple(selected.shape)} (B, number of units), got {got}")
            return new
        if isinstance(value, Tensor):
            value = value.to(selected.device, selected.dtype)
        if name == "set":
            return torch.as_tensor(value, dtype=selected.dtype,
                                   device=selected.device).expand_as(selected)
        return selected + value if name == "add" else selected * value


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _int_list(v) -> bool:
    return isinstance(v, (list, tuple, range)) and len(v) > 0 and all(_is_int(k) for k in v)


# ----------------------------------------------------------------------------------------------
# the plan: every edit resolved to (layer, direction) -> processing step -> what to apply


class StepEdits:
    """The edits of one layer and direction, by processing step; the ``edit`` callback of
    ``cells.steps_in_place`` / ``steps_autograd`` (over a stretch starting at ``offset``)."""

    def __init__(self, in_place: bool):
        self.by_step: Dict[int, Dict[str, List[Tuple[Edit, Optional[Tensor], Optional[Tensor]]]]] = \
            defaultdict(lambda: defaultdict(list))
        self.in_place = in_place
        self.offset = 0
        self.steps: frozenset = frozenset()

    def add(self, k: int, edit: Edit, units: Optional[Tensor], rows: Optional[Tensor]) -> None:
        self.by_step[k][edit.field].append((edit, units, rows))

    def window(self, start: int, stop: int) -> StepEdits:
        """These edits for the stretch [start, stop), with local step numbers."""
        view = StepEdits(self.in_place)
        view.by_step = self.by_step
        view.offset = start
        view.steps = frozenset(k - start for k in self.by_step if start <= k < stop)
        return view

    def __call__(self, t: int, name: str, state: Tensor) -> Tensor:
        for edit, units, rows in self.by_step[t + self.offset].get(name, ()):
            state = _apply(edit, state, units, rows, self.in_place)
        return state


def _apply(edit: Edit, state: Tensor, units: Optional[Tensor], rows: Optional[Tensor],
           in_place: bool) -> Tensor:
    """One edit on one step's state (B, n): in place, or a new tensor (autograd)."""
    selected = state if units is None else state.index_select(1, units)  # (B, units)
    new = edit.replace(selected)
    if rows is not None:  # packed input: only the sequences this position is inside of
        new = torch.where(rows[:, None], new, selected)
    if in_place:
        if units is None:
            state.copy_(new)
        else:
            state.index_copy_(1, units, new)
        return state
    return new if units is None else state.index_copy(1, units, new)


def plan(lstm: nn.LSTM, edits: Sequence[Edit], steps: int, batch: int,
         lengths: Optional[Tensor], device, in_place: bool) -> Dict[Tuple[int, int], StepEdits]:
    """Checks every edit against the LSTM and the input (before any computation) and resolves
    it to processing steps: {(layer, direction): StepEdits}."""
    if isinstance(edits, Edit):
        edits = [edits]
    if not isinstance(edits, (list, tuple)):
        raise TypeError(f"edits must be a list of lstm_states.Edit, got {type(edits).__name__}")
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    H, H_out = lstm.hidden_size, lstm.proj_size or lstm.hidden_size
    T = steps
    cell = cells.of(lstm)
    result: Dict[Tuple[int, int], StepEdits] = {}
    for n, edit in enumerate(edits):
        if not isinstance(edit, Edit):
            raise TypeError(f"edits[{n}] is a {type(edit).__name__}, not an lstm_states.Edit")
        where = f"edits[{n}] ({edit.field!r}, layer {edit.layer})"
        if edit.field not in cell.edit_fields:
            what = "no cell state 'c'" if edit.field == "c" else f"no {edit.field!r}"
            raise ValueError(f"{where}: an nn.{cell.name} has {what}; its states to edit are"
                             f" {cell.edit_fields}")
        if not 0 <= edit.layer < L:
            raise ValueError(f"{where}: layer {edit.layer} out of range; this LSTM has layers"
                             f" 0..{L - 1}")
        if not 0 <= edit.direction < D:
            raise ValueError(f"{where}: direction {edit.direction} out of range;"
                             + (" this LSTM is not bidirectional: use direction 0" if D == 1
                                else " use 0 (forward) or 1 (reverse)"))
        width = H_out if edit.field == "h" else H
        units = _units(edit.unit, width, where)
        positions = _positions(edit.step, T, where)
        if edit.fn is None:
            value = edit.operation[1]
            if isinstance(value, Tensor):
                shape = (batch, width if units is None else len(units))
                try:
                    ok = torch.broadcast_shapes(value.shape, shape) == shape
                except RuntimeError:
                    ok = False
                if not ok:
                    raise ValueError(f"{where}: {edit.operation[0]}= has shape"
                                     f" {tuple(value.shape)}, not broadcastable to {shape}"
                                     " (B, number of units)")
        units_t = None if units is None else torch.tensor(units, device=device)
        todo = result.setdefault((edit.layer, edit.direction), StepEdits(in_place))
        for t in positions:
            for k, rows in _processing_steps(t, edit.direction, T, lengths, device):
                todo.add(k, edit, units_t, rows)
    for todo in result.values():
        todo.steps = frozenset(todo.by_step)
    return result


def _units(unit, width: int, where: str) -> Optional[List[int]]:
    if unit is None:
        return None
    units = [unit] if _is_int(unit) else list(unit)
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        raise ValueError(f"{where}: unit {bad} out of range; this state has units 0..{width - 1}")
    return [int(u) for u in units]


def _positions(step, T: int, where: str) -> List[int]:
    if isinstance(step, slice):
        positions = list(range(T)[step])
        if not positions:
            raise ValueError(f"{where}: step {step} selects no position of 0..{T - 1}")
        return positions
    steps = [step] if _is_int(step) else list(step)
    bad = [t for t in steps if not -T <= t < T]
    if bad:
        raise ValueError(f"{where}: step {bad} out of range; the input has positions 0..{T - 1}")
    return sorted({int(t) % T for t in steps})


def _processing_steps(t: int, direction: int, T: int, lengths: Optional[Tensor], device):
    """(processing step, rows or None) at which input position t is computed."""
    if lengths is None:
        yield (t if direction == 0 else T - 1 - t), None
        return
    inside = t < lengths  # (B,): the sequences long enough to have position t
    if direction == 0:  # processing order is input order
        yield t, None if bool(inside.all()) else inside.to(device)
        return
    # reverse, each sequence reversed within its own length: position t is step n_b - 1 - t
    ks = lengths - 1 - t  # (B,)
    for k in sorted(set(ks[inside].tolist())):
        rows = inside & (ks == k)
        yield int(k), None if bool(rows.all()) else rows.to(device)


# ----------------------------------------------------------------------------------------------
# the route


def route(lstm: nn.LSTM, layer: int, x: Seq, h0: Tensor, c0: Tensor, want, out=None,
          like=None, *, base: Callable, plans: Dict[Tuple[int, int], StepEdits],
          in_place: bool) -> LayerRun:
    """The edits route: ``base`` for a layer without edits; for an edited layer, each direction
    by stretches (kernel, edited steps, kernel, ...), in processing order."""
    D = h0.shape[0]
    if not any((layer, d) in plans for d in range(D)):
        return base(lstm, layer, x, h0, c0, want, out, like)
    out = out if in_place else None
    if in_place and out is None:
        out = LayerStates(None, None, None)
    cell = cells.of(lstm)
    T, B = x.steps, h0.shape[1]
    H_out, H, G = h0.shape[-1], lstm.hidden_size, len(cell.gate_names)
    lengths = routes.flip_lengths(x.lengths, T)
    # the gates (and c) of the kernel's stretches: when kept, and the LSTM's c for packed
    # input's final states
    replay = (cell.has_c and x.is_packed) or bool({"c", "gates"} & set(want))
    hs, cs, gs, h_ns, c_ns = [], [], [], [], []
    for d in range(D):
        params = routes.layer_params(lstm, layer, d)
        x_d = x.padded if d == 0 else routes.reverse_within_lengths(x.padded, lengths)
        steps = plans.get((layer, d)) or StepEdits(in_place)
        c0_d = None if c0 is None else c0[d]
        if in_place:  # processing-order buffers: the result's own for the forward direction
            mine = LayerStates(*(None if s is None or d == 1 or name not in want else s[d]
                                 for name, s in zip(("h", "c", "gates"), out, strict=True)))
            bufs = (mine.h if mine.h is not None else routes.empty(x_d, T, B, H_out),
                    mine.c if mine.c is not None else
                    routes.empty(x_d, T, B, H) if cell.has_c else None,
                    mine.gates if mine.gates is not None else
                    routes.empty(x_d, G, T, B, H) if G else None)
            h_last, c_last = _stretches_in_place(cell, x_d, h0[d], c0_d, params, steps, replay,
                                                 bufs)
            h, c, g = bufs
        else:
            h, c, g, h_last, c_last = _stretches_autograd(cell, x_d, h0[d], c0_d, params, steps,
                                                          replay, train=x_d.is_cuda)
        if x.is_packed:  # each sequence's final state: at its own last step
            h_last, c_last = routes.final_states(h[None], None if c is None else c[None],
                                                 x.lengths)
            h_last, c_last = h_last[0], None if c_last is None else c_last[0]
        if d == 1:  # back to input positions
            h, c = (None if s is None else routes.reverse_within_lengths(s, lengths)
                    for s in (h, c))
            g = None if g is None else routes.reverse_gates_within_lengths(g, lengths)
            if in_place:
                for name, s, dest in zip(("h", "c", "gates"), (h, c, g), out, strict=True):
                    if dest is not None and name in want:
                        dest[1].copy_(s)
        hs.append(h)
        cs.append(c)
        gs.append(g)
        h_ns.append(h_last)
        c_ns.append(c_last)
    # (in place, the forward direction's h is the result's own when h is kept)
    output = routes.layer_output(hs, lstm, layer, x, in_place and "h" in want)
    if in_place:
        states = LayerStates(*(s if name in want else None
                               for name, s in zip(("h", "c", "gates"), out, strict=True)))
    else:
        states = LayerStates(*(torch.stack(s) if name in want else None
                               for name, s in zip(("h", "c", "gates"), (hs, cs, gs), strict=True)))
    return LayerRun(output, torch.stack(h_ns), torch.stack(c_ns) if cell.has_c else None, states)


def _stretches(T: int, steps: StepEdits) -> List[Tuple[str, int, int]]:
    """[("kernel" or "steps", start, stop)]: the edited steps one by one, the fused kernel
    between and after them (stretches shorter than MIN_KERNEL_STRETCH step by step too)."""
    out, start = [], 0
    for k in sorted(steps.steps):
        if k - start >= MIN_KERNEL_STRETCH:
            out.append(("kernel", start, k))
            start = k
        if out and out[-1][0] == "steps" and out[-1][2] == start:
            out[-1] = ("steps", out[-1][1], k + 1)
        else:
            out.append(("steps", start, k + 1))
        start = k + 1
    if start < T:
        out.append(("kernel" if T - start >= MIN_KERNEL_STRETCH else "steps", start, T))
    return out


def _stretches_in_place(cell, x, h0, c0, params, steps: StepEdits, replay: bool, bufs):
    """One direction by stretches, written into bufs=(h, c, gates) (processing order; c and
    gates None where the cell has none)."""
    h, c, g = bufs
    h_t, c_t = h0, c0
    for kind, a, b in _stretches(x.shape[0], steps):
        part = (h[a:b], None if c is None else c[a:b], None if g is None else g[:, a:b])
        if kind == "kernel":
            h_seg, h_t, c_t = routes.direction_kernel(x[a:b], h_t, c_t, params, cell=cell)
            h[a:b].copy_(h_seg)
            if replay:
                c_prev = None if c is None else (c[a - 1] if a else c0)
                cell.replay_in_place(x[a:b], h[a:b], h[a - 1] if a else h0, c_prev, params,
                                     LayerStates(None, *part[1:]), {"c", "gates"})
        else:
            cell.steps_in_place(x[a:b], h_t, c_t, params, part, steps.window(a, b))
            h_t, c_t = h[b - 1], None if c is None else c[b - 1]
    return h_t, c_t


def _stretches_autograd(cell, x, h0, c0, params, steps: StepEdits, replay: bool, train: bool):
    """One direction by stretches, with autograd: h, c, gates (processing order; None where the
    cell has none), last (h, c)."""
    hs, cs, gs = [], [], []
    h_t, c_t = h0, c0
    G, H = len(cell.gate_names), (c0 if cell.has_c else h0).shape[-1]
    for kind, a, b in _stretches(x.shape[0], steps):
        if kind == "kernel":
            h_prev, c_prev = h_t, c_t
            h_seg, h_t, c_t = routes.direction_kernel(x[a:b], h_prev, c_prev, params, train,
                                                      cell=cell)
            c_seg, g_seg = cell.replay(x[a:b], h_seg, h_prev, c_prev, params, None,
                                       {"c", "gates"}) if replay else (None, None)
            if c_seg is None and cell.has_c:  # states not kept: placeholders of the right shape
                c_seg = h_seg.new_zeros(b - a, *c0.shape)
            if g_seg is None and G:
                g_seg = h_seg.new_zeros(G, b - a, x.shape[1], H)
        else:
            h_seg, c_seg, g_seg = cell.steps_autograd(x[a:b], h_t, c_t, params,
                                                      steps.window(a, b))
            h_t, c_t = h_seg[-1], None if c_seg is None else c_seg[-1]
        hs.append(h_seg)
        cs.append(c_seg)
        gs.append(g_seg)
    return (torch.cat(hs), torch.cat(cs) if cell.has_c else None,
            torch.cat(gs, dim=1) if G else None, h_t, c_t)
