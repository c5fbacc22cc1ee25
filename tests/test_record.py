"""lstm_states.record against independent evidence.

The evidence: each LSTM's actual inputs are gathered in a separate run with forward pre-hooks,
and ``capture`` (itself tested against nn.LSTM) is applied to them by hand; the model's output
and gradients are compared with a run without record.
"""


import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.testing import assert_close

import lstm_states
from lstm_states import LayerwiseLSTM, LSTMStates, capture
from lstm_states.record import Recording, record
from tests.helpers import tree_leaves

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]

class Seq2Seq(nn.Module):
    """embedding -> bidirectional 2-layer LSTM over packed sequences -> 1-layer LSTM decoder
    called once per step in a Python loop (teacher forcing) -> linear head."""

    def __init__(self, vocab=11, emb=6, hidden=5, dropout=0.3):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.encoder = nn.Module()
        self.encoder.lstm = nn.LSTM(emb, hidden, num_layers=2, bidirectional=True,
                                    dropout=dropout)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.LSTM(emb, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, src, lengths, tgt):
        # src (T, B) tokens, lengths (B,), tgt (S, B) tokens
        packed = pack_padded_sequence(self.embed(src), lengths, enforce_sorted=False)
        enc_out, (h_n, c_n) = self.encoder.lstm(packed)
        enc_out, _ = pad_packed_sequence(enc_out)  # (T, B, 2H)
        # last layer's forward and reverse final states -> the decoder's initial state
        h = torch.tanh(self.bridge(torch.cat([h_n[-2], h_n[-1]], dim=-1)))[None]  # (1, B, H)
        c = torch.tanh(self.bridge(torch.cat([c_n[-2], c_n[-1]], dim=-1)))[None]
        logits = []
        for t in range(tgt.shape[0]):
            out, (h, c) = self.decoder(self.embed(tgt[t : t + 1]), (h, c))  # one step
            logits.append(self.head(out[0] + self.bridge(enc_out.mean(0))))
        return torch.stack(logits)  # (S, B, vocab)


def make_batch(device="cpu", T=7, B=4, S=5, vocab=11):
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 3, 5, 1])[:B]
    src = torch.randint(1, vocab, (T, B), generator=g)
    src = src * (torch.arange(T)[:, None] < lengths[None])  # zero padding past the ends
    tgt = torch.randint(1, vocab, (S, B), generator=g)
    return src.to(device), lengths, tgt.to(device)


def make_model(device="cpu", **kw):
    torch.manual_seed(0)
    return Seq2Seq(**kw).to(device).eval()


def lstm_inputs(model, *args):
    """Each nn.LSTM's actual (input, hx) in call order, from forward pre-hooks, in their own run."""
    seen, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, nn.LSTM):
            def hook(mod, args, kwargs, name=name):
                inp = args[0]
                hx = args[1] if len(args) > 1 else kwargs.get("hx")
                hx = None if hx is None else tuple(t.detach().clone() for t in hx)
                seen.setdefault(name, []).append((inp, hx))
            handles.append(m.register_forward_pre_hook(hook, with_kwargs=True))
    with torch.no_grad():
        model(*args)
    for h in handles:
        h.remove()
    return seen


def assert_same_states(got: LSTMStates, want: LSTMStates):
    for field in ("h", "c", "gates", "h_n", "c_n"):
        assert_close(getattr(got, field), getattr(want, field), msg=field)
    if isinstance(want.output, torch.Tensor):
        assert_close(got.output, want.output)
    else:
        assert_close(got.output.data, want.output.data)
    assert (got.lengths is None) == (want.lengths is None)
    if want.lengths is not None:
        assert torch.equal(got.lengths, want.lengths)


def snapshot(model):
    """Everything record could leave behind."""
    mods = {}
    for name, m in model.named_modules():
        mods[name] = (sorted(m.__dict__), dict(m._forward_hooks), dict(m._forward_pre_hooks),
                      m.training, type(m).forward)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    return mods, sd


def assert_restored(model, before):
    mods, sd = snapshot(model)
    assert mods == before[0]
    assert sd.keys() == before[1].keys()
    for k in sd:
        assert torch.equal(sd[k], before[1][k]), k
    for m in model.modules():
        assert "forward" not in m.__dict__


