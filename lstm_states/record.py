"""Record every layer's states of the nn.LSTMs (and nn.GRUs, nn.RNNs) inside a bigger model,
without rewriting it.

Shape legend: L layers, D directions, T steps, B batch, H hidden size, H_out = proj_size or H.

    with record(model) as rec:
        logits = model(tokens, lengths)          # the model runs as usual
    rec["encoder.lstm"]                          # [LSTMStates, ...]: every call, in call order
    rec.one("encoder.lstm")                      # the LSTMStates of its only call
    rec.stitch("decoder.lstm")                   # one-step calls joined into one time axis

Every nn.GRU and nn.RNN is recorded the same way (a GRUStates / RNNStates per call, the
module's own ``(output, h_n)`` returned to the model), with the same promise of bit identity;
``include=nn.GRU`` (or a tuple of types) selects by type.

How it works. Inside the block each selected nn.LSTM gets an instance attribute ``forward``
(so ``nn.Module.__call__``, and with it every user hook, still runs) that calls
``capture(module, input, hx)`` once and returns ``(output, (h_n, c_n))`` from that one
computation, as nn.LSTM's forward would (copies, so that a model changing them in place leaves
the recording alone; a ``LayerwiseLSTM`` keeps returning its LSTMStates). Gradients reach the
module's own parameters through it.

No observer effect. capture runs on a route whose ``output``, ``h_n`` and ``c_n`` are PyTorch's
fused LSTM kernel's own, called one layer at a time exactly as nn.LSTM calls it (the same input
form, packed data for packed input): so on the CPU in eval mode the model computes bit for bit
what it computes without ``record``, for every input form (time-major, batch_first,
bidirectional, proj_size, packed sorted or not, hx given; tested with ``torch.equal``). Where it
is not bit-identical: training mode with dropout on CUDA (cuDNN draws its own masks; capture's
are ``F.dropout``'s), and on CUDA with TF32 on, the recorded c and gates agree with h only to
TF32 precision (the model's own tensors are still the kernel's). In training mode with dropout > 0 the rule is capture's:
capture draws the dropout masks itself (on CPU, from the same random state, the very masks
nn.LSTM would draw) and the returned output is consistent with the recorded states. On
leaving the block, normally or through an exception, the attribute is deleted: the modules are
exactly as before and later calls are plain nn.LSTM calls.

Choices:
- Names are the qualified names of ``model.named_modules()`` ("encoder.lstm"); the model itself,
  if it is an nn.LSTM, is named "". A module reachable under two names is recorded under the
  first, as named_modules lists it. Calls inside the block accumulate in call order, across
  forwards; ``rec.clear()`` drops them (e.g. between batches).
- A model with no nn.LSTM, or an ``include`` that selects none, is an error that names the
  LSTMs available: an empty recording would look like a model that ran nothing.
- Nested or overlapping blocks all record: a call is computed once and appended to every
  active recording that selected the module, under that recording's own name for it. Blocks
  may even be left in any order; the module is restored when the last one is left.
- An nn.LSTM subclass that overrides ``forward`` (other than LayerwiseLSTM), or a module whose
  ``forward`` another tool already replaced on the instance, is refused with an error: recording
  it would silently bypass that code. Leave it out with ``include``.
- Under ``torch.compile`` the patched forward runs as one eager call (``torch.compiler.disable``;
  dynamo does not trace an nn.LSTM anyway unless ``torch._dynamo.config.allow_rnn`` is on), so
  a compiled model records as an eager one, bit for bit. With ``allow_rnn`` on and autograd on,
  a model compiled by inductor runs inductor's own LSTM code (measured up to 1.8e-7 off
  nn.LSTM's kernel in float32), inside the block nn.LSTM's kernel, and after the block dynamo
  keeps the code it compiled for the block (``torch._dynamo.reset()`` compiles afresh): the
  results inside and after the block can differ by that much from before it, so ``record``
  warns when ``allow_rnn`` is on.
- Inside the block, save weights with ``state_dict()`` (unchanged), not by pickling or
  deep-copying the whole model: the temporary ``forward`` attribute would travel with it.

Memory is yours to manage on long runs. Each call keeps ``memory_bytes(L, D, T, B, H, P)``
bytes of h, c and gates; with ``detach=False`` the recorded tensors also keep the autograd graph
of the forward alive as long as the Recording lives. Record only what you need (``include=``
names or a predicate), pass ``detach=True`` to record tensors cut from the graph (what the model
gets back is unchanged and still differentiable), ``to_cpu=True`` to record CPU copies (frees
GPU memory once the forward's graph is gone), and call ``rec.clear()`` between batches.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from . import cells
from .core import (
    Edit,
    LayerwiseLSTM,
    LSTMStates,
    _States,
    capture,
    check_fields,
    check_layers,
    choose_route,
)

__all__ = ["record", "Recording"]

Include = Union[None, str, Iterable[str], type, Tuple[type, ...],
                Callable[[str, nn.Module], bool]]


class Recording(Mapping):
    """What ``record`` saw: for each selected nn.LSTM, by qualified name, every call's states.

    ``rec[name]`` is a list of :class:`LSTMStates`, one per call in call order (empty if the
    module was selected but not called). Every method that takes ``name`` also accepts none
    when exactly one module was selected.
    """

    def __init__(self, names: Iterable[str], detach: bool = False, to_cpu: bool = False,
                 fields: Optional[Iterable[str]] = None, layers: Optional[Iterable[int]] = None,
                 edits: Optional[Dict[str, List[Edit]]] = None):
        self.names: Tuple[str, ...] = tuple(names)
        """The selected modules' qualified names, in ``named_modules`` order."""
        self.detach = detach
        self.to_cpu = to_cpu
        self.fields = None if fields is None else tuple(fields)
        """What each call keeps (capture's ``fields``; None: every state each module has)."""
        self.layers = None if layers is None else tuple(layers)
        """Which layers each call keeps (capture's ``layers``; None: all)."""
        self.edits: Dict[str, List[Edit]] = dict(edits or {})
        """The edits each module's calls run with, by qualified name."""
        self.calls: List[Tuple[str, _States]] = []
        """Every recorded call as (name, states), in the order the calls happened."""

    # --- Mapping: name -> list of LSTMStates ---
    def __getitem__(self, name: str) -> List[_States]:
        if name not in self.names:
            raise KeyError(f"{name!r} was not recorded; recorded modules: {_listing(self.names)}")
        return [states for n, states in self.calls if n == name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n!r}: {len(self[n])} call{'' if len(self[n]) == 1 else 's'}"
                           for n in self.names)
        return f"Recording({{{counts}}})"

    def clear(self) -> None:
        """Forgets every recorded call (the selection stays), e.g. between batches."""
        self.calls.clear()

    def _name(self, name: Optional[str]) -> str:
        if name is None:
            if len(self.names) != 1:
                raise ValueError(f"this recording holds {len(self.names)} modules; say which:"
                                 f" {_listing(self.names)}")
            return self.names[0]
        self[name]  # KeyError naming the recorded modules if unknown
        return name

    def one(self, name: Optional[str] = None) -> _States:
        """The states of the only call of ``name``; an error if it was called 0 or 2+ times."""
        name = self._name(name)
        calls = self[name]
        if len(calls) != 1:
            raise ValueError(f"{name!r} was called {len(calls)} times inside the record block;"
                             f" use rec[{name!r}][k] for call k, or rec.stitch({name!r}) to join"
                             " the calls along time")
        return calls[0]

    def stitch(self, name: Optional[str] = None) -> _States:
        """Joins the calls of ``name`` (one step, or a chunk of steps, each) along time.

        For a decoder that calls its LSTM (GRU, RNN) once per token. ``h`` (L, D, ΣT, B, H_out),
        ``c``, ``gates`` and ``output`` are the calls' own, concatenated in call order; ``h_n``
        and ``c_n`` are the last call's. Whatever (h_0, c_0) each call started from is not checked:
        the result is what each call computed. Needs tensor (not packed) inputs, one direction,
        and the same batch, layers and sizes in every call.
        """
        name = self._name(name)
        calls = self[name]
        if not calls:
            raise ValueError(f"{name!r} was not called inside the record block: nothing to stitch")
        first = calls[0]
        if any(getattr(first, f) is None for f in first._STATES):
            kept = tuple(f for f in first._STATES if getattr(first, f) is not None)
            *rest, last = first._STATES
            joins = f"{', '.join(rest)} and {last}" if rest else last
            raise ValueError(f"stitch joins {joins}; this recording kept only"
                             f" {kept}: record(..., fields={first._STATES})")
        if first.num_directions != 1:
            raise ValueError(f"{name!r} is bidirectional: each call's reverse direction runs over"
                             " that call's own steps only, so the calls do not join into one"
                             f" reverse pass; look at the calls one by one with rec[{name!r}][k]")
        for k, states in enumerate(calls):
            if states.lengths is not None:
                raise ValueError(f"call {k} of {name!r} had a PackedSequence input; stitch joins"
                                 f" calls on plain tensors; look at rec[{name!r}][{k}] instead")
            same = (states.h.shape[:2] + states.h.shape[3:] == first.h.shape[:2] + first.h.shape[3:]
                    and states.output.dim() == first.output.dim()
                    and states.batch_first == first.batch_first)
            if not same:
                raise ValueError(f"call {k} of {name!r} has h of shape {tuple(states.h.shape)}"
                                 f" but call 0 has {tuple(first.h.shape)} (L, D, T, B, H_out):"
                                 " only calls with the same batch and sizes can be joined")
        if first.output.dim() == 2:  # unbatched: (T, D*H_out)
            t_dim = 0
        else:  # (T, B, D*H_out), or (B, T, D*H_out) if batch_first
            t_dim = 1 if first.batch_first else 0
        # h (L, D, ΣT, B, H_out), c (L, D, ΣT, B, H): time is dim 2; gates (L, D, G, ΣT, B, H): 3
        joined = {f: torch.cat([getattr(s, f) for s in calls], dim=3 if f == "gates" else 2)
                  for f in first._STATES}
        return first._replace(output=torch.cat([s.output for s in calls], dim=t_dim),
                              **calls[-1]._finals(), **joined, lengths=None)

    # --- called by the patched forwards ---
    def _append(self, name: str, states: _States) -> None:
        if self.detach:
            states = states.detach()
        if self.to_cpu:  # copies even on the CPU: the recording owns them
            states = states.to("cpu", copy=True)
        self.calls.append((name, states))


