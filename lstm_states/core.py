"""Every layer's h, c and gates at every time step, exactly as ``torch.nn.LSTM`` computes them.

Shape legend used in the comments of this module:
    L layers, D directions (1 or 2), T time steps, B batch, I input features,
    H hidden size (``hidden_size``), P projection size (``proj_size``),
    H_out = P if proj_size > 0 else H.

How it works. ``nn.LSTM`` hands back the top layer's h at every step (``output``) and every
layer's state at the last step (``h_n``, ``c_n``). To get the rest, ``capture`` runs PyTorch's
own fused LSTM kernel one layer at a time, with the module's own parameters and called as
nn.LSTM calls it: its output is that layer's h_t for every t, bit for bit what nn.LSTM computes
inside. Since h_{t-1} is then known for every t, all four gates come out of one batched matrix
product, and c_t out of the elementwise recurrence c_t = f_t * c_{t-1} + i_t * g_t. Nothing is
copied out of the module: gradients reach its parameters, and the module is never changed.

``capture`` is four named steps: ``_to_time_major`` (checks, then the input as the layers see
it), ``_run_layers`` (each layer by one *route*, dropout between layers), then
``_zero_past_the_ends`` and ``_to_caller_layout``. A route computes one layer
(``routes.py``): ``autograd``, ``kernel`` and ``stepwise`` on any device, ``cuda`` in
``_cuda.py``, which also replays whole calls from CUDA graphs (``cuda_graph``). ``choose_route``
picks one in one place; ``capture(..., route=...)`` names one instead.

nn.GRU and nn.RNN go through the same steps and routes: what differs (the fused kernel, the
fields, how the gates are replayed from h) is the module's cell description (``cells.py``);
a GRU's r, z and n depend only on x_t and h_{t-1}, so they come out of batched products with no
recurrence at all. The result is a ``GRUStates`` / ``RNNStates``, the module's ``(output, h_n)``.

Memory: capturing everything keeps h (L*D*T*B*H_out), c (L*D*T*B*H) and the gates
(4*L*D*T*B*H) elements, that is ``L * D * T * B * (H_out + 5 * H) * dtype_bytes`` bytes; a
2-layer, H=256 LSTM over T=1000 steps with B=64 in float32 keeps about 0.8 GB. ``fields=`` and
``layers=`` keep less, and the work no kept field needs is not done.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import _cuda, cells, edits, routes
from .edits import Edit
from .routes import LayerStates, Seq

__all__ = ["LSTMStates", "GRUStates", "RNNStates", "capture", "LayerwiseLSTM", "memory_bytes", "choose_route", "Edit",
           "InputError", "InputTypeError", "NotATensorError", "FIELDS", "GATE_NAMES", "ROUTES"]

GATE_NAMES = ("i", "f", "g", "o")  # PyTorch's gate order (an LSTM's; a GRU's: r, z, n)
FIELDS = ("h", "c", "gates")  # the states capture can keep (an LSTM's; a GRU's: h, gates)

ROUTES: Dict[str, Callable] = {
    "autograd": routes.autograd,  # differentiable: fused kernel per layer, gates and c replayed
    "kernel": routes.kernel,  # the same, no autograd, written in place
    "stepwise": routes.stepwise,  # no autograd, no kernel: step by step in place (CPU)
    "cuda": _cuda.route,  # the kernel route with batched products and the Triton kernel (GPU)
}
ROUTE_NAMES = (*ROUTES, "cuda_graph")  # cuda_graph: the cuda route replayed from a CUDA graph

# Without autograd, on CPU, ``capture`` computes a layer step by step (route ``stepwise``) once
# the per-step matrix product is big enough to outweigh the per-step Python overhead: there,
# doing the cell's work once beats the fused kernel plus a batched replay of its gates. From
# which B * H on is the cell's ``stepwise_from`` (cells.py: 4096 for the LSTM, 2048 for the GRU;
# an RNN keeps only h, the kernel's own, so it never replays).


# ----------------------------------------------------------------------------------------------
# errors: each is also the type nn.LSTM raises for the same input, so that code written for
# nn.LSTM (``except RuntimeError``) catches it


class InputError(ValueError, RuntimeError):
    """A bad input or hx value (a size, a shape, no steps, a device). A ValueError, and a
    RuntimeError as nn.LSTM raises for the same input."""


class InputTypeError(TypeError, ValueError, RuntimeError):
    """A bad dtype, or an hx that is not a pair. A TypeError, and a ValueError (input dtype) or
    RuntimeError (hx) as nn.LSTM raises for the same input."""


class NotATensorError(TypeError, AttributeError):
    """An input or hx entry that is not a tensor. A TypeError, and an AttributeError as nn.LSTM
    raises for the same input."""


# ----------------------------------------------------------------------------------------------
# the result

_FROM_ITERABLE = object()  # a result type given one iterable, as torch rebuilds tuples: type(t)(items)


class _States(tuple):
    """What LSTMStates, GRUStates and RNNStates share: the module's own result tuple with every
    layer's states as read-only attributes. A subclass names its module's final states
    (``_FINAL``, in the tuple after ``output``), its per-step states (``_STATES``) and gates."""

    _MODULE = "nn.LSTM"
    _FINAL: Tuple[str, ...] = ("h_n", "c_n")
    _STATES: Tuple[str, ...] = ("h", "c", "gates")
    GATES: Tuple[str, ...] = GATE_NAMES
    _META = ("lengths", "batch_first", "layers", "num_directions")

    @classmethod
    def _new(cls, output, finals: tuple, states: dict, lengths, batch_first, layers,
             num_directions):
        self = super().__new__(cls, (output, finals if len(finals) > 1 else finals[0]))
        kept = next((s for s in states.values() if s is not None), None)
        if layers is None:
            layers = range(kept.shape[0]) if kept is not None else ()
        if num_directions is None and kept is not None:
            num_directions = kept.shape[1]
        self.__dict__.update(**states, lengths=lengths, batch_first=batch_first,
                             layers=tuple(int(k) for k in layers),
                             num_directions=None if num_directions is None else int(num_directions))
        return self

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only; make a changed copy with"
                             f" states._replace({name}=...)")

    @property
    def output(self) -> Union[Tensor, PackedSequence]:
        return self[0]

    @property
    def num_layers(self) -> int:
        """How many layers' states are kept (``len(layers)``)."""
        return len(self.layers)

    def _finals(self) -> dict:
        return dict(zip(self._FINAL, self[1], strict=True)) if len(self._FINAL) > 1 else \
            {self._FINAL[0]: self[1]}

    def _asdict(self) -> dict:
        """Every field by name (as namedtuple's ``_asdict``)."""
        return dict(output=self[0], **self._finals(),
                    **{k: self.__dict__[k] for k in self._STATES + self._META})

    def _replace(self, **changes):
        """A copy with some fields replaced (as namedtuple's ``_replace``)."""
        unknown = set(changes) - set(self._asdict())
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)}; fields:"
                            f" {list(self._asdict())}")
        return type(self)(**{**self._asdict(), **changes})

    def __reduce__(self):
        return _rebuild, (self._asdict(), type(self))

    def __repr__(self) -> str:
        def shape(t):
            if t is None:
                return "None"
            if isinstance(t, PackedSequence):
                return f"PackedSequence(data={tuple(t.data.shape)})"
            return f"({', '.join(str(s) for s in t.shape)})"
        parts = [f"{k}={shape(v)}" for k, v in self._asdict().items()
                 if k in ("output", *self._FINAL, *self._STATES)]
        return f"{type(self).__name__}({', '.join(parts)}, layers={self.layers})"

    def gate(self, name: str) -> Tensor:
        """One gate by name (``GATES``): (len(layers), D, T, B, H)."""
        if not self.GATES:
            raise ValueError(f"an {self._MODULE} has no gates: h is its only state")
        if name not in self.GATES:
            raise ValueError(f"gate name must be one of {self.GATES}, got {name!r}")
        if self.gates is None:
            raise ValueError("the gates were not kept: capture(..., fields=(..., 'gates'))")
        return self.gates[:, :, self.GATES.index(name)]

    def _map(self, fn: Callable[[Tensor], Tensor]):
        """A copy with ``fn`` applied to every tensor (lengths stay on the CPU)."""
        output = self[0]
        if isinstance(output, PackedSequence):
            data = fn(output.data)  # (the indices go where the data goes, as PackedSequence.to)
            output = PackedSequence(data, output.batch_sizes, *(
                None if i is None else i.to(data.device)
                for i in (output.sorted_indices, output.unsorted_indices)))
        else:
            output = fn(output)
        changes = {k: None if self.__dict__[k] is None else fn(self.__dict__[k])
                   for k in self._STATES}
        finals = {k: fn(v) for k, v in self._finals().items()}
        return self._replace(output=output, **finals, **changes)

    def to(self, *args, **kwargs):
        """A copy with every tensor's ``.to(*args, **kwargs)`` (device, dtype)."""
        return self._map(lambda t: t.to(*args, **kwargs))

    def cpu(self):
        """A copy with every tensor on the CPU."""
        return self._map(lambda t: t.cpu())

    def detach(self):
        """A copy with every tensor detached from the autograd graph."""
        return self._map(lambda t: t.detach())


