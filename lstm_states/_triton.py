"""One GPU kernel for a layer's gates and cell states, for ``capture``'s CUDA route (no autograd).

Given the pre-activations of every step (matrix products over all steps at once, see ``core``),
what is left is elementwise along each (b, j) but sequential in t. As separate PyTorch ops that
is T kernel launches per layer, which on a GPU costs more than the LSTM itself; here one launch
walks t inside the kernel, each program owning a block of hidden units of one batch row.

Only float32 on CUDA, and only with Triton installed (it comes with CUDA builds of PyTorch);
``available`` says whether a tensor can take this route, else ``core`` runs its loop.

Accuracy: the tests run this kernel under Triton's CPU interpreter, where ``tl.exp`` is NumPy's.
Compiled for an NVIDIA GPU, ``tl.exp`` becomes the hardware's approximate ``ex2`` and ``/`` an
approximate division (a few ulp each), so expect gates and c to differ from PyTorch's ops by
~1e-7 absolute, within float32 tolerances;
``tests/test_core.py`` checks that on a real GPU against nn.LSTM.
"""

import contextlib
import warnings
from typing import Optional

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU builds of PyTorch come without Triton
    triton = None

MAX_BLOCK = 128  # hidden units per program (fewer when H is smaller)

if triton is not None:

    @triton.jit
    def _sigmoid(x):
        # σ(x) = 1 / (1 + exp(-x)) (as tl.sigmoid; spelled out so the tests' interpreter runs it)
        return 1.0 / (1.0 + tl.exp(-x))

    @triton.jit
    def _tanh(x):
        # tanh x = sign(x) (1 - e) / (1 + e) with e = exp(-2|x|); near 0, where 1 - e loses
        # digits, the odd Taylor series x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835
        a = tl.abs(x)
        e = tl.exp(-2.0 * a)
        x2 = x * x
        series = a * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))))
        y = tl.where(a < 0.125, series, (1.0 - e) / (1.0 + e))
        return tl.where(x < 0, -y, y)

    @triton.jit
    def _gates_and_cells(gates_ptr, c0_ptr, c_ptr, T, B, H, BLOCK: tl.constexpr):
        # gates (4, T, B, H): pre-activations in, activations out (in place); c0 (B, H);
        # c (T, B, H); all contiguous. Program (b, k) owns hidden units k*BLOCK ...
        # k*BLOCK + BLOCK-1 of batch row b, for every t. Offsets in 64 bits: 4 * T * B * H can
        # pass 2**31 elements.
        b = tl.program_id(0).to(tl.int64)
        j = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = j < H
        n = b * H + j  # offset of [b, j] in (B, H)
        c = tl.load(c0_ptr + n, mask=mask)
        t = tl.full((), 0, tl.int64)
        N = (t + B) * H  # B * H
        TN = T * N  # T * B * H: from one gate to the next
        while t < T:  # (a while loop: Triton's CPU interpreter, which the tests use, runs it)
            i_t = gates_ptr + t * N + n  # &gates[0, t, b, j]
            # i, f, o = σ(z); g = tanh(z)
            i = _sigmoid(tl.load(i_t, mask=mask))
            f = _sigmoid(tl.load(i_t + TN, mask=mask))
            g = _tanh(tl.load(i_t + 2 * TN, mask=mask))
            o = _sigmoid(tl.load(i_t + 3 * TN, mask=mask))
            # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
            c = f * c + i * g
            tl.store(i_t, i, mask=mask)
            tl.store(i_t + TN, f, mask=mask)
            tl.store(i_t + 2 * TN, g, mask=mask)
            tl.store(i_t + 3 * TN, o, mask=mask)
            tl.store(c_ptr + t * N + n, c, mask=mask)
            t += 1


# Why the kernel could not be compiled or launched here (no C compiler for Triton's launcher, a
# GPU Triton does not support, ...), after its first try; then ``core`` keeps to its loop.
unusable: Optional[str] = None


def available(gates: Tensor) -> bool:
    """Whether ``gates_and_cells`` can take ``gates``: Triton installed and usable, float32, CUDA."""
    return (triton is not None and unusable is None and gates.is_cuda
            and gates.dtype == torch.float32)


def gates_and_cells(gates: Tensor, c0: Tensor, c: Tensor) -> bool:
    """Activates every step's gates in place and writes every step's cell state into ``c``.

    gates: (4, T, B, H) pre-activations [i, f, g, o] in, activations out; c0: (B, H);
    c: (T, B, H). All contiguous, same device and dtype. Returns False, having changed nothing
    and warned once, if the kernel cannot be compiled or launched (``unusable`` says why).
    """
    global unusable
    _, T, B, H = gates.shape
    for name, t in (("gates", gates), ("c0", c0), ("c", c)):
        if not t.is_contiguous():
            raise ValueError(f"gates_and_cells needs contiguous tensors; {name} is not")
    block = min(MAX_BLOCK, triton.next_power_of_2(H))
    try:
        with torch.cuda.device(gates.device) if gates.is_cuda else contextlib.nullcontext():
            # (Triton launches on the current device, which need not be the tensors' one)
            _gates_and_cells[(B, triton.cdiv(H, block))](gates, c0, c, T, B, H, BLOCK=block)
    except Exception as error:  # compilation or launch: before the kernel wrote anything
        unusable = f"{type(error).__name__}: {error}"
        warnings.warn(f"lstm_states: the Triton kernel cannot run here ({unusable}); capture"
                      " falls back to PyTorch ops (same results, slower on a GPU)", RuntimeWarning,
                      stacklevel=2)
        return False
    return True
