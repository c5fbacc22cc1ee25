"""nn.GRU and nn.RNN through the same machinery as nn.LSTM: capture, record, the result types.

Exactness is tested as for the LSTM: against the module itself (output and h_n with
torch.equal on the kernel and autograd routes, in the same grad mode as the module), against an
independent step-by-step loop written from PyTorch's documented equations (float64, every h and
gate of every layer, direction and step), and by a seeded sweep of every input form.
"""

import itertools
import pickle
import random

import pytest
import torch
import torch.utils._pytree as pytree
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstm_states import Edit, GRUStates, LSTMStates, RNNStates, capture, cells, record
from lstm_states.core import choose_route
from tests.helpers import RefEdit, _edited

KINDS = ("GRU", "RNN_TANH", "RNN_RELU")
FORMS = ("time_major", "batch_first", "unbatched", "packed_sorted", "packed_unsorted")


def module_of(kind: str, *args, **kw) -> nn.RNNBase:
    if kind == "GRU":
        return nn.GRU(*args, **kw)
    return nn.RNN(*args, nonlinearity="tanh" if kind == "RNN_TANH" else "relu", **kw)


# ---------------------------------------------------------------------------------------------
# an independent reference, from PyTorch's documented equations (nn.GRU, nn.RNN docs)


def reference(module, x, hx=None, lengths=None, edits=(), row=None):
    """h (L, D, T, B, H) and, for a GRU, gates (L, D, 3, T, B, H) by a plain loop per step.

    x (T, B, I) time-major, padded; hx (L*D, B, H) or None; lengths (B,) or None: each
    sequence is then run on its own first lengths[b] steps, its states zero past its end.
    edits: tests.helpers.RefEdits applied as each state is computed (GRU: r and z, then n from
    the edited r, then h from the edited z and n, then h; RNN: h), batch row by batch row.
    """
    if row is None and edits:  # the caller's call: run row by row
        for e in edits:
            e.batch = x.shape[1]
        if lengths is None:
            lengths = torch.full((x.shape[1],), x.shape[0])
    if lengths is not None:  # one sequence at a time
        T = x.shape[0]
        per_b = []
        for b, n in enumerate(int(v) for v in lengths):
            states = reference(module, x[:n, b:b + 1], None if hx is None else hx[:, b:b + 1],
                               edits=edits, row=b)
            per_b.append([None if s is None else
                          torch.cat([s, s.new_zeros(*s.shape[:-3], T - n, *s.shape[-2:])], -3)
                          for s in states])
        return tuple(None if per_b[0][k] is None else torch.cat([p[k] for p in per_b], -2)
                     for k in range(2))
    gru = isinstance(module, nn.GRU)
    T, B, _ = x.shape
    D, H = 2 if module.bidirectional else 1, module.hidden_size
    hs, gs, inp = [], [], x
    for layer in range(module.num_layers):
        h_d, g_d = [], []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(module, "weight_ih" + sfx), getattr(module, "weight_hh" + sfx)
            zero = torch.zeros(w_ih.shape[0], dtype=x.dtype)
            b_ih = getattr(module, "bias_ih" + sfx) if module.bias else zero
            b_hh = getattr(module, "bias_hh" + sfx) if module.bias else zero
            h_t = x.new_zeros(B, H) if hx is None else hx[layer * D + d]
            h_seq, g_seq = [None] * T, [None] * T
            for t in (range(T) if d == 0 else range(T - 1, -1, -1)):
                if gru:
                    W_ir, W_iz, W_in = w_ih.chunk(3)
                    W_hr, W_hz, W_hn = w_hh.chunk(3)
                    b_ir, b_iz, b_in = b_ih.chunk(3)
                    b_hr, b_hz, b_hn = b_hh.chunk(3)
                    r = torch.sigmoid(inp[t] @ W_ir.T + b_ir + h_t @ W_hr.T + b_hr)
                    z = torch.sigmoid(inp[t] @ W_iz.T + b_iz + h_t @ W_hz.T + b_hz)
                    r = _edited(r, edits, "r", layer, d, t, row)
                    z = _edited(z, edits, "z", layer, d, t, row)
                    n = torch.tanh(inp[t] @ W_in.T + b_in + r * (h_t @ W_hn.T + b_hn))
                    n = _edited(n, edits, "n", layer, d, t, row)
                    h_t = (1 - z) * n + z * h_t
                    g_seq[t] = torch.stack([r, z, n])
                else:
                    pre = inp[t] @ w_ih.T + b_ih + h_t @ w_hh.T + b_hh
                    h_t = torch.tanh(pre) if module.nonlinearity == "tanh" else torch.relu(pre)
                h_t = _edited(h_t, edits, "h", layer, d, t, row)
                h_seq[t] = h_t
            h_d.append(torch.stack(h_seq))
            if gru:
                g_d.append(torch.stack(g_seq, dim=1))
        hs.append(torch.stack(h_d))
        if gru:
            gs.append(torch.stack(g_d))
        inp = torch.cat(h_d, -1)
    return torch.stack(hs), (torch.stack(gs) if gru else None)