class LSTMStates(_States):
    """Every state of one LSTM call: the tuple ``(output, (h_n, c_n))`` that nn.LSTM returns,
    carrying every layer's states as attributes.

    As a tuple it is exactly nn.LSTM's result wherever PyTorch looks: ``output, (h_n, c_n) =
    states``, ``states[0]``, ``torch.testing.assert_close(states, lstm(x))``, pytree flattening
    (``torch.func``), pickling and ``==`` behave as on nn.LSTM's own tuple. Read-only; make a
    changed copy with ``states._replace(h=...)``.

    Rebuilt from one iterable, as PyTorch rebuilds a tuple (``type(states)(items)``, e.g. in
    nn.DataParallel's gather), it holds the items ``(output, (h_n, c_n))`` and nothing else: the
    per-layer states are not in the tuple, so h, c, gates, lengths, batch_first and
    num_directions are None and layers is (), unless given as keywords. (``copy``, pickling and
    pytree's rebuild keep everything.)

    Attributes:
        output: what ``nn.LSTM`` returns first: (T, B, D*H_out), (B, T, D*H_out) if
            batch_first, (T, D*H_out) unbatched, or a PackedSequence for packed input.
        h_n: (L*D, B, H_out), or (L*D, H_out) unbatched: each layer's and direction's final h.
        c_n: (L*D, B, H), or (L*D, H) unbatched: each layer's and direction's final c.
        h: (len(layers), D, T, B, H_out), always time-major: h_t of every kept layer; for the
            reverse direction index t is input position t (as in ``output[t, :, H_out:]``).
            None if not kept (``fields``).
        c: (len(layers), D, T, B, H): the cell state c_t; None if not kept.
        gates: (len(layers), D, 4, T, B, H): the gates after their activations, in PyTorch's
            order i, f, g, o; None if not kept.
        layers: the kept layers' indices: ``h[k]`` is layer ``layers[k]``.
        lengths: (B,) int64 on the CPU for packed input, in the caller's batch order (as
            ``pad_packed_sequence`` returns it); None otherwise. h, c and gates are zero past
            each sequence's end.
        batch_first: how ``output`` is laid out (h, c and gates are time-major regardless);
            None if not known (not given).
        num_directions: D; None if not known (neither given nor read from a kept state).
    """

    def __new__(cls, output, h_n: Tensor = _FROM_ITERABLE, c_n: Tensor = _FROM_ITERABLE,
                h: Optional[Tensor] = None, c: Optional[Tensor] = None,
                gates: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
                batch_first: Optional[bool] = None, layers: Optional[Sequence[int]] = None,
                num_directions: Optional[int] = None):
        if h_n is _FROM_ITERABLE and c_n is _FROM_ITERABLE:  # LSTMStates(iterable), as tuple(...)
            items = tuple(output)
            if len(items) != 2 or not isinstance(items[1], (tuple, list)) or len(items[1]) != 2:
                got = (f"{len(items)} items" if len(items) != 2 else
                       f"a {type(items[1]).__name__} as the second item")
                raise TypeError("LSTMStates(iterable) needs nn.LSTM's result, two items"
                                f" (output, (h_n, c_n)); got {got}")
            output, (h_n, c_n) = items
        elif h_n is _FROM_ITERABLE or c_n is _FROM_ITERABLE:
            raise TypeError("LSTMStates needs output, h_n and c_n, or one iterable"
                            " (output, (h_n, c_n))")
        return cls._new(output, (h_n, c_n), dict(h=h, c=c, gates=gates), lengths, batch_first,
                        layers, num_directions)

    @property
    def h_n(self) -> Tensor:
        return self[1][0]

    @property
    def c_n(self) -> Tensor:
        return self[1][1]


