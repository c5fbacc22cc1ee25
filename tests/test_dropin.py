"""LayerwiseLSTM as a true drop-in for nn.LSTM: the same behaviour wherever PyTorch looks.

Each test runs the same code on an nn.LSTM and on a LayerwiseLSTM with the same weights and
requires the same outcome: the same values, the same success, or an error of the type nn.LSTM
raises (ours also says clearly what is wrong).
"""

import copy
import io
import pickle
import re

import pytest
import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.nn.parallel import scatter_gather
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lstm_states import (
    InputError,
    InputTypeError,
    LayerwiseLSTM,
    LSTMStates,
    NotATensorError,
    capture,
)
from tests.helpers import tree_leaves

CONFIGS = [
    dict(num_layers=2),
    dict(num_layers=2, bidirectional=True, proj_size=2, batch_first=True),
    dict(num_layers=1, bias=False),
]


def pair(**kw):
    """An nn.LSTM and a LayerwiseLSTM with the same weights, float64, eval mode."""
    torch.manual_seed(0)
    plain = nn.LSTM(3, 4, **kw).double().eval()
    return plain, LayerwiseLSTM.from_lstm(plain)


def inputs(lstm, packed=False):
    torch.manual_seed(1)
    x = torch.randn(2, 5, 3) if lstm.batch_first else torch.randn(5, 2, 3)
    x = x.double()
    if packed:
        x = pack_padded_sequence(x, torch.tensor([5, 3]), batch_first=lstm.batch_first)
    return x


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
@pytest.mark.parametrize("packed", [False, True])
def test_results_compare_with_assert_close_and_unpack_alike(kw, packed):
    plain, layerwise = pair(**kw)
    x = inputs(plain, packed)
    want, got = plain(x), layerwise(x)
    assert isinstance(got, tuple) and isinstance(got, LSTMStates) and len(got) == 2
    torch.testing.assert_close(got, want)  # the whole nested result, as for two nn.LSTMs
    torch.testing.assert_close(want, got)
    (out, (h_n, c_n)), (ref_out, (ref_h, ref_c)) = got, want
    assert type(out) is type(ref_out) and out.shape == ref_out.shape if not packed else True
    assert torch.equal(h_n, ref_h) and torch.equal(c_n, ref_c)


def test_equality_behaves_as_on_nn_lstms_tuple():
    plain, layerwise = pair(num_layers=2)
    x = inputs(plain)
    want, got = plain(x), layerwise(x)
    assert (want == want) is True and (got == got) is True  # the same object: equal
    errors = []
    for a, b in ((want, plain(x)), (got, layerwise(x))):  # two results: tensors compared
        with pytest.raises(RuntimeError) as info:
            bool(a == b)
        errors.append(type(info.value))
    assert errors[0] is errors[1]


@pytest.mark.parametrize("packed", [False, True])
def test_pytree_flattening_gives_nn_lstms_leaves(packed):
    plain, layerwise = pair(num_layers=2, bidirectional=True)
    x = inputs(plain, packed)
    want, got = plain(x), layerwise(x)
    assert pytree.tree_flatten(got)[1].num_leaves == pytree.tree_flatten(want)[1].num_leaves
    for a, b in zip(tree_leaves(got), tree_leaves(want), strict=True):  # (indices: None)
        assert (a is None and b is None) or torch.equal(a, b)

    # a tree_map keeps the structure: an LSTMStates of the mapped tensors
    def double(t):  # (a PackedSequence is one leaf before torch 2.x's pytree opens it)
        if isinstance(t, PackedSequence):
            return PackedSequence(t.data * 2, t.batch_sizes, t.sorted_indices, t.unsorted_indices)
        return t * 2 if t is not None and t.is_floating_point() else t
    doubled = pytree.tree_map(double, got)
    assert isinstance(doubled, LSTMStates)
    assert torch.equal(doubled.h_n, got.h_n * 2)
    out = doubled.output.data if packed else doubled.output
    assert torch.equal(out, (got.output.data if packed else got.output) * 2)