# ---------------------------------------------------------------------------------------------
# configurations


@st.composite
def cases(draw, dtypes=(torch.float32, torch.float64), kinds=None):
    return dict(kind=draw(st.sampled_from(kinds or KINDS)), form=draw(st.sampled_from(FORMS)),
                dtype=draw(st.sampled_from(dtypes)), num_layers=draw(st.integers(1, 3)),
                bidirectional=draw(st.booleans()), bias=draw(st.booleans()),
                hx=draw(st.booleans()), input_size=draw(st.integers(1, 5)),
                hidden_size=draw(st.integers(1, 6)), T=draw(st.integers(1, 7)),
                B=draw(st.integers(1, 4)), seed=draw(st.integers(0, 2**16)))


def build(cfg: dict):
    """The module, its input and hx for a configuration (weights of every size)."""
    g = torch.Generator().manual_seed(cfg["seed"])
    form, dtype = cfg["form"], cfg["dtype"]
    module = module_of(cfg["kind"], cfg["input_size"], cfg["hidden_size"],
                       num_layers=cfg["num_layers"], bias=cfg["bias"],
                       batch_first=form == "batch_first", bidirectional=cfg["bidirectional"])
    module = module.to(dtype).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype))
    T, B, I, H = cfg["T"], cfg["B"], cfg["input_size"], cfg["hidden_size"]
    rows = cfg["num_layers"] * (2 if cfg["bidirectional"] else 1)
    if form == "unbatched":
        x = torch.randn(T, I, generator=g, dtype=dtype)
        shape = (rows, H)
    else:
        x = torch.randn((B, T, I) if form == "batch_first" else (T, B, I), generator=g,
                        dtype=dtype)
        shape = (rows, B, H)
    if form.startswith("packed"):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        if form == "packed_sorted":
            lengths = lengths.sort(descending=True).values
        x = pack_padded_sequence(x, lengths, enforce_sorted=form == "packed_sorted")
    hx = torch.randn(shape, generator=g, dtype=dtype) if cfg["hx"] else None
    return module, x, hx


def leaves(result):
    output, h_n = result
    return [output.data if isinstance(output, PackedSequence) else output, h_n]


def time_major(module, x, hx):
    """The reference's input: (T, B, I) padded, hx batched, lengths or None."""
    if isinstance(x, PackedSequence):
        xs, lengths = pad_packed_sequence(x)
        return xs, hx, lengths
    if x.dim() == 2:
        return x[:, None], None if hx is None else hx[:, None], None
    return (x.transpose(0, 1) if module.batch_first else x), hx, None


# ---------------------------------------------------------------------------------------------
# against the module itself, and against the reference loop


