"""The diagrams (lstm_states.diagrams) against what nn.LSTM really computes and returns, and the
pictures read back against the data they claim, on matplotlib's Agg."""

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402
from torch import nn  # noqa: E402

from lstm_states import capture  # noqa: E402
from lstm_states.diagrams import (  # noqa: E402
    C_N_COLOR,
    CELL_GRAPH,
    H_N_COLOR,
    grid_edges,
    inputs_seen,
    plot_lstm_cell,
    plot_output_grid,
    return_cells,
    run_cell_graph,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _states(num_layers=3, bidirectional=False, proj_size=0, T=9, B=2, seed=0):
    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 5, num_layers=num_layers, bidirectional=bidirectional, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(T, B, 3))


def _lower_layers(lstm, n):
    """An nn.LSTM made of the first n layers of ``lstm`` (its output is layer n-1's h_t)."""
    part = nn.LSTM(lstm.input_size, lstm.hidden_size, num_layers=n,
                   bidirectional=lstm.bidirectional, proj_size=lstm.proj_size,
                   dtype=lstm.weight_ih_l0.dtype)
    part.load_state_dict({k: v for k, v in lstm.state_dict().items()
                          if int(k.split("_l")[1].split("_")[0]) < n})
    return part


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
    # every vector each return holds is claimed by exactly one cell, and nothing else is
    assert sorted((t, d) for _, d, _, t, _ in cells["output"]) == list(
        itertools.product(range(lstm_out.shape[0]), range(lstm_out.shape[2] // H_out)))
    assert sorted(k for *_, k in cells["h_n"]) == list(range(h_n.shape[0]))
    assert sorted(k for *_, k in cells["c_n"]) == list(range(c_n.shape[0]))
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
    with pytest.raises(ValueError, match="steps"):
        grid_edges(2, True, 0)


# ---------------------------------------------------------------------------------------------
# grid_edges / inputs_seen: the arrows, checked against nn.LSTM by changing one input


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (3, False), (1, True),
                                                      (2, True), (3, True)])
def test_the_arrows_say_which_inputs_each_state_has_read(num_layers, bidirectional):
    # nn.LSTM alone (no lstm_states): the first l+1 layers of the LSTM, as an nn.LSTM of their
    # own, output layer l's h_t at every position. Change x_s: exactly the states that
    # inputs_seen says have read x_s must change.
    T, D = 5, 2 if bidirectional else 1
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4, num_layers=num_layers, bidirectional=bidirectional).double()
    x = torch.randn(T, 2, 3, dtype=torch.float64)
    seen = inputs_seen(num_layers, bidirectional, T)
    assert set(seen) == set(itertools.product(range(num_layers), range(D), range(T)))
    with torch.no_grad():
        for s in range(T):
            x2 = x.clone()
            x2[s] += 1.0
            for layer in range(num_layers):
                part = _lower_layers(lstm, layer + 1)
                diff = (part(x)[0] - part(x2)[0]).abs().view(T, 2, D, 4).amax(dim=(1, 3))
                for d, t in itertools.product(range(D), range(T)):
                    changed = bool(diff[t, d] > 1e-12)
                    assert changed == (s in seen[layer, d, t]), (s, layer, d, t)


def test_upper_layers_of_a_bidirectional_lstm_have_read_everything():
    # the fact behind notebook 01's warning about output[-1, :, H:]
    seen = inputs_seen(2, True, 6)
    assert seen[0, 1, 5] == {5}  # layer 0, reverse, at the last position: only x_5
    assert seen[1, 1, 5] == set(range(6))  # layer 1, reverse, there: every input
    assert seen[0, 0, 2] == {0, 1, 2} and seen[0, 1, 2] == {2, 3, 4, 5}


def test_the_edges_of_a_unidirectional_lstm():
    edges = set(grid_edges(2, False, 3))
    assert edges == {(("x", t), (0, 0, t)) for t in range(3)} | {
        ((0, 0, t), (1, 0, t)) for t in range(3)} | {
        ((layer, 0, t - 1), (layer, 0, t)) for layer in range(2) for t in (1, 2)}


# ---------------------------------------------------------------------------------------------
# plot_output_grid: the picture read back