def test_gradcheck_and_gradgradcheck_through_the_flattened_result():
    plain, layerwise = pair(num_layers=2, bidirectional=True, proj_size=2)
    x = inputs(plain).requires_grad_()
    for module in (plain, layerwise):
        def fn(inp, module=module):
            return tuple(tree_leaves(module(inp)))  # output, h_n, c_n
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))
    # the result itself (a nested tuple) is refused by gradcheck alike
    errors = []
    for module in (plain, layerwise):
        with pytest.raises(AttributeError) as info:
            torch.autograd.gradcheck(lambda inp, m=module: m(inp), (x,))
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_torch_func_vjp_sees_the_same_structure():
    plain, layerwise = pair(num_layers=2)
    x = inputs(plain)
    grads = []
    for module in (plain, layerwise):
        primal, vjp_fn = torch.func.vjp(module, x)
        cotangent = pytree.tree_map(torch.ones_like, primal)
        grads.append(vjp_fn(cotangent)[0])
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("packed", [False, True])
def test_pickling_and_deep_copy(packed):
    plain, layerwise = pair(num_layers=2, bidirectional=True)
    x = inputs(plain, packed)
    with torch.no_grad():
        got = layerwise(x)
    for again in (pickle.loads(pickle.dumps(got)), copy.deepcopy(got)):
        assert isinstance(again, LSTMStates)
        torch.testing.assert_close(again, got)
        for field in ("h", "c", "gates"):
            assert torch.equal(getattr(again, field), getattr(got, field))
        assert again.layers == got.layers and again.batch_first == got.batch_first
        assert (again.lengths is None) == (not packed)
    buffer = io.BytesIO()
    torch.save(got, buffer)  # torch.save / torch.load(weights_only=False) as for any object
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert torch.equal(loaded.gates, got.gates)


# ---------------------------------------------------------------------------------------------
# a result PyTorch can rebuild as it rebuilds tuples: type(result)(items)


@pytest.mark.parametrize("packed", [False, True])
def test_rebuilt_from_an_iterable_it_is_nn_lstms_tuple_without_the_states(packed):
    plain, layerwise = pair(num_layers=2, bidirectional=True, batch_first=True)
    x = inputs(plain, packed)
    want, got = plain(x), layerwise(x)
    for again in (type(got)(iter(got)), type(got)(list(got)), LSTMStates(t for t in got)):
        assert type(again) is LSTMStates and again == got  # the same items, as tuple(got) holds
        assert again[0] is got[0] and again[1][0] is got.h_n and again[1][1] is got.c_n
        torch.testing.assert_close(again, want)
        # the states are not in the tuple: as documented, None (layers empty)
        assert again.h is again.c is again.gates is again.lengths is None
        assert again.batch_first is None and again.num_directions is None
        assert again.layers == () and again.num_layers == 0
        with pytest.raises(ValueError, match="gates were not kept"):
            again.gate("f")
        # and it stays so through the methods that rebuild it
        for copied in (again.detach(), again._replace(), pickle.loads(pickle.dumps(again))):
            assert copied.h is None and copied.batch_first is None and copied.layers == ()
            torch.testing.assert_close(copied, want)
    assert LSTMStates(iter(got), batch_first=True).batch_first is True  # keywords still count
    for bad in ([got.output], [got.output, got.h_n], [got.output, (got.h_n,)], [1, 2, 3]):
        with pytest.raises(TypeError, match="two items"):
            LSTMStates(bad)
    with pytest.raises(TypeError, match="or one iterable"):
        LSTMStates(got.output, got.h_n)


def test_copy_and_pytree_rebuild_keep_every_state():
    plain, layerwise = pair(num_layers=2, bidirectional=True, batch_first=True)
    got = layerwise(inputs(plain))
    shallow = copy.copy(got)
    assert type(shallow) is LSTMStates and shallow == got
    assert shallow.h is got.h and shallow.gates is got.gates and shallow.layers == got.layers
    leaves, spec = pytree.tree_flatten(got)
    rebuilt = pytree.tree_unflatten(leaves, spec)
    assert type(rebuilt) is LSTMStates and rebuilt == got  # nn.LSTM's leaves, in its structure
    assert rebuilt.batch_first is True and rebuilt.num_directions == 2


class Tagger(nn.Module):
    """A model as DataParallel sees one: logits and the LSTM's whole result."""

    def __init__(self, lstm):
        super().__init__()
        self.lstm, self.head = lstm, nn.Linear(8, 2).double()

    def forward(self, x):
        states = self.lstm(x)
        return self.head(states[0]), states