@pytest.mark.parametrize("route", ["kernel", "autograd"])
@given(cfg=cases())
def test_capture_matches_the_module_bit_for_bit(route, cfg):
    module, x, hx = build(cfg)
    grad = route == "autograd"
    for p in module.parameters():
        p.requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        want = module(x, hx)
        got = capture(module, x, hx, route=route)
    assert type(got) is (GRUStates if cfg["kind"] == "GRU" else RNNStates)
    for a, b in zip(leaves(got), leaves(want), strict=True):
        assert torch.equal(a, b), (a - b).abs().max()
    L, D = cfg["num_layers"], 2 if cfg["bidirectional"] else 1
    T = int(x.batch_sizes.numel()) if isinstance(x, PackedSequence) else cfg["T"]
    B = 1 if cfg["form"] == "unbatched" else cfg["B"]
    assert got.h.shape == (L, D, T, B, cfg["hidden_size"])
    if cfg["kind"] == "GRU":
        assert got.gates.shape == (L, D, 3, T, B, cfg["hidden_size"])


@pytest.mark.parametrize("route", ["kernel", "autograd"])
@given(cfg=cases(dtypes=(torch.float64,)))
def test_every_state_matches_an_independent_loop(route, cfg):
    module, x, hx = build(cfg)
    with torch.set_grad_enabled(route == "autograd"):
        got = capture(module, x, hx, route=route)
    with torch.no_grad():
        h, gates = reference(module, *time_major(module, x, hx))
    torch.testing.assert_close(got.h.detach(), h)
    if gates is not None:
        torch.testing.assert_close(got.gates.detach(), gates)
        # and the GRU's own update: h_t = (1 - z) n + z h_{t-1}, read off the result
        r, z, n = got.gates.detach().unbind(2)
    if gates is not None and cfg["form"] in ("time_major", "batch_first") and not cfg["bidirectional"]:
        h_prev = torch.cat([got.h[:, :, :1] * 0 if hx is None else
                            hx.view(cfg["num_layers"], 1, 1, *hx.shape[1:]), got.h[:, :, :-1]], 2)
        torch.testing.assert_close(got.h.detach(), (1 - z) * n + z * h_prev.detach())