class _HiddenStates(_States):
    """GRUStates and RNNStates: the module's ``(output, h_n)`` with the states as attributes."""

    _FINAL = ("h_n",)

    @classmethod
    def _items(cls, output, h_n):
        if h_n is _FROM_ITERABLE:  # rebuilt from one iterable, as tuple(...)
            items = tuple(output)
            if len(items) != 2 or not isinstance(items[1], Tensor):
                got = (f"{len(items)} items" if len(items) != 2 else
                       f"a {type(items[1]).__name__} as the second item")
                raise TypeError(f"{cls.__name__}(iterable) needs {cls._MODULE}'s result, two"
                                f" items (output, h_n); got {got}")
            output, h_n = items
        return output, (h_n,)

    @property
    def h_n(self) -> Tensor:
        return self[1]


class GRUStates(_HiddenStates):
    """Every state of one GRU call: the tuple ``(output, h_n)`` that nn.GRU returns, carrying
    every layer's states as attributes; otherwise as :class:`LSTMStates` (read-only,
    ``_replace``, ``.to/.cpu/.detach``, pytree, pickling, rebuilt from one iterable).

    Attributes:
        output, h_n: what ``nn.GRU`` returns, (T, B, D*H) etc. and (L*D, B, H).
        h: (len(layers), D, T, B, H): h_t of every kept layer, time-major, input positions.
        gates: (len(layers), D, 3, T, B, H): r, z, n after their activations, in PyTorch's
            order, with n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn)).
        layers, lengths, batch_first, num_directions: as for LSTMStates.
    """

    _MODULE, _STATES, GATES = "nn.GRU", ("h", "gates"), ("r", "z", "n")

    def __new__(cls, output, h_n: Tensor = _FROM_ITERABLE, h: Optional[Tensor] = None,
                gates: Optional[Tensor] = None, lengths: Optional[Tensor] = None,
                batch_first: Optional[bool] = None, layers: Optional[Sequence[int]] = None,
                num_directions: Optional[int] = None):
        output, finals = cls._items(output, h_n)
        return cls._new(output, finals, dict(h=h, gates=gates), lengths, batch_first, layers,
                        num_directions)


class RNNStates(_HiddenStates):
    """Every state of one nn.RNN call (tanh or relu): the tuple ``(output, h_n)`` that nn.RNN
    returns, with ``h`` (len(layers), D, T, B, H) as an attribute; otherwise as GRUStates."""

    _MODULE, _STATES, GATES = "nn.RNN", ("h",), ()

    def __new__(cls, output, h_n: Tensor = _FROM_ITERABLE, h: Optional[Tensor] = None,
                lengths: Optional[Tensor] = None, batch_first: Optional[bool] = None,
                layers: Optional[Sequence[int]] = None, num_directions: Optional[int] = None):
        output, finals = cls._items(output, h_n)
        return cls._new(output, finals, dict(h=h), lengths, batch_first, layers, num_directions)


def _rebuild(fields: dict, cls: type = LSTMStates) -> _States:
    return cls(**fields)


# pytree: a result flattens to exactly the leaves of the module's own tuple, so torch.func and
# friends see the same values; it rebuilds as a result of its type holding those
# (torch 2.1 has only the private _register_pytree_node, without serialized_type_name)
def _register(cls, flatten, unflatten):
    public = getattr(pytree, "register_pytree_node", None)
    if public is None:
        pytree._register_pytree_node(cls, flatten, unflatten)
    else:
        public(cls, flatten, unflatten, serialized_type_name=f"lstm_states.{cls.__name__}")


_register(
    LSTMStates,
    lambda s: ([s[0], s[1]], (s.batch_first, s.num_directions)),
    lambda children, ctx: LSTMStates(children[0], *children[1], batch_first=ctx[0],
                                     num_directions=ctx[1]),
    )
for _cls in (GRUStates, RNNStates):
    _register(
        _cls,
        lambda s: ([s[0], s[1]], (s.batch_first, s.num_directions)),
        functools.partial(lambda cls, children, ctx: cls(children[0], children[1],
                                                         batch_first=ctx[0], num_directions=ctx[1]),
                          _cls))

# the result type of each cell type (cells.CellType.name)
RESULTS = {"LSTM": LSTMStates, "GRU": GRUStates, "RNN": RNNStates}


def memory_bytes(num_layers: int, num_directions: int, steps: int, batch: int, hidden_size: int,
                 proj_size: int = 0, dtype: torch.dtype = torch.float32, *,
                 fields: Optional[Iterable[str]] = None,
                 cell: Union[str, nn.RNNBase] = "LSTM") -> int:
    """Bytes of the states one capture keeps: num_layers (the kept layers) * D * T * B *
    (the widths of the kept fields) * itemsize.

    The widths per step: an LSTM's h is H_out (proj_size or H), c is H and the gates i, f, g, o
    4H; a GRU's h is H and its gates r, z, n 3H; an RNN's h (its only state) is H. ``cell`` is
    "LSTM" (the default), "GRU" or "RNN", or the nn.LSTM / nn.GRU / nn.RNN itself (only its
    kind is read; the sizes are the arguments). ``fields``: those capture keeps (None: every
    field of the cell), checked as capture checks them.

        memory_bytes(2, 1, 100, 32, 64)                 # an LSTM, everything: (64 + 5*64) wide
        memory_bytes(2, 1, 100, 32, 64, cell="GRU")     # h and r, z, n: (64 + 3*64) wide
        memory_bytes(2, 1, 100, 32, 64, cell=rnn)       # h: 64 wide
    """
    if isinstance(cell, str):
        kinds = {"LSTM": cells.LSTM, "GRU": cells.GRU, "RNN": cells.RNN_TANH}
        if cell.upper() not in kinds:
            raise ValueError(f'cell must be "LSTM", "GRU", "RNN" or such a module, got {cell!r}')
        kind = kinds[cell.upper()]
    else:
        kind = cells.of(cell)
        if kind is None:
            raise TypeError("cell must be \"LSTM\", \"GRU\", \"RNN\" or an nn.LSTM, nn.GRU or"
                            f" nn.RNN, got {type(cell).__name__}")
    if proj_size > 0 and kind is not cells.LSTM:
        raise ValueError(f"proj_size is an nn.LSTM's; an nn.{kind.name} has none, got"
                         f" proj_size={proj_size}")
    h_out = proj_size if proj_size > 0 else hidden_size
    per_step = {"h": h_out, "c": hidden_size, "gates": kind.rows * hidden_size}
    itemsize = torch.empty((), dtype=dtype).element_size()
    width = sum(per_step[f] for f in check_fields(fields, kind))
    return num_layers * num_directions * steps * batch * width * itemsize


