"""widgets.StateExplorer (notebooks 02, 03), on Agg (no browser, no kernel): the slider and the
pickers, what each shows, its layout, blitting, packed input and the captured layers' numbers."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from lstm_states import capture
from lstm_states.style import MAX_WIDTH_PX
from tests.figtools import (  # noqa: F401
    bounds_px,
    close_figures,
    cursor_inside,
    full_redraw_pixels,
    pixels,
    quiet_projection_notice,
    states,
)

widgets = pytest.importorskip("ipywidgets")
from lstm_states.widgets import StateExplorer  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# StateExplorer over states with no c (nn.GRU, nn.RNN): h alone


def _gru_states(num_layers=2, T=10, B=2, H=6, bidirectional=False, module=nn.GRU):
    torch.manual_seed(1)
    gru = module(3, H, num_layers=num_layers, bidirectional=bidirectional)
    with torch.no_grad():
        return capture(gru, torch.randn(T, B, 3))


def test_state_explorer_shows_h_alone_for_a_gru():
    st = _gru_states(num_layers=3, T=12)
    assert not hasattr(st, "c")
    ex = StateExplorer(st, batch_index=1)
    assert not ex.has_c and ex.c is None
    assert len(ex.fig.axes) == 3 * 2 + 1  # per layer: h heatmap, values at t; one colorbar
    assert len(ex.cursors) == 3 and len(ex.h_lines) == 3 and ex.c_lines == {}
    assert len(ex.colorbars) == 1 and "h_t" in ex.colorbars[0].ax.get_ylabel()
    for layer in range(3):
        (h_ax,) = ex.heatmap_axes[layer]
        assert h_ax.get_title() == f"layer {layer}: h_t"
        np.testing.assert_allclose(np.asarray(ex.images[layer][0].get_array()),
                                   st.h[layer, 0, :, 1].T)
        assert len(ex.value_axes[layer].lines) == 2  # h_t and the zero line, no c_t
    assert "h_t (batch element 1)" in ex.fig.get_suptitle()
    assert "c_t" not in ex.fig.get_suptitle()
    ex.fig.canvas.draw()
    positions = [ax.get_position().bounds for ax in ex.fig.axes]
    for k in (7, 0, 11):
        ex.slider.value = k
        assert ex.step_text.get_text() == f"t = {k}"
        for cursor in ex.cursors:
            assert list(cursor.get_xdata()) == [k, k]
        for layer in range(3):
            np.testing.assert_allclose(ex.h_lines[layer].get_ydata(), st.h[layer, 0, k, 1])
    assert [ax.get_position().bounds for ax in ex.fig.axes] == positions
    # layer 0 at the bottom, as for an LSTM
    assert ex.value_axes[0].get_position().y0 < ex.value_axes[2].get_position().y0
    assert bounds_px(ex.fig.axes[0])[2] <= MAX_WIDTH_PX


def test_state_explorer_h_alone_pickers_and_a_full_draw():
    st = _gru_states(num_layers=2, T=9, B=3, bidirectional=True)
    ex = StateExplorer(st)
    ex.slider.value = 4
    ex.batch.value, ex.direction.value = 2, 1
    for layer in range(2):
        np.testing.assert_allclose(ex.h_lines[layer].get_ydata(), st.h[layer, 1, 4, 2])
        np.testing.assert_allclose(np.asarray(ex.images[layer][0].get_array()),
                                   st.h[layer, 1, :, 2].T)
        y0, y1 = ex.value_axes[layer].get_ylim()
        assert y0 <= float(st.h[:, 1, :, 2].min()) and float(st.h[:, 1, :, 2].max()) <= y1
    assert "reverse direction" in ex.fig.get_suptitle()
    ex.layer.value = 1
    assert list(ex.value_axes) == [1] and len(ex.cursors) == 1
    ex.slider.value = 8
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), st.h[1, 1, 8, 2])
    ex.fig.canvas.draw()  # a full draw of the h-only figure works
    with pytest.raises(ValueError, match="direction"):
        StateExplorer(_gru_states(), direction=1)


def test_state_explorer_h_alone_for_an_rnn():
    st = _gru_states(num_layers=2, module=nn.RNN)
    ex = StateExplorer(st)
    ex.slider.value = 5
    assert not ex.has_c and ex.c_lines == {}
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), st.h[1, 0, 5, 0])
