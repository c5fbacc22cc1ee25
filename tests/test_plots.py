"""The state plots (lstm_states.plots), on Agg: what each figure shows, where its colorbars sit,
its limits. The widgets built on them: tests/test_widgets_states.py, test_widgets_returns.py."""

import numpy as np
import pytest
import torch

from lstm_states.plots import (
    plot_state_heatmaps,
    plot_states_at_step,
    select_sequence,
    symmetric_limit,
)
from lstm_states.style import STATE_COLORS
from tests.figtools import (  # noqa: F401
    bounds_px,
    close_figures,
    cursor_inside,
    overlaps_vertically,
    quiet_projection_notice,
    states,
)


def _scaled_layers():
    """3-layer states whose layers differ in size: a per-layer colour limit would show."""
    st = states(3, T=9)
    scale = torch.tensor([1.0, 3.0, 0.2])[:, None, None, None, None]
    return type("S", (), {"h": st.h * scale, "c": st.c * scale})()


# ---------------------------------------------------------------------------------------------
# heatmaps and values at a step


@pytest.mark.parametrize("bidirectional,direction,batch_index", [(False, 0, 1), (True, 1, 0)])
def test_state_heatmaps_show_the_states(bidirectional, direction, batch_index):
    st = states(2, bidirectional, proj_size=3)
    axes = plot_state_heatmaps(st, batch_index=batch_index, direction=direction, t=4)
    assert axes.shape == (2, 2)
    for layer in range(2):
        for col, full in enumerate((st.h, st.c)):
            ax = axes[layer, col]
            want = full[layer, direction, :, batch_index].T.numpy()  # (units, T)
            np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), want)
            assert ax.get_ylabel() == "unit"
            assert ax.get_title() == f"layer {layer}: {'hc'[col]}_t"
            assert list(ax.lines[-1].get_xdata()) == [4, 4]  # cursor
    assert axes[0, 0].get_xlabel() == "time step t"  # under the bottom row: layer 0


def test_new_heatmap_figure_has_layer_0_at_the_bottom():
    axes = plot_state_heatmaps(states(3), t=0)
    axes[0, 0].figure.canvas.draw()
    bottoms = [bounds_px(axes[layer, 0])[1] for layer in range(3)]
    assert bottoms[0] < bottoms[1] < bottoms[2]


def test_heatmaps_share_one_colour_scale_per_state_across_layers():
    st = _scaled_layers()
    axes = plot_state_heatmaps(st)
    for col, full in enumerate((st.h, st.c)):
        lim = float(full[:, 0, :, 0].abs().max())
        for layer in range(3):
            assert axes[layer, col].images[0].get_clim() == pytest.approx((-lim, lim))
        cbar = axes[0, col].images[0].colorbar
        assert cbar is axes[2, col].images[0].colorbar  # one colorbar for the column
        assert cbar.ax.get_ylabel().startswith(f"{'hc'[col]}_t, every layer")
        assert f"{lim:.2f}" in cbar.ax.get_ylabel()  # the scale is stated
    assert axes[0, 0].images[0].get_clim() != axes[0, 1].images[0].get_clim()


def test_each_colorbar_sits_beside_its_own_column():
    axes = plot_state_heatmaps(states(2, T=12))
    fig = axes[0, 0].figure
    fig.canvas.draw()
    h_right = max(bounds_px(axes[k, 0])[2] for k in range(2))
    c_left = min(bounds_px(axes[k, 1])[0] for k in range(2))
    c_right = max(bounds_px(axes[k, 1])[2] for k in range(2))
    h_bar, c_bar = (axes[0, col].images[0].colorbar.ax for col in range(2))
    assert h_right <= bounds_px(h_bar)[0] and bounds_px(h_bar)[2] <= c_left  # between h and c
    assert c_right <= bounds_px(c_bar)[0]  # right of c
    for col, bar in enumerate((h_bar, c_bar)):
        assert overlaps_vertically(bar, axes[1, col]) and overlaps_vertically(bar, axes[0, col])


@pytest.mark.parametrize("t", [0, 8])
def test_the_cursor_is_visible_at_the_first_and_last_step(t):
    axes = plot_state_heatmaps(states(2, T=9), t=t)
    axes[0, 0].figure.canvas.draw()
    for ax in axes.ravel():
        assert cursor_inside(ax, ax.lines[-1].get_xdata()[0])


def test_time_axes_tick_whole_steps():
    axes = plot_state_heatmaps(states(2, T=9))
    axes[0, 0].figure.canvas.draw()
    for ax in axes.ravel():
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_states_at_step_lines():
    st = states(3, proj_size=2)
    axes = plot_states_at_step(st, 6, batch_index=1)
    for layer, ax in enumerate(axes):
        np.testing.assert_allclose(ax.lines[0].get_ydata(), st.c[layer, 0, 6, 1].numpy())
        np.testing.assert_allclose(ax.lines[1].get_ydata(), st.h[layer, 0, 6, 1].numpy())
        assert ax.lines[0].get_color() == STATE_COLORS["c"]
        assert ax.lines[1].get_color() == STATE_COLORS["h"]
        assert len(ax.lines[0].get_xdata()) == 5 and len(ax.lines[1].get_xdata()) == 2
        assert ax.get_title() == f"layer {layer} at t = 6"
        assert ax.get_ylim() == axes[0].get_ylim()  # one scale for every layer, h and c
        lo, hi = ax.get_ylim()
        assert lo <= float(min(st.h.min(), st.c.min())) and hi >= float(max(st.h.max(),
                                                                            st.c.max()))
    assert axes[0].get_xlabel() == "hidden unit"  # bottom row: layer 0
    assert axes[0].get_ylabel() == "value"
    assert axes[2].get_legend() is not None and axes[0].get_legend() is None  # one legend


def test_bad_selection_is_refused():
    st = states(1)
    with pytest.raises(ValueError, match="direction"):
        plot_state_heatmaps(st, direction=1)
    with pytest.raises(ValueError, match="batch_index"):
        plot_states_at_step(st, 0, batch_index=2)
    with pytest.raises(ValueError, match="t must be"):
        plot_states_at_step(st, 9)
    no_c = type("S", (), {"h": st.h, "c": None})()
    with pytest.raises(ValueError, match="no c"):
        select_sequence(no_c, 0, 0)
    assert symmetric_limit(np.zeros(3)) == 1.0