# ----------------------------------------------------------------------------------------------
# input checks: every problem is reported before any computation, with what to do instead


def _check_module(lstm, who: str = "capture()", lstm_only: bool = False) -> cells.CellType:
    """The module's cell type, or a TypeError: an nn.LSTM, nn.GRU or nn.RNN (``lstm_only``:
    an nn.LSTM) whose forward is the class's own (or LayerwiseLSTM's)."""
    cell = cells.of(lstm)
    if cell is None or (lstm_only and cell is not cells.LSTM):
        hint = ""
        if isinstance(lstm, nn.RNNCellBase):
            hint = (f" An nn.{type(lstm).__name__} computes one step you call yourself: its"
                    " state is already every state you get.")
        elif isinstance(lstm, nn.RNNBase):
            hint = f" {type(lstm).__name__} has no cell state or LSTM gates."
        wanted = "a torch.nn.LSTM" if lstm_only else "a torch.nn.LSTM, nn.GRU or nn.RNN"
        raise TypeError(f"{who} needs {wanted}, got {type(lstm).__name__}.{hint}"
                        " Pass an nn.LSTM (or an lstm_states.LayerwiseLSTM)"
                        + ("." if lstm_only else ", an nn.GRU or an nn.RNN."))
    forward = type(lstm).forward
    if forward is not cell.module.forward and forward is not LayerwiseLSTM.forward:
        base = f"nn.{cell.name}"
        raise TypeError(
            f"{who} cannot see inside a {type(lstm).__name__}: it is an {base} subclass with its"
            f" own forward, which may change the weights or the input before {base} runs, and"
            f" capture computes what {base}.forward would, with the module's parameters as they"
            f" are. Capture the {base} that forward really runs, with the weights and input it"
            f" really uses (e.g. build a plain {base}, load those weights, call capture on it).")
    return cell


def check_fields(fields, cell: cells.CellType = cells.LSTM) -> Tuple[str, ...]:
    """The kept fields, checked: a non-empty subset of the cell's fields (a str is one field;
    None: all of them)."""
    if fields is None:
        return cell.fields
    if isinstance(fields, str):
        fields = (fields,)
    try:
        fields = tuple(fields)
    except TypeError:
        raise ValueError(f"fields must be a non-empty collection of {FIELDS}, got"
                         f" {type(fields).__name__}") from None
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        what = f"unknown {unknown}" if unknown else "an empty selection"
        raise ValueError(f"fields must be a non-empty subset of {FIELDS}; got {what}")
    missing = [f for f in fields if f not in cell.fields]
    if missing:
        what = ("no cell state 'c' (c is an LSTM's)" if "c" in missing else
                "no gates (h is its only state)")
        raise ValueError(f"an nn.{cell.name} has {what}; its fields are {cell.fields}, got"
                         f" fields={tuple(fields)}")
    return tuple(f for f in cell.fields if f in fields)  # in the cell's order, once each


def check_layers(lstm: nn.LSTM, layers) -> Tuple[int, ...]:
    """The kept layers, checked: indices in 0..L-1, each once (None: every layer)."""
    L = lstm.num_layers
    if layers is None:
        return tuple(range(L))
    if isinstance(layers, int):
        layers = (layers,)
    layers = tuple(layers)
    bad = [k for k in layers if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < L]
    if bad or not layers or len(set(layers)) != len(layers):
        what = (f"{bad} out of range" if bad else "no layer" if not layers else
                f"a layer twice in {list(layers)}")
        raise ValueError(f"layers must be distinct layer indices in 0..{L - 1} (this module has"
                         f" num_layers={L}), or None for all; got {what}")
    return layers


def _nn_lstm_says(theirs: str, ours: str) -> str:
    """An error message: nn.LSTM's own text for the same input first (so code and tests that match
    nn.LSTM's messages still match), then ours, which says what is wrong and what to do."""
    return f"{theirs} -- {ours}"


# what nn.LSTM / nn.GRU / nn.RNN say for input that is not 2-D or 3-D (torch 2.13)
_DIMS_TEXT = {"LSTM": "LSTM: Expected input to be 2D or 3D, got {}D instead",
              "GRU": "GRU: Expected input to be 2D or 3D, got {}D instead",
              "RNN": "RNN: Expected input to be 2D or 3D, got {}D tensor instead"}


