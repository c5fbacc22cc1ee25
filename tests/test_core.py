"""capture / LayerwiseLSTM against torch.nn.LSTM itself, configuration by configuration."""

import copy
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstm_states import LayerwiseLSTM, LSTMStates, _triton, capture, core, memory_bytes
from tests.helpers import cell_reference


@pytest.fixture(autouse=True)
def _restore_grad_mode():
    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)


CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2),
    dict(num_layers=3, bidirectional=True),
    dict(num_layers=2, proj_size=3),
    dict(num_layers=2, proj_size=4, bidirectional=True, batch_first=True),
    dict(num_layers=2, bias=False, batch_first=True),
    dict(num_layers=2, bias=False, proj_size=3, bidirectional=True),
]


def make(seed=0, dtype=torch.float64, input_size=5, hidden_size=7, **kw):
    torch.manual_seed(seed)
    return nn.LSTM(input_size, hidden_size, **kw).to(dtype).eval()


def batch_input(lstm, T=6, B=3, dtype=torch.float64):
    shape = (B, T, lstm.input_size) if lstm.batch_first else (T, B, lstm.input_size)
    return torch.randn(*shape, dtype=dtype)


def assert_matches_lstm(lstm, x, hx=None, route=None, **tol):
    ref_out, (ref_h, ref_c) = lstm(x, hx)
    st = capture(lstm, x, hx, route=route)
    out = st.output
    if isinstance(out, nn.utils.rnn.PackedSequence):
        torch.testing.assert_close(out.batch_sizes, ref_out.batch_sizes)
        out, ref_out = out.data, ref_out.data
    torch.testing.assert_close(out, ref_out, **tol)
    torch.testing.assert_close(st.h_n, ref_h, **tol)
    torch.testing.assert_close(st.c_n, ref_c, **tol)
    return st


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_h_n_c_n_match_nn_lstm(kw, dtype):
    lstm = make(dtype=dtype, **kw)
    x = batch_input(lstm, dtype=dtype)
    st = assert_matches_lstm(lstm, x)
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    H_out = lstm.proj_size or lstm.hidden_size
    assert st.h.shape == (L, D, 6, 3, H_out)
    assert st.c.shape == (L, D, 6, 3, lstm.hidden_size)
    assert st.gates.shape == (L, D, 4, 6, 3, lstm.hidden_size)


# capture's CPU routes: differentiable; in place from the fused kernel; in place step by step
# (tests/test_triton.py: the cuda route; tests/test_graphs.py: cuda_graph)
ROUTES = ["autograd", "kernel", "stepwise"]


