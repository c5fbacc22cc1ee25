"""LayerwiseLSTM as a true drop-in for nn.LSTM: the same behaviour wherever PyTorch looks.

Each test runs the same code on an nn.LSTM and on a LayerwiseLSTM with the same weights and
requires the same outcome: the same values, the same success, or an error of the type nn.LSTM
raises (ours also says clearly what is wrong).
"""

import copy
import io
import pickle

import pytest
import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lstm_states import InputError, InputTypeError, LayerwiseLSTM, LSTMStates, NotATensorError
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


def test_state_dict_and_parameters_are_nn_lstms():
    plain, layerwise = pair(num_layers=2, bidirectional=True, proj_size=2)
    assert [n for n, _ in layerwise.named_parameters()] == [n for n, _ in plain.named_parameters()]
    back = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2).double().eval()
    back.load_state_dict(layerwise.state_dict())
    x = inputs(plain)
    assert torch.equal(back(x)[0], plain(x)[0])


# ---------------------------------------------------------------------------------------------
# bad input: the error nn.LSTM raises, and a clear one


def bad_inputs():
    """(name, input, hx) that nn.LSTM(3, 4, num_layers=2) refuses (float64)."""
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    h = torch.zeros(2, 2, 4, dtype=torch.float64)
    return [
        ("feature size", torch.randn(5, 2, 2, dtype=torch.float64), None),
        ("1-D", torch.randn(3, dtype=torch.float64), None),
        ("4-D", torch.randn(1, 5, 2, 3, dtype=torch.float64), None),
        ("no steps", torch.randn(0, 2, 3, dtype=torch.float64), None),
        ("not a tensor", [[1.0] * 3], None),
        ("hx a tensor", x, h),
        ("hx a triple", x, (h, h, h)),
        ("h_0 shape", x, (torch.zeros(1, 2, 4, dtype=torch.float64), h)),
        ("c_0 batch", x, (h, torch.zeros(2, 3, 4, dtype=torch.float64))),
        ("hx dtype", x, (h.float(), h)),
        ("input dtype", x.float(), None),
        ("integer input", torch.zeros(5, 2, 3, dtype=torch.long), None),
        ("device", x.to("meta"), None),
        ("unbatched with 3-D hx", x[:, 0], (h, h)),
        ("hx entries not tensors", x, (1, 2)),
    ]


@pytest.mark.parametrize("case", bad_inputs(), ids=lambda c: c[0])
def test_bad_input_raises_what_nn_lstm_raises(case):
    name, x, hx = case
    plain, layerwise = pair(num_layers=2)
    with pytest.raises(Exception) as theirs:
        plain(x, hx)
    with pytest.raises(Exception) as ours:
        layerwise(x, hx)
    # ours is an instance of the type nn.LSTM raises, so `except RuntimeError:` still catches it
    assert isinstance(ours.value, type(theirs.value)), (name, type(theirs.value), ours.value)
    assert isinstance(ours.value, (InputError, InputTypeError, NotATensorError)), name
    assert isinstance(ours.value, (ValueError, TypeError))  # and it says what kind of problem


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