def _check_input(lstm: nn.LSTM, input, cell: cells.CellType = cells.LSTM) -> Tuple[Tensor, bool]:
    """Returns the tensor that carries the data and whether the input is unbatched."""
    if isinstance(input, PackedSequence):
        data = input.data
        if data.dim() != 2:
            raise InputError(f"a PackedSequence's data must be 2-D (sum of lengths, input_size),"
                             f" got shape {tuple(data.shape)}")
        unbatched = False
    elif isinstance(input, Tensor):
        data = input
        if data.dim() not in (2, 3):
            layout = "(B, T, input_size)" if lstm.batch_first else "(T, B, input_size)"
            raise InputError(_nn_lstm_says(
                _DIMS_TEXT[cell.name].format(data.dim()),
                f"input must be 3-D {layout} or 2-D (T, input_size) for one unbatched sequence,"
                f" got {data.dim()}-D input of shape {tuple(data.shape)}"))
        unbatched = data.dim() == 2
        t_dim = 0 if unbatched or not lstm.batch_first else 1
        if data.shape[t_dim] == 0:
            raise InputError(_nn_lstm_says(
                "Expected sequence length to be larger than 0 in RNN",
                "input has no time steps (T = 0); give at least one step"))
    else:
        raise NotATensorError(f"input must be a Tensor or a PackedSequence, got"
                              f" {type(input).__name__}")
    if data.shape[-1] != lstm.input_size:
        raise InputError(_nn_lstm_says(
            f"input.size(-1) must be equal to input_size. Expected {lstm.input_size},"
            f" got {data.shape[-1]}",
            f"input has {data.shape[-1]} features in its last dimension but the {cell.name} was built"
            f" with input_size={lstm.input_size}"))
    weight = lstm.weight_ih_l0
    if data.dtype != weight.dtype:
        ours = (f"input dtype {data.dtype} differs from the {cell.name}'s parameters ({weight.dtype});"
                f" convert one of them, e.g. input.to({weight.dtype})")
        try:  # nn.LSTM's own check words it (torch 2.13: "RNN input dtype (...) does not match
            # weight dtype (...). Convert input: ...", earlier "input must have the type ...")
            nn.RNNBase.check_input(lstm, data[:, None] if unbatched else data,
                                input.batch_sizes if isinstance(input, PackedSequence) else None)
        except ValueError as theirs:
            ours = _nn_lstm_says(str(theirs), ours)
        raise InputTypeError(ours)
    if data.device != weight.device:
        raise InputError(_nn_lstm_says(
            f"Input and parameter tensors are not at the same device, found input tensor at"
            f" {data.device} and parameter tensor at {weight.device}",
            f"input is on {data.device} but the {cell.name}'s parameters are on {weight.device}; move"
            f" one of them, e.g. input.to('{weight.device}')"))
    return data, unbatched


def _check_hx(lstm: nn.LSTM, hx, batch: int, unbatched: bool, data: Tensor, packed: bool) -> None:
    if hx is None:
        return
    want_dim = 2 if unbatched else 3

    def dims_text(dims):  # nn.LSTM checks hx[0]'s and hx[1]'s dims first (not for packed input)
        kind = "unbatched 2-D" if unbatched else "batched 3-D"
        return (f"For {kind} input, hx and cx should also be {want_dim}-D but got"
                f" ({dims[0]}-D, {dims[1]}-D) tensors")

    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        got = type(hx).__name__
        if isinstance(hx, (tuple, list)):
            got += f" of {len(hx)}"
        ours = f"hx must be a pair of tensors (h_0, c_0), as for nn.LSTM; got a {got}"
        if isinstance(hx, (tuple, list)) and len(hx) > 2:
            ours = _nn_lstm_says("lstm expects two hidden states", ours)
        elif (isinstance(hx, Tensor) and not packed and hx.dim() > 0 and len(hx) >= 2
              and hx.dim() - 1 != want_dim):  # h_0 alone, as for a GRU: nn.LSTM reads its rows
            ours = _nn_lstm_says(dims_text((hx.dim() - 1,) * 2), ours)  # hx[0], hx[1] as h, c
        raise InputTypeError(ours)
    for name, t in zip(("h_0", "c_0"), hx, strict=True):
        if not isinstance(t, Tensor):
            raise NotATensorError(f"hx must be a pair of tensors (h_0, c_0); {name} is a"
                                  f" {type(t).__name__}")
    h_out = lstm.proj_size if lstm.proj_size > 0 else lstm.hidden_size
    rows = lstm.num_layers * (2 if lstm.bidirectional else 1)
    dims = (hx[0].dim(), hx[1].dim())
    for k, (name, t, size) in enumerate((("h_0", hx[0], h_out), ("c_0", hx[1], lstm.hidden_size))):
        want = (rows, size) if unbatched else (rows, batch, size)
        if tuple(t.shape) != want:
            last = "proj_size" if name == "h_0" and lstm.proj_size else "hidden_size"
            ours = (f"{name} must have shape {want} (num_layers * num_directions,"
                    f"{'' if unbatched else ' batch,'} {last}), got {tuple(t.shape)}")
            if not packed and dims != (want_dim, want_dim):
                theirs = dims_text(dims)
            else:  # nn.LSTM compares (rows, batch, size), unbatched hx with a batch of 1 inserted
                got = list(t.shape)
                if unbatched:
                    got.insert(1, 1)
                theirs = f"Expected hidden[{k}] size {(rows, batch, size)}, got {got}"
            raise InputError(_nn_lstm_says(theirs, ours))
        if t.dtype != data.dtype:
            raise InputTypeError(f"{name} dtype {t.dtype} differs from the input's ({data.dtype})")
        if t.device != data.device:
            raise InputError(_nn_lstm_says(
                f"Input and hidden tensors are not at the same device, found input tensor at"
                f" {data.device} and hidden tensor at {t.device}",
                f"{name} is on {t.device} but the input is on {data.device}"))


def _check_h0(module: nn.RNNBase, cell: cells.CellType, hx, batch: int, unbatched: bool,
              data: Tensor, packed: bool) -> None:
    """hx of an nn.GRU or nn.RNN: one tensor h_0 (L*D, B, H), or (L*D, H) unbatched."""
    if hx is None:
        return
    if not isinstance(hx, Tensor):
        what = (f"a {type(hx).__name__} (an nn.{cell.name} has no cell state: hx is h_0 alone,"
                " not a pair (h_0, c_0))") if isinstance(hx, (tuple, list)) else \
            f"a {type(hx).__name__}"
        raise NotATensorError(f"hx must be a tensor h_0 for an nn.{cell.name}; got {what}")
    want_dim = 2 if unbatched else 3
    rows = module.num_layers * (2 if module.bidirectional else 1)
    want = (rows, module.hidden_size) if unbatched else (rows, batch, module.hidden_size)
    if tuple(hx.shape) != want:
        ours = (f"h_0 must have shape {want} (num_layers * num_directions,"
                f"{'' if unbatched else ' batch,'} hidden_size), got {tuple(hx.shape)}")
        if not packed and hx.dim() != want_dim:
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            theirs = f"For {kind} input, hx should also be {want_dim}-D but got {hx.dim()}-D tensor"
        else:
            got = list(hx.shape)
            if unbatched:
                got.insert(1, 1)
            theirs = f"Expected hidden size {(rows, 1 if unbatched else batch, module.hidden_size)}, got {got}"
        raise InputError(_nn_lstm_says(theirs, ours))
    if hx.dtype != data.dtype:
        raise InputTypeError(f"h_0 dtype {hx.dtype} differs from the input's ({data.dtype})")
    if hx.device != data.device:
        raise InputError(_nn_lstm_says(
            f"Input and hidden tensors are not at the same device, found input tensor at"
            f" {data.device} and hidden tensor at {hx.device}",
            f"h_0 is on {hx.device} but the input is on {data.device}"))


