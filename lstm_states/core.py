"""Every layer's h, c and gates at every time step, exactly as ``torch.nn.LSTM`` computes them.

Shape legend used in the comments of this module:
    L layers, D directions (1 or 2), T time steps, B batch, I input features,
    H hidden size (``hidden_size``), P projection size (``proj_size``),
    H_out = P if proj_size > 0 else H.

How it works. ``nn.LSTM`` hands back the top layer's h at every step (``output``) and every
layer's state at the last step (``h_n``, ``c_n``). To get the rest we run PyTorch's own fused
LSTM kernel one layer (and one direction) at a time, with the module's own parameters: its
output is that layer's h_t for every t. Since h_{t-1} is then known for every t, all four gates
come out of one batched matrix product, and c_t out of the elementwise recurrence
c_t = f_t * c_{t-1} + i_t * g_t. Nothing is copied out of the module: gradients reach its
parameters, and the module is never changed. Without autograd every state is written straight
into its place in the result, and on CPU, when a step's matrix product is large
(B * H >= 8192), the layer is computed step by step instead, which does the LSTM's work once
rather than twice.
On a GPU (float32, Triton installed, no autograd) the activations and the c_t recurrence run
in one kernel per layer and direction (``_triton.py``) instead of T small launches, and the
whole computation is recorded into a CUDA graph and replayed on later calls (``_graphs.py``).

Memory: capturing everything keeps h (L*D*T*B*H_out), c (L*D*T*B*H) and the gates
(4*L*D*T*B*H) elements, that is ``L * D * T * B * (H_out + 5 * H) * dtype_bytes`` bytes; a
2-layer, H=256 LSTM over T=1000 steps with B=64 in float32 keeps about 0.8 GB.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from . import _graphs, _triton

__all__ = ["LSTMStates", "capture", "LayerwiseLSTM", "memory_bytes"]

GATE_NAMES = ("i", "f", "g", "o")  # PyTorch's gate order


@dataclass
class LSTMStates:
    """Every state of one LSTM call.

    It unpacks like ``nn.LSTM``'s own result, so ``output, (h_n, c_n) = capture(lstm, x)``
    works, and ``states[0]`` is ``output``.
    """

    output: Union[Tensor, PackedSequence]
    """Exactly what ``nn.LSTM`` returns first: (T, B, D*H_out), (B, T, D*H_out) if batch_first,
    (T, D*H_out) for unbatched input, or a PackedSequence for packed input."""
    h_n: Tensor
    """(L*D, B, H_out), or (L*D, H_out) unbatched: each layer's and direction's final h."""
    c_n: Tensor
    """(L*D, B, H), or (L*D, H) unbatched: each layer's and direction's final c."""
    h: Tensor
    """(L, D, T, B, H_out), always time-major: h_t of every layer. For the reverse direction
    index t is input position t (as in ``output[t, :, H_out:]``)."""
    c: Tensor
    """(L, D, T, B, H): the cell state c_t of every layer."""
    gates: Tensor
    """(L, D, 4, T, B, H): the gates after their activations, in PyTorch's order i, f, g, o."""
    lengths: Optional[Tensor] = None
    """(B,) int64 on the CPU for packed input, in the caller's batch order (as
    ``pad_packed_sequence`` returns it); None otherwise. h, c and gates are zero past each
    sequence's end."""
    batch_first: bool = False
    """How ``output`` is laid out (h, c and gates are time-major regardless)."""

    # --- tuple protocol, so that an LSTMStates can stand in for nn.LSTM's result ---
    def _as_tuple(self) -> Tuple[Union[Tensor, PackedSequence], Tuple[Tensor, Tensor]]:
        return self.output, (self.h_n, self.c_n)

    def __iter__(self) -> Iterator:
        return iter(self._as_tuple())

    def __getitem__(self, index):
        return self._as_tuple()[index]

    def __len__(self) -> int:
        return 2

    @property
    def num_layers(self) -> int:
        return self.h.shape[0]

    @property
    def num_directions(self) -> int:
        return self.h.shape[1]

    def gate(self, name: str) -> Tensor:
        """One gate by name ('i', 'f', 'g' or 'o'): (L, D, T, B, H)."""
        if name not in GATE_NAMES:
            raise ValueError(f"gate name must be one of {GATE_NAMES}, got {name!r}")
        return self.gates[:, :, GATE_NAMES.index(name)]


