"""The gate/cell-state plots show exactly the data they are given (the viewer built on them:
tests/test_widgets_gates.py)."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from lstm_states import capture
from lstm_states.gateplots import gate_heatmap, plot_histograms, plot_step, set_step, state_lines
from lstm_states.style import GATE_COLORS, STATE_COLORS
from tests.figtools import (  # noqa: F401
    bounds_px,
    close_figures,
    overlaps_vertically,
)


def small_states(proj_size=0):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(6, 2, 3))


def test_gate_heatmap_shows_the_gates_in_order():
    gates = small_states().gates[0, 0, :, 2, 1]  # (4, H)
    ax = gate_heatmap(gates)
    np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()), gates.detach().numpy())
    labels = ax.get_yticklabels()
    assert [t.get_text() for t in labels] == ["i_t", "f_t", "g_t", "o_t"]
    assert [t.get_color() for t in labels] == [GATE_COLORS[g] for g in "ifgo"]
    assert ax.collections[0].get_clim() == (-1, 1)
    assert ax.get_xlabel() == "hidden unit"
    bar = ax.collections[0].colorbar
    assert bar.ax.get_ylabel() == "gate value"
    # each value is drawn in its own cell, i at the top: the colour at the centre of cell
    # (gate r, unit k) is the colour map's colour of gates[r, k]
    assert ax.get_ylim() == (3.5, -0.5) and list(ax.get_yticks()) == [0, 1, 2, 3]
    fig = ax.figure
    fig.canvas.draw()
    shown = np.asarray(fig.canvas.buffer_rgba())
    mesh = ax.collections[0]
    height = shown.shape[0]
    for r, k in [(0, 0), (1, 3), (3, 4), (2, 1)]:
        x, y = ax.transData.transform((k, r))
        want = np.round(np.asarray(mesh.to_rgba(float(gates[r, k]))) * 255)
        np.testing.assert_allclose(shown[int(height - y), int(x)], want, atol=1)
    ax.figure.canvas.draw()
    assert bounds_px(ax)[2] <= bounds_px(bar.ax)[0] and overlaps_vertically(bar.ax, ax)


def test_gate_heatmap_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(4, H\)"):
        gate_heatmap(np.zeros((3, 5)))


def test_state_lines_with_projection_have_their_own_lengths():
    st = small_states(proj_size=2)
    c, h = st.c[1, 0, 3, 0], st.h[1, 0, 3, 0]  # (H,), (P,)
    ax = state_lines(c, h, ylim=(-2, 2))
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), c.detach().numpy())
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), h.detach().numpy())
    assert (ax.lines[0].get_color(), ax.lines[1].get_color()) == (STATE_COLORS["c"],
                                                                  STATE_COLORS["h"])
    assert len(ax.lines[0].get_xdata()) == 5 and len(ax.lines[1].get_xdata()) == 2
    assert ax.get_ylim() == (-2, 2)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_set_step_shows_step_t(proj_size):
    st = small_states(proj_size)
    gates, c, h = st.gates[1, 0, :, :, 0], st.c[1, 0, :, 0], st.h[1, 0, :, 0]
    axes = plot_step(gates, c, h, 0)
    assert len(axes) == 2
    np.testing.assert_array_equal(np.asarray(axes[0].collections[0].get_array()),
                                  gates[:, 0].detach().numpy())
    for t in (4, 5, 0):
        set_step(axes, gates, c, h, t)
        np.testing.assert_array_equal(np.asarray(axes[0].collections[0].get_array()),
                                      gates[:, t].detach().numpy())
        np.testing.assert_array_equal(axes[1].lines[0].get_ydata(), c[t].detach().numpy())
        np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), h[t].detach().numpy())
        assert axes[0].get_title() == f"gates at step t = {t}"
    lo, hi = axes[1].get_ylim()  # fixed range covering every step
    assert lo <= min(float(c.min()), float(h.min())) and hi >= max(float(c.max()), float(h.max()))


def test_plot_step_shows_c_before_and_after_and_a_history():
    st = small_states()
    gates, c, h = st.gates[1, 0, :, :, 1], st.c[1, 0, :, 1], st.h[1, 0, :, 1]
    c0 = torch.full((5,), 0.25)
    axes = plot_step(gates, c, h, 0, history=3, c0=c0)
    assert len(axes) == 3
    np.testing.assert_allclose(axes[1].lines[3].get_ydata(), c0)  # c_{-1} at t = 0
    for t in (1, 4, 0):
        set_step(axes, gates, c, h, t, c0=c0)
        c_prev = c[t - 1] if t else c0
        np.testing.assert_allclose(axes[1].lines[3].get_ydata(), c_prev)
        segments = axes[1].collections[0].get_segments()
        assert len(segments) == 5
        for u, seg in enumerate(segments):  # one segment per unit, from c_{t-1} up/down to c_t
            np.testing.assert_allclose(seg, [[u, c_prev[u]], [u, c[t, u]]], rtol=1e-6)
        shown = np.asarray(axes[2].collections[0].get_array())  # (K, H), row 0 = step t
        for k in range(3):
            if t - k >= 0:
                np.testing.assert_allclose(shown[k], c[t - k])
            else:
                assert np.isnan(shown[k]).all()
        # the step is named once, on the gates; the state panel's title stays the same
        assert axes[0].get_title() == f"gates at step t = {t}"
        assert axes[1].get_title() == "$c_{t-1} \\to c_t$ and $h_t$"
    assert [tick.get_text() for tick in axes[2].get_yticklabels()] == ["t", "t-1", "t-2"]
    with pytest.raises(ValueError, match="t must be"):
        plot_step(gates, c, h, 6)


def test_plot_histograms_bars_are_fractions_in_gate_colours():
    values = {"i_t": np.array([0.1, 0.1, 0.1, 0.9]), "g": np.array([-0.5, 0.6]),
              "tanh(c_t)": np.array([0.2] * 10)}
    ax = plot_histograms(values, bins=4, title="gates")
    assert [p.get_label() for p in ax.patches] == ["i_t", "g", "tanh(c_t)"]
    edges = np.linspace(-1, 1, 5)
    for patch, v in zip(ax.patches, values.values(), strict=True):
        xy = patch.get_xy()  # the outline: the top of bin k runs from edges[k] to edges[k+1]
        tops = {(round(a[0], 6), round(b[0], 6)): a[1] for a, b in zip(xy[:-1], xy[1:], strict=True)
                if a[1] == b[1] and b[0] > a[0]}
        heights = [tops.get((round(lo, 6), round(hi, 6)), 0.0)
                   for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        want, _ = np.histogram(v, bins=edges)
        np.testing.assert_allclose(heights, want / v.size)  # fractions, not counts
        assert sum(heights) == pytest.approx(1.0)
    assert matplotlib.colors.same_color(ax.patches[0].get_edgecolor(), GATE_COLORS["i"])
    assert matplotlib.colors.same_color(ax.patches[1].get_edgecolor(), GATE_COLORS["g"])
    assert ax.get_ylabel() == "fraction of values"
    assert ax.get_title() == "gates"


def test_plots_do_not_touch_rcparams():
    before = dict(matplotlib.rcParams)
    st = small_states()
    plot_step(st.gates[0, 0, :, :, 0], st.c[0, 0, :, 0], st.h[0, 0, :, 0], 1, history=2)
    plt.gcf().canvas.draw()
    assert dict(matplotlib.rcParams) == before