def _box_distance(point, box):
    """Distance from a point to the border of an axis-aligned box (left, bottom, right, top)."""
    x, y = point
    left, bottom, right, top = box
    if left <= x <= right and bottom <= y <= top:
        return min(x - left, right - x, y - bottom, top - y)
    dx = max(left - x, 0, x - right)
    dy = max(bottom - y, 0, y - top)
    return float(np.hypot(dx, dy))


def _rect_box(rect):
    return rect.get_x(), rect.get_y(), rect.get_x() + rect.get_width(), rect.get_y() + rect.get_height()


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
    # one outlined, labelled cell per row of h_n and of c_n, where return_cells puts it
    edges = {p.get_gid(): p for p in ax.patches if str(p.get_gid()).startswith(("h_n[", "c_n["))}
    cells = return_cells(num_layers, bidirectional, T)
    assert set(edges) == {f"{name}[{k}]" for name in ("h_n", "c_n") for *_, k in cells[name]}
    for name, color in (("h_n", H_N_COLOR), ("c_n", C_N_COLOR)):
        for layer, d, state, t, k in cells[name]:
            rect = edges[f"{name}[{k}]"]
            assert matplotlib.colors.to_hex(rect.get_edgecolor()) == color
            assert rect.get_x() + rect.get_width() / 2 == pytest.approx(t)
            row = (layer * D + d) * 2 + (state == "h")
            assert row - 0.5 <= rect.get_y() < rect.get_y() + rect.get_height() <= row + 0.5
    labels = sorted(t.get_text() for t in ax.texts if "_n[" in t.get_text())
    assert labels == sorted(edges)
    # reverse direction's final state is at t = 0, forward's at t = T-1
    for gid, rect in edges.items():
        k = int(gid[4:-1])
        assert rect.get_x() + rect.get_width() / 2 == pytest.approx(T - 1 if k % D == 0 else 0)
    assert ax.get_ylabel() == "layer, direction, state"
    assert f"num_layers={num_layers}" in ax.get_title()
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == "input x_t"
    assert ticks[1] == ("layer 0 fwd c_t" if bidirectional else "layer 0 c_t")
    assert ticks[-1].startswith(f"layer {num_layers - 1}") and ticks[-1].endswith("h_t")


@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (3, False),
                                                      (3, True)])
def test_output_grid_draws_exactly_the_edges_from_node_to_node(num_layers, bidirectional):
    T = 4
    D = 2 if bidirectional else 1
    ax = plot_output_grid(num_layers, bidirectional, T)
    arrows = {p.get_gid(): p for p in ax.patches if isinstance(p, FancyArrowPatch)}
    want = grid_edges(num_layers, bidirectional, T)
    assert set(arrows) == {f"edge {src} -> {dst}" for src, dst in want}
    assert len(arrows) == len(want)
    # the node boxes are the drawn rectangles around (layer, d, t); x_t boxes in the bottom row
    rects = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() is None
             and p.get_fill() and p.get_height() < 2 and p.get_facecolor()[0] < 1]
    x_boxes = sorted((_rect_box(r) for r in rects), key=lambda b: b[0])
    assert len(x_boxes) == T

    def box(node):
        if node[0] == "x":
            return x_boxes[node[1]]
        layer, d, t = node
        bottom = (layer * D + d) * 2 - 0.5
        return t - 0.3, bottom + 0.1, t + 0.3, bottom + 1.9

    for src, dst in want:
        vertices = arrows[f"edge {src} -> {dst}"].get_path().vertices
        assert _box_distance(vertices[0], box(src)) < 0.05, (src, dst, vertices[0])
        tip = min(vertices, key=lambda v: _box_distance(v, box(dst)))
        assert _box_distance(tip, box(dst)) < 0.05, (src, dst)  # the head's tip, to a line width
        # (nodes are 0.4 apart, so an arrow drawn the wrong way round fails one of the two)


def test_output_grid_hatches_what_has_read_an_input():
    ax = plot_output_grid(2, True, 5, seen_from=1)
    hatched = {p.get_gid()[5:] for p in ax.patches if str(p.get_gid()).startswith("seen ")}
    seen = inputs_seen(2, True, 5)
    assert hatched == {str(("x", 1))} | {str(node) for node, s in seen.items() if 1 in s}
    assert str((0, 1, 4)) not in hatched and str((1, 1, 4)) in hatched
    assert ax.get_legend().get_texts()[-1].get_text() == "has read x_1"
    with pytest.raises(ValueError, match="seen_from"):
        plot_output_grid(2, True, 5, seen_from=5)