@given(cfg=cases(kinds=("GRU",)))
def test_the_gru_stepwise_route_matches_the_module_and_the_kernel_route(cfg):
    # stepwise computes output, h_n and every state itself: equal within float tolerance
    module, x, hx = build(cfg)
    with torch.no_grad():
        want = module(x, hx)
        got = capture(module, x, hx, route="stepwise")
        kernel = capture(module, x, hx, route="kernel")
    for a, b in zip(leaves(got), leaves(want), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(got.h, kernel.h)
    torch.testing.assert_close(got.gates, kernel.gates)


def test_the_route_is_chosen_per_cell_type():
    gru, rnn = nn.GRU(5, 64), nn.RNN(5, 64)
    small, big = torch.randn(5, 2, 5), torch.randn(5, 40, 5)  # B*H: 128 and 2560
    with torch.no_grad():
        assert choose_route(gru, small) == "kernel"
        assert choose_route(gru, big) == "stepwise"  # gates wanted, large B*H: step by step
        assert choose_route(gru, big, fields=("h",)) == "kernel"  # h alone: the kernel's own
        assert choose_route(gru, big, exact=True) == "kernel"  # record's choice
        assert choose_route(rnn, torch.randn(5, 400, 5)) == "kernel"  # h only: never replays
    assert cells.GRU.stepwise_from < cells.LSTM.stepwise_from  # (cells.py says why)


@given(cfg=cases(dtypes=(torch.float64,)), data=st.data())
def test_every_selection_is_the_full_captures_slice(cfg, data):
    module, x, hx = build(cfg)
    fields_of = {"GRU": ("h", "gates")}.get(cfg["kind"], ("h",))
    fields = data.draw(st.sets(st.sampled_from(fields_of), min_size=1))
    L = cfg["num_layers"]
    layers = data.draw(st.one_of(st.none(), st.lists(st.integers(0, L - 1), min_size=1,
                                                     max_size=L, unique=True)))
    with torch.no_grad():
        full = capture(module, x, hx)
        part = capture(module, x, hx, fields=fields, layers=layers)
    kept = list(range(L)) if layers is None else layers
    for name in fields_of:
        if name in fields:
            assert torch.equal(getattr(part, name), getattr(full, name)[kept])
        else:
            assert getattr(part, name) is None
    for a, b in zip(leaves(part), leaves(full), strict=True):
        assert torch.equal(a, b)


@given(cfg=cases(dtypes=(torch.float64,)))
def test_gradients_match_the_module(cfg):
    module, x, hx = build(cfg)
    grads = []
    for fn in (lambda: module(x, hx), lambda: capture(module, x, hx)):
        module.zero_grad()
        out, h_n = leaves(fn())
        (out.sin().sum() + (h_n * h_n).sum()).backward()
        grads.append([p.grad.clone() for p in module.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


def test_gates_carry_gradients_to_the_parameters():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    st_ = capture(gru, x)
    st_.gate("n").sum().backward()
    assert gru.weight_hh_l1.grad is not None and gru.weight_hh_l1.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# a seeded sweep of every input form: capture and record, bit for bit


KNOBS = dict(kind=KINDS, form=FORMS, dtype=(torch.float32, torch.float64), num_layers=(1, 2, 3),
             bidirectional=(False, True), bias=(False, True), hx=(False, True))
SWEEP = 3 * 5 * 2 * 3 * 2 * 2 * 2  # 720 configurations, every combination once


def configs(seed: int = 2026) -> list:
    rng = random.Random(seed)
    combos = list(itertools.product(*KNOBS.values()))
    rng.shuffle(combos)
    return [dict(zip(KNOBS, combo, strict=True), input_size=rng.randint(1, 7),
                 hidden_size=rng.randint(1, 9), T=rng.randint(1, 9), B=rng.randint(1, 6),
                 seed=rng.randrange(2**31)) for combo in combos]


def differences(cfg: dict) -> list:
    """Where capture and record differ from the module, bit for bit, in its own grad mode."""
    module, x, hx = build(cfg)
    bad = []
    for grad in (False, True):
        for p in module.parameters():
            p.requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            want = leaves(module(x, hx))
            got = {"capture": capture(module, x, hx, route="autograd" if grad else "kernel")}
            with record(module) as rec:
                got["record (model's result)"] = module(x, hx)
            got["record (recorded)"] = rec.one()
        for name, result in got.items():
            for what, a, b in zip(("output", "h_n"), leaves(result), want, strict=True):
                if not torch.equal(a, b):
                    bad.append(f"{name}{' with autograd' if grad else ''} {what}:"
                               f" {(a - b).abs().max().item():.2e}")
    return bad


def test_a_seeded_sweep_of_every_input_form_is_bit_identical():
    cfgs = configs()
    assert len(cfgs) == SWEEP >= 500
    failures = [(cfg, bad) for cfg in cfgs if (bad := differences(cfg))]
    assert not failures, f"{len(failures)} of {SWEEP} differ; first: {failures[:3]}"


# ---------------------------------------------------------------------------------------------
# dropout in training mode


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("packed", [False, True])
def test_dropout_masks_are_the_modules_own_on_cpu(kind, packed):
    torch.manual_seed(0)
    module = module_of(kind, 3, 5, num_layers=3, dropout=0.5, bidirectional=True).train()
    x = torch.randn(6, 3, 3)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    torch.manual_seed(7)
    want = leaves(module(x))
    torch.manual_seed(7)
    got = capture(module, x)
    for a, b in zip(leaves(got), want, strict=True):
        assert torch.equal(a, b)
    # and the states are consistent with the output: the top layer's h is the output
    top = got.h[-1]  # (D, T, B, H)
    out = pad_packed_sequence(got.output)[0] if packed else got.output
    assert torch.equal(torch.cat(list(top), -1), out)


# ---------------------------------------------------------------------------------------------
# the result types


def test_the_result_is_the_modules_tuple_and_behaves_like_lstmstates():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True).eval()
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        st_ = capture(gru, x)
        output, h_n = gru(x)
    out, hn = st_  # unpacks as nn.GRU's result
    assert torch.equal(out, output) and torch.equal(hn, h_n) and len(st_) == 2
    torch.testing.assert_close(st_, (output, h_n))
    assert st_.batch_first and st_.num_directions == 1 and st_.layers == (0, 1)
    assert torch.equal(st_.gate("z"), st_.gates[:, :, 1])
    doubled = st_.to(torch.float64)
    assert type(doubled) is GRUStates and doubled.gates.dtype == torch.float64
    assert doubled.h_n.dtype == torch.float64 and doubled.layers == (0, 1)
    assert type(st_.cpu()) is GRUStates and type(st_.detach()) is GRUStates
    back = pickle.loads(pickle.dumps(st_))
    assert type(back) is GRUStates and torch.equal(back.gates, st_.gates)
    leaves_, spec = pytree.tree_flatten(st_)
    assert len(leaves_) == 2 and torch.equal(leaves_[1], h_n)
    rebuilt = pytree.tree_unflatten(leaves_, spec)
    assert type(rebuilt) is GRUStates and rebuilt.batch_first
    again = GRUStates(iter([output, h_n]))  # as torch rebuilds tuples (DataParallel's gather)
    assert torch.equal(again.h_n, h_n) and again.h is None and again.layers == ()
    with pytest.raises(TypeError, match=r"nn.GRU's result, two items \(output, h_n\)"):
        GRUStates([output, (h_n, h_n)])
    with pytest.raises(AttributeError, match="read-only"):
        st_.h = None
    assert st_._replace(gates=None).gates is None
    with pytest.raises(TypeError, match="no field"):
        st_._replace(c=None)
    assert "GRUStates(output=(2, 5, 4), h_n=(2, 2, 4), h=(2, 1, 5, 2, 4)" in repr(st_)


def test_an_rnns_result_has_h_only():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 4, nonlinearity="relu").eval()
    x = torch.randn(5, 3)  # unbatched
    with torch.no_grad():
        st_ = capture(rnn, x)
        output, h_n = rnn(x)
    assert type(st_) is RNNStates and torch.equal(st_.output, output)
    assert torch.equal(st_.h_n, h_n) and st_.h.shape == (1, 1, 5, 1, 4)
    assert not hasattr(st_, "gates") or st_.__dict__.get("gates") is None
    with pytest.raises(ValueError, match="has no gates"):
        st_.gate("r")
    assert type(pytree.tree_unflatten(*pytree.tree_flatten(st_))) is RNNStates
    assert type(RNNStates(tuple(st_))) is RNNStates


# ---------------------------------------------------------------------------------------------
# clear errors


def test_fields_a_module_does_not_have_are_refused_clearly():
    x = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match="nn.GRU has no cell state"):
        capture(nn.GRU(3, 4), x, fields=("h", "c"))
    with pytest.raises(ValueError, match="nn.RNN has no gates"):
        capture(nn.RNN(3, 4), x, fields="gates")
    with pytest.raises(ValueError, match="nn.GRU has no cell state"):
        with record(nn.GRU(3, 4), fields=("c",)):
            pass


