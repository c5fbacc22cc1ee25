"""CUDA graphs for ``capture`` on a GPU without autograd: one replay instead of many launches.

On a GPU a small LSTM is bound by the CPU launching kernels, not by the GPU: ``capture`` issues
about ten small kernels per layer (matrix products, copies, the gates kernel) where nn.LSTM issues
one cuDNN call. Measured on an H200 for (T, B, I, H, L) = (100, 32, 32, 64, 2): nn.LSTM 0.12 ms,
capture 1.5 ms eagerly, 0.26 ms replayed from a CUDA graph with its results copied out.

So, without autograd, ``capture`` records its computation for a (module, input shape, hx shape)
into a CUDA graph on the first call (computing that call eagerly) and replays the graph on later
calls: the input is copied into the graph's own input tensor, the graph replays, and the results
are copied out, so the caller owns them and the next replay cannot touch them. The graph reads
the module's parameters where they live, so in-place updates (an optimizer step, load_state_dict)
are seen; parameters replaced by new tensors make a new graph.

Not used with autograd, packed input, dropout at work (training mode with dropout > 0), while
the caller is itself recording a graph, or when ``ENABLED`` is False. The graphs of the last
``MAX_GRAPHS`` keys are kept (each holds its own copy of the inputs and results: the memory of
one call); ``clear()`` frees them. If recording fails, capture stays eager (``unusable`` says why).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import OrderedDict
from typing import Callable, Optional

import torch

ENABLED = True
MAX_GRAPHS = 4
unusable: Optional[str] = None
_cache: OrderedDict = OrderedDict()  # key -> (graph, static input, static hx, static states, params)


def clear() -> None:
    """Frees every recorded graph and its memory."""
    _cache.clear()


def wanted(lstm, input) -> bool:
    """Whether a call without autograd should go through a CUDA graph."""
    if not (ENABLED and unusable is None and isinstance(input, torch.Tensor) and input.is_cuda):
        return False
    if lstm.training and lstm.dropout > 0:  # random masks: each call must draw its own
        return False
    return not torch.cuda.is_current_stream_capturing()  # the caller may be recording a graph


def _key(lstm, input, hx):
    shapes = [(t.shape, t.stride(), t.dtype) for t in (input, *(hx or ()))]
    # the settings that choose the kernels a graph holds (TF32 or not, cuDNN or not, ...)
    cudnn = torch.backends.cudnn
    settings = (cudnn.enabled, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark,
                torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())
    # (inference mode too: tensors made in it cannot be written outside it, and vice versa)
    return (id(lstm), tuple(p.data_ptr() for p in lstm.parameters()), tuple(shapes),
            input.device, hx is None, torch.is_inference_mode_enabled(), settings)


def replay(lstm, input, hx, compute: Callable):
    """``compute(input, hx)``'s LSTMStates, from a recorded graph (recorded on the first call)."""
    with torch.cuda.device(input.device):  # graphs are recorded and replayed on one device
        return _replay(lstm, input, hx, compute)


def _replay(lstm, input, hx, compute: Callable):
    global unusable
    key = _key(lstm, input, hx)
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
    return dataclasses.replace(static_states,
                               **{f: getattr(static_states, f).clone() for f in fields})


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
