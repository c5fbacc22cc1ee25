"""torch.compile: capture inside a compiled function, a compiled model holding a LayerwiseLSTM,
and record around a compiled model give what they give without compiling, on the eager and
inductor backends (the README's "torch.compile" paragraph).

Sizes are tiny: inductor compiles C++ for each graph, which takes seconds on a 2-core CPU.
"""

import functools
import warnings

import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
import torch.utils._pytree as pytree
from torch import nn

from lstm_states import LayerwiseLSTM, LSTMStates, capture, record

# torch's own, said while inductor loads
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")


@functools.cache
def _inductor_problem():
    """None if inductor compiles and runs a function here, else why not (no C++ compiler...)."""
    try:
        torch.compile(lambda t: t * 2 + 1, backend="inductor")(torch.ones(3))
    except Exception as error:  # any failure of the toolchain: the test skips, saying why
        return f"{type(error).__name__}: {error}"[:300]
    finally:
        torch._dynamo.reset()
    return None


@pytest.fixture(params=["eager", "inductor"])
def backend(request):
    if request.param == "inductor" and _inductor_problem():
        pytest.skip(f"inductor cannot compile on this machine: {_inductor_problem()}")
    return request.param


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()  # no compiled code or recompile counts carried between tests
    yield
    torch._dynamo.reset()


def _tensors(tree):
    return [t for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


def assert_identical(got, want):
    """Every tensor of two results (LSTMStates fields included) equal, bit for bit."""
    if isinstance(want, LSTMStates):
        got, want = got._asdict(), want._asdict()
    got, want = _tensors(got), _tensors(want)
    assert len(got) == len(want) and got
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b), (a - b).abs().max()


class Tagger(nn.Module):
    """linear -> LSTM -> linear head; pre and post are functions of their own, which dynamo
    compiles even where the frame that calls the LSTM runs eagerly."""

    def __init__(self, lstm_type=nn.LSTM):
        super().__init__()
        self.emb = nn.Linear(3, 3)
        self.lstm = lstm_type(3, 4, num_layers=2)
        self.head = nn.Linear(4, 2)

    def pre(self, x):
        return torch.tanh(self.emb(x))

    def post(self, output):
        return self.head(output).log_softmax(-1)

    def forward(self, x):
        states = self.lstm(self.pre(x))
        output, (h_n, c_n) = states
        return self.post(output), h_n, c_n, states


def _model(lstm_type=nn.LSTM):
    torch.manual_seed(0)
    return Tagger(lstm_type).eval(), torch.randn(5, 2, 3)


# ----------------------------------------------------------------------------------------------
# capture inside a compiled function


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "autograd"])
def test_capture_inside_a_compiled_function(backend, grad):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2).eval()
    x = torch.randn(5, 2, 3, requires_grad=grad)

    def f(x):
        st = capture(lstm, x)
        return st, (st.h.sum() + st.c.sum() + st.gates.sum()) * 2

    with torch.set_grad_enabled(grad):
        want, want_loss = f(x)
        got, loss = torch.compile(f, backend=backend)(x)
    assert isinstance(got, LSTMStates)
    assert_identical(got, want)
    assert torch.equal(loss, want_loss)
    if grad:  # gradients through the compiled function: the eager ones
        for a, b in zip(torch.autograd.grad(loss, [x, *lstm.parameters()]),
                        torch.autograd.grad(want_loss, [x, *lstm.parameters()]), strict=True):
            assert torch.equal(a, b)


def test_dynamo_compiles_nothing_inside_capture():
    # capture is torch.compiler.disable'd: dynamo calls it as one eager function. (Traced, its
    # helpers made 6 graphs with 5 breaks, and inductor rounded the replayed c and gates 1 ulp
    # off the eager ones.)
    torch.manual_seed(0)
    lstm, x = nn.LSTM(3, 4, num_layers=2).eval(), torch.randn(5, 2, 3)
    counter = torch._dynamo.testing.CompileCounter()
    with torch.no_grad():
        st = torch.compile(lambda x: capture(lstm, x), backend=counter)(x)
        layerwise = LayerwiseLSTM.from_lstm(lstm)
        torch.compile(lambda x: layerwise(x), backend=counter)(x)
    assert counter.frame_count == 0 and counter.op_count == 0
    assert st.gates is not None


# ----------------------------------------------------------------------------------------------
# a compiled model holding a LayerwiseLSTM


def test_a_compiled_model_holding_a_layerwise_lstm(backend):
    model, x = _model(LayerwiseLSTM)
    with torch.no_grad():
        logp, h_n, c_n, states = model(x)
        c_logp, c_h_n, c_c_n, c_states = torch.compile(model, backend=backend)(x)
    assert isinstance(c_states, LSTMStates)
    assert_identical(c_states, states)  # every state, bit for bit
    assert torch.equal(c_h_n, h_n) and torch.equal(c_c_n, c_n)
    if backend == "eager":
        assert torch.equal(c_logp, logp)
    else:  # the model's own layers are inductor's code, with inductor's rounding
        torch.testing.assert_close(c_logp, logp)