# ------------------------------------------------------------------------------------------
# the model of the issue: embedding, packed bidirectional encoder, stepping decoder


@pytest.mark.parametrize("device", DEVICES)
def test_states_equal_capture_on_actual_inputs(device):
    model = make_model(device)
    batch = make_batch(device)
    inputs = lstm_inputs(model, *batch)
    assert [len(inputs[n]) for n in ("encoder.lstm", "decoder")] == [1, 5]

    with torch.no_grad(), record(model) as rec:
        model(*batch)
    assert list(rec) == ["encoder.lstm", "decoder"]
    assert [n for n, _ in rec.calls] == ["encoder.lstm"] + ["decoder"] * 5  # call order
    for name, module in (("encoder.lstm", model.encoder.lstm), ("decoder", model.decoder)):
        assert len(rec[name]) == len(inputs[name])
        for got, (inp, hx) in zip(rec[name], inputs[name], strict=True):
            with torch.no_grad():
                assert_same_states(got, capture(module, inp, hx))

    enc = rec.one("encoder.lstm")
    assert enc.h.shape == (2, 2, 7, 4, 5)  # (L, D, T, B, H)
    assert torch.equal(enc.lengths, torch.tensor([7, 3, 5, 1]))
    assert (enc.h[:, :, 3:, 1] == 0).all()  # zero past sequence 1's end


@pytest.mark.parametrize("device", DEVICES)
def test_output_and_gradients_equal_plain_model(device):
    model = make_model(device)
    batch = make_batch(device)
    # (nn.LSTM's cuDNN backward refuses eval mode, capture's does not: the plain reference runs
    # without cuDNN)
    with torch.backends.cudnn.flags(enabled=False):
        plain = model(*batch)
        plain.square().sum().backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    with record(model) as rec:
        out = model(*batch)
    assert_close(out, plain)
    out.square().sum().backward()
    for n, p in model.named_parameters():
        assert_close(p.grad, want[n], msg=n)
    assert rec.one("encoder.lstm").h.requires_grad  # recorded with its graph by default


def test_stitch_equals_one_call_over_the_whole_sequence():
    model = make_model()
    src, lengths, tgt = make_batch()
    inputs = lstm_inputs(model, src, lengths, tgt)
    with torch.no_grad(), record(model, include="decoder") as rec:
        model(src, lengths, tgt)
    stitched = rec.stitch("decoder")
    # independent: the decoder run once over all teacher-forced steps from its first (h_0, c_0)
    x = torch.cat([inp for inp, _ in inputs["decoder"]])  # (S, B, E)
    with torch.no_grad():
        whole = capture(model.decoder, x, inputs["decoder"][0][1])
        ref_out, (ref_h, ref_c) = model.decoder(x, inputs["decoder"][0][1])
    assert_same_states(stitched, whole)
    assert stitched.h.shape == (1, 1, 5, 4, 5)
    assert_close(stitched.output, ref_out)
    assert_close(stitched.h_n, ref_h)
    assert_close(stitched.c_n, ref_c)


def test_model_restored_after_exception_inside_block():
    model = make_model()
    batch = make_batch()
    with torch.no_grad():
        want = model(*batch)
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        with record(model) as rec:
            model(*batch)
            raise RuntimeError("boom")
    assert len(rec.calls) == 6
    assert_restored(model, before)
    with torch.no_grad():
        assert torch.equal(model(*batch), want)  # bitwise: plain nn.LSTM calls again


def test_model_restored_after_error_inside_an_lstm_call():
    model = make_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match="input_size"):
        with record(model):
            model.decoder(torch.zeros(1, 2, 3))  # wrong feature size: capture says so
    assert_restored(model, before)


def test_after_block_calls_are_plain_nn_lstm():
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = torch.randn(6, 2, 3)
    want = lstm(x)
    before = snapshot(lstm)
    with record(lstm) as rec:
        lstm(x)
    assert_restored(lstm, before)
    got = lstm(x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1][0], want[1][0])
    assert len(rec[""]) == 1 and rec.one() is rec[""][0]  # the model itself is named ""