def _listing(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(repr(n) for n in names) if names else "(none)"


class _RecordingForward:
    """The instance attribute ``forward`` of a module being recorded."""

    def __init__(self, module: nn.RNNBase):
        self.module = module
        self.returns_states = isinstance(module, LayerwiseLSTM)
        self.sinks: List[Tuple[Recording, str]] = []  # every active recording, its name for us

    def _selection(self):
        """What the active recordings keep, together: the union of their fields and layers."""
        if any(r.fields is None for r, _ in self.sinks):
            fields = None
        else:
            fields = {f for r, _ in self.sinks for f in r.fields}
        if any(r.layers is None for r, _ in self.sinks):
            return fields, None
        return fields, sorted({k for r, _ in self.sinks for k in r.layers})

    @torch.compiler.disable  # one eager call under torch.compile (see the README)
    def __call__(self, input, hx=None):
        fields, layers = self._selection()
        edits = [e for r, name in self.sinks for e in r.edits.get(name, ())] or None
        # a route whose output, h_n and c_n are PyTorch's kernel's own: no observer effect
        route = choose_route(self.module, input, hx, fields, exact=True, edits=edits)
        states = capture(self.module, input, hx, fields=fields, layers=layers, route=route,
                         edits=edits)
        for recording, name in self.sinks:
            recording._append(name, _narrow(states, recording))
        if self.returns_states:
            return states
        # the caller gets tensors of its own, as from nn.LSTM: a model that changes them in place
        # (out += x) leaves the recording as the LSTM computed it
        output = states.output
        if isinstance(output, PackedSequence):
            output = output._replace(data=output.data.clone())
        else:
            output = output.clone()
        if isinstance(states, LSTMStates):
            return output, (states.h_n.clone(), states.c_n.clone())
        return output, states.h_n.clone()  # nn.GRU's and nn.RNN's (output, h_n)


def _narrow(states: _States, recording: Recording) -> _States:
    """The part of one computation a recording asked for (when nested recordings differ)."""
    fields = states._STATES if recording.fields is None else recording.fields
    changes = {f: None for f in states._STATES if f not in fields}
    if recording.layers is not None and recording.layers != states.layers:
        index = [states.layers.index(k) for k in recording.layers]
        changes.update({f: getattr(states, f)[index] for f in states._STATES if f in fields})
        changes["layers"] = recording.layers
    return states._replace(**changes) if changes else states


def _is_types(include) -> bool:
    """Whether ``include`` selects by type: a class, or a non-empty tuple/list of classes."""
    if isinstance(include, type):
        return True
    return isinstance(include, (tuple, list)) and len(include) > 0 and \
        all(isinstance(t, type) for t in include)


def _select(model: nn.Module, include: Include) -> List[Tuple[str, nn.RNNBase]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"record() needs an nn.Module, got {type(model).__name__}")
    lstms = [(n, m) for n, m in model.named_modules() if cells.of(m) is not None]
    if not lstms:
        steps = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.RNNCellBase)]
        hint = ""
        if steps:  # e.g. " (it has '0': GRUCell, ...)": a cell's result is already every state
            hint = (" (it has " + ", ".join(f"{n!r}: {type(m).__name__}" for n, m in steps)
                    + "; a cell runs one step of one layer, so what it returns is already every"
                    " state)")
        raise ValueError(f"record() found no nn.LSTM, nn.GRU or nn.RNN in this"
                         f" {type(model).__name__}{hint}: nothing to record")
    available = dict(lstms)
    if include is None:
        chosen = lstms
    elif _is_types(include):  # include=nn.GRU, or (nn.GRU, nn.RNN)
        types = (include,) if isinstance(include, type) else tuple(include)
        chosen = [(n, m) for n, m in lstms if isinstance(m, types)]
        if not chosen:
            raise ValueError(f"include={include!r} selected none of this model's recurrent"
                             f" modules: {_listing(f'{n} ({type(m).__name__})' for n, m in lstms)}")
    elif callable(include):
        chosen = [(n, m) for n, m in lstms if include(n, m)]
    else:
        wanted = [include] if isinstance(include, str) else list(include)
        unknown = [n for n in wanted if n not in available]
        if unknown:
            raise ValueError(f"include names no nn.LSTM, nn.GRU or nn.RNN called"
                             f" {_listing(unknown)}; this model's recurrent modules are:"
                             f" {_listing(available)}")
        chosen = [(n, m) for n, m in lstms if n in wanted]
    if not chosen:
        raise ValueError(f"include selected none of this model's recurrent modules:"
                         f" {_listing(available)}")
    for name, module in chosen:
        base = cells.of(module).module
        if type(module).forward not in (base.forward, LayerwiseLSTM.forward):
            raise TypeError(f"{name!r} is a {type(module).__name__}, an nn.{base.__name__} subclass with its"
                            " own forward: record would bypass that code, and capture cannot see"
                            " what it does either (it may change the weights or the input). Leave"
                            " it out with include=")
        own = module.__dict__.get("forward")
        if own is not None and not isinstance(own, _RecordingForward):
            raise TypeError(f"{name!r} has its forward replaced on the instance (by another tool"
                            " or by hand); record would bypass it. Leave it out with include=")
    return chosen