def _needs_autograd(lstm: nn.LSTM, *tensors) -> bool:
    """Whether autograd records this call: grad mode on, and one of the given tensors or the
    module's parameters requires grad (entries that are not tensors are for ``_check_hx``)."""
    return torch.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad for t in (*tensors, *lstm.parameters()))


def choose_route(lstm: nn.LSTM, input, hx=None, fields: Optional[Iterable[str]] = None,
                 route: Optional[str] = None, exact: bool = False,
                 edits: Optional[Sequence[Edit]] = None) -> str:
    """The route ``capture`` takes for this call: ``route`` if given (checked), else
    ``autograd`` when autograd records the call, ``cuda_graph``/``cuda`` on a GPU, ``stepwise``
    on CPU for large B*H when c or the gates are kept (unless ``exact``: only routes whose
    output, h_n and c_n are PyTorch's kernel's own), else ``kernel``. With ``edits`` this is the
    route of the layers without edits (never a CUDA graph); a value tensor that requires grad,
    or an ``fn`` edit in grad mode, makes autograd record the call. An nn.GRU takes every
    route but ``cuda_graph`` (stepwise for gates from its own ``stepwise_from``), an nn.RNN
    ``autograd``, ``kernel`` or ``cuda``."""
    cell = cells.of(lstm)
    data = input.data if isinstance(input, PackedSequence) else input
    given = hx if isinstance(hx, (tuple, list)) else (hx,)
    values = [getattr(e, name) for e in edits or () if isinstance(e, Edit)
              for name in ("set", "add", "scale")]
    needs_grad = _needs_autograd(lstm, data, *given, *values) or (
        torch.is_grad_enabled() and any(isinstance(e, Edit) and e.fn is not None
                                        for e in edits or ()))
    if route is not None:
        if route not in ROUTE_NAMES:
            raise ValueError(f"route must be one of {ROUTE_NAMES} or None (chosen for you),"
                             f" got {route!r}")
        if needs_grad and route != "autograd":
            raise ValueError(f"route {route!r} computes without autograd, but autograd records"
                             " this call (grad mode on and the input, hx or the LSTM's parameters"
                             " require grad): use route='autograd', or torch.no_grad()")
        if (route == "cuda_graph" and cell is not cells.LSTM) or \
                (route == "stepwise" and cell.stepwise_from is None):
            takes = ("'autograd', 'kernel', 'stepwise' or 'cuda'" if cell.stepwise_from else
                     "'autograd', 'kernel' or 'cuda'")
            raise ValueError(f"route {route!r} is not an nn.{cell.name}'s; it takes {takes}")
        if route == "cuda_graph" and (edits or not _cuda.graphs_possible(lstm, input)):
            raise ValueError("route 'cuda_graph' needs a CUDA tensor input (not packed), no"
                             " dropout at work, no edits and no graph being recorded by the"
                             " caller")
        return route
    if needs_grad:
        return "autograd"
    if data.is_cuda:
        graphs = not edits and cell is cells.LSTM and _cuda.graphs_possible(lstm, input)
        return "cuda_graph" if graphs else "cuda"
    B = int(input.batch_sizes[0]) if isinstance(input, PackedSequence) else \
        (1 if data.dim() == 2 else data.shape[0 if lstm.batch_first else 1])
    replay = {"c", "gates"} & set(check_fields(fields, cell))
    if not exact and replay and cell.stepwise_from is not None and \
            B * lstm.hidden_size >= cell.stepwise_from:
        return "stepwise"
    return "kernel"


# ----------------------------------------------------------------------------------------------
# capture