def use_route(route):
    """Grad mode as ``route`` needs it (restored by _restore_grad_mode); the test passes
    ``route=route`` to capture."""
    torch.set_grad_enabled(route == "autograd")


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_every_state_matches_independent_loop(kw, route):
    use_route(route)
    lstm = make(**kw)
    x = batch_input(lstm)
    st = capture(lstm, x, route=route)
    assert st.h.requires_grad == (route == "autograd")
    h, c, g = cell_reference(lstm, x.transpose(0, 1) if lstm.batch_first else x)
    torch.testing.assert_close(st.h, h)
    torch.testing.assert_close(st.c, c)
    torch.testing.assert_close(st.gates, g)


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_h_consistent_with_output_and_final_states(kw, route):
    use_route(route)
    lstm = make(**kw)
    x = batch_input(lstm)
    out, (h_n, c_n) = lstm(x)
    st = capture(lstm, x, route=route)
    H_out = lstm.proj_size or lstm.hidden_size
    out_tm = out.transpose(0, 1) if lstm.batch_first else out  # (T, B, D*H_out)
    # the top layer's h at every step is output (forward half, then reverse half)
    torch.testing.assert_close(st.h[-1, 0], out_tm[..., :H_out])
    D = st.num_directions
    if D == 2:
        torch.testing.assert_close(st.h[-1, 1], out_tm[..., H_out:])
    # h_n / c_n: each direction's final position (T-1 forward, 0 in reverse), layer-major
    for layer in range(lstm.num_layers):
        torch.testing.assert_close(st.h[layer, 0, -1], h_n[layer * D])
        torch.testing.assert_close(st.c[layer, 0, -1], c_n[layer * D])
        if D == 2:
            torch.testing.assert_close(st.h[layer, 1, 0], h_n[layer * D + 1])
            torch.testing.assert_close(st.c[layer, 1, 0], c_n[layer * D + 1])


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_gates_satisfy_the_lstm_equations(kw, route):
    use_route(route)
    lstm = make(**kw)
    x = batch_input(lstm)
    st = capture(lstm, x, route=route)
    i, f, g, o = (st.gate(n).detach() for n in "ifgo")
    assert float(i.min()) > 0 and float(i.max()) < 1 and float(g.abs().max()) < 1
    for d in range(st.num_directions):
        c = st.c[:, d]  # (L, T, B, H)
        # c_{t-1}: forward runs t = 0..T-1, reverse runs T-1..0; c_{-1} = 0
        prev = torch.cat([torch.zeros_like(c[:, :1]), c[:, :-1]], 1) if d == 0 else \
            torch.cat([c[:, 1:], torch.zeros_like(c[:, :1])], 1)
        # c_t = f_t * c_{t-1} + i_t * g_t
        torch.testing.assert_close(c, f[:, d] * prev + i[:, d] * g[:, d])
        # h_t = o_t * tanh(c_t), projected by W_hr when proj_size > 0
        h = o[:, d] * c.tanh()
        if lstm.proj_size:
            w_hr = torch.stack([getattr(lstm, f"weight_hr_l{k}" + ("_reverse" if d else ""))
                                for k in range(lstm.num_layers)])  # (L, P, H)
            h = torch.einsum("ltbh,lph->ltbp", h, w_hr)
        torch.testing.assert_close(st.h[:, d], h)


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_packed_sequence_unequal_lengths(kw, route):
    use_route(route)
    lstm = make(**kw)
    bf = lstm.batch_first
    x = batch_input(lstm, T=7, B=4)
    lengths = torch.tensor([3, 7, 1, 5])
    packed = pack_padded_sequence(x, lengths, batch_first=bf, enforce_sorted=False)
    st = assert_matches_lstm(lstm, packed, route=route)
    assert isinstance(st.output, nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(st.output.sorted_indices, packed.sorted_indices)
    torch.testing.assert_close(st.lengths, lengths)
    # each sequence alone, unpadded, gives the same states at its valid steps
    for b, n in enumerate(lengths.tolist()):
        seq = x[b:b + 1, :n] if bf else x[:n, b:b + 1]  # this sequence alone, unpadded
        alone = capture(lstm, seq, route=route)
        torch.testing.assert_close(st.h[:, :, :n, b], alone.h[:, :, :, 0])
        torch.testing.assert_close(st.c[:, :, :n, b], alone.c[:, :, :, 0])
        torch.testing.assert_close(st.gates[..., :n, b, :], alone.gates[..., :, 0, :])
        # zero past the end
        for past in (st.h[:, :, n:, b], st.c[:, :, n:, b], st.gates[..., n:, b, :]):
            assert past.abs().sum() == 0
    padded, _ = pad_packed_sequence(st.output, batch_first=bf)
    top = torch.cat(list(st.h[-1]), -1)  # (T, B, D*H_out): directions side by side
    torch.testing.assert_close(padded, top.transpose(0, 1) if bf else top)


def test_packed_sorted_and_equal_lengths():
    lstm = make(num_layers=2, bidirectional=True)
    x = batch_input(lstm, T=5, B=3)
    assert_matches_lstm(lstm, pack_padded_sequence(x, torch.tensor([5, 4, 2])))
    assert_matches_lstm(lstm, pack_padded_sequence(x, torch.tensor([5, 5, 5])))


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_hx_given(kw, route):
    use_route(route)
    lstm = make(**kw)
    x = batch_input(lstm)
    D = 2 if lstm.bidirectional else 1
    rows = lstm.num_layers * D
    hx = (torch.randn(rows, 3, lstm.proj_size or lstm.hidden_size, dtype=torch.float64),
          torch.randn(rows, 3, lstm.hidden_size, dtype=torch.float64))
    st = assert_matches_lstm(lstm, x, hx, route=route)
    # the first step's c uses c_0: c_0 = f * c_{-1} + i * g
    i, f, g = st.gate("i")[0, 0, 0], st.gate("f")[0, 0, 0], st.gate("g")[0, 0, 0]
    torch.testing.assert_close(st.c[0, 0, 0], f * hx[1][0] + i * g)


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_unbatched_input(kw):
    lstm = make(**kw)
    x = torch.randn(6, lstm.input_size, dtype=torch.float64)
    rows = lstm.num_layers * (2 if lstm.bidirectional else 1)
    hx = (torch.randn(rows, lstm.proj_size or lstm.hidden_size, dtype=torch.float64),
          torch.randn(rows, lstm.hidden_size, dtype=torch.float64))
    for h in (None, hx):
        st = assert_matches_lstm(lstm, x, h)
        assert st.h.shape[3] == 1 and st.output.dim() == 2 and st.h_n.dim() == 2


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_gradients_equal_nn_lstm(kw):
    lstm = make(**kw)
    x1 = batch_input(lstm).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    out, (h_n, c_n) = lstm(x1)
    (out.sin().sum() + h_n.cos().sum() + (c_n ** 2).sum()).backward()
    ref = {n: p.grad.clone() for n, p in lstm.named_parameters()}
    lstm.zero_grad()
    st = capture(lstm, x2)
    (st.output.sin().sum() + st.h_n.cos().sum() + (st.c_n ** 2).sum()).backward()
    torch.testing.assert_close(x2.grad, x1.grad)
    for n, p in lstm.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], msg=n)