def memory_bytes(num_layers: int, num_directions: int, steps: int, batch: int, hidden_size: int,
                 proj_size: int = 0, dtype: torch.dtype = torch.float32) -> int:
    """Bytes that h, c and gates of one capture take: L*D*T*B*(H_out + 5*H)*itemsize."""
    h_out = proj_size if proj_size > 0 else hidden_size
    itemsize = torch.empty((), dtype=dtype).element_size()
    return num_layers * num_directions * steps * batch * (h_out + 5 * hidden_size) * itemsize


# ----------------------------------------------------------------------------------------------
# input checks: every problem is reported before any computation, with what to do instead


def _check_module(lstm) -> None:
    if not isinstance(lstm, nn.LSTM):
        hint = ""
        if isinstance(lstm, nn.LSTMCell):
            hint = (" An nn.LSTMCell computes one step you call yourself: its h and c are already"
                    " every state you get.")
        elif isinstance(lstm, nn.RNNBase):
            hint = f" {type(lstm).__name__} has no cell state or LSTM gates."
        raise TypeError(f"capture() needs a torch.nn.LSTM, got {type(lstm).__name__}.{hint}"
                        " Pass an nn.LSTM (or an lstm_states.LayerwiseLSTM).")


def _check_input(lstm: nn.LSTM, input) -> Tuple[Tensor, bool]:
    """Returns the tensor that carries the data and whether the input is unbatched."""
    if isinstance(input, PackedSequence):
        data = input.data
        if data.dim() != 2:
            raise ValueError(f"a PackedSequence's data must be 2-D (sum of lengths, input_size),"
                             f" got shape {tuple(data.shape)}")
        unbatched = False
    elif isinstance(input, Tensor):
        data = input
        if data.dim() not in (2, 3):
            layout = "(B, T, input_size)" if lstm.batch_first else "(T, B, input_size)"
            raise ValueError(f"input must be 3-D {layout} or 2-D (T, input_size) for one unbatched"
                             f" sequence, got {data.dim()}-D input of shape {tuple(data.shape)}")
        unbatched = data.dim() == 2
        t_dim = 0 if unbatched or not lstm.batch_first else 1
        if data.shape[t_dim] == 0:
            raise ValueError("input has no time steps (T = 0); give at least one step")
    else:
        raise TypeError(f"input must be a Tensor or a PackedSequence, got {type(input).__name__}")
    if data.shape[-1] != lstm.input_size:
        raise ValueError(f"input has {data.shape[-1]} features in its last dimension but the LSTM"
                         f" was built with input_size={lstm.input_size}")
    weight = lstm.weight_ih_l0
    if data.dtype != weight.dtype:
        raise TypeError(f"input dtype {data.dtype} differs from the LSTM's parameters"
                        f" ({weight.dtype}); convert one of them, e.g. input.to({weight.dtype})")
    if data.device != weight.device:
        raise ValueError(f"input is on {data.device} but the LSTM's parameters are on"
                         f" {weight.device}; move one of them, e.g. input.to('{weight.device}')")
    return data, unbatched


def _check_hx(lstm: nn.LSTM, hx, batch: int, unbatched: bool, data: Tensor) -> None:
    if hx is None:
        return
    if not isinstance(hx, (tuple, list)) or len(hx) != 2 or not all(isinstance(t, Tensor) for t in hx):
        got = type(hx).__name__
        if isinstance(hx, (tuple, list)):
            got += f" of {len(hx)}: ({', '.join(type(t).__name__ for t in hx)})"
        raise TypeError(f"hx must be a pair of tensors (h_0, c_0), as for nn.LSTM; got a {got}")
    h_out = lstm.proj_size if lstm.proj_size > 0 else lstm.hidden_size
    rows = lstm.num_layers * (2 if lstm.bidirectional else 1)
    for name, t, size in (("h_0", hx[0], h_out), ("c_0", hx[1], lstm.hidden_size)):
        want = (rows, size) if unbatched else (rows, batch, size)
        if tuple(t.shape) != want:
            raise ValueError(f"{name} must have shape {want} (num_layers * num_directions,"
                             f"{'' if unbatched else ' batch,'} {'proj_size' if name == 'h_0' and lstm.proj_size else 'hidden_size'}),"
                             f" got {tuple(t.shape)}")
        if t.dtype != data.dtype:
            raise TypeError(f"{name} dtype {t.dtype} differs from the input's ({data.dtype})")
        if t.device != data.device:
            raise ValueError(f"{name} is on {t.device} but the input is on {data.device}")


