"""How ``capture`` computes one layer: the execution routes and the pieces they are built from.

Shape legend: D directions (1 or 2), T time steps, B batch, I_l the layer's input size
(I for layer 0, D*H_out above), H hidden size, H_out = proj_size or H, G gate rows (4 LSTM,
3 GRU).

The routes are written once for nn.LSTM, nn.GRU and nn.RNN: what differs (the fused kernel,
the equations, the fields) is the module's cell description, ``cells.of(module)``
(``cells.py``). Every route computes one layer (both directions) with one signature::

    route(module, layer, x, h0, c0, want, out, like) -> LayerRun

- ``x``: the layer's input, a :class:`Seq` (padded time-major, and packed for packed input).
- ``h0`` (D, B, H_out), ``c0`` (D, B, H): the layer's initial states, caller's batch order
  (``c0`` None for a GRU or RNN, which have no cell state).
- ``want``: which of the cell's fields ("h", "c", "gates") the caller keeps for this layer
  (empty: none).
- ``out``: a :class:`LayerStates` of tensors to write the wanted states into (the in-place
  routes, no autograd), or None (the autograd route allocates them).
- returns a :class:`LayerRun`: the layer's output (the next layer's input), its final states
  ``h_n`` (D, B, H_out) and ``c_n`` (D, B, H), and the wanted states.

The routes:

- ``autograd``: differentiable. PyTorch's fused kernel for the layer (so ``output``,
  ``h_n``, ``c_n`` are the kernel's own), then the gates (and c_t) replayed from its h_t
  (the cell's ``replay``).
- ``kernel``: the same without autograd, every state written in place (``replay_in_place``).
- ``stepwise`` (LSTM and GRU): no kernel: the cell's equations step by step, in place (CPU,
  large B*H: it does the cell's work once, where the kernel and a replay do it twice; from
  ``cell.stepwise_from``).
- ``cuda`` (``lstm_states._cuda``): ``kernel`` with, for the LSTM, the GPU's batched products
  and one Triton kernel for the activations and c_t.

Only ``stepwise`` computes ``output``, ``h_n`` and ``c_n`` itself; the other routes hand back
the fused kernel's own tensors, called exactly as ``nn.LSTM`` calls it (the same input form,
packed data for packed input), so on the CPU they are bit for bit what ``nn.LSTM`` returns
(measured for every configuration; on a GPU nn.LSTM calls cuDNN on all layers at once).
"""

from __future__ import annotations

from typing import FrozenSet, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import cells

__all__ = ["Seq", "LayerStates", "LayerRun", "empty", "layer_params", "kernel_weights",
           "fused_kernel", "permute_as_nn_lstm", "direction_kernel", "reverse_within_lengths",
           "flip_lengths", "reverse_gates_within_lengths", "layer_output", "direction_h",
           "in_processing_order", "kernel_then_replay", "final_states", "autograd", "kernel",
           "stepwise"]


class LayerStates(NamedTuple):
    """One layer's states, each None when not kept."""

    h: Optional[Tensor]  # (D, T, B, H_out)
    c: Optional[Tensor]  # (D, T, B, H); LSTM only
    gates: Optional[Tensor]  # (D, G, T, B, H): the cell's gates after their activations


class LayerRun(NamedTuple):
    """What a route hands back for one layer."""

    output: Seq  # the layer's h_t of every step, directions side by side: the next layer's input
    h_n: Tensor  # (D, B, H_out): final h of each direction, caller's batch order
    c_n: Optional[Tensor]  # (D, B, H); None for a GRU or RNN
    states: LayerStates  # the wanted states (views of ``out`` on the in-place routes)