def test_each_lstm_is_computed_once(monkeypatch):
    """Under record nn.LSTM's own kernel (rnn._VF.lstm) never runs; capture runs its per-layer
    kernel exactly once per layer (both directions in one call, as nn.LSTM does), on every
    configuration (record never takes the kernel-free stepwise route)."""
    import torch.nn.modules.rnn as rnn

    counts = {"vf": 0, "layer": 0}

    class VF:
        def __getattr__(self, name):
            fn = getattr(torch._VF, name)
            if name != "lstm":
                return fn

            def counted(*a, **k):
                counts["vf"] += 1
                return fn(*a, **k)
            return counted

    real_lstm = torch.lstm

    def per_layer(*a, **k):
        counts["layer"] += 1
        return real_lstm(*a, **k)

    monkeypatch.setattr(rnn, "_VF", VF())
    model = make_model()
    batch = make_batch()
    with torch.no_grad():
        model(*batch)
    assert counts == {"vf": 6, "layer": 0}  # plain: 1 encoder + 5 decoder calls
    monkeypatch.setattr(torch, "lstm", per_layer)
    counts.update(vf=0, layer=0)
    with torch.no_grad(), record(model):
        model(*batch)
    assert counts == {"vf": 0, "layer": 2 + 5 * 1}


# ------------------------------------------------------------------------------------------
# modes, options and inputs


def test_train_mode_follows_capture_dropout_rule():
    model = make_model().train()
    batch = make_batch()
    inputs = lstm_inputs(model, *batch)
    with torch.no_grad(), record(model) as rec:
        torch.manual_seed(5)
        out = model(*batch)
    # the same seed and the same inputs give capture's masks: the recorded encoder states
    torch.manual_seed(5)
    with torch.no_grad():
        inp, hx = inputs["encoder.lstm"][0]
        assert_same_states(rec.one("encoder.lstm"), capture(model.encoder.lstm, inp, hx))
        torch.manual_seed(5)
        assert_close(model_with_capture(model, *batch), out)


def test_train_mode_on_cpu_gives_the_plain_models_output():
    # capture draws its dropout masks as nn.LSTM's CPU kernel does: from the same random state
    # the recorded model computes exactly what the plain one does, in training mode too
    model = make_model().train()
    assert model.encoder.lstm.dropout > 0
    batch = make_batch()
    torch.manual_seed(5)
    plain = model(*batch)
    with record(model):
        torch.manual_seed(5)
        recorded = model(*batch)
    assert_close(recorded, plain)


def model_with_capture(model, *batch):
    """The model with every nn.LSTM call replaced by capture, by hand, for comparison."""
    orig = {}
    for m in (model.encoder.lstm, model.decoder):
        orig[m] = m.forward
        m.forward = lambda inp, hx=None, m=m: tuple(capture(m, inp, hx))
    try:
        return model(*batch)
    finally:
        for m in orig:
            del m.forward


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_hx_explicit_as_keyword_and_batch_first_and_unbatched():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, proj_size=2)
    x = torch.randn(2, 5, 3)  # (B, T, I)
    hx = (torch.randn(2, 2, 2), torch.randn(2, 2, 4))
    with record(lstm) as rec:
        out, (h_n, c_n) = lstm(x, hx=hx)
        out_u, _ = lstm(x[0], (hx[0][:, 0], hx[1][:, 0]))  # unbatched
    ref_out, (ref_h, ref_c) = nn.LSTM.forward(lstm, x, hx)
    assert_close(out, ref_out)
    assert_close(h_n, ref_h)
    assert_close(c_n, ref_c)
    assert_same_states(rec[""][0], capture(lstm, x, hx))
    assert rec[""][1].output.shape == (5, 2) and rec[""][1].h.shape == (2, 1, 5, 1, 2)
    assert_close(out_u, out[0])


def test_stitch_batch_first_and_unbatched_steps():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 6, 3)
    with torch.no_grad(), record(lstm) as rec:
        state = None
        for t in range(6):
            _, state = lstm(x[:, t : t + 1], state)
    with torch.no_grad():
        assert_same_states(rec.stitch(), capture(lstm, x))
    rec.clear()
    assert rec[""] == []
    with torch.no_grad(), record(lstm) as rec:
        state = None
        for t in range(0, 6, 3):  # chunks of 3 steps, unbatched
            _, state = lstm(x[0, t : t + 3], state)
    with torch.no_grad():
        assert_same_states(rec.stitch(), capture(lstm, x[0]))