def test_hx_is_one_tensor_as_the_module_takes_it():
    gru = nn.GRU(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    h = torch.zeros(2, 2, 4)
    with pytest.raises(TypeError, match="hx must be a tensor h_0 for an nn.GRU"):
        capture(gru, x, (h, h))
    with pytest.raises(ValueError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        capture(gru, x, torch.zeros(1, 2, 4))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(2, 2, 4\), got \[1, 2, 4\]"):
        gru(x, torch.zeros(1, 2, 4))  # (the module's own words, which capture's begin with)
    with pytest.raises(ValueError, match="For batched 3-D input, hx should also be 3-D"):
        capture(gru, x, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="float64"):
        capture(gru, x, h.double())
    with pytest.raises(ValueError, match="GRU: Expected input to be 2D or 3D, got 4D instead"):
        capture(gru, x[None])


def test_subclasses_with_their_own_forward_edits_and_lstm_routes_are_refused():
    class Doubled(nn.GRU):
        def forward(self, x, hx=None):
            return super().forward(2 * x, hx)

    x = torch.randn(4, 2, 3)
    with pytest.raises(TypeError, match="nn.GRU subclass with its own forward"):
        capture(Doubled(3, 4), x)
    with pytest.raises(TypeError, match="nn.GRU subclass with its own forward"):
        with record(Doubled(3, 4)):
            pass
    with pytest.raises(ValueError, match="an nn.GRU has no cell state 'c'"):
        capture(nn.GRU(3, 4), x, edits=[Edit("c", 0, 1, set=0.0)])
    with pytest.raises(ValueError, match="an nn.RNN has no 'z'"):
        capture(nn.RNN(3, 4), x, edits=[Edit("z", 0, 1, set=0.0)])
    with pytest.raises(ValueError, match="an nn.LSTM has no 'n'"):
        capture(nn.LSTM(3, 4), x, edits=[Edit("n", 0, 1, set=0.0)])
    with torch.no_grad(), pytest.raises(ValueError, match="route 'stepwise' is not an nn.RNN's"):
        capture(nn.RNN(3, 4), x, route="stepwise")
    with torch.no_grad(), pytest.raises(ValueError, match="route 'cuda_graph' is not an nn.GRU's"):
        capture(nn.GRU(3, 4), x, route="cuda_graph")
    with pytest.raises(TypeError, match="GRUCell"):
        capture(nn.GRUCell(3, 4), x)


def test_the_cell_descriptions():
    assert cells.of(nn.LSTM(2, 3)) is cells.LSTM and cells.of(nn.GRU(2, 3)) is cells.GRU
    assert cells.of(nn.RNN(2, 3)) is cells.RNN_TANH
    assert cells.of(nn.RNN(2, 3, nonlinearity="relu")) is cells.RNN_RELU
    assert cells.of(nn.LSTMCell(2, 3)) is None
    assert (cells.LSTM.rows, cells.GRU.rows, cells.RNN_TANH.rows) == (4, 3, 1)
    assert cells.GRU.fields == ("h", "gates") and cells.RNN_RELU.fields == ("h",)
    assert cells.GRU.gate_names == ("r", "z", "n")


# ---------------------------------------------------------------------------------------------
# record


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.gru = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True)
        self.rnn = nn.RNN(8, 3, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(3, 11)

    def forward(self, tokens, lengths):
        x, _ = self.lstm(self.embed(tokens))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.gru(packed, torch.ones(4, tokens.shape[0], 4))
        out, _ = self.rnn(pad_packed_sequence(out, batch_first=True)[0])
        return self.head(out) + h_n.sum()


@pytest.mark.parametrize("grad", [False, True])
def test_record_sees_every_lstm_gru_and_rnn_and_changes_nothing(grad):
    torch.manual_seed(0)
    model = Mixed().eval()
    tokens, lengths = torch.randint(0, 11, (3, 7)), torch.tensor([7, 3, 5])
    with torch.set_grad_enabled(grad):
        want = model(tokens, lengths)
        with record(model) as rec:
            got = model(tokens, lengths)
    assert torch.equal(got, want)
    assert list(rec) == ["lstm", "gru", "rnn"]
    assert [type(rec.one(n)) for n in rec] == [LSTMStates, GRUStates, RNNStates]
    gru = rec.one("gru")
    assert gru.gates.shape == (2, 2, 3, 7, 3, 4) and torch.equal(gru.lengths, lengths)
    assert "forward" not in model.gru.__dict__  # restored


def test_include_selects_by_type():
    model = Mixed().eval()
    tokens, lengths = torch.randint(0, 11, (2, 4)), torch.tensor([4, 2])
    with torch.no_grad(), record(model, include=nn.GRU) as only_gru:
        model(tokens, lengths)
    assert list(only_gru) == ["gru"]
    with torch.no_grad(), record(model, include=(nn.GRU, nn.RNN), fields=("h",)) as two:
        model(tokens, lengths)
    assert list(two) == ["gru", "rnn"] and two.one("gru").gates is None
    with pytest.raises(ValueError, match="selected none"):
        with record(model, include=nn.Linear):
            pass


def test_stitch_joins_one_step_gru_calls():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2).eval()
    x = torch.randn(6, 2, 3)
    with torch.no_grad():
        whole = capture(gru, x)
        with record(gru) as rec:
            h = None
            for t in range(6):
                _, h = gru(x[t:t + 1], h)
    joined = rec.stitch()
    assert type(joined) is GRUStates
    torch.testing.assert_close(joined.h, whole.h)
    torch.testing.assert_close(joined.gates, whole.gates)
    torch.testing.assert_close(joined.h_n, whole.h_n)


# ---------------------------------------------------------------------------------------------
# edits: against the reference loop with the same edits applied


@st.composite
def edited_cases(draw):
    cfg = draw(cases(dtypes=(torch.float64,)))
    T, L = cfg["T"], cfg["num_layers"]
    D, H = 2 if cfg["bidirectional"] else 1, cfg["hidden_size"]
    fields = cells.GRU.edit_fields if cfg["kind"] == "GRU" else ("h",)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(fields))
        layer, d = draw(st.integers(0, L - 1)), draw(st.integers(0, D - 1))
        step = draw(st.one_of(st.integers(0, T - 1),
                              st.integers(0, T - 1).map(lambda a: slice(a, None))))
        unit = draw(st.one_of(st.none(), st.integers(0, H - 1)))
        op = draw(st.sampled_from(["set", "add", "scale"]))
        value = draw(st.floats(-1.5, 1.5))
        edits.append((field, layer, d, step, unit, op, value))
    return cfg, edits