# ----------------------------------------------------------------------------------------------
# the computation


def _layer_params(lstm: nn.LSTM, layer: int, direction: int):
    """The module's own parameters of one layer and direction, in the fused kernel's order."""
    sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
    names = ["weight_ih", "weight_hh"]
    if lstm.bias:
        names += ["bias_ih", "bias_hh"]
    if lstm.proj_size > 0:
        names += ["weight_hr"]
    return [getattr(lstm, n + sfx) for n in names]


def _unpack(params):
    """(w_ih, w_hh, b_ih + b_hh or None, w_hr or None) from ``_layer_params``' list."""
    bias = params[2] + params[3] if len(params) >= 4 else None  # (4H,)
    w_hr = params[-1] if len(params) in (3, 5) else None  # (P, H) with proj_size
    return params[0], params[1], bias, w_hr


def _reverse_within_lengths(x: Tensor, lengths: Optional[Tensor], out: Optional[Tensor] = None) -> Tensor:
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


# Without autograd, on CPU, ``capture`` computes a layer step by step (``_steps_in_place``) once the
# per-step matrix product is big enough to outweigh the per-step Python overhead: there, doing
# the LSTM's work once beats the fused kernel plus a batched replay of its gates. Measured by
# timing ``capture`` with this set to 0 and to 10**9 in turns on the 2-core CI machine:
# B * H = 16384 took 0.7x the time of the kernel route, 8192 0.8x, 4096 about 1x, 2048 1.3x.
# Tests set it to 0 or to a huge value to cover both routes.
STEPWISE_MIN_BATCH_X_HIDDEN = 8192


def _fused_kernel_args(params, bias: Optional[Tensor], w_hr: Optional[Tensor]):
    """(weights, has_biases) for one layer's ``torch.lstm`` call.

    On CUDA without biases, the module's two weight matrices of a layer can sit side by side in
    its cuDNN weight buffer, and torch.lstm (2.11, cuDNN) then gives wrong results for them
    (measured on an H200: errors ~0.3); with zero biases added it takes its copying path and is
    exact. The ``train`` flag the callers pass is for cuDNN too: its backward needs it (dropout is
    0 here, so it changes nothing else), which lets capture give gradients in eval mode.
    """
    if bias is None and params[0].is_cuda:
        zeros = params[0].new_zeros(params[0].shape[0])  # (4H,)
        return [params[0], params[1], zeros, zeros] + ([w_hr] if w_hr is not None else []), True
    return params, bias is not None


