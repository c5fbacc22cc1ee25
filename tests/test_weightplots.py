"""The flatten_parameters pictures: where the weights live (storages) and measured times."""

import copy

import numpy as np
import pytest
import torch
from matplotlib.colors import same_color
from torch import nn

from lstm_states.style import MAX_WIDTH_PX
from lstm_states.weightplots import (
    PARAM_COLORS,
    plot_timings,
    plot_weight_storages,
    weight_storages,
)
from tests.figtools import close_figures  # noqa: F401


def _lstm():
    torch.manual_seed(0)
    return nn.LSTM(8, 16, num_layers=2, bidirectional=True)


def _one_buffer(lstm):
    """A copy whose parameters are views of one flat tensor, as cuDNN's buffer on a GPU."""
    flat = torch.zeros(sum(p.numel() for p in lstm.parameters()))
    module, offset = copy.deepcopy(lstm), 0
    for p in module.parameters():
        p.data = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return module


def _patches(ax, kind, row):
    return [p for p in ax.patches if (p.get_gid() or "").startswith(f"{kind}:{row}:")]


def test_weight_storages_on_the_cpu_are_one_per_parameter():
    lstm = _lstm()
    blocks = weight_storages(lstm)
    assert [b.name for b in blocks] == [name for name, _ in lstm.named_parameters()]
    assert len({b.storage for b in blocks}) == 16
    w = lstm.weight_hh_l1_reverse
    b = next(b for b in blocks if b.name == "weight_hh_l1_reverse")
    assert (b.offset, b.nbytes, b.data_ptr) == (0, w.numel() * 4, w.data_ptr())
    one = weight_storages(_one_buffer(lstm))
    assert len({b.storage for b in one}) == 1
    assert [b.offset for b in one][:2] == [0, lstm.weight_ih_l0.numel() * 4]


def test_plot_weight_storages_draws_each_storage_and_parameter():
    lstm = _lstm()
    before = weight_storages(lstm)
    lstm.flatten_parameters()  # on the CPU: nothing changes
    after = weight_storages(lstm)
    flat = _one_buffer(lstm)
    one = weight_storages(flat)
    flat.weight_hh_l0.data = flat.weight_hh_l0.data.clone()
    swapped = weight_storages(flat)
    layouts = {"before": before, "after flatten_parameters()": after, "one buffer": one,
               "weight_hh_l0.data swapped": swapped}
    ax = plot_weight_storages(layouts)
    assert ax.figure.get_size_inches()[0] * ax.figure.dpi <= MAX_WIDTH_PX
    assert [len(_patches(ax, "storage", row)) for row in range(4)] == [16, 16, 1, 2]
    assert [len(_patches(ax, "param", row)) for row in range(4)] == [16] * 4
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["before: 16 storages for 16 parameters",
                      "after flatten_parameters(): 16 storages for 16 parameters",
                      "one buffer: 1 storage for 16 parameters",
                      "weight_hh_l0.data swapped: 2 storages for 16 parameters"]
    # in the one-buffer row every parameter sits at its offset inside the single frame
    frame = _patches(ax, "storage", 2)[0]
    for block, patch in zip(one, _patches(ax, "param", 2), strict=True):
        assert patch.get_x() == pytest.approx(frame.get_x() + block.offset)
        assert patch.get_width() == block.nbytes
        assert same_color(patch.get_facecolor(), PARAM_COLORS[block.name.rsplit("_l", 1)[0]])
    # hatched = moved since the row above: none after flatten on the CPU, one after the swap
    hatched = [[p.get_gid().split(":")[2] for p in _patches(ax, "param", row) if p.get_hatch()]
               for row in range(4)]
    assert hatched[0] == [] and hatched[1] == [] and len(hatched[2]) == 16
    assert hatched[3] == ["weight_hh_l0"]
    with pytest.raises(ValueError, match="layouts is empty"):
        plot_weight_storages({})


def test_plot_timings_bars_are_the_medians_in_order():
    ax = plot_timings({"one buffer": 8.52, "a weight replaced": [9.3, 9.26, 9.1],
                       "after flatten_parameters()": 8.65})
    widths = [p.get_width() for p in ax.patches]
    np.testing.assert_allclose(widths, [8.52, 9.26, 8.65])
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "one buffer", "a weight replaced", "after flatten_parameters()"]
    assert ax.yaxis_inverted()  # the first label on top
    assert [t.get_text() for t in ax.texts] == ["8.52 ms", "9.26 ms", "8.65 ms"]
    assert len(ax.lines[0].get_xdata()) == 3  # each repeat a dot
    assert ax.get_xlim()[1] >= 9.3
    with pytest.raises(ValueError, match="finite number"):
        plot_timings({"x": float("nan")})
    with pytest.raises(ValueError, match="timings is empty"):
        plot_timings({})