def test_stitch_says_no_clearly():
    lstm = nn.LSTM(3, 4, bidirectional=True)
    with record(lstm) as rec:
        lstm(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match="bidirectional"):
        rec.stitch()
    lstm = nn.LSTM(3, 4)
    with record(lstm) as rec:
        lstm(pack_padded_sequence(torch.randn(3, 2, 3), torch.tensor([3, 2])))
    with pytest.raises(ValueError, match="PackedSequence"):
        rec.stitch()
    with record(lstm) as rec:
        lstm(torch.randn(1, 2, 3))
        lstm(torch.randn(1, 3, 3))
    with pytest.raises(ValueError, match="same batch"):
        rec.stitch()
    with pytest.raises(ValueError, match="called 2 times"):
        rec.one()
    with record(lstm) as rec:
        pass
    with pytest.raises(ValueError, match="not called"):
        rec.stitch()


def computed_states(monkeypatch):
    """The LSTMStates capture hands to record, call by call (to tell copies from originals)."""
    import importlib

    record_module = importlib.import_module("lstm_states.record")  # (lstm_states.record: the function)

    seen = []
    real = record_module.capture

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(record_module, "capture", spy)
    return seen


def shares_memory(a, b):
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_detach_and_to_cpu_leave_the_returned_values_alone(monkeypatch):
    model = make_model()
    batch = make_batch()
    computed = computed_states(monkeypatch)
    with record(model, detach=True, to_cpu=True) as rec:
        out = model(*batch)
    assert out.requires_grad  # the model's own graph is untouched
    out.sum().backward()
    assert model.encoder.lstm.weight_hh_l0.grad is not None
    enc = rec.one("encoder.lstm")
    assert computed[0].h.requires_grad  # what capture computed, for the model's graph
    for t, original in zip((enc.h, enc.c, enc.gates, enc.h_n, enc.c_n, enc.output.data),
                           (computed[0].h, computed[0].c, computed[0].gates, computed[0].h_n,
                            computed[0].c_n, computed[0].output.data), strict=True):
        assert not t.requires_grad and t.device.type == "cpu"
        assert not shares_memory(t, original)  # CPU copies: the recording owns them
        assert torch.equal(t, original.detach())


@pytest.mark.parametrize("device", DEVICES)
def test_to_cpu_records_copies_on_the_cpu(device, monkeypatch):
    model = make_model(device)
    computed = computed_states(monkeypatch)
    with torch.no_grad(), record(model, include=["decoder"], to_cpu=True) as rec:
        out = model(*make_batch(device))
    assert out.device.type == device
    assert len(computed) == len(rec["decoder"]) == 5
    for recorded, original in zip(rec["decoder"], computed, strict=True):
        assert recorded.h.device.type == "cpu" and original.h.device.type == device
        assert not shares_memory(recorded.h, original.h) and torch.equal(recorded.h.to(device),
                                                                          original.h)
    with torch.no_grad(), record(model, include=["decoder"]) as rec:  # without: the same tensors
        model(*make_batch(device))
    assert rec["decoder"][-1].h is computed[-1].h


def test_the_model_gets_copies_it_may_change_in_place():
    # a model that changes h_n / c_n in place (carrying state forward, h_n.add_(...)) must
    # leave the recording as the LSTM computed it
    class Carry(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, num_layers=2)

        def forward(self, x):
            out, (h_n, c_n) = self.lstm(x)
            h_n.add_(1.0)
            c_n.mul_(0.0)
            out.mul_(2.0)
            return out, h_n, c_n

    torch.manual_seed(0)
    model = Carry().eval()
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        ref_out, (ref_h, ref_c) = model.lstm(x)
        with record(model) as rec:
            out, h_n, c_n = model(x)
    st = rec.one("lstm")
    assert torch.equal(st.h_n, ref_h) and torch.equal(st.c_n, ref_c)
    assert torch.equal(st.output, ref_out)
    assert torch.equal(h_n, ref_h + 1) and torch.equal(out, ref_out * 2)


# ------------------------------------------------------------------------------------------
# no observer effect: bit for bit on the CPU in eval mode


