"""widgets.ReturnsExplorer and lstm_return_shapes (notebook 01): the shapes are a real
nn.LSTM's, every control redraws, packed lengths move h_n, and the symbols agree with the numbers."""

import pytest
import torch

from lstm_states.style import MAX_WIDTH_PX
from tests.figtools import close_figures, quiet_projection_notice  # noqa: F401

pytest.importorskip("ipywidgets")
from lstm_states.widgets import ReturnsExplorer, lstm_return_shapes  # noqa: E402

# ---------------------------------------------------------------------------------------------
# ReturnsExplorer: the notebook-01 configuration widget


def test_lstm_return_shapes_are_the_real_ones():
    shapes = lstm_return_shapes(2, True, True, 2, input_size=3, hidden_size=4, steps=6, batch=5)
    assert shapes == {"input": (5, 6, 3), "output": (5, 6, 4), "h_n": (4, 5, 2),
                      "c_n": (4, 5, 4)}
    unbatched = lstm_return_shapes(2, True, False, 0, steps=6, unbatched=True)
    assert unbatched == {"input": (6, 3), "output": (6, 8), "h_n": (4, 4), "c_n": (4, 4)}
    packed = lstm_return_shapes(1, False, False, 0, steps=6, batch=3, lengths=[6, 4, 1])
    assert packed == {"input": (11, 3), "output": (11, 4), "output padded": (6, 3, 4),
                      "h_n": (1, 3, 4), "c_n": (1, 3, 4)}
    with pytest.raises(ValueError, match="lengths must be 3 numbers"):
        lstm_return_shapes(1, False, False, 0, steps=6, batch=3, lengths=[6, 7, 1])
    with pytest.raises(ValueError, match="always batched"):
        lstm_return_shapes(1, False, False, 0, lengths=[1, 1, 1], unbatched=True)


def test_returns_explorer_redraws_on_every_control():
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=5)
    assert ex.shapes["h_n"] == (2, 5, 4)
    assert ex.fig.get_size_inches()[0] * ex.fig.dpi <= MAX_WIDTH_PX
    ex.num_layers.value = 3
    assert ex.shapes["h_n"] == (3, 5, 4)
    ex.bidirectional.value = True
    assert ex.shapes["output"] == (6, 5, 8) and ex.shapes["h_n"] == (6, 5, 4)
    assert "bidirectional=True" in ex.ax.get_title()
    ex.batch_first.value = True
    assert ex.shapes["output"] == (5, 6, 8) and ex.shapes["h_n"] == (6, 5, 4)
    assert "(B, T, D*H_out)" in ex.shapes_text.value
    assert ex.ax.get_legend().get_texts()[0].get_text().startswith("output[:, t]")
    ex.proj_size.value = 2
    assert ex.shapes == {"input": (5, 6, 3), "output": (5, 6, 4), "h_n": (6, 5, 2),
                         "c_n": (6, 5, 4)}
    assert "<code>(6, 5, 2)</code>" in ex.shapes_text.value
    assert "H_out=2" in ex.shapes_text.value
    assert ex.h_n_steps == [5] * 5  # unpacked: every sequence's h_n is step T-1


def test_returns_explorer_packed_lengths_move_h_n():
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=3)
    assert ex.sequence.disabled and ex.lengths.disabled
    ex.packed.value = True
    assert not ex.sequence.disabled
    ex.lengths.value = "6, 3, 1"
    assert ex.h_n_steps == [5, 2, 0]  # found by comparing the real h_n with the output
    assert ex.shapes["input"] == (10, 3) and ex.shapes["output padded"] == (6, 3, 4)
    assert "sum(lengths)" in ex.shapes_text.value
    assert "holds step 5 of sequence 0, 2 of sequence 1, 0 of sequence 2" in ex.shapes_text.value
    ex.sequence.value = 1
    assert "sequence 1 has length 3, so its h_n is step 2" in ex.ax.get_title()
    padding = [p for p in ex.ax.patches if p.get_label() == "padding"]
    assert len(padding) == 1 and padding[0].get_x() == pytest.approx(2.5)
    assert padding[0].get_width() == pytest.approx(3)
    ex.bidirectional.value = True
    assert ex.h_n_steps == [5, 2, 0]  # the forward direction of the top layer
    ex.lengths.value = "6, x"
    assert "whole numbers" in ex.error and "whole numbers" in ex.shapes_text.value
    assert ex.h_n_steps == [5, 2, 0]  # the last good state stays
    ex.lengths.value = "6, 6, 9"
    assert "each in 1..6" in ex.error
    ex.lengths.value = "2, 2, 2"
    assert ex.error == "" and ex.h_n_steps == [1, 1, 1]


def test_returns_explorer_unbatched_input():
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=3, packed=True)
    ex.unbatched.value = True
    assert not ex.packed.value  # packed input is always batched
    assert ex.shapes == {"input": (6, 3), "output": (6, 4), "h_n": (2, 4), "c_n": (2, 4)}
    assert "<code>(T, I)</code>" in ex.shapes_text.value
    assert "unbatched" in ex.ax.get_title()
    ex.packed.value = True
    assert not ex.unbatched.value


@pytest.mark.parametrize("bf", [False, True])
def test_returns_explorer_symbols_agree_with_numbers(bf):
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=5, num_layers=3,
                         bidirectional=True, batch_first=bf, proj_size=1)
    sizes = {"T": 6, "B": 5, "I": 3, "H": 4, "H_out": 1, "L*D": 6, "D*H_out": 2}
    from lstm_states.widgets import _LAYOUTS

    for name, shape in ex.shapes.items():
        symbols = _LAYOUTS[name][int(bf)].strip("()").split(", ")
        assert tuple(sizes[s] for s in symbols) == shape


def test_returns_explorer_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    want = torch.rand(3)
    torch.manual_seed(3)
    ex = ReturnsExplorer()
    ex.num_layers.value = 3
    assert torch.equal(torch.rand(3), want)