@pytest.mark.skipif(not torch.__version__.startswith("2.13."),
                    reason="the README's graph counts are measured with torch 2.13")
@pytest.mark.parametrize("lstm_type", [nn.LSTM, LayerwiseLSTM])
def test_graph_counts_quoted_in_the_readme(lstm_type):
    model, x = _model(lstm_type)
    with torch.no_grad():
        # by default dynamo does not trace an nn.LSTM ("Attempted to wrap RNN, GRU, or LSTM"):
        # forward's frame runs eagerly, pre and post compile as graphs of their own
        explained = torch._dynamo.explain(model)(x)
        assert (explained.graph_count, explained.graph_break_count) == (2, 1)
        torch._dynamo.reset()
        with torch._dynamo.config.patch(allow_rnn=True):
            explained = torch._dynamo.explain(model)(x)
    if lstm_type is nn.LSTM:  # nn.LSTM traced into the one graph
        assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    else:  # one break, at capture
        assert (explained.graph_count, explained.graph_break_count) == (2, 1)
        assert "torch.compiler.disable" in explained.break_reasons[0].reason


# ----------------------------------------------------------------------------------------------
# record around a compiled model


@pytest.mark.parametrize("first_call", ["before", "inside"])
def test_record_around_a_compiled_model(backend, first_call):
    # autograd on, as when a model is compiled for training
    model, x = _model()
    with record(model) as eager_rec:
        eager = model(x)
    compiled = torch.compile(model, backend=backend)
    if first_call == "before":  # compiled without record, then recorded
        outside = compiled(x)
    with record(model) as rec:
        inside = compiled(x)
    if first_call == "inside":  # compiled inside the block, then run without record
        outside = compiled(x)
    assert "forward" not in model.lstm.__dict__  # restored
    assert_identical(rec.one("lstm"), eager_rec.one("lstm"))  # recorded, as eagerly
    assert_identical(inside, outside)  # no observer effect on the compiled model
    assert_identical(inside[1:], eager[1:])  # its LSTM: nn.LSTM's, bit for bit
    if backend == "eager":
        assert torch.equal(inside[0], eager[0])


def test_record_inside_a_compiled_function():
    model, x = _model()

    def f(x):
        with record(model) as rec:
            out = model(x)
        return out, rec

    with torch.no_grad():
        want = model(x)
        out, rec = torch.compile(f, backend="eager")(x)
    assert len(rec["lstm"]) == 1 and "forward" not in model.lstm.__dict__
    assert_identical(out, want)
    assert torch.equal(rec.one("lstm").output, want[3][0])


def test_record_with_allow_rnn(backend):
    # with allow_rnn on, dynamo traces nn.LSTM into the graph, and with autograd on AOT autograd
    # decomposes it: the inductor backend runs its own LSTM code. Inside record the LSTM's
    # patched forward is one eager call: recorded as eagerly, and the model inside the block
    # gets nn.LSTM's kernel's result. Autograd on, as when a model is compiled for training.
    model, x = _model()
    with record(model) as eager_rec:
        eager = model(x)
    with torch._dynamo.config.patch(allow_rnn=True):
        compiled = torch.compile(model, backend=backend)
        before = compiled(x)
        with pytest.warns(UserWarning, match="allow_rnn is on"):
            with record(model) as rec:
                inside = compiled(x)
        after = compiled(x)  # dynamo may keep the code it compiled for the block
        torch._dynamo.reset()
        afresh = compiled(x)
    assert "forward" not in model.lstm.__dict__
    assert_identical(rec.one("lstm"), eager_rec.one("lstm"))
    assert_identical(inside[1:3], eager[1:3])  # nn.LSTM's kernel inside the block
    assert_identical(afresh, before)  # compiled afresh: the code compiled before the block
    if torch.__version__.startswith("2.13."):  # README: dynamo keeps the block's code after it
        assert_identical(after, inside)
    if backend == "eager":  # dynamo's graph calls nn.LSTM's kernel
        assert_identical(before, inside)
        assert_identical(after, before)
    else:  # inductor's LSTM: close to nn.LSTM's kernel (README: up to 1.8e-7), not bit for bit
        for got in before, after:
            difference = max(float((a - b).abs().max().detach()) for a, b in zip(got[1:3], eager[1:3],
                                                                          strict=True))
            assert difference <= 1.8e-7


def test_record_does_not_warn_without_allow_rnn():
    model, x = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with record(model) as rec, torch.no_grad():
            model(x)
    assert len(rec["lstm"]) == 1