@torch.compiler.disable
def capture(lstm: Union[nn.LSTM, nn.GRU, nn.RNN], input: Union[Tensor, PackedSequence],
            hx: Union[None, Tensor, Tuple[Tensor, Tensor]] = None, *,
            fields: Optional[Iterable[str]] = None, layers: Optional[Sequence[int]] = None,
            route: Optional[str] = None,
            edits: Optional[Sequence[Edit]] = None) -> Union[LSTMStates, GRUStates, RNNStates]:
    """Runs ``lstm`` on ``input`` and returns every layer's h, c and gates at every step.

    Args:
        lstm: any ``torch.nn.LSTM`` (trained or not, any configuration; not a subclass with a
            forward of its own); never changed. Its own parameters are used, so gradients reach
            them. Or an ``nn.GRU`` (h and the gates r, z, n) or an ``nn.RNN`` (h), the same way.
        input: what you would pass to ``lstm``: (T, B, I), (B, T, I) if batch_first, (T, I)
            unbatched, or a PackedSequence.
        hx: optional (h_0, c_0), shaped as ``nn.LSTM`` expects: (L*D, B, H_out), (L*D, B, H);
            for an nn.GRU or nn.RNN, h_0 alone, (L*D, B, H), as they take it.
        fields: which states to keep, a non-empty subset of ("h", "c", "gates") (a GRU's:
            ("h", "gates"); an RNN's: ("h",)); None keeps all; the others are None on the
            result and not computed (``fields=("h",)`` is one fused kernel call per layer,
            little more than the module itself).
        layers: which layers to keep (indices; None: all). ``h`` is then
            (len(layers), D, T, B, H_out) and ``states.layers`` holds the indices.
        route: how to compute (see ``routes.py``): None chooses (``choose_route``);
            "autograd", "kernel", "stepwise", "cuda" or "cuda_graph" force one.
        edits: a list of :class:`lstm_states.Edit`: states to change as the module runs (e.g.
            ``Edit("c", 0, slice(100, None), unit=33, set=0.0)``; a GRU's h, r, z, n, an
            RNN's h). Every field of the result,
            output and h_n / c_n included, then describes the edited run (``edits.py``).

    Returns:
        LSTMStates: the tuple ``(output, (h_n, c_n))`` as ``lstm(input, hx)`` returns it (on
        the CPU bit for bit on every route but ``stepwise``, which is equal within float
        tolerance; on a GPU within float tolerance), with
        ``h`` (len(layers), D, T, B, H_out), ``c`` (..., H) and ``gates`` (len(layers), D, 4, T,
        B, H) as attributes. For an nn.GRU a :class:`GRUStates`, the tuple ``(output, h_n)``
        with ``h`` and ``gates`` (len(layers), D, 3, T, B, H) (r, z, n); for an nn.RNN an
        :class:`RNNStates` with ``h``; the same promise of exactness.

    Raises ValueError (or TypeError) for a bad selection, route or edit, and :class:`InputError`,
    :class:`InputTypeError`, :class:`NotATensorError` for input nn.LSTM would refuse (each also
    the type nn.LSTM raises), before any computation.

    Dropout: in eval mode (or with dropout=0) the result is exact. In training mode with
    ``dropout > 0``, capture draws its own masks (``F.dropout`` with the same p on each layer's
    input but the first, as nn.LSTM does; on CPU, from the same random state, they come out as
    nn.LSTM's own, but nothing in PyTorch promises that, and on CUDA cuDNN draws differently) and
    every returned tensor, ``output`` included, is consistent with those masks.

    Example::

        st = capture(lstm, x, fields=("h",), layers=[0])   # layer 0's h_t only
        st.h[0, 0, t]                                      # (B, H_out) at step t
        edited = capture(lstm, x, edits=[Edit("f", 1, 7, set=0.0)])  # forget gate shut
    """
    cell = _check_module(lstm)
    data, unbatched = _check_input(lstm, input, cell)
    fields, layers = check_fields(fields, cell), check_layers(lstm, layers)
    route = choose_route(lstm, input, hx, fields, route, edits=edits)
    if route == "cuda_graph":
        return _cuda.replay(lstm, input, hx, (fields, layers), lambda inp, h: _compute(
            lstm, inp, h, unbatched, fields, layers, "cuda"))
    return _compute(lstm, input, hx, unbatched, fields, layers, route, edits)


def _compute(lstm: nn.LSTM, input, hx, unbatched: bool, fields: Tuple[str, ...],
             layers: Tuple[int, ...], route: str, edit_list=None) -> _States:
    """capture after its checks: the four steps, by ``route`` (wrapped by the edits route when
    there are edits)."""
    inp = _to_time_major(lstm, input, hx, unbatched)
    run_layer, in_place = ROUTES[route], route != "autograd"
    if edit_list is not None:  # checked against the LSTM and the input before any computation
        plans = edits.plan(lstm, edit_list, inp.x.steps, inp.h0.shape[1], inp.x.lengths,
                           inp.h0.device, in_place)
        run_layer = functools.partial(edits.route, base=run_layer, plans=plans, in_place=in_place)
    with warnings.catch_warnings():
        # on CUDA, per-layer calls use the module's weights in place, not its flat cuDNN buffer
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        # with proj_size, the CPU kernel says once that it falls back from oneDNN (as nn.LSTM does)
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        top, h_n, c_n, states = _run_layers(lstm, inp, fields, layers, run_layer, in_place)
    states = _zero_past_the_ends(states, inp, in_place)
    return _to_caller_layout(lstm, inp, top, h_n, c_n, states, layers)


@dataclass
class _Input:
    """The input as the layers see it (step 1)."""

    x: Seq  # layer 0's input: (T, B, I) time-major, or packed
    like: Optional[PackedSequence]  # the caller's packed input (how to pack), None if a tensor
    h0: Tensor  # (L*D, B, H_out), caller's batch order
    c0: Optional[Tensor]  # (L*D, B, H); None for a GRU or RNN
    unbatched: bool


def _to_time_major(lstm: nn.LSTM, input, hx, unbatched: bool) -> _Input:
    """Step 1: x time-major and batched (T, B, I), or packed as given; hx checked and batched."""
    if isinstance(input, PackedSequence):
        sizes = input.batch_sizes  # (T,) batch size at each step, sorted order
        T, B = len(sizes), int(sizes[0])
        lengths = (sizes[None, :] > torch.arange(B)[:, None]).sum(1)  # (B,) sorted order
        if input.unsorted_indices is not None:
            lengths = lengths[input.unsorted_indices.cpu()]  # caller's order
        x = Seq(packed=input, steps=T, lengths=lengths)
        like = input
    else:
        if unbatched:
            padded = input[:, None]  # (T, 1, I)
        else:
            padded = input.transpose(0, 1) if lstm.batch_first else input  # (T, B, I)
        x, like, B = Seq(padded=padded), None, padded.shape[1]
    data = input.data if like is not None else input
    cell = cells.of(lstm)
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    if cell is not cells.LSTM:  # hx is h_0 alone
        _check_h0(lstm, cell, hx, B, unbatched, data, packed=like is not None)
        if hx is None:
            h0 = data.new_zeros(L * D, B, lstm.hidden_size)
        else:
            h0 = hx[:, None] if unbatched else hx  # (L*D, B, H)
        return _Input(x, like, h0, None, unbatched)
    _check_hx(lstm, hx, B, unbatched, data, packed=like is not None)
    H_out = lstm.proj_size if lstm.proj_size > 0 else lstm.hidden_size
    if hx is None:
        h0 = data.new_zeros(L * D, B, H_out)
        c0 = data.new_zeros(L * D, B, lstm.hidden_size)
    else:
        h0, c0 = (hx[0][:, None], hx[1][:, None]) if unbatched else hx  # (L*D, B, *)
    return _Input(x, like, h0, c0, unbatched)