def test_output_grid_legend_follows_layout_and_sizes():
    ax = plot_output_grid(2, False, 4, batch_first=True, hidden_size=6, proj_size=3)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("output[:, t]") and "size 3" in texts[0]
    assert "size 3" in texts[1] and "size 6" in texts[2]
    ax2 = plot_output_grid(2, True, 4)
    assert ax2.get_legend().get_texts()[0].get_text().startswith("output[t]")


def test_output_grid_draws_on_given_axes_and_redraws_cleanly():
    fig, ax = plt.subplots()
    assert plot_output_grid(1, False, 3, ax=ax) is ax
    ax.clear()  # as ReturnsExplorer does before redrawing
    plot_output_grid(2, True, 3, ax=ax)
    assert len(ax.images) == 1
    fig.canvas.draw()  # renders without error


# ---------------------------------------------------------------------------------------------
# the cell: CELL_GRAPH evaluated against nn.LSTMCell and nn.LSTM, and the picture read back


@pytest.mark.parametrize("bias", [True, False])
def test_the_cell_graph_computes_what_nn_lstm_computes(bias):
    torch.manual_seed(2)
    cell = nn.LSTMCell(3, 5, bias=bias)
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    values = run_cell_graph(x, h, c, cell.weight_ih, cell.weight_hh,
                            cell.bias_ih if bias else None, cell.bias_hh if bias else None)
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
    torch.testing.assert_close(values["h_t"], h_ref)
    torch.testing.assert_close(values["c_t"], c_ref)
    # and one step of a (one-layer) nn.LSTM with the same weights
    lstm = nn.LSTM(3, 5, bias=bias)
    lstm.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    with torch.no_grad():
        _, (h_n, c_n) = lstm(x[None], (h[None], c[None]))
    torch.testing.assert_close(values["h_t"], h_n[0])
    torch.testing.assert_close(values["c_t"], c_n[0])


def test_a_miswired_cell_graph_is_caught():
    # the comparison above can fail: the diagram with o_t and i_t swapped computes other values
    torch.manual_seed(3)
    cell = nn.LSTMCell(3, 5)
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    wrong = tuple((n, op, ("i_t", "tanh(c_t)") if n == "h_t" else inputs)
                  for n, op, inputs in CELL_GRAPH)
    values = run_cell_graph(x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih,
                            cell.bias_hh, graph=wrong)
    with torch.no_grad():
        h_ref, _ = cell(x, (h, c))
    assert not torch.allclose(values["h_t"], h_ref, atol=1e-3)
    with pytest.raises(ValueError, match="proj_size"):
        run_cell_graph(x, h[:, :2], c, cell.weight_ih, cell.weight_hh[:, :2])


def test_the_cell_picture_draws_the_graph():
    values = {"c_{t-1}": 0.5, "f_t": 0.9, "c_t": -1.25}
    ax = plot_lstm_cell(values=values)
    arrows = {p.get_gid() for p in ax.patches if isinstance(p, FancyArrowPatch)}
    want = {f"edge {src} -> {node}" for node, _, inputs in CELL_GRAPH for src in inputs}
    assert arrows == want | {"out c_t", "out h_t"}
    texts = {t.get_gid(): t.get_text() for t in ax.texts if t.get_gid()}
    for node, _, _ in CELL_GRAPH:
        assert f"node {node}" in texts
    assert texts["node f_t"] == "σ\nf_t" and texts["node g_t"] == "tanh\ng_t"
    assert texts["node c_t"] == "+" and texts["node h_t"] == "×"
    assert {k: v for k, v in texts.items() if k.startswith("value ")} == {
        "value c_{t-1}": "+0.50", "value f_t": "+0.90", "value c_t": "-1.25"}
    ax.figure.canvas.draw()


def test_the_cell_picture_colours_each_gate_as_every_other_figure_does():
    from matplotlib.colors import to_hex

    from lstm_states.style import GATE_COLORS

    ax = plot_lstm_cell()
    boxes = {p.get_gid(): p for p in ax.patches if str(p.get_gid()).startswith("gate ")}
    assert sorted(boxes) == ["gate f", "gate g", "gate i", "gate o"]
    for name, box in boxes.items():
        assert to_hex(box.get_edgecolor()) == GATE_COLORS[name[-1]]