def _one_direction(x: Tensor, h0: Tensor, c0: Tensor, params, out=None,
                   stepwise: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """One layer, one direction, in processing order (step 0 first).

    x: (T, B, I_l); h0: (B, H_out); c0: (B, H). Returns h (T, B, H_out), c (T, B, H),
    gates (4, T, B, H). With ``out=(h, c, gates)`` (only without autograd) it writes into those
    tensors instead of allocating new ones, step by step if ``stepwise``.
    """
    if stepwise:
        return _steps_in_place(x, h0, c0, params, out)
    T, B, H = x.shape[0], x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, w_hr = _unpack(params)
    # h_t for every t from PyTorch's fused kernel, with this layer's own parameters
    h, _, _ = torch.lstm(x, (h0[None], c0[None]), *_fused_kernel_args(params, bias, w_hr),
                         1, 0.0, out is None and x.is_cuda, False, False)  # (T, B, H_out)
    if out is None:
        # [i, f, g, o] pre-activations z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, all t at once
        z = F.linear(x, w_ih, bias).view(T * B, 4 * H)  # W_ih x_t + b: (T*B, 4H)
        z[:B].addmm_(h0, w_hh.t())  # + W_hh h_{-1}, with h_{-1} = h0
        z[B:].addmm_(h[:-1].reshape((T - 1) * B, h.shape[-1]), w_hh.t())  # + W_hh h_{t-1}
        z = z.view(T, B, 4, H)
        # i, f, o = σ(z); g = tanh(z)
        gates = torch.stack([z[:, :, 0].sigmoid(), z[:, :, 1].sigmoid(), z[:, :, 2].tanh(),
                             z[:, :, 3].sigmoid()])  # (4, T, B, H)
        i, f, g = gates[0], gates[1], gates[2]
        # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t: a loop over t of one fused elementwise op
        ig = i * g  # (T, B, H)
        cs, c_t = [], c0
        for t in range(T):
            c_t = torch.addcmul(ig[t], f[t], c_t)
            cs.append(c_t)
        return h, torch.stack(cs), gates
    # the same, written into the caller's tensors (no autograd): each gate's pre-activation is
    # computed straight into its place in ``gates`` and activated there (no temporary, no
    # strided writes)
    h_out, c, gates = out  # (T, B, H_out), (T, B, H), (4, T, B, H), contiguous
    h_out.copy_(h)
    _input_preactivations(x, w_ih, bias, gates)  # gates[k, t] = W_ih,k x_t + b_k
    h_prev = torch.cat([h0[None], h[:-1]]).view(T * B, h.shape[-1])  # h_{t-1}: (T*B, H_out)
    # z_k = W_ih,k x_t + b_k + W_hh,k h_{t-1}
    if x.is_cuda:  # one batched product for the four gates (one launch)
        gates.view(4, T * B, H).baddbmm_(h_prev.expand(4, *h_prev.shape),
                                         w_hh.view(4, H, -1).transpose(1, 2))
    else:
        for k in range(4):
            gates[k].view(T * B, H).addmm_(h_prev, w_hh[k * H:(k + 1) * H].t())
    if _triton.available(gates) and c.is_contiguous() and \
            _triton.gates_and_cells(gates, c0.contiguous(), c):
        # on a GPU: every step's activations and c_t in one kernel, not T launches
        return h_out, c, gates
    # i, f, o = σ(z); g = tanh(z)
    torch.sigmoid_(gates[:2])
    torch.tanh_(gates[2])
    torch.sigmoid_(gates[3])
    i, f, g = gates[0], gates[1], gates[2]
    torch.mul(i, g, out=c)  # i_t ⊙ g_t, then c_t = f_t ⊙ c_{t-1} + (i_t ⊙ g_t) in place
    c_t = c0
    for t in range(T):
        c_t = torch.addcmul(c[t], f[t], c_t, out=c[t])
    return h_out, c, gates


def _input_preactivations(x: Tensor, w_ih: Tensor, bias: Optional[Tensor], gates: Tensor) -> None:
    """Writes W_ih,k x_t + b_k into ``gates[k, t]`` for every gate k and step t; no autograd.

    x: (T, B, I_l); w_ih: (4H, I_l); bias: (4H,) or None; gates: (4, T, B, H), contiguous.
    One matrix product per gate straight into its place (no (T, B, 4H) temporary).
    """
    T, B, H = gates.shape[1:]
    x_rows = x.reshape(T * B, x.shape[-1])  # (T*B, I_l)
    if x.is_cuda:  # the four gates in one batched product: a GPU pays per launch
        w = w_ih.view(4, H, -1).transpose(1, 2)  # (4, I_l, H): each gate's W_ih^T
        z = gates.view(4, T * B, H)
        x_rows = x_rows.expand(4, *x_rows.shape)  # (4, T*B, I_l), no copy
        if bias is None:
            torch.bmm(x_rows, w, out=z)
        else:
            torch.baddbmm(bias.view(4, 1, H), x_rows, w, out=z)
        return
    for k in range(4):
        rows = slice(k * H, (k + 1) * H)  # gate k's rows of the weights
        z_k = gates[k].view(T * B, H)
        if bias is None:
            torch.mm(x_rows, w_ih[rows].t(), out=z_k)
        else:
            torch.addmm(bias[rows], x_rows, w_ih[rows].t(), out=z_k)


def _steps_in_place(x: Tensor, h0: Tensor, c0: Tensor, params, out) -> Tuple[Tensor, Tensor, Tensor]:
    """The LSTM equations step by step, written into ``out=(h, c, gates)``; no autograd.

    This does the LSTM's work once (the fused kernel plus a replay of its gates does it twice),
    with no per-step allocation, at the price of a few small operations per step.
    """
    h_out, c_out, gates = out  # (T, B, H_out), (T, B, H), (4, T, B, H)
    T, B, H = x.shape[0], x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, w_hr = _unpack(params)
    _input_preactivations(x, w_ih, bias, gates)  # gates[k, t] = W_ih,k x_t + b_k, all t at once
    w_hh_t = w_hh.view(4, H, w_hh.shape[-1]).transpose(1, 2)  # (4, H_out, H): each gate's W_hh^T
    i, f, g, o = gates  # 4 x (T, B, H)
    o_tanh_c = x.new_empty(B, H) if w_hr is not None else None
    h_t, c_t = h0, c0
    for t in range(T):
        # z_t = W_ih x_t + b + W_hh h_{t-1}, gate by gate in one batched product, in place
        gates[:, t].baddbmm_(h_t.expand(4, *h_t.shape), w_hh_t)  # (4, B, H)
        # i, f, o = σ(z_t); g = tanh(z_t), in place
        torch.sigmoid_(gates[:2, t])
        torch.tanh_(g[t])
        torch.sigmoid_(o[t])
        # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        c_t = torch.addcmul(torch.mul(f[t], c_t, out=c_out[t]), i[t], g[t], out=c_out[t])
        # h_t = o_t ⊙ tanh(c_t), then h_t = W_hr h_t with proj_size
        if w_hr is None:
            h_t = torch.mul(o[t], torch.tanh(c_t, out=h_out[t]), out=h_out[t])
        else:
            torch.mul(o[t], torch.tanh(c_t, out=o_tanh_c), out=o_tanh_c)
            h_t = torch.mm(o_tanh_c, w_hr.t(), out=h_out[t])
    return h_out, c_out, gates


def capture(lstm: nn.LSTM, input: Union[Tensor, PackedSequence],
            hx: Optional[Tuple[Tensor, Tensor]] = None) -> LSTMStates:
    """Runs ``lstm`` on ``input`` and returns every layer's h, c and gates at every step.

    Args:
        lstm: any ``torch.nn.LSTM`` (trained or not, any configuration); never changed. Its own
            parameters are used, so gradients reach them.
        input: what you would pass to ``lstm``: (T, B, I), (B, T, I) if batch_first, (T, I)
            unbatched, or a PackedSequence.
        hx: optional (h_0, c_0), shaped as ``nn.LSTM`` expects: (L*D, B, H_out), (L*D, B, H).

    Returns:
        LSTMStates with ``output``, ``h_n``, ``c_n`` as ``lstm(input, hx)`` returns them (equal
        within float tolerance) and ``h`` (L, D, T, B, H_out), ``c`` (L, D, T, B, H), ``gates``
        (L, D, 4, T, B, H).

    Dropout: in eval mode (or with dropout=0) the result is exact. In training mode with
    ``dropout > 0``, capture draws its own masks (``F.dropout`` with the same p on each layer's
    input but the first, as nn.LSTM does; on CPU, from the same random state, they come out as
    nn.LSTM's own, but nothing in PyTorch promises that, and on CUDA cuDNN draws differently) and
    every returned tensor, ``output`` included, is consistent with those masks.

    On a GPU without autograd (unpacked input, no dropout at work) the computation is recorded
    once per module and input shape into a CUDA graph and replayed after that (``_graphs.py``):
    the same results, without the launch cost of ~10 small kernels per layer.
    """
    _check_module(lstm)
    data, unbatched = _check_input(lstm, input)
    given = hx if isinstance(hx, (tuple, list)) else ()  # (a malformed hx: _check_hx says so)
    if not _needs_autograd(lstm, data, *given) and _graphs.wanted(lstm, input):
        return _graphs.replay(lstm, input, hx,
                              lambda inp, h: _compute(lstm, inp, h, inp, unbatched))
    return _compute(lstm, input, hx, data, unbatched)


def _needs_autograd(lstm: nn.LSTM, *tensors) -> bool:
    """Whether autograd records this call: grad mode on, and one of the given tensors or the
    module's parameters requires grad (entries that are not tensors are for ``_check_hx``)."""
    return torch.is_grad_enabled() and any(
        isinstance(t, Tensor) and t.requires_grad for t in (*tensors, *lstm.parameters()))


def _compute(lstm: nn.LSTM, input: Union[Tensor, PackedSequence],
             hx: Optional[Tuple[Tensor, Tensor]], data: Tensor, unbatched: bool) -> LSTMStates:
    """``capture``'s computation, after its checks of the module and the input (``data`` and
    ``unbatched`` as ``_check_input`` returned them)."""

    # 1. everything time-major and batched: x (T, B, I)
    lengths = None
    if isinstance(input, PackedSequence):
        x, lengths = pad_packed_sequence(input)  # caller's batch order, zero past the ends
    elif unbatched:
        x = input[:, None]  # (T, 1, I)
    else:
        x = input.transpose(0, 1) if lstm.batch_first else input
    T, B = x.shape[0], x.shape[1]
    if lengths is not None and bool((lengths == T).all()):
        lengths_for_flip = None  # every sequence full length: a plain flip reverses them
    else:
        lengths_for_flip = lengths
    _check_hx(lstm, hx, B, unbatched, data)

    L, D, H = lstm.num_layers, 2 if lstm.bidirectional else 1, lstm.hidden_size
    H_out = lstm.proj_size if lstm.proj_size > 0 else H
    if hx is None:
        h0 = x.new_zeros(L * D, B, H_out)
        c0 = x.new_zeros(L * D, B, H)
    else:
        h0, c0 = (hx[0][:, None], hx[1][:, None]) if unbatched else hx  # (L*D, B, *)
    # without autograd, every state is written straight into its place in the result
    in_place = not _needs_autograd(lstm, x, h0, c0)
    if in_place:
        h_all = x.new_empty(L, D, T, B, H_out)
        c_all = x.new_empty(L, D, T, B, H)
        g_all = x.new_empty(L, D, 4, T, B, H)
    # (measured on CPU; on a GPU a per-step loop would be launch-bound, so the kernel route)
    stepwise = in_place and x.device.type == "cpu" and B * H >= STEPWISE_MIN_BATCH_X_HIDDEN
    hs, cs, gs = [], [], []
    layer_in = x  # (T, B, I_l)
    with warnings.catch_warnings():
        # on CUDA, per-layer calls use the module's weights in place, not its flat cuDNN buffer
        warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")
        # with proj_size, the CPU kernel says once that it falls back from oneDNN (as nn.LSTM does)
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        for layer in range(L):
            if layer > 0 and lstm.dropout > 0 and lstm.training:
                layer_in = _dropout(layer_in, lstm.dropout, lengths, input)
            h_dirs, c_dirs, g_dirs = [], [], []
            for d in range(D):
                k = layer * D + d
                params = _layer_params(lstm, layer, d)
                if d == 0:
                    out = (h_all[layer, 0], c_all[layer, 0], g_all[layer, 0]) if in_place else None
                    h, c, g = _one_direction(layer_in, h0[k], c0[k], params, out, stepwise)
                else:  # run in processing order, then back to input positions
                    seq = _reverse_within_lengths(layer_in, lengths_for_flip)
                    tmp = (torch.empty_like(h_all[layer, 1]), torch.empty_like(c_all[layer, 1]),
                           torch.empty_like(g_all[layer, 1])) if in_place else None
                    h, c, g = _one_direction(seq, h0[k], c0[k], params, tmp, stepwise)
                    out = (h_all[layer, 1], c_all[layer, 1],
                           g_all[layer, 1].permute(1, 2, 0, 3)) if in_place else (None,) * 3
                    h = _reverse_within_lengths(h, lengths_for_flip, out[0])
                    c = _reverse_within_lengths(c, lengths_for_flip, out[1])
                    g = _reverse_within_lengths(g.permute(1, 2, 0, 3), lengths_for_flip, out[2])
                    g = g.permute(2, 0, 1, 3)  # (T, B, 4, H) -> (4, T, B, H)
                h_dirs.append(h)
                c_dirs.append(c)
                g_dirs.append(g)
            if not in_place:
                hs.append(torch.stack(h_dirs))  # (D, T, B, H_out)
                cs.append(torch.stack(c_dirs))  # (D, T, B, H)
                gs.append(torch.stack(g_dirs))  # (D, 4, T, B, H)
            layer_in = h_dirs[0] if D == 1 else torch.cat(h_dirs, dim=-1)  # (T, B, D*H_out)
    if not in_place:
        h_all = torch.stack(hs)  # (L, D, T, B, H_out)
        c_all = torch.stack(cs)  # (L, D, T, B, H)
        g_all = torch.stack(gs)  # (L, D, 4, T, B, H)
    top = layer_in  # (T, B, D*H_out)
    if lengths is not None:  # zero past each sequence's end
        mask = (torch.arange(T)[:, None] < lengths[None, :]).to(x.device, x.dtype)  # (T, B)
        mask = mask[..., None]  # (T, B, 1)
        if in_place:  # no second copy of everything
            for states in (h_all, c_all, g_all):
                states.mul_(mask)
            if D == 2:  # (with one direction top is a view of h_all, masked above)
                top.mul_(mask)
        else:
            h_all, c_all, g_all, top = h_all * mask, c_all * mask, g_all * mask, top * mask
    elif in_place and D == 1:
        top = top.clone()  # a view of h_all: the output must not share h's memory, as in nn.LSTM

    # 2. the final state of each direction: the last valid step forward, step 0 in reverse
    finals_h, finals_c = [], []
    if lengths is None:
        for d in range(D):
            finals_h.append(h_all[:, d, T - 1 if d == 0 else 0])  # (L, B, H_out)
            finals_c.append(c_all[:, d, T - 1 if d == 0 else 0])  # (L, B, H)
    else:
        last = (lengths - 1).to(x.device)  # (B,)
        batch_idx = torch.arange(B, device=x.device)
        for d in range(D):
            pos = last if d == 0 else torch.zeros_like(last)
            finals_h.append(h_all[:, d, pos, batch_idx])  # (L, B, H_out)
            finals_c.append(c_all[:, d, pos, batch_idx])  # (L, B, H)
    h_n = torch.stack(finals_h, dim=1).reshape(L * D, B, H_out)  # layer-major, as nn.LSTM
    c_n = torch.stack(finals_c, dim=1).reshape(L * D, B, H)

    # 3. output in the caller's layout
    if lengths is not None:
        output = _repack_like(top, lengths, input)
    elif unbatched:
        output, h_n, c_n = top[:, 0], h_n[:, 0], c_n[:, 0]
    else:
        output = top.transpose(0, 1) if lstm.batch_first else top
    return LSTMStates(output=output, h_n=h_n, c_n=c_n, h=h_all, c=c_all, gates=g_all,
                      lengths=lengths, batch_first=lstm.batch_first)


def _dropout(x: Tensor, p: float, lengths: Optional[Tensor], input) -> Tensor:
    """Dropout on a layer's input, drawn as nn.LSTM's CPU kernel draws it: one ``F.dropout`` on
    the (T, B, D*H_out) input of each layer but the first, on the packed data for packed input.
    (So on CPU, with the same random state, the masks are nn.LSTM's own; PyTorch does not
    promise that, and cuDNN draws its masks its own way.)"""
    if lengths is None:
        return F.dropout(x, p, training=True)
    packed = _repack_like(x, lengths, input)
    dropped = packed._replace(data=F.dropout(packed.data, p, training=True))
    return pad_packed_sequence(dropped, total_length=x.shape[0])[0]  # (T, B, D*H_out)


def _repack_like(padded: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Packs (T, B, *) padded data (caller's order) exactly as ``like`` is packed."""
    order = like.sorted_indices
    if order is not None:
        padded, lengths = padded[:, order.to(padded.device)], lengths[order.cpu()]
    data, batch_sizes = torch._C._VariableFunctions._pack_padded_sequence(padded, lengths, False)
    return PackedSequence(data, batch_sizes, like.sorted_indices, like.unsorted_indices)


class LayerwiseLSTM(nn.LSTM):
    """An ``nn.LSTM`` whose forward also hands back every layer's states.

    Same constructor arguments, parameter names and state_dict as ``torch.nn.LSTM`` (it *is* an
    nn.LSTM), so weights move between the two with ``load_state_dict``. ``forward`` returns an
    :class:`LSTMStates`, which unpacks exactly like nn.LSTM's result, so it drops into existing
    model code unchanged::

        model.lstm = LayerwiseLSTM(256, 512, num_layers=2)
        model.lstm.load_state_dict(old_lstm.state_dict())
        output, (h_n, c_n) = model.lstm(x)      # as before
        states = model.lstm(x)                  # or keep everything
        states.h[0]                             # layer 0's h_t for every t: (D, T, B, H_out)

    To look inside an existing model without replacing its modules, see ``capture``.
    """

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM) -> LayerwiseLSTM:
        """A LayerwiseLSTM with the same configuration and a copy of ``lstm``'s weights."""
        _check_module(lstm)
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