def _run_layers(lstm: nn.LSTM, inp: _Input, fields: Tuple[str, ...], layers: Tuple[int, ...],
                run_layer: Callable, in_place: bool) -> Tuple[Seq, Tensor, Tensor, LayerStates]:
    """Step 2: each layer by ``run_layer`` (a route), dropout on each layer's input but the
    first.

    Returns the top layer's output Seq, h_n (L*D, B, H_out), c_n (L*D, B, H) (None without a
    cell state) and the kept states: h (len(layers), D, T, B, H_out), c (..., H), gates
    (len(layers), D, G, T, B, H).
    """
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    T, B, H = inp.x.steps, inp.h0.shape[1], lstm.hidden_size
    H_out = inp.h0.shape[-1]
    kept = {layer: k for k, layer in enumerate(layers)}
    G = cells.of(lstm).rows
    shapes = {"h": (D, T, B, H_out), "c": (D, T, B, H), "gates": (D, G, T, B, H)}
    buffers = {f: routes.empty(inp.h0, len(layers), *shapes[f]) if in_place and f in fields else None
               for f in FIELDS}  # (len(layers), ...) per kept field, written in place
    collected: Dict[int, LayerStates] = {}
    want = frozenset(fields)

    def dropout(data: Tensor) -> Tensor:  # drawn on the packed data for packed input, as
        return F.dropout(data, lstm.dropout, training=True)  # nn.LSTM's CPU kernel draws it

    x, h_ns, c_ns = inp.x, [], []
    for layer in range(L):
        if layer > 0 and lstm.dropout > 0 and lstm.training:
            x = x.with_data(dropout, inp.like)
        rows = slice(layer * D, (layer + 1) * D)
        out = None
        if in_place:
            out = LayerStates(*(None if buffers[f] is None or layer not in kept else
                                buffers[f][kept[layer]] for f in FIELDS))
        run = run_layer(lstm, layer, x, inp.h0[rows], None if inp.c0 is None else inp.c0[rows],
                        want if layer in kept else frozenset(), out, inp.like)
        h_ns.append(run.h_n)
        c_ns.append(run.c_n)
        if not in_place and layer in kept:
            collected[layer] = run.states
        x = run.output
    if in_place:
        states = LayerStates(buffers["h"], buffers["c"], buffers["gates"])
    else:
        states = LayerStates(*(torch.stack([getattr(collected[k], f) for k in layers])
                               if f in fields else None for f in FIELDS))
    return x, torch.cat(h_ns), None if inp.c0 is None else torch.cat(c_ns), states


def _zero_past_the_ends(states: LayerStates, inp: _Input, in_place: bool) -> LayerStates:
    """Step 3: for packed input, every kept state is zero past its sequence's end."""
    lengths = inp.x.lengths
    if lengths is None:
        return states
    T = inp.x.steps
    device = inp.h0.device
    mask = (torch.arange(T)[:, None] < lengths[None, :]).to(device, inp.h0.dtype)  # (T, B)
    mask = mask[..., None]  # (T, B, 1)
    if in_place:  # no second copy of everything
        for s in states:
            if s is not None:
                s.mul_(mask)
        return states
    return LayerStates(*(None if s is None else s * mask for s in states))


def _to_caller_layout(lstm: nn.LSTM, inp: _Input, top: Seq, h_n: Tensor, c_n: Tensor,
                      states: LayerStates, layers: Tuple[int, ...]) -> _States:
    """Step 4: output, h_n and c_n in the caller's layout; the states stay time-major; the
    module's result type (LSTMStates, GRUStates, RNNStates)."""
    if inp.like is not None:
        output = top.packed_like(inp.like)  # the kernel's own packed output
    else:
        output = top.padded  # (T, B, D*H_out), never memory that h shares (see the routes)
        if inp.unbatched:
            output, h_n = output[:, 0], h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        elif lstm.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*H_out), a view as nn.LSTM's
    meta = dict(lengths=inp.x.lengths, batch_first=lstm.batch_first, layers=layers,
                num_directions=2 if lstm.bidirectional else 1)
    if c_n is not None:
        return LSTMStates(output, h_n, c_n, *states, **meta)
    cls = RESULTS[cells.of(lstm).name]
    return cls(output, h_n, **{f: getattr(states, f) for f in cls._STATES}, **meta)



# ----------------------------------------------------------------------------------------------


class LayerwiseLSTM(nn.LSTM):
    """An ``nn.LSTM`` whose forward also hands back every layer's states.

    Same constructor arguments, parameter names and state_dict as ``torch.nn.LSTM`` (it *is* an
    nn.LSTM), so weights move between the two with ``load_state_dict``. ``forward`` returns an
    :class:`LSTMStates`, which *is* nn.LSTM's ``(output, (h_n, c_n))`` tuple with the states as
    attributes, so it drops into existing model code unchanged::

        model.lstm = LayerwiseLSTM(256, 512, num_layers=2)
        model.lstm.load_state_dict(old_lstm.state_dict())
        output, (h_n, c_n) = model.lstm(x)      # as before
        states = model.lstm(x)                  # or keep everything
        states.h[0]                             # layer 0's h_t for every t: (D, T, B, H_out)

    Bad input raises errors that are both clear and of the type nn.LSTM raises. To look inside
    an existing model without replacing its modules, see ``capture`` and ``record``.
    """

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM) -> LayerwiseLSTM:
        """A LayerwiseLSTM with the same configuration and a copy of ``lstm``'s weights."""
        _check_module(lstm, "LayerwiseLSTM.from_lstm()", lstm_only=True)
        new = cls(lstm.input_size, lstm.hidden_size, num_layers=lstm.num_layers, bias=lstm.bias,
                  batch_first=lstm.batch_first, dropout=lstm.dropout,
                  bidirectional=lstm.bidirectional, proj_size=lstm.proj_size,
                  device=lstm.weight_ih_l0.device, dtype=lstm.weight_ih_l0.dtype)
        new.load_state_dict(lstm.state_dict())
        new.train(lstm.training)
        return new

    def forward(self, input, hx=None) -> LSTMStates:  # type: ignore[override]
        """Same arguments as ``nn.LSTM.forward``; returns :class:`LSTMStates`."""
        return capture(self, input, hx)
