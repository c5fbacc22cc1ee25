"""capture on a GPU: the ``cuda`` route and its CUDA graphs.

The ``cuda`` route is the ``kernel`` route (``routes.py``: PyTorch's fused LSTM kernel for each
layer, then the gates and c_t replayed from its h_t, in place) with what a GPU wants instead of
what a CPU wants: each replay's four gate products as one batched product (one launch, not
four), and the activations and the c_t recurrence in one Triton kernel per layer and direction
(``_triton.py``) instead of T small launches. Without Triton, or for float64, PyTorch ops.

CUDA graphs (route ``cuda_graph``). On a GPU a small LSTM is bound by the CPU launching kernels,
not by the GPU: the ``cuda`` route issues about ten small kernels per layer where nn.LSTM issues
one cuDNN call. Measured on an H200 for (T, B, I, H, L) = (100, 32, 32, 64, 2): nn.LSTM 0.12 ms,
capture 1.5 ms eagerly, 0.26 ms replayed from a CUDA graph with its results copied out.
So ``replay`` records the computation for a (module, input shape, hx shape, selection, backend
settings) into a CUDA graph on the first call (computing that call eagerly) and replays the
graph on later calls: the input is copied into the graph's own input tensor, the graph replays,
and the results are copied out, so the caller owns them and the next replay cannot touch them.
The graph reads the module's parameters where they live, so in-place updates (an optimizer
step, load_state_dict) are seen; parameters replaced by new tensors make a new graph.

Not used with autograd, packed input, dropout at work (training mode with dropout > 0), while
the caller is itself recording a graph (``graphs_possible``). The graphs of the last
``MAX_GRAPHS`` keys are kept (each holds its own copy of the inputs and results: the memory of
one call); ``clear()`` frees them. If recording fails, capture stays eager (``unusable`` says why).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Callable, FrozenSet, Optional

import torch
from torch import Tensor, nn

from . import _triton, cells
from .cells import previous_h, recurrence_in_place, unpack_params
from .routes import LayerRun, LayerStates, Seq, kernel_then_replay

MAX_GRAPHS = 4
unusable: Optional[str] = None
_cache: OrderedDict = OrderedDict()  # key -> (graph, static input, static hx, static states, params)


# ----------------------------------------------------------------------------------------------
# the route


def route(lstm: nn.LSTM, layer: int, x: Seq, h0: Tensor, c0: Tensor, want: FrozenSet[str],
          out: Optional[LayerStates] = None, like=None) -> LayerRun:
    """The ``kernel`` route with, for the LSTM, batched gate products and the Triton kernel (no
    autograd); a GRU's or RNN's gates are replayed as on the ``kernel`` route."""
    cell = cells.of(lstm)
    replay = _replay if cell is cells.LSTM else cell.replay_in_place
    return kernel_then_replay(replay, lstm, layer, x, h0, c0, want,
                              out or LayerStates(None, None, None), like, train=False)


def _replay(x: Tensor, h: Tensor, h0: Tensor, c0: Tensor, params, out, want):
    """Gates (4, T, B, H) and c (T, B, H) of one direction from its h_t (processing order),
    written into ``out`` (temporaries where it holds None); no autograd."""
    T, B, H = x.shape[0], x.shape[1], c0.shape[-1]
    w_ih, w_hh, bias, _ = unpack_params(params)
    gates = out.gates if out.gates is not None else x.new_empty(4, T, B, H)
    z = gates.view(4, T * B, H)
    # z_k = W_ih,k x_t + b_k: the four gates in one batched product (a GPU pays per launch)
    x_rows = x.reshape(T * B, x.shape[-1])  # (T*B, I_l)
    w = w_ih.view(4, H, -1).transpose(1, 2)  # (4, I_l, H): each gate's W_ih^T
    x_rows = x_rows.expand(4, *x_rows.shape)  # (4, T*B, I_l), no copy
    if bias is None:
        torch.bmm(x_rows, w, out=z)
    else:
        torch.baddbmm(bias.view(4, 1, H), x_rows, w, out=z)
    # z_k += W_hh,k h_{t-1}, the four gates in one batched product
    h_prev = previous_h(h, h0).view(T * B, h.shape[-1])  # h_{t-1}: (T*B, H_out)
    z.baddbmm_(h_prev.expand(4, *h_prev.shape), w_hh.view(4, H, -1).transpose(1, 2))
    kept = gates if "gates" in want else None
    if "c" not in want:
        # i, f, o = σ(z); g = tanh(z)
        torch.sigmoid_(gates[:2])
        torch.tanh_(gates[2])
        torch.sigmoid_(gates[3])
        return None, kept
    c = out.c if out.c is not None else x.new_empty(T, B, H)
    if _triton.available(gates) and c.is_contiguous() and \
            _triton.gates_and_cells(gates, c0.contiguous(), c):
        # every step's activations and c_t in one kernel, not T launches
        return c, kept
    torch.sigmoid_(gates[:2])
    torch.tanh_(gates[2])
    torch.sigmoid_(gates[3])
    recurrence_in_place(gates, c0, c)
    return c, kept


# ----------------------------------------------------------------------------------------------
# graphs


def clear() -> None:
    """Frees every recorded graph and its memory."""
    _cache.clear()


def graphs_possible(lstm: nn.LSTM, input) -> bool:
    """Whether a call without autograd can go through a CUDA graph."""
    if not (unusable is None and isinstance(input, torch.Tensor) and input.is_cuda):
        return False
    if lstm.training and lstm.dropout > 0:  # random masks: each call must draw its own
        return False
    return not torch.cuda.is_current_stream_capturing()  # the caller may be recording a graph


def _key(lstm, input, hx, selection):
    shapes = [(t.shape, t.stride(), t.dtype) for t in (input, *(hx or ()))]
    # the settings that choose the kernels a graph holds (TF32 or not, cuDNN or not, ...)
    cudnn = torch.backends.cudnn
    settings = (cudnn.enabled, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark,
                torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    # (inference mode too: tensors made in it cannot be written outside it, and vice versa)
    return (id(lstm), tuple(p.data_ptr() for p in lstm.parameters()), tuple(shapes),
            input.device, hx is None, torch.is_inference_mode_enabled(), settings, selection)


def replay(lstm, input, hx, selection, compute: Callable):
    """``compute(input, hx)``'s LSTMStates, from a recorded graph (recorded on the first call).
    ``selection`` (hashable) tells calls that keep different states apart."""
    with torch.cuda.device(input.device):  # graphs are recorded and replayed on one device
        return _replay_graph(lstm, input, hx, selection, compute)


def _replay_graph(lstm, input, hx, selection, compute: Callable):
    global unusable
    key = _key(lstm, input, hx, selection)
    entry = _cache.get(key)
    if entry is None:
        states = compute(input, hx)  # this call, eagerly (and any error in its input, clearly)
        try:
            _cache[key] = _record(lstm, input, hx, compute)
        except Exception as error:  # this PyTorch or GPU cannot record it: stay eager
            unusable = f"{type(error).__name__}: {error}"
            warnings.warn(f"lstm_states: capture cannot use CUDA graphs here ({unusable});"
                          " it computes eagerly (same results, more launches)", RuntimeWarning,
                          stacklevel=4)
        while len(_cache) > MAX_GRAPHS:
            _cache.popitem(last=False)
        return states
    _cache.move_to_end(key)
    graph, static_input, static_hx, static_states, _ = entry
    static_input.copy_(input)
    for mine, theirs in zip(static_hx or (), hx or (), strict=True):
        mine.copy_(theirs)
    graph.replay()
    fields = ("output", "h_n", "c_n", "h", "c", "gates")
    return static_states._replace(**{f: getattr(static_states, f).clone() for f in fields
                                     if getattr(static_states, f) is not None})


def _record(lstm, input, hx, compute: Callable):
    static_input = input.clone()
    static_hx = None if hx is None else tuple(t.clone() for t in hx)
    side = torch.cuda.Stream(device=input.device)
    side.wait_stream(torch.cuda.current_stream(input.device))
    with torch.cuda.stream(side):  # warm up (kernel choices, compilation) outside the recording
        compute(static_input, static_hx)
    torch.cuda.current_stream(input.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_states = compute(static_input, static_hx)
    # the parameters are kept alive with the graph, so that no other tensor can take their memory
    return graph, static_input, static_hx, static_states, list(lstm.parameters())