@pytest.mark.parametrize("route", ["kernel", "stepwise", "autograd"])
@given(case=edited_cases())
def test_edits_match_the_reference_loop_with_the_same_edits(route, case):
    cfg, specs = case
    module, x, hx = build(cfg)
    T = int(x.batch_sizes.numel()) if isinstance(x, PackedSequence) else cfg["T"]
    specs = [(f, layer, d, slice(min(step.start, T - 1), None) if isinstance(step, slice) else
              min(step, T - 1), unit, op, value)  # (packed: T is the longest sequence's)
             for f, layer, d, step, unit, op, value in specs]
    edits = [Edit(f, layer, step, unit, d, **{op: value})
             for f, layer, d, step, unit, op, value in specs]
    # the route of the layers without edits (stepwise: a GRU's, forced; chosen from large B*H)
    base = "stepwise" if route == "stepwise" and cfg["kind"] == "GRU" else None
    with torch.set_grad_enabled(route == "autograd"):
        got = capture(module, x, hx, edits=edits, route=base)
    ref_edits = [RefEdit(f, layer, d, range(T)[step] if isinstance(step, slice) else [step],
                         None if unit is None else [unit], op, value)
                 for f, layer, d, step, unit, op, value in specs]
    with torch.no_grad():
        h, gates = reference(module, *time_major(module, x, hx), edits=ref_edits)
    torch.testing.assert_close(got.h.detach(), h)
    if gates is not None:
        torch.testing.assert_close(got.gates.detach(), gates)
    # output and h_n describe the edited run: the top layer's h, each direction's last step
    top = torch.cat(list(got.h[-1].detach()), -1)  # (T, B, D*H)
    out = got.output
    if isinstance(out, PackedSequence):
        out = pad_packed_sequence(out)[0]
    elif cfg["form"] == "unbatched":
        out = out[:, None]
    elif cfg["form"] == "batch_first":
        out = out.transpose(0, 1)
    torch.testing.assert_close(out.detach(), top)


