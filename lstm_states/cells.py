"""The cell is the seam: what differs between nn.LSTM, nn.GRU and nn.RNN, one description each.

Shape legend: T time steps, B batch, I_l the layer's input size, H hidden size,
H_out = proj_size or H (LSTM only; H for GRU and RNN), G the cell's gate rows (4, 3 or 1).

The routes (``routes.py``), the selection, ``record`` and the result types are written once;
everything that depends on the kind of recurrent module asks its :class:`CellType`:

- ``module``, ``name``: the torch module type, and the word nn.* uses in its messages;
- ``fields``: the per-step states ``capture`` can keep (LSTM: h, c, gates; GRU: h, gates;
  RNN: h), ``gate_names`` in PyTorch's order, ``rows`` (G: the gate blocks stacked in
  ``weight_ih``/``weight_hh``), ``has_c``;
- ``kernel(...)``: PyTorch's fused kernel for one layer, called as the module calls it
  (``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu``, padded or packed);
- ``replay`` / ``replay_in_place``: the gates (and for the LSTM c_t) of one direction computed
  from its h_t, with autograd or written in place: what makes per-step states cheap once the
  kernel has given h_t for every t;
- ``steps_in_place`` / ``steps_autograd``: one step after another with edits applied, which
  the edits route uses (and the ``stepwise`` route, from ``stepwise_from``, B * H, on: LSTM and
  GRU); ``edit_fields``: what an Edit can change.

The equations of one step, in PyTorch's documented form (σ the logistic sigmoid):

    LSTM  i, f, g, o = σ, σ, tanh, σ (W_i* x_t + b_i* + W_h* h_{t-1} + b_h*)
          c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)  (then W_hr h_t with proj_size)
    GRU   r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr);  z = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
          n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
          h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
    RNN   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)   (relu for nonlinearity="relu")

Every GRU gate depends on x_t and h_{t-1} only, so given h_t for every t all three come out
of batched products with no recurrence; the LSTM's c_t needs one elementwise recurrence.
"""

from __future__ import annotations

from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import routes  # (routes.empty at call time; routes imports this module too)

__all__ = ["CellType", "LSTM", "GRU", "RNN_TANH", "RNN_RELU", "of", "unpack_params",
           "previous_h", "per_step", "input_preactivations", "lstm_replay", "lstm_replay_in_place",
           "recurrence_in_place", "steps_in_place", "steps_autograd", "gru_replay",
           "gru_replay_in_place", "gru_steps_in_place", "gru_steps_autograd",
           "rnn_steps_in_place", "rnn_steps_autograd"]


# ----------------------------------------------------------------------------------------------
# pieces the equations share


def unpack_params(params) -> Tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
    """(w_ih, w_hh, b_ih + b_hh or None, w_hr or None) from ``routes.layer_params``' list."""
    bias = params[2] + params[3] if len(params) >= 4 else None  # (GH,)
    w_hr = params[-1] if len(params) in (3, 5) else None  # (P, H) with proj_size
    return params[0], params[1], bias, w_hr


def previous_h(h: Tensor, h0: Tensor) -> Tensor:
    """h_{t-1} for every step in processing order: (T, B, H_out), h_{-1} = h0."""
    return torch.cat([h0[None], h[:-1]])


def per_step(*seqs: Tensor, block: int = 256) -> Iterator[Tuple[int, Tuple[Tensor, ...]]]:
    """``(t, (seq[t] for seq in seqs))`` for every step t; each seq is time-major.

    The views are made by ``unbind``, a block of steps at a time: one ``unbind`` is cheaper than
    indexing every step (a few % of a small step's time), and a block keeps the views' memory
    bounded on long sequences.
    """
    T = seqs[0].shape[0]
    for start in range(0, T, block):
        blocks = [seq[start:start + block].unbind(0) for seq in seqs]
        for k, views in enumerate(zip(*blocks, strict=True)):
            yield start + k, views