class Seq:
    """A layer's input or output sequence, in the two forms the routes need.

    ``padded``: (T, B, F) time-major in the caller's batch order, zero past each sequence's end
    for packed input. ``packed``: the same as a PackedSequence (packed input only), the form in
    which nn.LSTM hands it to its kernel. Each form is made from the other when first asked for.
    """

    def __init__(self, padded: Optional[Tensor] = None, packed: Optional[PackedSequence] = None,
                 steps: Optional[int] = None, lengths: Optional[Tensor] = None):
        self._padded, self._packed = padded, packed
        self.steps = padded.shape[0] if padded is not None else steps  # T
        self.lengths = lengths  # (B,) int64 on the CPU, caller's order; None unless packed

    @property
    def is_packed(self) -> bool:
        return self.lengths is not None

    @property
    def padded(self) -> Tensor:
        if self._padded is None:  # (T, B, F), caller's batch order, zeros past the ends
            self._padded = pad_packed_sequence(self._packed, total_length=self.steps)[0]
        return self._padded

    def packed_like(self, like: PackedSequence) -> PackedSequence:
        """The packed form, packed exactly as ``like`` (the caller's input) is."""
        if self._packed is None:
            self._packed = repack_like(self._padded, self.lengths, like)
        return self._packed

    def with_data(self, fn, like=None) -> Seq:
        """A Seq of ``fn`` applied to the data nn.LSTM's kernel sees: the packed data (packed
        like ``like``) for packed input, else the padded tensor."""
        if self.is_packed:
            packed = self.packed_like(like)
            return Seq(packed=packed._replace(data=fn(packed.data)), steps=self.steps,
                       lengths=self.lengths)
        return Seq(padded=fn(self.padded))


