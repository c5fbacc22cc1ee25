"""The diagrams (lstm_states.diagrams) against what nn.LSTM really returns, on matplotlib's Agg."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lstm_states import capture  # noqa: E402
from lstm_states.diagrams import C_N_COLOR, H_N_COLOR, plot_output_grid, return_cells  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _states(num_layers=3, bidirectional=False, proj_size=0, T=9, B=2, seed=0):
    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 5, num_layers=num_layers, bidirectional=bidirectional, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(T, B, 3))


# ---------------------------------------------------------------------------------------------
# return_cells: the claim the grid picture makes, checked against nn.LSTM's real returns


@pytest.mark.parametrize("num_layers,bidirectional,proj_size",
                         list(itertools.product([1, 2, 3], [False, True], [0, 2])))
def test_return_cells_match_nn_lstm(num_layers, bidirectional, proj_size):
    T = 6
    st = _states(num_layers, bidirectional, proj_size, T=T)
    lstm_out, (h_n, c_n) = st.output, (st.h_n, st.c_n)
    D = 2 if bidirectional else 1
    H_out = st.h.shape[-1]
    cells = return_cells(num_layers, bidirectional, T)
    # every vector each return holds is listed once, and nothing else
    assert len(cells["output"]) == T * D == lstm_out.shape[0] * lstm_out.shape[2] // H_out
    assert len(cells["h_n"]) == len(cells["c_n"]) == num_layers * D == h_n.shape[0]
    for layer, d, state, t, index in cells["output"]:
        assert (layer, state, index) == (num_layers - 1, "h", t)
        torch.testing.assert_close(lstm_out[t, :, d * H_out:(d + 1) * H_out], st.h[layer, d, t])
    for name, full, ret in (("h_n", st.h, h_n), ("c_n", st.c, c_n)):
        for layer, d, state, t, k in cells[name]:
            assert state == name[0] and k == layer * D + d
            assert t == (T - 1 if d == 0 else 0)
            torch.testing.assert_close(ret[k], full[layer, d, t])


def test_return_cells_rejects_empty():
    with pytest.raises(ValueError, match="num_layers"):
        return_cells(0, False, 5)


# ---------------------------------------------------------------------------------------------
# plot_output_grid


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (3, False)])
def test_output_grid_artists(num_layers, bidirectional):
    T = 5
    D = 2 if bidirectional else 1
    ax = plot_output_grid(num_layers, bidirectional, T, hidden_size=4, proj_size=0)
    grid = np.asarray(ax.images[0].get_array())
    assert grid.shape == (2 * num_layers * D, T)
    # output fills the h rows of the top layer (rows counted from the bottom), whole width
    top_h_rows = [(2 * ((num_layers - 1) * D + d)) + 1 for d in range(D)]
    expected = np.zeros_like(grid)
    expected[top_h_rows] = 1
    np.testing.assert_array_equal(grid, expected)
    # one outlined, labelled cell per row of h_n and of c_n
    edges = [p for p in ax.patches if p.get_label().startswith(("h_n[", "c_n["))]
    assert len(edges) == 2 * num_layers * D
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == sorted([f"h_n[{k}]" for k in range(num_layers * D)]
                            + [f"c_n[{k}]" for k in range(num_layers * D)])
    colors = {p.get_label()[:3]: matplotlib.colors.to_hex(p.get_edgecolor()) for p in edges}
    assert colors == {"h_n": H_N_COLOR, "c_n": C_N_COLOR}
    # reverse direction's final state is at t = 0, forward's at t = T-1
    for p in edges:
        k = int(p.get_label()[4:-1])
        x_center = p.get_x() + p.get_width() / 2
        assert x_center == pytest.approx(T - 1 if k % D == 0 else 0)
    assert ax.get_xlabel() == "time step t"
    assert ax.get_ylabel() == "layer, direction, state"
    assert f"num_layers={num_layers}" in ax.get_title()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == ("layer 0 fwd c_t" if bidirectional else "layer 0 c_t")
    assert ticks[-1].startswith(f"layer {num_layers - 1}") and ticks[-1].endswith("h_t")


def test_output_grid_legend_follows_layout_and_sizes():
    ax = plot_output_grid(2, False, 4, batch_first=True, hidden_size=6, proj_size=3)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("output[:, t]") and "size 3" in texts[0]
    assert "size 3" in texts[1] and "size 6" in texts[2]
    ax2 = plot_output_grid(2, True, 4)
    assert ax2.get_legend().get_texts()[0].get_text().startswith("output[t]")


def test_output_grid_draws_on_given_axes():
    fig, ax = plt.subplots()
    assert plot_output_grid(1, False, 3, ax=ax) is ax
    fig.canvas.draw()  # renders without error