def input_preactivations(x: Tensor, w_ih: Tensor, bias: Optional[Tensor], gates: Tensor) -> None:
    """Writes W_ih,k x_t + b_k into ``gates[k, t]`` for every gate k and step t; no autograd.

    x: (T, B, I_l); w_ih: (GH, I_l); bias: (GH,) or None; gates: (G, T, B, H), contiguous.
    One matrix product per gate straight into its place (no (T, B, GH) temporary).
    """
    T, B, H = gates.shape[1:]
    x_rows = x.reshape(T * B, x.shape[-1])  # (T*B, I_l)
    for k in range(gates.shape[0]):
        rows = slice(k * H, (k + 1) * H)  # gate k's rows of the weights
        z_k = gates[k].view(T * B, H)
        if bias is None:
            torch.mm(x_rows, w_ih[rows].t(), out=z_k)
        else:
            torch.addmm(bias[rows], x_rows, w_ih[rows].t(), out=z_k)


# ----------------------------------------------------------------------------------------------
# the descriptions


class CellType:
    """What one kind of recurrent module is; see the module docstring. One instance per kind."""

    name: str  # as nn.* names itself in its messages: "LSTM", "GRU", "RNN"
    module: type  # nn.LSTM, nn.GRU, nn.RNN
    fields: Tuple[str, ...]  # the per-step states capture can keep, in the result's order
    gate_names: Tuple[str, ...] = ()
    edit_fields: Tuple[str, ...] = ("h",)  # the states an Edit can change
    rows: int = 1  # G: gate blocks stacked in weight_ih / weight_hh
    has_c: bool = False
    nonlinearity: Optional[str] = None  # nn.RNN's, else None
    stepwise_from: Optional[int] = None  # B * H from which CPU capture goes step by step

    def matches(self, module: nn.Module) -> bool:
        return isinstance(module, self.module) and (
            self.nonlinearity is None or module.nonlinearity == self.nonlinearity)

    def kernel(self, x: Tensor, batch_sizes: Optional[Tensor], h0: Tensor, c0: Optional[Tensor],
               weights, has_biases: bool, train: bool, bidirectional: bool):
        """The fused kernel over one layer: (output, h_n, c_n or None). x is (T, B, I_l)
        time-major, or the packed data with ``batch_sizes``; h0, c0 (D, B, *)."""
        raise NotImplementedError

    def replay(self, x, h, h0, c0, params, out, want):
        """(c (T, B, H) or None, gates (G, T, B, H) or None) of one direction from its h_t,
        with autograd; x (T, B, I_l), h (T, B, H_out), processing order."""
        raise ValueError(f"an nn.{self.name} has no gates to replay")

    replay_in_place = replay  # the same written into ``out`` (a routes.LayerStates), no autograd

    def steps_in_place(self, x, h0, c0, params, out, edit=None) -> None:
        """One step after another for one direction (processing order), written into
        ``out=(h, c, gates)`` (None where the cell has no such state), with ``edit`` applied
        (``edits.StepEdits``); no autograd."""
        raise NotImplementedError

    def steps_autograd(self, x, h0, c0, params, edit=None):
        """The same with autograd, out of place: (h, c or None, gates or None)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<cell {self.name}{'' if self.nonlinearity is None else '_' + self.nonlinearity}>"


class LSTMCellType(CellType):
    name, module, fields = "LSTM", nn.LSTM, ("h", "c", "gates")
    gate_names, rows, has_c = ("i", "f", "g", "o"), 4, True
    edit_fields = ("h", "c", "i", "f", "g", "o")
    # measured in turns against the kernel route on the 2-core CI machine (two layers, torch
    # 2.13, 2026-12-03, two runs): B * H = 8192 took 0.68x-0.71x its time, 4096 0.82x-1.01x
    # (the most at H = 64), 2048 1.19x-1.24x
    stepwise_from = 4096

    def kernel(self, x, batch_sizes, h0, c0, weights, has_biases, train, bidirectional):
        if batch_sizes is None:
            return torch.lstm(x, (h0, c0), weights, has_biases, 1, 0.0, train, bidirectional,
                              False)
        return torch.lstm(x, batch_sizes, (h0, c0), weights, has_biases, 1, 0.0, train,
                          bidirectional)

    def replay(self, x, h, h0, c0, params, out, want):
        return lstm_replay(x, h, h0, c0, params, out, want)

    def replay_in_place(self, x, h, h0, c0, params, out, want):
        return lstm_replay_in_place(x, h, h0, c0, params, out, want)

    def steps_in_place(self, x, h0, c0, params, out, edit=None):
        return steps_in_place(x, h0, c0, params, out, edit)

    def steps_autograd(self, x, h0, c0, params, edit=None):
        return steps_autograd(x, h0, c0, params, edit)


class GRUCellType(CellType):
    name, module, fields = "GRU", nn.GRU, ("h", "gates")
    gate_names, rows, edit_fields = ("r", "z", "n"), 3, ("h", "r", "z", "n")
    # measured in turns against the kernel route (one layer, torch 2.13, before per_step and
    # lerp): B * H = 16384 took 0.53x its time, 4096 0.65x, 2048 0.83x to 1x; PyTorch's CPU
    # GRU kernel is slower relative to a step-by-step loop than its LSTM kernel, so the
    # replay's second pass costs more
    stepwise_from = 2048

    def kernel(self, x, batch_sizes, h0, c0, weights, has_biases, train, bidirectional):
        if batch_sizes is None:
            out, h_n = torch.gru(x, h0, weights, has_biases, 1, 0.0, train, bidirectional, False)
        else:
            out, h_n = torch.gru(x, batch_sizes, h0, weights, has_biases, 1, 0.0, train,
                                 bidirectional)
        return out, h_n, None

    def replay(self, x, h, h0, c0, params, out, want):
        return gru_replay(x, h, h0, params)

    def replay_in_place(self, x, h, h0, c0, params, out, want):
        return gru_replay_in_place(x, h, h0, params, out)

    def steps_in_place(self, x, h0, c0, params, out, edit=None):
        return gru_steps_in_place(x, h0, params, out, edit)

    def steps_autograd(self, x, h0, c0, params, edit=None):
        return gru_steps_autograd(x, h0, params, edit)


class RNNCellType(CellType):
    name, module, fields = "RNN", nn.RNN, ("h",)

    def __init__(self, nonlinearity: str):
        self.nonlinearity = nonlinearity

    def kernel(self, x, batch_sizes, h0, c0, weights, has_biases, train, bidirectional):
        fused = torch.rnn_tanh if self.nonlinearity == "tanh" else torch.rnn_relu
        if batch_sizes is None:
            out, h_n = fused(x, h0, weights, has_biases, 1, 0.0, train, bidirectional, False)
        else:
            out, h_n = fused(x, batch_sizes, h0, weights, has_biases, 1, 0.0, train,
                             bidirectional)
        return out, h_n, None

    def steps_in_place(self, x, h0, c0, params, out, edit=None):
        return rnn_steps_in_place(x, h0, params, out, edit, self.nonlinearity == "relu")

    def steps_autograd(self, x, h0, c0, params, edit=None):
        return rnn_steps_autograd(x, h0, params, edit, self.nonlinearity == "relu")


LSTM, GRU = LSTMCellType(), GRUCellType()
RNN_TANH, RNN_RELU = RNNCellType("tanh"), RNNCellType("relu")
CELLS = (LSTM, GRU, RNN_TANH, RNN_RELU)


def of(module) -> Optional[CellType]:
    """The cell type of an nn.LSTM, nn.GRU or nn.RNN (subclasses included); None otherwise."""
    if isinstance(module, nn.LSTM):  # (first: the common case)
        return LSTM
    if isinstance(module, nn.GRU):
        return GRU
    if isinstance(module, nn.RNN):
        return RNN_TANH if module.nonlinearity == "tanh" else RNN_RELU
    return None


# ----------------------------------------------------------------------------------------------
# LSTM: the gates and c_t replayed from h_t (one direction, processing order)


def lstm_replay(x: Tensor, h: Tensor, h0: Tensor, c0: Tensor, params, out, want):
    """Gates (4, T, B, H) and c (T, B, H) of one direction from its h_t, with autograd.

    x: (T, B, I_l), h: (T, B, H_out), h0: (B, H_out), c0: (B, H), processing order.
    """
    T, B, H = x.shape[0], x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, _ = unpack_params(params)
    # [i, f, g, o] pre-activations z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, all t at once
    z = F.linear(x, w_ih, bias) + F.linear(previous_h(h, h0), w_hh)  # (T, B, 4H)
    z = z.view(T, B, 4, H)
    # i, f, o = σ(z); g = tanh(z)
    gates = torch.stack([z[:, :, 0].sigmoid(), z[:, :, 1].sigmoid(), z[:, :, 2].tanh(),
                         z[:, :, 3].sigmoid()])  # (4, T, B, H)
    kept = gates if "gates" in want else None
    if "c" not in want:
        return None, kept
    i, f, g = gates[0], gates[1], gates[2]
    # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t: a loop over t of one fused elementwise op
    ig = i * g  # (T, B, H)
    cs, c_t = [], c0
    for t in range(T):
        c_t = torch.addcmul(ig[t], f[t], c_t)
        cs.append(c_t)
    return torch.stack(cs), kept


def lstm_replay_in_place(x: Tensor, h: Tensor, h0: Tensor, c0: Tensor, params, out, want):
    """The same as ``lstm_replay``, written into ``out`` (c (T, B, H) and gates (4, T, B, H),
    either may be None: then a temporary where needed); no autograd."""
    T, B, H = x.shape[0], x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, _ = unpack_params(params)
    gates = out.gates if out.gates is not None else routes.empty(x, 4, T, B, H)
    # each gate's pre-activation straight into its place in gates (no temporary, no strided
    # writes): z_k = W_ih,k x_t + b_k + W_hh,k h_{t-1}
    input_preactivations(x, w_ih, bias, gates)
    h_prev = previous_h(h, h0).view(T * B, h.shape[-1])  # (T*B, H_out)
    for k in range(4):
        gates[k].view(T * B, H).addmm_(h_prev, w_hh[k * H:(k + 1) * H].t())
    # i, f, o = σ(z); g = tanh(z)
    torch.sigmoid_(gates[:2])
    torch.tanh_(gates[2])
    torch.sigmoid_(gates[3])
    kept = gates if "gates" in want else None
    if "c" not in want:
        return None, kept
    c = out.c if out.c is not None else routes.empty(x, T, B, H)
    recurrence_in_place(gates, c0, c)
    return c, kept


def recurrence_in_place(gates: Tensor, c0: Tensor, c: Tensor) -> None:
    """c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t for every step into ``c`` (T, B, H); gates (4, T, B, H)
    activated, processing order, c_{-1} = c0."""
    i, f, g = gates[0], gates[1], gates[2]
    torch.mul(i, g, out=c)  # i_t ⊙ g_t, then c_t = f_t ⊙ c_{t-1} + (i_t ⊙ g_t) in place
    c_t = c0
    for t in range(c.shape[0]):
        c_t = torch.addcmul(c[t], f[t], c_t, out=c[t])


# ----------------------------------------------------------------------------------------------
# LSTM: one step after another (the stepwise route, and the edited steps of the edits route)


def steps_in_place(x: Tensor, h0: Tensor, c0: Tensor, params, out, edit=None) -> None:
    """The LSTM equations step by step for one direction in processing order, written into
    ``out=(h, c, gates)`` ((T, B, H_out), (T, B, H), (4, T, B, H)); no autograd.

    ``edit`` (``lstm_states.edits``): at the steps in ``edit.steps``, ``edit(t, name, state)``
    changes the state in place after it is computed (gates, then c, then h), and the recurrence
    goes on from the changed values.
    """
    h_out, c_out, gates = out
    B, H = x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, w_hr = unpack_params(params)
    input_preactivations(x, w_ih, bias, gates)  # gates[k, t] = W_ih,k x_t + b_k, all t at once
    w_hh_t = w_hh.view(4, H, w_hh.shape[-1]).transpose(1, 2)  # (4, H_out, H): each gate's W_hh^T
    o_tanh_c = x.new_empty(B, H) if w_hr is not None else None
    h_t, c_t = h0, c0
    # at step t: z_t (4, B, H), i and f together (2, B, H), each gate, c_t and h_t (B, H)
    for t, (z, i_f, i, f, g, o, c_slot, h_slot) in per_step(
            gates.transpose(0, 1), gates[:2].transpose(0, 1), *gates, c_out, h_out):
        # z_t = W_ih x_t + b + W_hh h_{t-1}, gate by gate in one batched product, in place
        z.baddbmm_(h_t.expand(4, *h_t.shape), w_hh_t)  # (4, B, H)
        # i, f, o = σ(z_t); g = tanh(z_t), in place
        torch.sigmoid_(i_f)
        torch.tanh_(g)
        torch.sigmoid_(o)
        edited = edit is not None and t in edit.steps
        if edited:
            for name, gate in zip("ifgo", (i, f, g, o), strict=True):
                edit(t, name, gate)
        # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        c_t = torch.addcmul(torch.mul(f, c_t, out=c_slot), i, g, out=c_slot)
        if edited:
            edit(t, "c", c_t)
        # h_t = o_t ⊙ tanh(c_t), then h_t = W_hr h_t with proj_size
        if w_hr is None:
            h_t = torch.mul(o, torch.tanh(c_t, out=h_slot), out=h_slot)
        else:
            torch.mul(o, torch.tanh(c_t, out=o_tanh_c), out=o_tanh_c)
            h_t = torch.mm(o_tanh_c, w_hr.t(), out=h_slot)
        if edited:
            edit(t, "h", h_t)


def steps_autograd(x: Tensor, h0: Tensor, c0: Tensor, params, edit=None):
    """The LSTM equations step by step for one direction in processing order, with autograd:
    h (T, B, H_out), c (T, B, H), gates (4, T, B, H). ``edit`` as for ``steps_in_place``, but
    ``edit(t, name, state)`` returns the changed state (out of place)."""
    w_ih, w_hh, bias, w_hr = unpack_params(params)
    xz = F.linear(x, w_ih, bias)  # W_ih x_t + b for every t: (T, B, 4H)
    h_t, c_t = h0, c0
    hs, cs, gs = [], [], []
    for t in range(x.shape[0]):
        # z_t = W_ih x_t + b + W_hh h_{t-1}; i, f, o = σ(z_t); g = tanh(z_t)
        i, f, g, o = (xz[t] + F.linear(h_t, w_hh)).chunk(4, -1)  # 4 x (B, H)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        edited = edit is not None and t in edit.steps
        if edited:
            i, f, g, o = (edit(t, name, gate) for name, gate in zip("ifgo", (i, f, g, o),
                                                                     strict=True))
        # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        c_t = f * c_t + i * g
        if edited:
            c_t = edit(t, "c", c_t)
        # h_t = o_t ⊙ tanh(c_t), then h_t = W_hr h_t with proj_size
        h_t = o * c_t.tanh()
        if w_hr is not None:
            h_t = F.linear(h_t, w_hr)
        if edited:
            h_t = edit(t, "h", h_t)
        hs.append(h_t)
        cs.append(c_t)
        gs.append(torch.stack([i, f, g, o]))
    return torch.stack(hs), torch.stack(cs), torch.stack(gs, dim=1)


# ----------------------------------------------------------------------------------------------
# GRU: r, z, n replayed from h_t (one direction, processing order); no recurrence


def _gru_biases(params) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """(b_ih, b_hh), each (3H,), or (None, None): kept apart, since b_hn sits inside r ⊙ (...)."""
    return (params[2], params[3]) if len(params) == 4 else (None, None)


def gru_replay(x: Tensor, h: Tensor, h0: Tensor, params) -> Tuple[None, Tensor]:
    """(None, gates (3, T, B, H)): r, z, n of one direction from its h_t, with autograd.

    x: (T, B, I_l), h: (T, B, H), h0: (B, H), processing order.
    """
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = _gru_biases(params)
    x_r, x_z, x_n = F.linear(x, w_ih, b_ih).chunk(3, -1)  # W_i* x_t + b_i*: 3 x (T, B, H)
    h_r, h_z, h_n = F.linear(previous_h(h, h0), w_hh, b_hh).chunk(3, -1)  # W_h* h_{t-1} + b_h*
    # r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr); z likewise
    r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
    # n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
    n = (x_n + r * h_n).tanh()
    return None, torch.stack([r, z, n])


def gru_replay_in_place(x: Tensor, h: Tensor, h0: Tensor, params, out) -> Tuple[None, Tensor]:
    """The same as ``gru_replay``, written into ``out.gates`` (3, T, B, H) (a temporary if
    None); no autograd."""
    T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = _gru_biases(params)
    gates = out.gates if out.gates is not None else routes.empty(x, 3, T, B, H)
    input_preactivations(x, w_ih, b_ih, gates)  # gates[k] = W_i,k x_t + b_i,k
    h_prev = previous_h(h, h0).view(T * B, H)  # h_{t-1}: (T*B, H)
    for k in (0, 1):  # r, z: + W_h,k h_{t-1} + b_h,k, then σ
        z_k = gates[k].view(T * B, H)
        z_k.addmm_(h_prev, w_hh[k * H:(k + 1) * H].t())
        if b_hh is not None:
            z_k.add_(b_hh[k * H:(k + 1) * H])
    torch.sigmoid_(gates[:2])
    # n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
    rows = slice(2 * H, 3 * H)
    hn = torch.mm(h_prev, w_hh[rows].t()) if b_hh is None else \
        torch.addmm(b_hh[rows], h_prev, w_hh[rows].t())  # (T*B, H)
    hn.mul_(gates[0].view(T * B, H))
    gates[2].view(T * B, H).add_(hn)
    torch.tanh_(gates[2])
    return None, gates


# ----------------------------------------------------------------------------------------------
# GRU and RNN: one step after another (the edited steps of the edits route; the GRU's stepwise
# route)


def gru_steps_in_place(x: Tensor, h0: Tensor, params, out, edit=None) -> None:
    """The GRU equations step by step for one direction in processing order, written into
    ``out=(h, None, gates)`` ((T, B, H), -, (3, T, B, H)); no autograd.

    ``edit`` as for ``steps_in_place``: r and z are edited after their activations, then n is
    computed from the edited r and edited, then h_t from the edited z and n, then h edits.
    """
    h_out, _, gates = out
    B, H = x.shape[1], h0.shape[-1]
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = _gru_biases(params)
    bias = None  # b_i* + b_h* for r and z (summed once), b_in for n: (3H,)
    if b_ih is not None:
        bias = torch.cat([b_ih[:2 * H] + b_hh[:2 * H], b_ih[2 * H:]])
    input_preactivations(x, w_ih, bias, gates)  # gates[k, t] = W_i,k x_t + b, all t at once
    # (H, H) each, W^T laid out contiguously once (the per-step products run a few % faster)
    w_hr, w_hz, w_hn = (w_hh[k * H:(k + 1) * H].t().contiguous() for k in range(3))
    b_hn = None if b_hh is None else b_hh[2 * H:]
    hn = x.new_empty(B, H)  # W_hn h_{t-1} + b_hn
    h_t = h0
    # at step t: r, z, n and h_t (B, H) each, r and z together (2, B, H)
    for t, (r, z, n, h_slot, r_z) in per_step(*gates, h_out, gates[:2].transpose(0, 1)):
        # r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr); z likewise: each product straight
        # into its gate (three (B, H, H) products beat one (B, H, 3H) and a strided add)
        r.addmm_(h_t, w_hr)
        z.addmm_(h_t, w_hz)
        torch.sigmoid_(r_z)
        edited = edit is not None and t in edit.steps
        if edited:
            edit(t, "r", r)
            edit(t, "z", z)
        # n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn))
        if b_hn is None:
            torch.mm(h_t, w_hn, out=hn)
        else:
            torch.addmm(b_hn, h_t, w_hn, out=hn)
        torch.tanh_(n.addcmul_(r, hn))
        if edited:
            edit(t, "n", n)
        # h_t = (1 - z) ⊙ n + z ⊙ h_{t-1} = n + z ⊙ (h_{t-1} - n), one lerp from n to h_{t-1}
        h_t = torch.lerp(n, h_t, z, out=h_slot)
        if edited:
            edit(t, "h", h_t)


def gru_steps_autograd(x: Tensor, h0: Tensor, params, edit=None):
    """The GRU equations step by step, with autograd: (h (T, B, H), None, gates (3, T, B, H)).
    ``edit`` as for ``gru_steps_in_place``, returning the changed state (out of place)."""
    w_ih, w_hh = params[0], params[1]
    b_ih, b_hh = _gru_biases(params)
    xg = F.linear(x, w_ih, b_ih)  # W_i* x_t + b_i* for every t: (T, B, 3H)
    h_t, hs, gs = h0, [], []
    for t in range(x.shape[0]):
        x_r, x_z, x_n = xg[t].chunk(3, -1)
        h_r, h_z, h_n = F.linear(h_t, w_hh, b_hh).chunk(3, -1)  # W_h* h_{t-1} + b_h*
        r, z = (x_r + h_r).sigmoid(), (x_z + h_z).sigmoid()
        edited = edit is not None and t in edit.steps
        if edited:
            r, z = edit(t, "r", r), edit(t, "z", z)
        n = (x_n + r * h_n).tanh()
        if edited:
            n = edit(t, "n", n)
        h_t = (1 - z) * n + z * h_t
        if edited:
            h_t = edit(t, "h", h_t)
        hs.append(h_t)
        gs.append(torch.stack([r, z, n]))
    return torch.stack(hs), None, torch.stack(gs, dim=1)


def rnn_steps_in_place(x: Tensor, h0: Tensor, params, out, edit=None,
                       relu: bool = False) -> None:
    """h_t = tanh (or relu)(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) step by step, written into
    ``out[0]`` (T, B, H); no autograd; ``edit`` changes h_t in place after it is computed."""
    h_out = out[0]
    w_ih, w_hh, bias, _ = unpack_params(params)
    input_preactivations(x, w_ih, bias, h_out[None])  # W_ih x_t + b for every t, into h
    h_t = h0
    for t in range(x.shape[0]):
        h_t = h_out[t].addmm_(h_t, w_hh.t())  # W_ih x_t + b + W_hh h_{t-1}
        if relu:
            torch.relu_(h_t)
        else:
            torch.tanh_(h_t)
        if edit is not None and t in edit.steps:
            edit(t, "h", h_t)


def rnn_steps_autograd(x: Tensor, h0: Tensor, params, edit=None, relu: bool = False):
    """The same with autograd: (h (T, B, H), None, None)."""
    w_ih, w_hh, bias, _ = unpack_params(params)
    xz = F.linear(x, w_ih, bias)  # (T, B, H)
    h_t, hs = h0, []
    for t in range(x.shape[0]):
        pre = xz[t] + F.linear(h_t, w_hh)
        h_t = pre.relu() if relu else pre.tanh()
        if edit is not None and t in edit.steps:
            h_t = edit(t, "h", h_t)
        hs.append(h_t)
    return torch.stack(hs), None, None