def repack_like(padded: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Packs (T, B, *) padded data (caller's order) exactly as ``like`` is packed."""
    order = like.sorted_indices
    if order is not None:
        padded, lengths = padded[:, order.to(padded.device)], lengths[order.cpu()]
    data, batch_sizes = torch._C._VariableFunctions._pack_padded_sequence(padded, lengths, False)
    return PackedSequence(data, batch_sizes, like.sorted_indices, like.unsorted_indices)


# ----------------------------------------------------------------------------------------------
# pieces


def empty(like: Tensor, *shape: int) -> Tensor:
    """An uninitialised tensor of ``like``'s dtype and device, for states written in place.

    Plain ``new_empty``. Asking for huge pages here (madvise MADV_HUGEPAGE) was tried and
    dropped: the first write to them was fast or several times slower by what the process had
    done before, and in the bench's turns it cost capture 3-17%. PyTorch's own
    ``THP_MEM_ALLOC_ENABLE=1`` asks for them for every large CPU tensor (docs/DEVELOPING.md,
    "Speed").
    """
    return like.new_empty(shape)


def layer_params(lstm: nn.LSTM, layer: int, direction: int) -> List[Tensor]:
    """The module's own parameters of one layer and direction, in the fused kernel's order."""
    sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    names = ["weight_ih", "weight_hh"]
    if lstm.bias:
        names += ["bias_ih", "bias_hh"]
    if lstm.proj_size > 0:
        names += ["weight_hr"]
    return [getattr(lstm, n + sfx) for n in names]


def kernel_weights(params: List[Tensor]) -> Tuple[List[Tensor], bool]:
    """(weights, has_biases) of one direction for the fused kernel, from ``layer_params``' list.

    On CUDA without biases, the module's two weight matrices of a layer can sit side by side in
    its cuDNN weight buffer, and torch.lstm (2.11, cuDNN) then gives wrong results for them
    (measured on an H200: errors ~0.3); with zero biases added it takes its copying path and is
    exact.
    """
    w_ih, w_hh, bias, w_hr = cells.unpack_params(params)
    if bias is None and w_ih.is_cuda:
        zeros = w_ih.new_zeros(w_ih.shape[0])  # (GH,)
        return [w_ih, w_hh, zeros, zeros] + ([w_hr] if w_hr is not None else []), True
    return list(params), bias is not None


def _layer_weights(lstm: nn.LSTM, layer: int) -> Tuple[List[Tensor], bool]:
    """(weights of every direction, has_biases) for one layer's fused kernel call."""
    weights: List[Tensor] = []
    for d in range(2 if lstm.bidirectional else 1):
        w, has_biases = kernel_weights(layer_params(lstm, layer, d))
        weights += w
    return weights, has_biases


def fused_kernel(lstm: nn.RNNBase, layer: int, x: Seq, h0: Tensor, c0: Optional[Tensor],
                 like=None, train: bool = False) -> Tuple[Seq, Tensor, Optional[Tensor]]:
    """PyTorch's fused kernel over one layer, both directions, called as the module calls it
    (``torch.lstm``, ``torch.gru``, ``torch.rnn_tanh`` or ``torch.rnn_relu``: the cell's).

    Returns the layer's output Seq (padded (T, B, D*H_out), or packed like ``like``) and its
    final states h_n (D, B, H_out), c_n (D, B, H) (None without a cell state) in the caller's
    batch order: the very tensors the module computes for this layer. ``train`` is for cuDNN,
    whose backward needs it (dropout is 0 here, so it changes nothing else): it lets capture
    give gradients in eval mode.
    """
    cell = cells.of(lstm)
    weights, has_biases = _layer_weights(lstm, layer)
    bidirectional = lstm.bidirectional
    if x.is_packed:
        packed = x.packed_like(like)
        order, back = packed.sorted_indices, packed.unsorted_indices
        if order is not None:  # the module's permute_hidden: hx into the packed batch order
            h0 = permute_as_nn_lstm(h0, order, layer)
            c0 = None if c0 is None else permute_as_nn_lstm(c0, order, layer)
        data, h_n, c_n = cell.kernel(packed.data, packed.batch_sizes, h0, c0, weights,
                                     has_biases, train, bidirectional)
        if back is not None:  # and back into the caller's order
            h_n = h_n.index_select(1, back)
            c_n = None if c_n is None else c_n.index_select(1, back)
        return Seq(packed=packed._replace(data=data), steps=x.steps, lengths=x.lengths), h_n, c_n
    out, h_n, c_n = cell.kernel(x.padded, None, h0, c0, weights, has_biases, train,
                                bidirectional)  # (T, B, D*H_out)
    return Seq(padded=out), h_n, c_n


def permute_as_nn_lstm(state: Tensor, order: Tensor, layer: int) -> Tensor:
    """``state.index_select(1, order)`` for one layer's initial state (D, B, *), placed in
    memory where nn.LSTM's own permuted hx holds that layer.

    nn.LSTM permutes every layer's hx at once, into one fresh (L*D, B, *) tensor, and its packed
    CPU kernel reads layer k's rows ``k * D`` rows into it. The kernel's first step multiplies
    them by W_hh, and how that product rounds depends on the operand's address: measured with
    torch 2.13's MKL on an AVX2 CPU, h_0 at 8 bytes past a 16-byte boundary and h_0 on one
    gave results one float32 ulp apart in about 9 of 10 random cases (docs/DEVELOPING.md). So
    the layer's permuted state goes to the same offset of a fresh allocation (CPU allocations
    are 64-byte aligned), and the kernel rounds exactly as inside nn.LSTM. nn.GRU and nn.RNN permute
    their hx the same way (one fresh (L*D, B, H) tensor), so this serves them too.
    """
    D = state.shape[0]
    rows = state.new_empty((layer + 1) * D, *state.shape[1:])  # (k+1)*D rows, as far as layer k
    placed = rows[layer * D:]  # (D, B, *): layer k's offset in nn.LSTM's permuted hx
    placed.copy_(state.index_select(1, order))  # (copy_: differentiable, unlike out=)
    return placed


def reverse_within_lengths(x: Tensor, lengths: Optional[Tensor], out: Optional[Tensor] = None) -> Tensor:
    """Reverses each sequence within its own length; padding stays at the end. (T, B, *)."""
    if lengths is None and out is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T, device=x.device)[:, None]  # (T, 1)
    if lengths is None:  # (made on x's device: a CUDA graph being recorded allows no copies)
        lens = torch.full((1, B), T, device=x.device)  # (1, B)
    else:
        lens = lengths.to(x.device)[None, :]  # (1, B)
    idx = torch.where(t < lens, lens - 1 - t, t)  # (T, B)
    idx = idx.view(T, B, *([1] * (x.dim() - 2)))  # (T, B, 1, ...)
    return torch.gather(x, 0, idx.expand_as(x), out=out)


def flip_lengths(lengths: Optional[Tensor], T: int) -> Optional[Tensor]:
    """The lengths to reverse with: None when every sequence is T long (a plain flip)."""
    if lengths is None or bool((lengths == T).all()):
        return None
    return lengths


def direction_h(output: Seq, d: int, D: int, H_out: int) -> Tensor:
    """Direction d's h_t at every input position: (T, B, H_out), a view of the layer output."""
    padded = output.padded  # (T, B, D*H_out)
    return padded if D == 1 else padded[..., d * H_out:(d + 1) * H_out]


def reverse_gates_within_lengths(gates: Tensor, lengths: Optional[Tensor],
                                 out: Optional[Tensor] = None) -> Tensor:
    """``reverse_within_lengths`` for gates (G, T, B, H), whose time axis is the second."""
    back = None if out is None else out.permute(1, 2, 0, 3)  # (T, B, 4, H)
    return reverse_within_lengths(gates.permute(1, 2, 0, 3), lengths, back).permute(2, 0, 1, 3)


def layer_output(hs: List[Tensor], lstm: nn.LSTM, layer: int, x: Seq, h_kept: bool) -> Seq:
    """A layer's output Seq from its directions' h (T, B, H_out) at input positions.

    With one direction that is the h tensor itself; for the top layer, when that tensor is
    kept in the result (``h_kept``), a copy: nn.LSTM's output is its own tensor, not a view
    of h."""
    padded = hs[0] if len(hs) == 1 else torch.cat(hs, dim=-1)  # (T, B, D*H_out)
    if len(hs) == 1 and h_kept and layer == lstm.num_layers - 1:
        padded = padded.clone()
    return Seq(padded=padded, lengths=x.lengths, steps=x.steps)


def in_processing_order(fn, lstm, layer, x: Seq, output: Seq, h0, c0, want, out) -> LayerStates:
    """Runs ``fn(x_d, h_d, h0_d, c0_d, params, out_d, want)`` (a cell's replay) for each
    direction in processing order
    (the reverse direction's sequences reversed within their lengths) and writes what it gives
    into ``out`` (or stacks it), at input positions."""
    D, H_out = h0.shape[0], h0.shape[-1]
    T = x.steps
    lengths = flip_lengths(x.lengths, T)
    results = []
    for d in range(D):
        params = layer_params(lstm, layer, d)
        h_d = direction_h(output, d, D, H_out)  # (T, B, H_out), input positions
        x_d = x.padded
        dest = None if out is None else LayerStates(*(None if s is None else s[d] for s in out))
        if d == 1:
            x_d, h_d = reverse_within_lengths(x_d, lengths), reverse_within_lengths(h_d, lengths)
            tmp = None if dest is None else LayerStates(
                None, None if dest.c is None else empty(dest.c, *dest.c.shape),
                None if dest.gates is None else empty(dest.gates, *dest.gates.shape))
            c, g = fn(x_d, h_d, h0[d], None if c0 is None else c0[d], params, tmp, want)
            c = c if c is None else reverse_within_lengths(c, lengths, None if dest is None else dest.c)
            if g is not None:
                g = reverse_gates_within_lengths(g, lengths, None if dest is None else dest.gates)
        else:
            c, g = fn(x_d, h_d, h0[d], None if c0 is None else c0[d], params, dest, want)
        results.append((c, g))
    if out is not None:
        return LayerStates(None, out.c, out.gates)
    c = torch.stack([r[0] for r in results]) if "c" in want else None  # (D, T, B, H)
    g = torch.stack([r[1] for r in results]) if "gates" in want else None  # (D, G, T, B, H)
    return LayerStates(None, c, g)


# ----------------------------------------------------------------------------------------------
# the routes


def kernel_then_replay(replay_fn, lstm, layer, x: Seq, h0, c0, want, out, like, train) -> LayerRun:
    output, h_n, c_n = fused_kernel(lstm, layer, x, h0, c0, like, train)
    D, H_out = h0.shape[0], h0.shape[-1]
    h = None
    if "h" in want:
        if out is None:
            h = torch.stack([direction_h(output, d, D, H_out) for d in range(D)])  # (D, T, B, H_out)
        else:
            h = out.h
            for d in range(D):
                h[d].copy_(direction_h(output, d, D, H_out))
    c = g = None
    if "c" in want or "gates" in want:
        _, c, g = in_processing_order(replay_fn, lstm, layer, x, output, h0, c0, want, out)
    return LayerRun(output, h_n, c_n, LayerStates(h, c, g))


def autograd(lstm: nn.LSTM, layer: int, x: Seq, h0: Tensor, c0: Tensor, want: FrozenSet[str],
             out: Optional[LayerStates] = None, like=None) -> LayerRun:
    """Differentiable: the fused kernel, then the gates (and c_t) replayed from its h_t."""
    return kernel_then_replay(cells.of(lstm).replay, lstm, layer, x, h0, c0, want, None, like,
                               train=h0.is_cuda)


def kernel(lstm: nn.LSTM, layer: int, x: Seq, h0: Tensor, c0: Tensor, want: FrozenSet[str],
           out: Optional[LayerStates] = None, like=None) -> LayerRun:
    """No autograd: the fused kernel, then the gates (and c_t) replayed in place into ``out``."""
    return kernel_then_replay(cells.of(lstm).replay_in_place, lstm, layer, x, h0, c0, want,
                               out or LayerStates(None, None, None), like, train=False)


def stepwise(lstm: nn.LSTM, layer: int, x: Seq, h0: Tensor, c0: Optional[Tensor],
             want: FrozenSet[str], out: Optional[LayerStates] = None, like=None) -> LayerRun:
    """No autograd, no kernel: the cell's equations step by step, written in place (nn.LSTM
    and nn.GRU).

    This does the cell's work once (the fused kernel plus a replay of its gates does it twice),
    with no per-step allocation, at the price of a few small operations per step. ``output``,
    ``h_n`` and ``c_n`` are its own (equal to the module's within float tolerance, not bitwise).
    """
    cell = cells.of(lstm)
    D, T, B = h0.shape[0], x.steps, h0.shape[1]
    H_out, H = h0.shape[-1], lstm.hidden_size
    out = out or LayerStates(None, None, None)
    h = out.h if out.h is not None else empty(x.padded, D, T, B, H_out)
    c = None if not cell.has_c else out.c if out.c is not None else empty(x.padded, D, T, B, H)
    gates = out.gates if out.gates is not None else empty(x.padded, D, cell.rows, T, B, H)
    lengths = flip_lengths(x.lengths, T)
    for d in range(D):
        params = layer_params(lstm, layer, d)
        c0_d = None if c0 is None else c0[d]
        if d == 0:
            cell.steps_in_place(x.padded, h0[d], c0_d, params,
                                (h[d], None if c is None else c[d], gates[d]))
        else:  # in processing order, then back to input positions
            tmp = (empty(h, *h[d].shape), None if c is None else empty(c, *c[d].shape),
                   empty(gates, *gates[d].shape))
            cell.steps_in_place(reverse_within_lengths(x.padded, lengths), h0[d], c0_d, params,
                                tmp)
            reverse_within_lengths(tmp[0], lengths, h[d])
            if c is not None:
                reverse_within_lengths(tmp[1], lengths, c[d])
            reverse_gates_within_lengths(tmp[2], lengths, gates[d])
    h_n, c_n = final_states(h, c, x.lengths)
    states = LayerStates(*(s if k in want else None for k, s in zip(("h", "c", "gates"),
                                                                      (h, c, gates), strict=True)))
    return LayerRun(layer_output(list(h), lstm, layer, x, out.h is not None), h_n, c_n, states)


def final_states(h: Tensor, c: Optional[Tensor],
                 lengths: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
    """Each direction's final state from its states at input positions: (D, B, *) each.

    h (D, T, B, H_out), c (D, T, B, H) or None: forward ends at the last valid step, reverse
    at 0.
    """
    T, B = h.shape[1], h.shape[2]
    if lengths is None:
        last = [T - 1, 0]
        return (torch.stack([h[d, last[d]] for d in range(h.shape[0])]),
                None if c is None else torch.stack([c[d, last[d]] for d in range(c.shape[0])]))
    end = (lengths - 1).to(h.device)  # (B,)
    batch = torch.arange(B, device=h.device)
    pos = [end, torch.zeros_like(end)]
    return (torch.stack([h[d, pos[d], batch] for d in range(h.shape[0])]),
            None if c is None else torch.stack([c[d, pos[d], batch] for d in range(c.shape[0])]))


def direction_kernel(x: Tensor, h0: Tensor, c0: Optional[Tensor], params, train: bool = False,
                     cell: Optional[cells.CellType] = None):
    """The cell's fused kernel (None: the LSTM's) over one direction in processing order:
    h (T, B, H_out) and the final (h, c) ((B, H_out), (B, H) or None). x: (T, B, I_l); params:
    ``layer_params``' list."""
    cell = cell or cells.LSTM
    weights, has_biases = kernel_weights(params)
    h, h_n, c_n = cell.kernel(x, None, h0[None], None if c0 is None else c0[None], weights,
                              has_biases, train, False)
    return h, h_n[0], None if c_n is None else c_n[0]