@contextmanager
def record(model: nn.Module, include: Include = None, *, detach: bool = False,
           to_cpu: bool = False, fields: Optional[Iterable[str]] = None,
           layers: Optional[Iterable[int]] = None,
           edits: Optional[Dict[str, List[Edit]]] = None) -> Iterator[Recording]:
    """Inside the block, every selected nn.LSTM of ``model`` records each call's LSTMStates
    (and every selected nn.GRU or nn.RNN its GRUStates or RNNStates).

    Args:
        model: any nn.Module; every nn.LSTM, nn.GRU and nn.RNN among ``model.named_modules()``
            (the model itself if it is one, named "") can be recorded.
        include: which modules to record: None (all), a qualified name or a list of them
            ("encoder.lstm"), a type or a tuple of types (``nn.GRU``, ``(nn.GRU, nn.RNN)``),
            or a predicate ``include(name, module) -> bool``.
        detach: record tensors detached from the autograd graph (saves the graph's memory).
        to_cpu: record CPU copies of the tensors (frees GPU memory on long runs).
        fields, layers: what each call keeps, as for ``capture`` (e.g. ``fields=("h",)``:
            h only, at little more than nn.LSTM's own cost; None: every state each module
            has). Every selected module must have the fields and layers asked for.
        edits: ``{qualified name: [Edit, ...]}``: that module's calls run with these edits
            (``capture(..., edits=)``), so everything downstream in the model sees the edited
            states; e.g. ``record(model, edits={"lstm": [Edit("f", 1, 7, set=0.0)]})``. Each
            edit is checked against each call's input when the call runs. With nested blocks,
            the edits of every active block apply, the outer block's first.

    Returns (as the ``with`` target):
        A :class:`Recording`: ``rec[name]`` is the list of that module's calls' LSTMStates in
        call order; ``rec.one(name)`` the only call; ``rec.stitch(name)`` the calls joined along
        time; ``rec.calls`` every (name, states) in the order the calls happened.

    The modules return what nn.LSTM returns (on the CPU in eval mode bit for bit, see the module
    docstring; differentiable w.r.t. the same parameters), computed once, by ``capture``. On
    leaving the block, normally or through an exception, they are exactly as before. Raises
    ValueError if nothing is selected, or for a selection (fields, layers) capture refuses.
    """
    chosen = _select(model, include)
    dynamo = sys.modules.get("torch._dynamo")
    if dynamo is not None and getattr(dynamo.config, "allow_rnn", False):
        warnings.warn("torch._dynamo.config.allow_rnn is on: a compiled model may run its nn.LSTMs"
                      " as code the compiler generated (inductor's rounds differently from"
                      " nn.LSTM's kernel), while inside record they run nn.LSTM's own kernel,"
                      " eagerly, and dynamo may keep the code it compiled for the block after"
                      " it; so the compiled model's results inside and after the block can"
                      " differ by float rounding from before it (torch._dynamo.reset() compiles"
                      " afresh)", stacklevel=3)
    for name, module in chosen:
        try:
            check_fields(fields, cells.of(module))
            check_layers(module, layers)
        except ValueError as error:
            raise ValueError(f"{name!r}: {error}") from None
    fields = None if fields is None else check_fields(fields, cells.of(chosen[0][1]))
    names = [n for n, _ in chosen]
    for name, todo in (edits or {}).items():
        if name not in names:
            raise ValueError(f"edits name {name!r}, which is not an nn.LSTM this block records;"
                             f" it records: {_listing(names)}")
        if not isinstance(todo, (list, tuple)) or not all(isinstance(e, Edit) for e in todo):
            raise TypeError(f"edits[{name!r}] must be a list of lstm_states.Edit")
    recording = Recording(names, detach=detach, to_cpu=to_cpu, fields=fields,
                          layers=None if layers is None else check_layers(chosen[0][1], layers),
                          edits=edits)
    attached: List[nn.RNNBase] = []
    try:
        for name, module in chosen:
            wrapper = module.__dict__.get("forward")
            if wrapper is None:  # first active recording of this module
                wrapper = _RecordingForward(module)
                module.__dict__["forward"] = wrapper  # shadows the class's forward
            wrapper.sinks.append((recording, name))
            attached.append(module)
        yield recording
    finally:
        for module in reversed(attached):
            wrapper = module.__dict__.get("forward")
            if not isinstance(wrapper, _RecordingForward):
                continue  # someone removed it already: nothing of ours is left
            wrapper.sinks = [(r, n) for r, n in wrapper.sinks if r is not recording]
            if not wrapper.sinks:  # the last recording leaves: back to the class's forward
                del module.__dict__["forward"]