@pytest.mark.parametrize("needs_grad", ["input", "h_0", "c_0"])
def test_frozen_lstm_still_gives_gradients_to_what_requires_them(needs_grad):
    # parameters frozen (requires_grad=False): capture must still take the autograd route when
    # the input or hx requires grad, and give the same gradients as nn.LSTM
    lstm = make(num_layers=2, bidirectional=True).requires_grad_(False)
    grads = []
    for fn in (lstm, lambda *a: tuple(capture(lstm, *a))):
        torch.manual_seed(3)
        x = batch_input(lstm)
        hx = (torch.randn(4, 3, 7, dtype=torch.float64), torch.randn(4, 3, 7, dtype=torch.float64))
        leaf = {"input": x, "h_0": hx[0], "c_0": hx[1]}[needs_grad].requires_grad_()
        out, (h_n, c_n) = fn(x, hx)
        (out.sin().sum() + h_n.sum() + (c_n ** 2).sum()).backward()
        grads.append(leaf.grad)
    assert grads[1] is not None and grads[1].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0])


@pytest.mark.parametrize("route", ["kernel", "stepwise"])
@pytest.mark.parametrize("layout", ["time_major", "batch_first", "unbatched"])
def test_output_shares_no_memory_with_the_states(layout, route):
    # nn.LSTM's output is its own tensor: changing it in place (out += x in a residual model)
    # must not change the captured states
    use_route(route)
    lstm = make(num_layers=2, batch_first=layout == "batch_first")
    x = batch_input(lstm)[:, 0] if layout == "unbatched" else batch_input(lstm)
    st = capture(lstm, x, route=route)
    states = [st.h.clone(), st.c.clone(), st.gates.clone(), st.h_n.clone(), st.c_n.clone()]
    st.output.add_(1.0)
    for before, after in zip(states, [st.h, st.c, st.gates, st.h_n, st.c_n], strict=True):
        torch.testing.assert_close(after, before)


def test_gradients_through_intermediate_states_reach_parameters():
    lstm = make(num_layers=2)
    x = batch_input(lstm).requires_grad_()
    st = capture(lstm, x)
    (st.c[0].sum() + st.gates[0].sum() + st.h[0].sum()).backward()
    assert lstm.weight_ih_l0.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(lambda inp: capture(lstm, inp).c[0].sum(), (x[:3, :2],))


def test_module_is_not_changed_and_params_are_shared():
    lstm = make(num_layers=2, bidirectional=True)
    before = copy.deepcopy(lstm.state_dict())
    ptrs = [p.data_ptr() for p in lstm.parameters()]
    capture(lstm, batch_input(lstm))
    assert [p.data_ptr() for p in lstm.parameters()] == ptrs
    for k, v in lstm.state_dict().items():
        assert torch.equal(v, before[k])
    assert not lstm.training