def test_an_update_gate_of_one_keeps_h():
    # z = 1 makes h_t = h_{t-1}: the GRU's own update, checked through an edit
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2).double().eval()
    x = torch.randn(9, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        st_ = capture(gru, x, edits=[Edit("z", 1, slice(4, None), set=1.0)])
        plain = capture(gru, x)
    assert torch.equal(st_.h[0], plain.h[0])  # the layer below is untouched
    for t in range(4, 9):
        torch.testing.assert_close(st_.h[1, 0, t], plain.h[1, 0, 3])
    torch.testing.assert_close(st_.h_n[1], plain.h[1, 0, 3])


def test_record_runs_a_gru_edited():
    torch.manual_seed(0)
    model = Mixed().eval()
    tokens, lengths = torch.randint(0, 11, (2, 6)), torch.tensor([6, 4])
    with torch.no_grad():
        plain = model(tokens, lengths)
        with record(model, edits={"gru": [Edit("n", 0, 2, set=0.0)]}) as rec:
            edited = model(tokens, lengths)
    assert not torch.equal(plain, edited)
    assert torch.equal(rec.one("gru").gate("n")[0, 0, 2], torch.zeros(2, 4))


@pytest.mark.parametrize("route", ["kernel", "autograd"])
@pytest.mark.parametrize("form", ["batch_first", "packed_unsorted"])
@pytest.mark.parametrize("kind", KINDS)
def test_long_edited_runs_use_the_kernel_between_edits_and_match_the_reference(kind, form, route):
    # T = 30: the stretches before, between and after the edited steps run on the fused kernel
    # (edits.MIN_KERNEL_STRETCH), their gates replayed from h
    cfg = dict(kind=kind, form=form, dtype=torch.float64, num_layers=2, bidirectional=True,
               bias=True, hx=True, input_size=3, hidden_size=4, T=30, B=3, seed=5)
    module, x, hx = build(cfg)
    lengths = torch.full((3,), 30)
    if form == "packed_unsorted":  # lengths of our own: the longest 30
        lengths = torch.tensor([17, 30, 25])
        x = pack_padded_sequence(pad_packed_sequence(x, batch_first=True, total_length=30)[0],
                                 lengths, batch_first=True, enforce_sorted=False)
    field = "z" if kind == "GRU" else "h"
    specs = [("h", 0, 1, [12], [1], "set", 0.5), (field, 1, 0, [20, 21], None, "scale", 0.5)]
    edits = [Edit(f, layer, step, unit, d, **{op: v}) for f, layer, d, step, unit, op, v in specs]
    with torch.set_grad_enabled(route == "autograd"):
        got = capture(module, x, hx, edits=edits)
    with torch.no_grad():
        h, gates = reference(module, *time_major(module, x, hx),
                             edits=[RefEdit(*spec) for spec in specs])
    torch.testing.assert_close(got.h.detach(), h)
    if gates is not None:
        torch.testing.assert_close(got.gates.detach(), gates)
    # h_n: layer 1's forward direction ends at each sequence's last step, edited run included
    torch.testing.assert_close(got.h_n.detach()[2], h[1, 0, lengths - 1, torch.arange(3)])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [False, True])
