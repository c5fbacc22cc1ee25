"""capture's CUDA graphs (route "cuda_graph", lstm_states/_cuda.py): replays equal the eager
computation (route "cuda").

These need a GPU and skip without one (CI); tools/gpu_check.sh runs them.
"""

import pytest
import torch
from torch import nn

from lstm_states import _cuda, capture

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")

FIELDS = ("output", "h_n", "c_n", "h", "c", "gates")


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    _cuda.clear()
    monkeypatch.setattr(_cuda, "unusable", None)
    yield
    _cuda.clear()


def eager(lstm, x, hx=None):
    return capture(lstm, x, hx, route="cuda")


def assert_same(a, b):
    for f in FIELDS:
        if getattr(b, f) is None:
            assert getattr(a, f) is None, f
        else:
            torch.testing.assert_close(getattr(a, f), getattr(b, f), msg=f)


CONFIGS = [
    dict(num_layers=2),
    dict(num_layers=2, bidirectional=True, proj_size=3),
    dict(num_layers=3, batch_first=True, bias=False),
]


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("kw", CONFIGS, ids=str)
def test_replays_equal_the_eager_computation_and_belong_to_the_caller(kw, with_hx, unbatched):
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, **kw).cuda().eval()
    L, D = lstm.num_layers, 2 if lstm.bidirectional else 1
    shape = (6, 5) if unbatched else ((3, 6, 5) if lstm.batch_first else (6, 3, 5))
    hx_shape = (L * D,) if unbatched else (L * D, 3)

    def hx():
        return (torch.randn(*hx_shape, lstm.proj_size or 7, device="cuda"),
                torch.randn(*hx_shape, 7, device="cuda")) if with_hx else None

    with torch.no_grad():
        xs = [torch.randn(*shape, device="cuda") for _ in range(3)]
        hxs = [hx() for _ in range(3)]
        first = capture(lstm, xs[0], hxs[0])  # eager, and recorded
        assert len(_cuda._cache) == 1
        second = capture(lstm, xs[1], hxs[1])  # replayed
        kept = {f: getattr(second, f).clone() for f in FIELDS}
        third = capture(lstm, xs[2], hxs[2])  # replayed again: must not touch `second`
        assert len(_cuda._cache) == 1
        for st, x, h in zip((first, second, third), xs, hxs, strict=True):
            assert_same(st, eager(lstm, x, h))
            ref_out, (ref_h, ref_c) = lstm(x, h)
            torch.testing.assert_close(st.output, ref_out, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(st.c_n, ref_c, atol=1e-5, rtol=1e-4)
        for f in FIELDS:
            assert torch.equal(getattr(second, f), kept[f]), f


def test_parameters_changed_in_place_are_seen_and_replaced_ones_make_a_new_graph():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2).cuda().eval()
    x = torch.randn(6, 3, 5, device="cuda")
    with torch.no_grad():
        capture(lstm, x)
        lstm.weight_hh_l1.mul_(0.5)  # an optimizer step, load_state_dict: in place
        assert_same(capture(lstm, x), eager(lstm, x))
        assert len(_cuda._cache) == 1
        lstm.weight_ih_l0 = nn.Parameter(lstm.weight_ih_l0 * 2)  # a new tensor
        assert_same(capture(lstm, x), eager(lstm, x))
        assert len(_cuda._cache) == 2


def test_no_graph_with_autograd_packed_input_or_dropout_at_work():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2, dropout=0.5).cuda().eval()
    x = torch.randn(6, 3, 5, device="cuda")
    capture(lstm, x)  # parameters require grad: autograd
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([6, 4, 2]))
    with torch.no_grad():
        capture(lstm, packed)
        capture(lstm.train(), x)
    assert len(_cuda._cache) == 0


def test_graphs_are_bounded_and_cleared(monkeypatch):
    monkeypatch.setattr(_cuda, "MAX_GRAPHS", 2)
    lstm = nn.LSTM(5, 7).cuda().eval()
    with torch.no_grad():
        for T in (3, 4, 5):
            capture(lstm, torch.randn(T, 2, 5, device="cuda"))
        assert len(_cuda._cache) == 2
    _cuda.clear()
    assert len(_cuda._cache) == 0


def test_inference_mode_and_no_grad_get_their_own_graphs():
    lstm = nn.LSTM(5, 7).cuda().eval()
    x = torch.randn(4, 2, 5, device="cuda")
    with torch.inference_mode():
        a = capture(lstm, x)
        capture(lstm, x)
    with torch.no_grad():
        b = capture(lstm, x)
        b2 = capture(lstm, x)
    assert len(_cuda._cache) == 2
    assert_same(a, b)
    assert_same(b, b2)


def test_changed_tf32_or_cudnn_settings_get_their_own_graphs():
    # a graph holds the kernels chosen when it was recorded: TF32 on or off must not be replayed
    # from the other's graph
    torch.manual_seed(0)
    lstm = nn.LSTM(64, 128, num_layers=2).cuda().eval()
    x = torch.randn(50, 8, 64, device="cuda")
    with torch.no_grad():
        capture(lstm, x)
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=True):
            tf32 = capture(lstm, x)
            torch.testing.assert_close(tf32.output, lstm(x)[0])  # the same TF32 kernel
        exact = capture(lstm, x)
        torch.testing.assert_close(exact.output, lstm(x)[0])
        with torch.backends.cudnn.flags(enabled=False):
            capture(lstm, x)
    assert len(_cuda._cache) == 3


def test_each_selection_gets_its_own_graph():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2).cuda().eval()
    x = torch.randn(6, 3, 5, device="cuda")
    with torch.no_grad():
        full = capture(lstm, x)
        only_h = capture(lstm, x, fields=("h",), layers=[1])
        assert len(_cuda._cache) == 2
        again = capture(lstm, x, fields=("h",), layers=[1])  # replayed
        assert only_h.c is None and again.c is None and again.layers == (1,)
        assert_same(again, only_h)
        torch.testing.assert_close(again.h, full.h[1:])