class Wrapped(nn.Module):
    """A model around one nn.LSTM: a head on its output, and the LSTM's results handed on."""

    def __init__(self, hidden_size, **kw):
        super().__init__()
        self.lstm = nn.LSTM(3, hidden_size, **kw)
        D = 2 if kw.get("bidirectional") else 1
        self.head = nn.Linear(D * (kw.get("proj_size") or hidden_size), 2)

    def forward(self, x, hx=None):
        out, (h_n, c_n) = self.lstm(x, hx)
        data = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
        return self.head(data), out, h_n, c_n


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@given(layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       proj=st.booleans(), form=st.sampled_from(["tensor", "unbatched", "sorted", "unsorted"]),
       with_hx=st.booleans(), T=st.integers(1, 6), B=st.integers(1, 4), H=st.sampled_from([4, 96]),
       grad=st.booleans(), seed=st.integers(0, 999))
def test_record_is_bit_identical_to_the_plain_model(layers, bidirectional, batch_first, proj,
                                                    form, with_hx, T, B, H, grad, seed):
    # every input form, with and without autograd (the big case where capture alone would go
    # step by step is the next test)
    torch.manual_seed(seed)
    kw = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
              proj_size=2 if proj else 0)
    model = Wrapped(H, **kw).eval()
    D, H_out = 2 if bidirectional else 1, 2 if proj else H
    B = 1 if form == "unbatched" else B
    x = torch.randn(B, T, 3) if batch_first else torch.randn(T, B, 3)
    hx = (torch.randn(layers * D, B, H_out), torch.randn(layers * D, B, H)) if with_hx else None
    if form == "unbatched":
        x = x[0] if batch_first else x[:, 0]
        hx = None if hx is None else (hx[0][:, 0], hx[1][:, 0])
    elif form in ("sorted", "unsorted"):
        lengths = torch.randint(1, T + 1, (B,))
        if form == "sorted":
            lengths = lengths.sort(descending=True).values
        x = pack_padded_sequence(x, lengths, batch_first=batch_first,
                                 enforce_sorted=form == "sorted")
    with torch.set_grad_enabled(grad):
        plain = model(x, hx)
        with record(model) as rec:
            recorded = model(x, hx)
    for a, b in zip(tree_leaves(recorded), tree_leaves(plain), strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
    assert rec.one("lstm").h.shape[:2] == (layers, D)


def test_record_is_bit_identical_where_capture_alone_would_go_step_by_step():
    # B*H = 64*256: capture's own choice would be its stepwise route (not the kernel's
    # results); under record it keeps to the kernel
    torch.manual_seed(0)
    lstm = nn.LSTM(16, 256, num_layers=2).eval()
    x = torch.randn(20, 64, 16)
    with torch.no_grad():
        assert lstm_states.core.choose_route(lstm, x) == "stepwise"
        plain = lstm(x)
        with record(lstm) as rec:
            recorded = lstm(x)
    assert torch.equal(recorded[0], plain[0])
    assert torch.equal(recorded[1][0], plain[1][0]) and torch.equal(recorded[1][1], plain[1][1])
    torch.testing.assert_close(rec.one().c[:, 0, -1], plain[1][1])


def test_fields_and_layers_are_passed_on():
    model = make_model()
    batch = make_batch()
    with torch.no_grad():
        with record(model) as full:
            model(*batch)
        with record(model, fields=("h",), layers=[1], include="encoder.lstm") as part:
            model(*batch)
    got, want = part.one("encoder.lstm"), full.one("encoder.lstm")
    assert got.c is None and got.gates is None and got.layers == (1,)
    assert torch.equal(got.h, want.h[1:])
    with pytest.raises(ValueError, match="stitch joins h, c and gates"):
        part.stitch("encoder.lstm")
    with pytest.raises(ValueError, match="'decoder'.*0..0"):  # the decoder has one layer
        with record(model, layers=[1]):
            pass
    with pytest.raises(ValueError, match="non-empty subset"):
        with record(model, fields=()):
            pass


def test_nested_recordings_with_different_selections_share_one_computation():
    model = make_model()
    batch = make_batch()
    with torch.no_grad(), record(model, fields=("c",), layers=[0]) as outer:
        with record(model.encoder, fields=("h",)) as inner:
            model(*batch)
    a, b = outer.one("encoder.lstm"), inner.one("lstm")
    assert a.h is None and a.gates is None and a.layers == (0,) and a.c.shape[0] == 1
    assert b.c is None and b.layers == (0, 1) and b.h.shape[0] == 2
    with torch.no_grad():
        inp, hx = lstm_inputs(model, *batch)["encoder.lstm"][0]
        ref = capture(model.encoder.lstm, inp, hx)
    assert torch.equal(a.c, ref.c[:1]) and torch.equal(b.h, ref.h)


def test_include_by_names_and_predicate_and_clear_errors():
    model = make_model()
    batch = make_batch()
    before = snapshot(model)
    with torch.no_grad(), record(model, include=["decoder"]) as rec:
        model(*batch)
    assert list(rec) == ["decoder"] and len(rec["decoder"]) == 5
    with pytest.raises(KeyError, match="'decoder'"):
        rec["encoder.lstm"]
    with torch.no_grad(), record(model, include=lambda n, m: m.bidirectional) as rec:
        model(*batch)
    assert list(rec) == ["encoder.lstm"]
    assert repr(rec) == "Recording({'encoder.lstm': 1 call})"
    with pytest.raises(ValueError, match="'encoder.lstm', 'decoder'"):
        with record(model, include="encoder"):
            pass
    with pytest.raises(ValueError, match="selected none"):
        with record(model, include=lambda n, m: False):
            pass
    with pytest.raises(ValueError, match="no nn.LSTM"):
        with record(nn.Sequential(nn.Linear(2, 2))):
            pass
    with pytest.raises(ValueError, match="LSTMCell"):
        with record(nn.Sequential(nn.LSTMCell(2, 2))):
            pass
    with pytest.raises(ValueError) as gru:  # names what it found, and no LSTMCell that is not there
        with record(nn.Sequential(nn.GRUCell(2, 2))):
            pass
    assert "'0': GRUCell" in str(gru.value) and "LSTMCell" not in str(gru.value)
    assert_restored(model, before)  # every refusal left the model as it was
    with pytest.raises(ValueError, match="say which"):
        rec_all = Recording(["a", "b"])
        rec_all.one()


def test_nested_and_repeated_blocks_both_record_and_compute_once():
    model = make_model()
    batch = make_batch()
    before = snapshot(model)
    with torch.no_grad(), record(model) as outer:
        model(*batch)
        with record(model.encoder) as inner:  # names are relative to the recorded module
            model(*batch)
        model(*batch)
    assert list(inner) == ["lstm"]
    assert len(outer["encoder.lstm"]) == 3 and len(inner["lstm"]) == 1
    assert outer["encoder.lstm"][1] is inner["lstm"][0]  # one computation, seen by both
    assert_restored(model, before)
    with torch.no_grad(), record(model) as again:  # a repeated block starts empty
        model(*batch)
    assert len(again["encoder.lstm"]) == 1
    assert_restored(model, before)


def test_blocks_left_out_of_order_restore_when_the_last_leaves():
    lstm = nn.LSTM(2, 3)
    before = snapshot(lstm)
    a, b = record(lstm), record(lstm)
    rec_a, rec_b = a.__enter__(), b.__enter__()
    lstm(torch.randn(1, 1, 2))
    a.__exit__(None, None, None)
    lstm(torch.randn(1, 1, 2))
    assert (len(rec_a[""]), len(rec_b[""])) == (1, 2)
    assert "forward" in lstm.__dict__
    b.__exit__(None, None, None)
    assert_restored(lstm, before)


def test_user_hooks_still_run_and_see_the_returned_values():
    lstm = nn.LSTM(2, 3)
    x = torch.randn(4, 2, 2)
    seen = []
    lstm.register_forward_pre_hook(lambda m, args: (args[0] * 2,))  # changes the input
    lstm.register_forward_hook(lambda m, args, out: seen.append(out))
    with record(lstm) as rec:
        out = lstm(x)
    assert seen[0] is out
    assert_close(rec.one().output, out[0])
    assert_close(rec.one().h[0, 0], capture(lstm, 2 * x).h[0, 0])  # recorded the hooked input


def test_layerwise_lstm_keeps_returning_states():
    torch.manual_seed(0)
    lstm = LayerwiseLSTM(2, 3)
    with record(lstm) as rec:
        states = lstm(torch.randn(4, 1, 2))
    assert isinstance(states, LSTMStates) and rec.one() is states


def test_refuses_what_it_would_bypass():
    class Custom(nn.LSTM):
        def forward(self, input, hx=None):
            return super().forward(input * 0, hx)

    model = nn.Sequential()
    model.add_module("custom", Custom(2, 3))
    with pytest.raises(TypeError, match="'custom' is a Custom") as info:
        with record(model):
            pass
    assert "capture()" not in str(info.value)  # capture cannot see inside it either
    assert "include=" in str(info.value)
    lstm = nn.LSTM(2, 3)
    lstm.forward = lambda *a: None
    with pytest.raises(TypeError, match="replaced on the instance"):
        with record(lstm):
            pass
    assert lstm.forward(1) is None  # left alone


def test_exported_from_the_package():
    assert lstm_states.record is record and lstm_states.Recording is Recording


@given(layers=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans(),
       packed=st.booleans(), T=st.integers(1, 5), B=st.integers(1, 3), seed=st.integers(0, 99))
def test_hypothesis_record_equals_capture_and_nn_lstm(layers, bidirectional, batch_first, packed,
                                                      T, B, seed):
    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 4, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn(B, T, 3) if batch_first else torch.randn(T, B, 3)
    if packed:
        lengths = torch.randint(1, T + 1, (B,))
        x = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    with torch.no_grad():
        want_out, (want_h, want_c) = lstm(x)
        with record(lstm) as rec:
            out, (h_n, c_n) = lstm(x)
        assert_same_states(rec.one(), capture(lstm, x))
    assert_close(out.data if packed else out, want_out.data if packed else want_out)
    assert_close(h_n, want_h)
    assert_close(c_n, want_c)
    assert "forward" not in lstm.__dict__


def test_a_model_changing_the_output_in_place_leaves_the_recording_alone():
    # a residual model adds its input to the LSTM's output in place; without autograd too, the
    # recorded states must stay what the LSTM computed
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 4, num_layers=2)

        def forward(self, x):
            out, _ = self.lstm(x)
            out += x
            return out

    torch.manual_seed(0)
    model = Residual().eval()
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        expected = model.lstm(x)[0]
        with record(model) as rec:
            y = model(x)
    assert_close(y, expected + x)
    assert_close(rec.one("lstm").h[-1, 0], expected)
    assert_close(rec.one("lstm").output, expected)