def test_data_parallel_gather_rebuilds_the_result(monkeypatch):
    """nn.DataParallel's gather (``gather_map``: ``type(out)(map(gather_map, zip(*outputs)))``)
    on the replicas' outputs, without GPUs: its ``Gather.apply`` (CUDA only) replaced by what it
    computes, a concatenation along ``dim`` on the target device."""
    def cpu_gather(target_device, dim, *tensors):
        return torch.cat(tensors, dim).to(target_device)

    monkeypatch.setattr(scatter_gather.Gather, "apply", staticmethod(cpu_gather))
    plain, layerwise = pair(num_layers=2, bidirectional=True, batch_first=True)
    models = Tagger(plain), Tagger(layerwise)
    models[1].head.load_state_dict(models[0].head.state_dict())
    torch.manual_seed(2)
    x = torch.randn(4, 5, 3, dtype=torch.float64)  # (B, T, I): DataParallel splits dim 0
    gathered = []
    for model in models:
        outputs = [model(chunk) for chunk in x.chunk(2)]  # two replicas' outputs
        gathered.append(scatter_gather.gather(outputs, "cpu", dim=0))
    want, got = gathered
    assert type(got) is tuple and type(got[1]) is LSTMStates and type(want[1]) is tuple
    for a, b in zip(tree_leaves(got), tree_leaves(want), strict=True):
        assert torch.equal(a, b)  # what nn.LSTM's model gathers, bit for bit
    torch.testing.assert_close(got[1].output, models[1](x)[1].output)  # the whole batch's output
    assert got[1].h is None and got[1].layers == ()  # rebuilt from the tuple: as documented


def test_state_dict_and_parameters_are_nn_lstms():
    plain, layerwise = pair(num_layers=2, bidirectional=True, proj_size=2)
    assert [n for n, _ in layerwise.named_parameters()] == [n for n, _ in plain.named_parameters()]
    back = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2).double().eval()
    back.load_state_dict(layerwise.state_dict())
    x = inputs(plain)
    assert torch.equal(back(x)[0], plain(x)[0])


# ---------------------------------------------------------------------------------------------
# bad input: the error nn.LSTM raises, with nn.LSTM's own text, and a clear one


def bad_inputs():
    """(name, input, hx) that nn.LSTM(3, 4, num_layers=2) refuses (float64)."""
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h = torch.zeros(2, 2, 4, dtype=torch.float64)
    h1, h5 = torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([5, 3]))
    return [
        ("feature size", torch.randn(5, 2, 2, dtype=torch.float64), None),
        ("feature size unbatched", torch.randn(5, 2, dtype=torch.float64), None),
        ("1-D", torch.randn(3, dtype=torch.float64), None),
        ("4-D", torch.randn(1, 5, 2, 3, dtype=torch.float64), None),
        ("no steps", torch.randn(0, 2, 3, dtype=torch.float64), None),
        ("no steps unbatched", torch.randn(0, 3, dtype=torch.float64), None),
        ("not a tensor", [[1.0] * 3], None),
        ("hx a tensor", x, h),
        ("hx a triple", x, (h, h, h)),
        ("h_0 shape", x, (torch.zeros(1, 2, 4, dtype=torch.float64), h)),
        ("h_0 batch", x, (torch.zeros(2, 3, 4, dtype=torch.float64), h)),
        ("c_0 batch", x, (h, torch.zeros(2, 3, 4, dtype=torch.float64))),
        ("c_0 hidden", x, (h, torch.zeros(2, 2, 5, dtype=torch.float64))),
        ("batched with 2-D hx", x, (h1, h1)),
        ("batched with 2-D c_0", x, (h, h1)),
        ("hx dtype", x, (h.float(), h)),
        ("input dtype", x.float(), None),
        ("integer input", torch.zeros(5, 2, 3, dtype=torch.long), None),
        ("packed input dtype", pack_padded_sequence(x.float(), torch.tensor([5, 3])), None),
        ("device", x.to("meta"), None),
        ("h_0 device", x, (h.to("meta"), h)),
        ("c_0 device", x, (h, h.to("meta"))),
        ("unbatched with 3-D hx", x[:, 0], (h, h)),
        ("unbatched with 1-D hx", x[:, 0], (h1[0], h1[0])),
        ("unbatched h_0 size", x[:, 0], (h5, h1)),
        ("unbatched c_0 size", x[:, 0], (h1, h5)),
        ("hx entries not tensors", x, (1, 2)),
        ("packed with a triple", packed, [h, h, h]),
    ]


