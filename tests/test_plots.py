"""State plots and the StateExplorer / ReturnsExplorer widgets, on Agg (no browser, no kernel):
what each figure shows, where its colorbars sit, its limits, and what each control changes."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lstm_states import capture
from lstm_states.plots import (
    plot_state_heatmaps,
    plot_states_at_step,
    select_sequence,
    symmetric_limit,
)
from lstm_states.style import MAX_WIDTH_PX, STATE_COLORS
from tests.figtools import (  # noqa: F401
    bounds_px,
    close_figures,
    cursor_inside,
    full_redraw_pixels,
    overlaps_vertically,
    pixels,
    quiet_projection_notice,
    states,
)

widgets = pytest.importorskip("ipywidgets")
from lstm_states.widgets import ReturnsExplorer, StateExplorer, lstm_return_shapes  # noqa: E402


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


# ---------------------------------------------------------------------------------------------
# StateExplorer: the slider and the pickers


def test_state_explorer_slider_moves_cursor_and_values():
    st = states(3, T=12)
    ex = StateExplorer(st, batch_index=1)
    assert ex.slider.description == "time step"
    assert (ex.slider.min, ex.slider.max) == (0, 11) and (ex.play.min, ex.play.max) == (0, 11)
    assert isinstance(ex.widget, widgets.VBox)
    assert len(ex.cursors) == 6 and len(ex.h_lines) == len(ex.c_lines) == 3
    ex.fig.canvas.draw()
    positions = [ax.get_position().bounds for ax in ex.fig.axes]
    for k in (7, 0, 11):
        ex.slider.value = k
        assert ex.step == k
        for cursor in ex.cursors:
            assert list(cursor.get_xdata()) == [k, k]
        for layer in range(3):
            np.testing.assert_allclose(ex.h_lines[layer].get_ydata(), st.h[layer, 0, k, 1])
            np.testing.assert_allclose(ex.c_lines[layer].get_ydata(), st.c[layer, 0, k, 1])
            assert ex.value_axes[layer].get_title() == f"layer {layer} at t"
        assert ex.step_text.get_text() == f"t = {k}"  # the one label naming the step
        assert ex.step_text in ex.blitter.artists
    # the heatmaps never change, and the layout is fixed
    np.testing.assert_allclose(np.asarray(ex.images[2][1].get_array()), st.c[2, 0, :, 1].T)
    assert [ax.get_position().bounds for ax in ex.fig.axes] == positions
    assert "batch element 1" in ex.fig.get_suptitle()


def test_state_explorer_steps_are_blitted_and_show_what_a_full_draw_shows():
    ex = StateExplorer(states(3, T=12))
    ex.fig.canvas.draw()
    draws = ex.blitter.full_draws
    for k in (3, 11, 0):
        ex.slider.value = k
        assert ex.blitter.full_draws == draws  # a step redraws only what moves
        assert not ex.fig.stale  # (a stale figure is redrawn in full by pyplot's ion mode)
        blitted = pixels(ex.fig)
        np.testing.assert_array_equal(blitted, full_redraw_pixels(ex.fig))
        draws = ex.blitter.full_draws
    assert ex.blitter.blits == 3


def test_state_explorer_fits_and_puts_layer_0_at_the_bottom():
    ex = StateExplorer(states(3, T=20, H=8))
    assert ex.fig.get_size_inches()[0] * ex.fig.dpi <= MAX_WIDTH_PX
    ex.fig.canvas.draw()
    bottoms = [bounds_px(ex.value_axes[layer])[1] for layer in range(3)]
    assert bottoms[0] < bottoms[1] < bottoms[2]
    h_bar, c_bar = ex.colorbars
    assert bounds_px(ex.heatmap_axes[0][0])[2] <= bounds_px(h_bar.ax)[0]
    assert bounds_px(h_bar.ax)[2] <= bounds_px(ex.heatmap_axes[0][1])[0]
    assert bounds_px(ex.heatmap_axes[0][1])[2] <= bounds_px(c_bar.ax)[0]
    assert bounds_px(c_bar.ax)[2] <= bounds_px(ex.value_axes[0])[0]
    for t in (0, 19):
        ex.slider.value = t
        assert all(cursor_inside(c.axes, t) for c in ex.cursors)


def test_state_explorer_batch_picker():
    st = states(2, T=8, B=3)
    ex = StateExplorer(st)
    ex.slider.value = 5
    ex.batch.value = 2
    assert ex.batch_index == 2
    for layer in range(2):
        np.testing.assert_allclose(np.asarray(ex.images[layer][0].get_array()),
                                   st.h[layer, 0, :, 2].T)
        np.testing.assert_allclose(ex.c_lines[layer].get_ydata(), st.c[layer, 0, 5, 2])
    lim = float(st.c[:, 0, :, 2].abs().max())
    assert ex.images[1][1].get_clim() == pytest.approx((-lim, lim))
    assert f"{lim:.2f}" in ex.colorbars[1].ax.get_ylabel()
    assert "batch element 2" in ex.fig.get_suptitle()
    ex.fig.canvas.draw()  # the new data are drawn, then steps blit again
    ex.slider.value = 6
    np.testing.assert_array_equal(pixels(ex.fig), full_redraw_pixels(ex.fig))


def test_state_explorer_direction_picker_and_title():
    st = states(2, bidirectional=True, T=7)
    ex = StateExplorer(st, direction=0, title="my title")
    assert ex.fig.get_suptitle() == "my title"
    assert not ex.direction.disabled
    ex.slider.value = 3
    ex.direction.value = 1
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), st.h[1, 1, 3, 0])
    np.testing.assert_allclose(np.asarray(ex.images[0][1].get_array()), st.c[0, 1, :, 0].T)
    assert "reverse direction" in ex.fig.get_suptitle()  # the given title no longer applies
    # the reverse direction's final state is at step 0
    np.testing.assert_allclose(ex.h[1, 0], st.h_n[3, 0].numpy())
    assert StateExplorer(states(1)).direction.disabled  # one direction: nothing to pick


def test_state_explorer_layer_picker():
    st = states(3, T=9, H=6)
    ex = StateExplorer(st)
    ex.slider.value = 4
    old = ex.blitter  # alive: if it still listened, it would draw the removed artists
    ex.layer.value = 1
    assert ex.blitter is not old
    draws = old.full_draws
    ex.fig.canvas.draw()
    assert old.full_draws == draws  # the old one no longer draws (its artists are gone)
    assert ex.shown_layers == [1] and list(ex.value_axes) == [1] and len(ex.cursors) == 2
    assert ex.value_axes[1].get_title() == "layer 1 at t" and ex.step_text.get_text() == "t = 4"
    assert ex.heatmap_axes[1][0].get_title() == "layer 1: h_t"
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), st.h[1, 0, 4, 0])
    np.testing.assert_allclose(np.asarray(ex.images[1][1].get_array()), st.c[1, 0, :, 0].T)
    assert len([ax for ax in ex.fig.axes if ax.images]) == 2  # one row of heatmaps
    assert ex.fig.get_size_inches()[0] * ex.fig.dpi <= MAX_WIDTH_PX
    ex.slider.value = 8
    assert list(ex.cursors[0].get_xdata()) == [8, 8]
    np.testing.assert_array_equal(pixels(ex.fig), full_redraw_pixels(ex.fig))
    ex.layer.value = "all"
    assert ex.shown_layers == [0, 1, 2] and len(ex.cursors) == 6
    with pytest.raises(ValueError, match="layers must be"):
        StateExplorer(st, layers=5)


def test_state_explorer_packed_input_shows_zeros_past_end_and_lengths():
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = torch.randn(6, 2, 3)
    st = capture(lstm, pack_padded_sequence(x, torch.tensor([6, 3]), enforce_sorted=False))
    ex = StateExplorer(st, batch_index=1)
    assert [label for label, _ in ex.batch.options] == ["0 (length 6)", "1 (length 3)"]
    ex.slider.value = 4
    assert not ex.h_lines[0].get_ydata().any() and not ex.c_lines[1].get_ydata().any()
    assert "length 3" in ex.fig.get_suptitle()
    hatched = [p for ax, _ in ex.heatmap_axes.values() for p in ax.patches]
    assert hatched and all(p.get_x() == pytest.approx(2.5) for p in hatched)  # from step 3 on
    labels = [t for ax, _ in ex.heatmap_axes.values() for t in ax.texts]
    assert [t.get_text() for t in labels] == ["past the end"]
    assert labels[0].axes is ex.heatmap_axes[1][0]  # in the top row, inside the hatching
    assert 2.5 < labels[0].get_position()[0] < 5.5
    ex.batch.value = 0
    assert not [p for ax, _ in ex.heatmap_axes.values() for p in ax.patches]  # full length
    assert not [t for ax, _ in ex.heatmap_axes.values() for t in ax.texts]


def test_state_explorer_refuses_bad_direction_before_making_a_figure():
    import matplotlib.pyplot as plt

    st = states(1)
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="direction"):
        StateExplorer(st, direction=1)
    assert plt.get_fignums() == before


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


def test_only_the_widgets_module_imports_ipywidgets():
    # the core, record and the plotting functions work without Jupyter; a fresh interpreter
    # shows what each import pulls in
    import subprocess
    import sys

    code = ("import sys, lstm_states, lstm_states.plots, lstm_states.gateplots, "
            "lstm_states.textviz, lstm_states.bench, lstm_states.display, lstm_states.style, "
            "lstm_states.weightplots; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'; "
            "import lstm_states.widgets; assert 'ipywidgets' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_returns_explorer_leaves_the_global_random_state_alone():
    torch.manual_seed(3)
    want = torch.rand(3)
    torch.manual_seed(3)
    ex = ReturnsExplorer()
    ex.num_layers.value = 3
    assert torch.equal(torch.rand(3), want)


def test_explorers_name_the_captured_layers_and_need_their_fields():
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=3)
    x = torch.randn(7, 2, 3)
    with torch.no_grad():
        upper = capture(lstm, x, layers=[1, 2])
        h_only = capture(lstm, x, fields=("h",))
    ex = StateExplorer(upper)
    assert ex.shown_layers == [1, 2] and list(ex.value_axes) == [1, 2]
    ex.slider.value = 3
    assert ex.value_axes[2].get_title() == "layer 2 at t" and ex.step_text.get_text() == "t = 3"
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), upper.h[0, 0, 3, 0])
    assert [label for label, _ in ex.layer.options] == ["all", "1", "2"]
    ex.layer.value = 2
    np.testing.assert_allclose(ex.c_lines[2].get_ydata(), upper.c[1, 0, 3, 0])
    with pytest.raises(ValueError, match="no c"):
        StateExplorer(h_only)


def test_state_explorer_pickers_rescale_the_value_axes():
    # each batch element and direction has its own range (scaled): after a pick, every value
    # axis covers the picked sequence's h and c at every step, and fits them (not the old ones)
    st = states(2, bidirectional=True, T=7, B=3)
    scale = torch.tensor([1.0, 6.0, 0.2])[None, None, None, :, None]  # (.., B, ..): per sequence
    scale = scale * torch.tensor([1.0, 2.5])[None, :, None, None, None]  # per direction
    st = st._replace(h=st.h * scale, c=st.c * scale)
    ex = StateExplorer(st)
    for b, d in [(0, 0), (1, 0), (1, 1), (2, 1), (2, 0), (0, 1)]:
        ex.batch.value, ex.direction.value = b, d
        values = torch.cat([st.h[:, d, :, b].flatten(), st.c[:, d, :, b].flatten()])
        low, high = float(values.min()), float(values.max())
        for ax in ex.value_axes.values():
            y0, y1 = ax.get_ylim()
            assert y0 <= low and high <= y1, ((b, d), (y0, y1), (low, high))
            assert y1 - y0 <= 1.25 * (high - low), ((b, d), (y0, y1), (low, high))