# ---------------------------------------------------------------------------- caught mutations


def test_nested_blocks_apply_the_outer_blocks_edits_first():
    from lstm_states import Edit

    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(3, 5, num_layers=2)).double().eval()  # the LSTM is "0"
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    outer, inner = Edit("c", 0, 3, set=1.0), Edit("c", 0, 3, scale=0.5)  # they do not commute
    with torch.no_grad():
        with record(model, edits={"0": [outer]}) as outer_rec:
            with record(model, edits={"0": [inner]}) as inner_rec:
                output, (h_n, c_n) = model(x)
        want = capture(model[0], x, edits=[outer, inner])
        inner_first = capture(model[0], x, edits=[inner, outer])
    assert (want.c[0, 0, 3] == 0.5).all() and (inner_first.c[0, 0, 3] == 1.0).all()
    assert torch.equal(output, want.output)
    assert torch.equal(h_n, want.h_n) and torch.equal(c_n, want.c_n)
    for rec in (outer_rec, inner_rec):
        for name in ("h", "c", "gates"):
            assert torch.equal(getattr(rec.one("0"), name), getattr(want, name))


@pytest.mark.parametrize("layers", [[0], [1], [0, 2]])
def test_record_of_some_layers_in_training_mode_keeps_every_dropout(layers):
    # the model's output under record(layers=...) in training mode: what it is without record
    # (and nn.LSTM's own) under the same seed, dropout applied to every layer's input but the
    # first, kept or not
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(3, 5, num_layers=3, dropout=0.5)).double().train()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.manual_seed(7)
    plain = model(x)
    torch.manual_seed(7)
    with record(model, layers=layers) as rec:
        recorded = model(x)
    torch.manual_seed(7)
    full = capture(model[0], x)
    assert_close(recorded, plain)
    assert rec.one("0").layers == tuple(layers)
    assert torch.equal(rec.one("0").h, full.h[layers])
    assert torch.equal(recorded[0], full.output)
