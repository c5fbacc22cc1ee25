"""capture's GPU kernel (lstm_states/_triton.py), checked without a GPU.

On a CPU-only machine the kernel runs under Triton's interpreter (TRITON_INTERPRET=1, which
executes the kernel's Python body with NumPy, program by program) and is compiled ahead of time
for the GPUs we target, which needs no GPU either. ``tests/test_core.py`` runs it on a real GPU
when there is one. Skipped where Triton is not installed (``python3 dev.py test`` installs it).
"""

import importlib
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_states import _triton, capture
from tests.helpers import cell_reference

pytestmark = pytest.mark.skipif(_triton.triton is None, reason="Triton is not installed")


@pytest.fixture
def interpreted(monkeypatch):
    """``_triton`` with its kernel run by Triton's CPU interpreter, and capture's cuda route
    (``capture(..., route="cuda")``) using it for CPU float32 tensors; restored (compiled
    kernel, CUDA only) afterwards."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    importlib.reload(_triton)
    calls = []
    kernel = _triton.gates_and_cells

    def counted(*args):
        calls.append(args[0].shape)
        return kernel(*args)

    monkeypatch.setattr(_triton, "gates_and_cells", counted)
    monkeypatch.setattr(_triton, "available", lambda gates: gates.dtype == torch.float32)
    yield calls
    monkeypatch.undo()
    importlib.reload(_triton)


def reference(z, c0):
    """The same by PyTorch ops, step by step: z (4, T, B, H) -> gates (4, T, B, H), c (T, B, H)."""
    gates = torch.stack([z[0].sigmoid(), z[1].sigmoid(), z[2].tanh(), z[3].sigmoid()])
    i, f, g, _ = gates
    cs, c_t = [], c0
    for t in range(z.shape[1]):
        c_t = f[t] * c_t + i[t] * g[t]
        cs.append(c_t)
    return gates, torch.stack(cs)


# (T, B, H): H below, at and above the kernel's largest block of 128 hidden units
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 3, 7), (4, 2, 128), (3, 2, 200)], ids=str)
def test_kernel_matches_torch_ops(interpreted, shape):
    T, B, H = shape
    torch.manual_seed(0)
    z = torch.randn(4, T, B, H) * 4  # wide enough to saturate some gates
    c0 = torch.randn(B, H)
    gates = z.clone()  # activated in place
    c = torch.full((T, B, H), float("nan"))
    _triton.gates_and_cells(gates, c0, c)
    ref_gates, ref_c = reference(z, c0)
    torch.testing.assert_close(gates, ref_gates)
    torch.testing.assert_close(c, ref_c)


def test_tanh_is_accurate_near_zero_and_saturates(interpreted):
    # g = tanh(z): tiny, mid-range and huge arguments, both signs (1 - e^(-2|x|) alone would
    # lose most digits near 0)
    x = torch.cat([torch.logspace(-8, 1.5, 300), -torch.logspace(-8, 1.5, 300), torch.zeros(1)])
    gates = torch.zeros(4, 1, 1, x.numel())
    gates[2, 0, 0] = x
    c = torch.empty(1, 1, x.numel())
    _triton.gates_and_cells(gates, torch.zeros(1, x.numel()), c)
    torch.testing.assert_close(gates[2, 0, 0], x.tanh(), rtol=1e-6, atol=0)


def test_non_contiguous_tensors_are_refused(interpreted):
    gates, c = torch.randn(4, 3, 2, 5), torch.empty(3, 5, 2).transpose(1, 2)
    with pytest.raises(ValueError, match="c is not"):
        _triton.gates_and_cells(gates, torch.zeros(2, 5), c)


CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=3, bidirectional=True),
    dict(num_layers=2, proj_size=3, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_capture_through_the_kernel_matches_nn_lstm(interpreted, kw):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, **kw).eval()
    x = torch.randn(3, 6, 5) if lstm.batch_first else torch.randn(6, 3, 5)
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    hx = (torch.randn(L * D, 3, lstm.proj_size or 7), torch.randn(3, L * D, 7).transpose(0, 1))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        ref_out, (ref_h, ref_c) = lstm(x, hx)
        st = capture(lstm, x, hx, route="cuda")
    assert len(interpreted) == L * D  # one kernel call per layer and direction
    torch.testing.assert_close(st.output, ref_out)
    torch.testing.assert_close(st.h_n, ref_h)
    torch.testing.assert_close(st.c_n, ref_c)
    # every state of every layer, direction and step, against an independent per-step loop
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        h, c, g = cell_reference(lstm, x.transpose(0, 1) if lstm.batch_first else x, hx)
    torch.testing.assert_close(st.h, h)
    torch.testing.assert_close(st.c, c)
    torch.testing.assert_close(st.gates, g)


def test_packed_input_through_the_kernel(interpreted):
    torch.manual_seed(1)
    lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True).eval()
    lengths = torch.tensor([5, 2, 4])
    packed = pack_padded_sequence(torch.randn(5, 3, 4), lengths, enforce_sorted=False)
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = lstm(packed)
        st = capture(lstm, packed, route="cuda")
    assert len(interpreted) == 4
    torch.testing.assert_close(st.output.data, ref_out.data)
    torch.testing.assert_close(st.h_n, ref_h)
    torch.testing.assert_close(st.c_n, ref_c)
    h, c, g = cell_reference(lstm, pad_packed_sequence(packed)[0], lengths=lengths)
    torch.testing.assert_close(st.h, h)
    torch.testing.assert_close(st.c, c)  # (zero past each sequence's end)
    torch.testing.assert_close(st.gates, g)


def test_kernel_route_is_for_float32_cuda_only():
    # not interpreted: what capture asks before it takes the route
    assert not _triton.available(torch.zeros(1))  # CPU
    if torch.cuda.is_available():
        assert _triton.available(torch.zeros(1, device="cuda"))
        assert not _triton.available(torch.zeros(1, device="cuda", dtype=torch.float64))


@pytest.mark.parametrize("ones", [(), ("T",), ("B", "H"), ("T", "B", "H")], ids=str)
@pytest.mark.parametrize("arch", [80, 90])
def test_kernel_compiles_for_the_gpu(arch, ones):
    # ahead-of-time compilation to machine code (cubin) for an A100 (sm_80) and an H100 (sm_90);
    # Triton turns an int argument equal to 1 into a constant, so those variants too
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {name: "*fp32" for name in ("gates_ptr", "c0_ptr", "c_ptr")}
    signature.update(T="i32", B="i32", H="i32", BLOCK="constexpr")
    constexprs = {"BLOCK": _triton.MAX_BLOCK}
    for name in ones:
        signature[name] = "constexpr"
        constexprs[name] = 1
    src = ASTSource(fn=_triton._gates_and_cells, signature=signature, constexprs=constexprs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32))
    assert len(compiled.asm["cubin"]) > 0
    assert "ld.global" in compiled.asm["ptx"] and "st.global" in compiled.asm["ptx"]


def test_a_kernel_that_cannot_run_falls_back_to_pytorch_ops(monkeypatch):
    # e.g. no C compiler for Triton's launcher: warn once, then capture keeps to its loop
    class Broken:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                raise RuntimeError("no C compiler found")
            return launch

    monkeypatch.setattr(_triton, "_gates_and_cells", Broken())
    monkeypatch.setattr(_triton, "unusable", None)
    monkeypatch.setattr(_triton, "available",
                        lambda gates: _triton.unusable is None and gates.dtype == torch.float32)
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2).eval()
    x = torch.randn(6, 3, 5)
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = lstm(x)
        with pytest.warns(RuntimeWarning, match="no C compiler found"):
            st = capture(lstm, x, route="cuda")
        assert "no C compiler found" in _triton.unusable
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once only
            again = capture(lstm, x, route="cuda")
    for result in (st, again):
        torch.testing.assert_close(result.output, ref_out)
        torch.testing.assert_close(result.c_n, ref_c)
        h, c, g = cell_reference(lstm, x)
        torch.testing.assert_close(result.gates, g)