def test_float32_long_sequence_c_matches():
    lstm = make(dtype=torch.float32, input_size=16, hidden_size=32, num_layers=2)
    x = torch.randn(300, 4, 16)
    st = assert_matches_lstm(lstm, x)
    ref = make(dtype=torch.float64, input_size=16, hidden_size=32, num_layers=2)
    st64 = capture(ref, x.double())
    torch.testing.assert_close(st.c, st64.c.float(), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------- dropout


DROPOUT_CONFIGS = [
    dict(num_layers=3),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, proj_size=3, batch_first=True),
    dict(num_layers=3, bidirectional=True, packed=True),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("kw", DROPOUT_CONFIGS, ids=str)
def test_dropout_masks_are_nn_lstms_own_on_cpu(kw, route):
    # capture draws F.dropout as nn.LSTM's CPU kernel draws its masks (same shapes, same order,
    # packed data for packed input): from the same random state, training-mode results match
    kw = dict(kw)
    packed = kw.pop("packed", False)
    use_route(route)
    lstm = make(dropout=0.5, **kw).train()
    x = batch_input(lstm)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        torch.manual_seed(7)
        ref_out, (ref_h, ref_c) = lstm(x)
        torch.manual_seed(7)
        st = capture(lstm, x, route=route)
    if packed:
        ref_out, out = ref_out.data, st.output.data
    else:
        out = st.output
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(st.h_n, ref_h)
    torch.testing.assert_close(st.c_n, ref_c)
    with torch.no_grad():
        eval_h = capture(lstm.eval(), x).h
    assert not torch.allclose(st.h[1:], eval_h[1:])  # the masks were applied
    torch.testing.assert_close(st.h[0], eval_h[0])  # and not to the first layer's input


def test_dropout_is_one_draw_per_layer_but_the_first(monkeypatch):
    # what the test above relies on, without relying on the random generator: L - 1 calls of
    # F.dropout with p, on each upper layer's whole input (T, B, D*H_out), in layer order
    calls = []
    dropout = core.F.dropout

    def spy(x, p, training):
        calls.append((tuple(x.shape), p, training))
        return dropout(x, p, training=training)

    monkeypatch.setattr(core.F, "dropout", spy)
    lstm = make(num_layers=3, dropout=0.25, bidirectional=True, proj_size=2).train()
    capture(lstm, batch_input(lstm, T=6, B=3))
    assert calls == [((6, 3, 4), 0.25, True)] * 2
    calls.clear()
    capture(lstm.eval(), batch_input(lstm))
    assert calls == []


def test_dropout_one_zeroes_every_layer_input_but_the_first():
    lstm = make(num_layers=2, dropout=1.0).train()
    x = batch_input(lstm)
    st = capture(lstm, x)
    # layer 1 sees only zeros: its states are those of a one-layer LSTM on zero input
    one = nn.LSTM(7, 7).double().eval()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(one, name + "_l0").data.copy_(getattr(lstm, name + "_l1"))
    torch.testing.assert_close(st.h[1, 0], capture(one, torch.zeros(6, 3, 7, dtype=torch.float64)).h[0, 0])


def test_eval_mode_with_dropout_is_exact():
    lstm = make(num_layers=2, dropout=0.5).eval()
    assert_matches_lstm(lstm, batch_input(lstm))


# ---------------------------------------------------------------------------- LayerwiseLSTM


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_layerwise_state_dict_round_trip(kw):
    plain = make(**kw)
    lw = LayerwiseLSTM(5, 7, **kw).double().eval()
    assert [n for n, _ in lw.named_parameters()] == [n for n, _ in plain.named_parameters()]
    lw.load_state_dict(plain.state_dict())
    x = batch_input(plain)
    states = lw(x)
    assert isinstance(states, LSTMStates)
    out, (h_n, c_n) = states  # unpacks like nn.LSTM's result
    ref_out, (ref_h, ref_c) = plain(x)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(states[1][0], ref_h)
    torch.testing.assert_close(c_n, ref_c)
    back = nn.LSTM(5, 7, **kw).double().eval()
    back.load_state_dict(lw.state_dict())
    torch.testing.assert_close(back(x)[0], ref_out)
    torch.testing.assert_close(LayerwiseLSTM.from_lstm(plain)(x).h, states.h)


def test_layerwise_drops_into_a_model():
    class Model(nn.Module):
        def __init__(self, lstm_cls):
            super().__init__()
            self.emb = nn.Embedding(10, 5)
            self.lstm = lstm_cls(5, 7, num_layers=2, batch_first=True)
            self.head = nn.Linear(7, 3)

        def forward(self, tokens):
            out, (h_n, _) = self.lstm(self.emb(tokens))
            return self.head(out[:, -1]) + h_n[-1].sum()

    torch.manual_seed(0)
    plain = Model(nn.LSTM)
    lw = Model(LayerwiseLSTM)
    lw.load_state_dict(plain.state_dict())
    tokens = torch.randint(0, 10, (2, 8))
    torch.testing.assert_close(lw(tokens), plain(tokens))


def test_memory_bytes():
    lstm = make(dtype=torch.float32, num_layers=2, bidirectional=True, proj_size=3)
    st = capture(lstm, batch_input(lstm, dtype=torch.float32))
    used = sum(t.numel() * t.element_size() for t in (st.h, st.c, st.gates))
    assert memory_bytes(2, 2, 6, 3, 7, proj_size=3) == used


# ---------------------------------------------------------------------------- bad input


def _errors(lstm):
    """(description, call, exception type, words the message must contain)."""
    x = torch.randn(6, 3, 5)
    h = torch.zeros(2, 3, 7)
    return [
        ("GRUCell", lambda: capture(nn.GRUCell(5, 7), x), TypeError, ["nn.GRU", "GRUCell"]),
        ("RNNCell", lambda: capture(nn.RNNCell(5, 7), x), TypeError, ["nn.RNN", "RNNCell"]),
        ("LSTMCell", lambda: capture(nn.LSTMCell(5, 7), x), TypeError, ["nn.LSTM", "LSTMCell"]),
        ("feature size", lambda: capture(lstm, torch.randn(6, 3, 4)), ValueError, ["input_size=5", "4"]),
        ("1-D", lambda: capture(lstm, torch.randn(5)), ValueError, ["3-D", "1-D"]),
        ("4-D", lambda: capture(lstm, torch.randn(2, 6, 3, 5)), ValueError, ["3-D", "4-D"]),
        ("no steps", lambda: capture(lstm, torch.randn(0, 3, 5)), ValueError, ["T = 0"]),
        ("not a tensor", lambda: capture(lstm, [[1.0] * 5]), TypeError, ["Tensor", "list"]),
        ("hx not a pair", lambda: capture(lstm, x, h), TypeError, ["pair"]),
        ("hx triple", lambda: capture(lstm, x, (h, h, h)), TypeError, ["pair"]),
        ("h_0 shape", lambda: capture(lstm, x, (torch.zeros(1, 3, 7), h)), ValueError, ["h_0", "(2, 3, 7)"]),
        ("c_0 batch", lambda: capture(lstm, x, (h, torch.zeros(2, 4, 7))), ValueError, ["c_0", "(2, 3, 7)"]),
        ("hx dtype", lambda: capture(lstm, x, (h.double(), h)), TypeError, ["h_0", "float64"]),
        ("dtype", lambda: capture(lstm, x.double()), TypeError, ["float64", "float32"]),
        ("device", lambda: capture(lstm, x.to("meta")), ValueError, ["meta", "cpu"]),
    ]


@pytest.mark.parametrize("case", range(15))
def test_bad_input_clear_error_and_module_unchanged(case):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2)
    before = copy.deepcopy(lstm.state_dict())
    name, call, exc, words = _errors(lstm)[case]
    with pytest.raises(exc) as info:
        call()
    for w in words:
        assert w in str(info.value), (name, str(info.value))
    for k, v in lstm.state_dict().items():
        assert torch.equal(v, before[k])