# where nn.LSTM's message is not a check's but a by-product of what failed after it (an attribute
# lookup on a list or an int, a matrix product of two dtypes): there only its type is required
BY_PRODUCTS = {"not a tensor", "hx entries not tensors", "hx dtype", "packed input dtype"}
# before torch 2.3 nn.LSTM checked its input only when hx was given (pytorch#114874, fixed by
# #115542): without hx, these reach the kernel, and its words are the kernel's (ours are 2.3's)
if tuple(int(p) for p in torch.__version__.split(".")[:2]) < (2, 3):
    BY_PRODUCTS |= {"feature size", "feature size unbatched", "input dtype", "integer input"}


def raises_like_nn_lstm(plain, call, x, hx=None, name=""):
    """``call(x, hx)`` raises an error of nn.LSTM's type that says nn.LSTM's words and ours."""
    with pytest.raises(Exception) as theirs:
        plain(x, hx)
    words = None if name in BY_PRODUCTS else re.escape(str(theirs.value))
    # ours is an instance of the type nn.LSTM raises, so `except RuntimeError:` still catches it
    with pytest.raises(type(theirs.value), match=words) as ours:
        call(x, hx)
    assert isinstance(ours.value, (InputError, InputTypeError, NotATensorError)), name
    assert isinstance(ours.value, (ValueError, TypeError))  # and it says what kind of problem
    assert str(ours.value) != str(theirs.value), name  # and says more than nn.LSTM


@pytest.mark.parametrize("case", bad_inputs(), ids=lambda c: c[0])
def test_bad_input_raises_what_nn_lstm_raises(case):
    name, x, hx = case
    plain, layerwise = pair(num_layers=2)
    raises_like_nn_lstm(plain, layerwise, x, hx, name)
    raises_like_nn_lstm(plain, lambda x, hx: capture(plain, x, hx), x, hx, name)


@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_hx_errors_say_nn_lstms_words_in_every_layout(kw):
    """nn.LSTM's "Expected hidden[k] size (...), got [...]" and hx-dims texts, with proj_size,
    both directions and batch_first (what the expected shapes print)."""
    plain, layerwise = pair(**kw)
    x = inputs(plain)
    h, c = plain(x)[1]  # (L*D, B, H_out), (L*D, B, H)
    unbatched = x[0] if plain.batch_first else x[:, 0]
    h1, c1 = h[:, 0], c[:, 0]
    for hx in [(h[:-1], c), (h, c[:, :1]), (h[..., :-1], c), (h, torch.cat([c, c], -1)),
               (h1, c1), (h, c1)]:
        raises_like_nn_lstm(plain, layerwise, x, hx)
    for hx in [(h1[:-1], c1), (h1, c1[..., :-1]), (h, c), (h1[0], c1[0])]:
        raises_like_nn_lstm(plain, layerwise, unbatched, hx)


def test_error_types_are_both_kinds():
    assert issubclass(InputError, ValueError) and issubclass(InputError, RuntimeError)
    assert issubclass(InputTypeError, TypeError) and issubclass(InputTypeError, ValueError)
    assert issubclass(InputTypeError, RuntimeError)
    assert issubclass(NotATensorError, TypeError) and issubclass(NotATensorError, AttributeError)


def test_an_empty_batch_is_accepted_as_by_nn_lstm():
    plain, layerwise = pair(num_layers=2, bidirectional=True)
    x = torch.randn(5, 0, 3, dtype=torch.float64)
    want, got = plain(x), layerwise(x)
    torch.testing.assert_close(got, want)
    assert got.h.shape == (2, 2, 5, 0, 4)


def test_packed_output_is_a_packed_sequence_like_nn_lstms():
    plain, layerwise = pair(num_layers=1)
    x = inputs(plain, packed=True)
    out, ref = layerwise(x)[0], plain(x)[0]
    assert isinstance(out, PackedSequence)
    assert torch.equal(out.batch_sizes, ref.batch_sizes) and torch.equal(out.data, ref.data)