def test_one_step_of_each_cell_is_pytorchs_own_cell(kind, bias):
    # the descriptions' step loops (in place and with autograd) against nn.GRUCell / nn.RNNCell
    torch.manual_seed(0)
    module = module_of(kind, 3, 4, bias=bias).double()
    cell = cells.of(module)
    one = (nn.GRUCell(3, 4, bias=bias) if kind == "GRU" else
           nn.RNNCell(3, 4, bias=bias, nonlinearity=module.nonlinearity)).double()
    one.load_state_dict({k[:-3]: v for k, v in module.state_dict().items()})
    x, h0 = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    params = list(module.parameters())
    with torch.no_grad():
        h, want = h0, []
        for t in range(6):
            h = one(x[t], h)
            want.append(h)
        want = torch.stack(want)
        got, _, gates = cell.steps_autograd(x, h0, None, params)
        torch.testing.assert_close(got, want)
        bufs = (torch.empty(6, 2, 4, dtype=torch.float64), None,
                torch.empty(3, 6, 2, 4, dtype=torch.float64) if kind == "GRU" else None)
        cell.steps_in_place(x, h0, None, params, bufs)
        torch.testing.assert_close(bufs[0], want)
        if kind == "GRU":  # and the replay from h gives the same gates
            torch.testing.assert_close(cell.replay(x, want, h0, None, params, None, {"gates"})[1],
                                       gates)
            torch.testing.assert_close(bufs[2], gates)