# ---------------------------------------------------------------------------- CUDA

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@cuda
@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_cuda_matches_nn_lstm(kw):
    lstm = make(dtype=torch.float32, **kw).cuda()
    x = batch_input(lstm, dtype=torch.float32).cuda().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # capture must not trigger cuDNN's weight warning
        st = assert_matches_lstm(lstm, x, atol=1e-4, rtol=1e-4)
    cpu = capture(copy.deepcopy(lstm).cpu(), x.detach().cpu())
    for field in ("h", "c", "gates"):
        torch.testing.assert_close(getattr(st, field).cpu(), getattr(cpu, field), atol=1e-4,
                                   rtol=1e-4, msg=field)
    # gradients in eval mode: nn.LSTM's cuDNN backward refuses eval mode, capture's does not;
    # the reference is nn.LSTM without cuDNN
    (st.output.sin().sum() + st.h_n.sum() + (st.c_n ** 2).sum() + st.c.sum()).backward()
    grads = [x.grad] + [p.grad for p in lstm.parameters()]
    x_ref = x.detach().clone().requires_grad_()
    lstm.zero_grad()
    with torch.backends.cudnn.flags(enabled=False):
        ref = capture(lstm, x_ref)
        out, (h_n, c_n) = lstm(x_ref)
        torch.testing.assert_close(ref.c, st.c, atol=1e-4, rtol=1e-4)
        (out.sin().sum() + h_n.sum() + (c_n ** 2).sum() + ref.c.sum()).backward()
    for got, want in zip(grads, [x_ref.grad] + [p.grad for p in lstm.parameters()], strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@cuda
@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_inference_route_matches_nn_lstm(kw, dtype, monkeypatch):
    # without autograd: states written in place; in float32 with Triton, gates and c_t come from
    # one kernel per layer and direction (lstm_states/_triton.py), else from the addcmul loop
    calls = []
    kernel = _triton.gates_and_cells
    monkeypatch.setattr(_triton, "gates_and_cells", lambda *args: calls.append(1) or kernel(*args))

    lstm = make(dtype=dtype, **kw).cuda()
    x = batch_input(lstm, T=40, B=5, dtype=dtype).cuda()
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else {}
    with torch.no_grad():  # the eager cuda route (tests/test_graphs.py: cuda_graph)
        st = assert_matches_lstm(lstm, x, route="cuda", **tol)
    kernel_used = _triton.triton is not None and dtype == torch.float32
    assert len(calls) == (lstm.num_layers * (1 + lstm.bidirectional) if kernel_used else 0)
    ref = copy.deepcopy(lstm).cpu().double()
    x_ref = x.cpu().double()
    h, c, g = cell_reference(ref, x_ref.transpose(0, 1) if lstm.batch_first else x_ref)
    torch.testing.assert_close(st.h.cpu().double(), h, **tol)
    torch.testing.assert_close(st.c.cpu().double(), c, **tol)
    torch.testing.assert_close(st.gates.cpu().double(), g, **tol)


# ---------------------------------------------------------------------------- selection


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("route", ROUTES)
def test_h_of_some_layers_equals_the_full_captures_slice(kw, route):
    use_route(route)
    lstm = make(**kw)
    x = batch_input(lstm)
    full = capture(lstm, x, route=route)
    last = lstm.num_layers - 1
    part = capture(lstm, x, fields=("h",), layers=[last, 0] if last else [0], route=route)
    assert part.c is None and part.gates is None
    assert part.layers == ((last, 0) if last else (0,)) and part.num_layers == len(part.layers)
    assert torch.equal(part.h, full.h[list(part.layers)])  # in the order asked for
    torch.testing.assert_close(part, full)  # output, h_n, c_n: always all of them


def test_h_alone_is_one_kernel_call_per_layer_and_no_replay(monkeypatch):
    calls = {"lstm": 0, "matmul": 0}
    real_lstm, real_addmm = torch.lstm, torch.addmm

    def count_lstm(*a, **k):
        calls["lstm"] += 1
        return real_lstm(*a, **k)

    def count_addmm(*a, **k):
        calls["matmul"] += 1
        return real_addmm(*a, **k)

    monkeypatch.setattr(torch, "lstm", count_lstm)
    monkeypatch.setattr(torch, "addmm", count_addmm)
    lstm = make(num_layers=3, bidirectional=True)
    x = batch_input(lstm)
    with torch.no_grad():
        st = capture(lstm, x, fields=("h",))
        assert calls == {"lstm": 3, "matmul": 0}  # one call per layer (both directions)
        capture(lstm, x)
        assert calls["matmul"] > 0  # the gates' products: what fields=("h",) leaves out
    assert st.h.shape == (3, 2, 6, 3, 7)


def test_gates_alone_skip_the_cell_recurrence(monkeypatch):
    steps = []
    real = torch.addcmul
    monkeypatch.setattr(torch, "addcmul", lambda *a, **k: steps.append(1) or real(*a, **k))
    lstm = make(num_layers=2)
    x = batch_input(lstm)
    with torch.no_grad():
        st = capture(lstm, x, fields=("gates",), route="kernel")
        assert steps == [] and st.c is None and st.h is None
        full = capture(lstm, x, route="kernel")
    assert len(steps) == 2 * 6  # c_t's recurrence: one step per layer and time step
    assert torch.equal(st.gates, full.gates)


@pytest.mark.parametrize("fields,layers,words", [
    (("h", "cell"), None, ["'cell'", "('h', 'c', 'gates')"]),
    ((), None, ["empty", "('h', 'c', 'gates')"]),
    (("h",), [2], ["[2] out of range", "0..1"]),
    (("h",), [-1], ["[-1] out of range"]),
    (("h",), [0, 0], ["twice"]),
    (("h",), [], ["no layer"]),
    (("h",), [True], ["out of range"]),
])
def test_a_bad_selection_is_refused_before_any_computation(fields, layers, words, monkeypatch):
    monkeypatch.setattr(torch, "lstm", lambda *a, **k: pytest.fail("computed"))
    lstm = make(num_layers=2)
    with pytest.raises(ValueError) as info:
        capture(lstm, batch_input(lstm), fields=fields, layers=layers)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_a_field_name_alone_and_a_gate_of_nothing():
    lstm = make(num_layers=2)
    st = capture(lstm, batch_input(lstm), fields="c")
    assert st.h is None and st.gates is None and st.c.shape == (2, 1, 6, 3, 7)
    with pytest.raises(ValueError, match="gates were not kept"):
        st.gate("f")


@pytest.mark.parametrize("fields", [("h",), ("c",), ("gates",), ("h", "gates"), ("h", "c", "gates")])
def test_memory_bytes_counts_what_is_kept(fields):
    lstm = make(dtype=torch.float32, num_layers=3, bidirectional=True, proj_size=3)
    st = capture(lstm, batch_input(lstm, dtype=torch.float32), fields=fields, layers=[0, 2])
    used = sum(getattr(st, f).numel() * 4 for f in fields)
    assert memory_bytes(2, 2, 6, 3, 7, proj_size=3, fields=fields) == used


# ---------------------------------------------------------------------------- routes


@pytest.mark.parametrize("T", [0, 1, 4, 5, 9])
def test_per_step_views_are_each_steps_own_across_blocks(T):
    from lstm_states.cells import per_step

    a, b = torch.randn(T, 2, 3), torch.randn(T, 3)
    seen = list(per_step(a, b, block=4))  # blocks of 4 steps: 9 is two whole blocks and one
    assert [t for t, _ in seen] == list(range(T))
    for t, (a_t, b_t) in seen:
        assert a_t.data_ptr() == a[t].data_ptr() and a_t.shape == (2, 3)  # views, not copies
        assert torch.equal(a_t, a[t]) and torch.equal(b_t, b[t])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_stepwise_across_many_blocks_of_steps(cell):
    # 600 steps: the stepwise loop's per-step views come in blocks of 256 (cells.per_step)
    torch.manual_seed(0)
    module = cell(3, 5, num_layers=2).double().eval()
    x = torch.randn(600, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        stepwise = capture(module, x, route="stepwise")
        kernel = capture(module, x, route="kernel")
    torch.testing.assert_close(stepwise.output, kernel.output)
    torch.testing.assert_close(stepwise.h, kernel.h)
    torch.testing.assert_close(stepwise.gates, kernel.gates)
    if cell is nn.LSTM:
        torch.testing.assert_close(stepwise.c, kernel.c)


def test_a_route_that_cannot_serve_the_call_is_refused():
    lstm = make(num_layers=2)
    x = batch_input(lstm)
    with pytest.raises(ValueError, match="'fast'"):
        capture(lstm, x, route="fast")
    with pytest.raises(ValueError, match="autograd"):  # parameters require grad, grad mode on
        capture(lstm, x, route="kernel")
    with torch.no_grad(), pytest.raises(ValueError, match="CUDA"):
        capture(lstm, x, route="cuda_graph")


def test_the_route_is_chosen_in_one_place():
    lstm = make(dtype=torch.float32, hidden_size=64, num_layers=2)
    small, big = torch.randn(5, 2, 5), torch.randn(5, 200, 5)  # B*H: 128 and 12800
    assert core.choose_route(lstm, small) == "autograd"
    with torch.no_grad():
        assert core.choose_route(lstm, small) == "kernel"
        assert core.choose_route(lstm, big) == "stepwise"  # large B*H: step by step on CPU
        assert core.choose_route(lstm, big, fields=("h",)) == "kernel"  # h alone: the kernel
        assert core.choose_route(lstm, big, exact=True) == "kernel"  # kernel's own returns
        assert core.choose_route(lstm, big, route="autograd") == "autograd"


# ---------------------------------------------------------------------------- LSTMStates


def test_to_cpu_and_detach_return_new_states():
    lstm = make(num_layers=2, bidirectional=True)
    x = batch_input(lstm)
    packed = pack_padded_sequence(x, torch.tensor([6, 4, 2]))
    for inp in (x, packed):
        st = capture(lstm, inp)
        assert st.h.requires_grad
        detached = st.detach()
        assert isinstance(detached, LSTMStates) and detached is not st
        for f in ("h", "c", "gates", "h_n", "c_n"):
            assert not getattr(detached, f).requires_grad and getattr(st, f).requires_grad
            assert torch.equal(getattr(detached, f), getattr(st, f))
        single = st.to(torch.float32)
        assert single.h.dtype == single.gates.dtype == single.h_n.dtype == torch.float32
        out = single.output.data if inp is packed else single.output
        assert out.dtype == torch.float32 and st.h.dtype == torch.float64
        if inp is packed:
            torch.testing.assert_close(single.lengths, st.lengths)
            assert torch.equal(single.output.batch_sizes, st.output.batch_sizes)
        on_cpu = st.cpu()
        assert isinstance(on_cpu, LSTMStates) and on_cpu.layers == st.layers
        meta = st.detach().to("meta")  # another device (no data: works without a GPU)
        assert meta.h.device.type == meta.c_n.device.type == "meta"
        moved = meta.output.data if inp is packed else meta.output
        assert moved.device.type == "meta" and meta.layers == st.layers


def test_states_are_read_only_and_replace_makes_a_copy():
    lstm = make(num_layers=2)
    st = capture(lstm, batch_input(lstm))
    with pytest.raises(AttributeError, match="_replace"):
        st.h = None
    half = st._replace(h=st.h[:1], layers=(0,))
    assert half.layers == (0,) and st.layers == (0, 1) and half.c is st.c
    with pytest.raises(TypeError, match="no field"):
        st._replace(hidden=1)
    assert repr(st) == ("LSTMStates(output=(6, 3, 7), h_n=(2, 3, 7), c_n=(2, 3, 7), h=(2, 1, 6, 3, 7),"
                        " c=(2, 1, 6, 3, 7), gates=(2, 1, 4, 6, 3, 7), layers=(0, 1))")


# ---------------------------------------------------------------------------- honesty


def test_a_subclass_with_its_own_forward_is_refused():
    class Scaled(nn.LSTM):  # the kind of model found in the wild: weights scaled in forward
        def forward(self, input, hx=None):
            with torch.no_grad():
                saved = self.weight_hh_l0.clone()
                self.weight_hh_l0.mul_(0.5)
            try:
                return super().forward(input, hx)
            finally:
                with torch.no_grad():
                    self.weight_hh_l0.copy_(saved)

    lstm = Scaled(5, 7).double()
    x = batch_input(lstm)
    for call in (lambda: capture(lstm, x), lambda: LayerwiseLSTM.from_lstm(lstm)):
        with pytest.raises(TypeError) as info:
            call()
        assert "Scaled" in str(info.value) and "own forward" in str(info.value)

    class Plain(nn.LSTM):  # a subclass that keeps nn.LSTM's forward is fine
        pass

    plain = Plain(5, 7).double().eval()
    torch.testing.assert_close(capture(plain, x), plain(x))


# ---------------------------------------------------------------------------- caught mutations


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("fields,layers", [(("h",), [0]), (("h", "c", "gates"), [0]),
                                           (("c",), [1]), (("h",), [0, 2]), (("gates",), [2])])
def test_dropout_applies_to_every_layer_whatever_is_kept(fields, layers, packed):
    # training mode: each layer's input but the first gets dropout whether or not that layer's
    # states are kept; so output, h_n and c_n are those of the full capture and of nn.LSTM
    # under the same seed, and the kept states the full capture's
    lstm = make(num_layers=3, dropout=0.5).train()
    x = batch_input(lstm, T=6, B=3)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    results = []
    for call in (lambda: capture(lstm, x, fields=fields, layers=layers),
                 lambda: capture(lstm, x), lambda: lstm(x)):
        torch.manual_seed(11)
        results.append(call())
    part, full, reference = results
    for got in (part, full):
        output, (h_n, c_n) = got
        want = reference[0]
        if packed:
            output, want = output.data, want.data
        torch.testing.assert_close(output, want)
        torch.testing.assert_close(h_n, reference[1][0])
        torch.testing.assert_close(c_n, reference[1][1])
    assert part.layers == tuple(layers)
    for name in fields:
        assert torch.equal(getattr(part, name), getattr(full, name)[layers])


def test_a_subclass_of_a_subclass_is_judged_by_the_forward_it_runs():
    class Scaled(nn.LSTM):  # its own forward
        def forward(self, input, hx=None):
            return super().forward(input * 0.5, hx)

    class Inherits(Scaled):  # no forward of its own: it runs Scaled's
        pass

    class Overrides(Inherits):  # a forward of its own again
        def forward(self, input, hx=None):
            return nn.LSTM.forward(self, input, hx)

    class Plain(nn.LSTM):
        pass

    class PlainToo(Plain):  # nn.LSTM's forward, two classes down
        pass

    class Layerwise(LayerwiseLSTM):  # LayerwiseLSTM's forward
        pass

    from lstm_states import record

    x = batch_input(make())
    for cls in (Scaled, Inherits, Overrides):
        lstm = cls(5, 7).double()
        with pytest.raises(TypeError, match="own forward"):
            capture(lstm, x)
        with pytest.raises(TypeError, match="own forward"):
            LayerwiseLSTM.from_lstm(lstm)
        with pytest.raises(TypeError, match="own forward"), record(nn.Sequential(lstm)):
            pass
        assert "forward" not in lstm.__dict__
    for cls in (PlainToo, Layerwise):
        lstm = cls(5, 7).double().eval()
        torch.testing.assert_close(capture(lstm, x), lstm(x))
        with torch.no_grad(), record(nn.Sequential(lstm)) as rec:
            lstm(x)
        assert len(rec["0"]) == 1
