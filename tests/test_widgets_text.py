"""widgets.TextExplorer (notebook 05): what the figure shows for each control, its titles against
the data, clicks, Play's step and sizes."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.backend_bases import MouseEvent
from torch import nn

from lstm_states import capture
from lstm_states.style import GATE_COLORS, MAX_WIDTH_PX
from lstm_states.textviz import char_cells, rank_units, text_grid, unit_correlations
from tests.figtools import (  # noqa: F401
    bounds_px,
    close_figures,
    cursor_inside,
    full_redraw_pixels,
    overlaps_vertically,
    pixels,
)

pytest.importorskip("ipywidgets")
from lstm_states.widgets import TextExplorer  # noqa: E402

TEXT = "x = f([1, (2, 3)],\n    'a (')\ny = [[0]]\n"


def _states(text=TEXT, hidden=6, seed=0):
    """A seeded 2-layer LSTM reading the text through a fixed random embedding, batch of one."""
    torch.manual_seed(seed)
    table = {ch: k for k, ch in enumerate(sorted(set(text)))}
    embed = nn.Embedding(len(table), 4)
    lstm = nn.LSTM(4, hidden, num_layers=2)
    with torch.no_grad():
        x = embed(torch.tensor([table[ch] for ch in text]))[:, None]  # (T, 1, 4)
        return capture(lstm, x)


def _depth(text=TEXT):
    return np.cumsum([{"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0) for ch in text]).astype(float)


def _explorer(**kwargs):
    st = _states()
    kwargs.setdefault("quantity", ("bracket depth", _depth()))
    return st, TextExplorer(TEXT, st, **kwargs)


def _click(fig, ax, x, y):
    px, py = ax.transData.transform((x, y))
    event = MouseEvent("button_press_event", fig.canvas, px, py, button=1)
    fig.canvas.callbacks.process("button_press_event", event)


# ---------------------------------------------------------------------------------------------
# TextExplorer


def test_text_explorer_follows_the_slider():
    st, ex = _explorer(layer=0, unit=2, kind="c")
    assert ex.fig.get_size_inches()[0] * ex.fig.dpi <= MAX_WIDTH_PX
    ex.slider.value = 12
    row, col = char_cells(TEXT)[12]
    assert ex.text_cursor.get_xy() == (col - 0.5, row - 0.5)
    assert all(list(line.get_xdata()) == [12, 12] for line in [*ex.heat_cursors, ex.trace_cursor])
    heights = [bar.get_height() for bar in ex.gate_bars]
    np.testing.assert_allclose(heights, st.gates[0, 0, :, 12, 0, 2].numpy(), rtol=1e-6)
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in ex.gate_bars] == [
        GATE_COLORS[g] for g in "ifgo"]


@pytest.mark.parametrize("t", [0, 1, 12, len(TEXT) - 1])
def test_text_explorer_gate_title_shows_c_before_and_after(t):
    st, ex = _explorer(layer=1, unit=4)
    ex.slider.value = t
    c = st.c[1, 0, :, 0, 4]
    c_prev = float(c[t - 1]) if t > 0 else 0.0
    assert ex.gate_axes.get_title() == (f"t = {t}, read {TEXT[t]!r}\nc: {c_prev:+.2f} -> "
                                        f"{float(c[t]):+.2f}")


def test_text_explorer_steps_are_blitted_and_show_what_a_full_draw_shows():
    _, ex = _explorer()
    ex.fig.canvas.draw()
    draws = ex.blitter.full_draws
    for t in (5, len(TEXT) - 1, 0):
        ex.slider.value = t
        assert ex.blitter.full_draws == draws
        assert not ex.fig.stale  # (a stale figure is redrawn in full by pyplot's ion mode)
        blitted = pixels(ex.fig)
        np.testing.assert_array_equal(blitted, full_redraw_pixels(ex.fig))
        draws = ex.blitter.full_draws
        for cursor in (*ex.heat_cursors, ex.trace_cursor):
            assert cursor_inside(cursor.axes, t)  # visible at the first and last step too


def test_text_explorer_unit_picker_is_ranked_by_r_with_the_quantity():
    st, ex = _explorer(layer=0, unit=2)
    r = unit_correlations(st.c[0, 0, :, 0], _depth())
    order = rank_units(r).tolist()
    assert [value for _, value in ex.unit.options] == order
    assert ex.unit.options[0][0] == f"{order[0]} (r = {r[order[0]]:+.2f})"
    assert ex.heat_units == order[:6]  # 6 units: all of them, ranked
    np.testing.assert_allclose(ex.correlation(0, "c", "bracket depth"), r)
    # another layer and state: ranked again, the same unit stays picked
    ex.layer.value, ex.kind.value = 1, "h"
    r1 = unit_correlations(st.h[1, 0, :, 0], _depth())
    assert [value for _, value in ex.unit.options] == rank_units(r1).tolist()
    assert ex.unit.value == 2
    np.testing.assert_allclose(ex.trace.get_ydata(), st.h[1, 0, :, 0, 2].numpy(), rtol=1e-6)
    shown = np.ma.filled(ex.text_image.get_array(), np.nan)
    np.testing.assert_allclose(shown, text_grid(TEXT, st.h[1, 0, :, 0, 2].numpy()), rtol=1e-6)
    assert ex.text_colorbar.ax.get_ylabel() == "h_t of unit 2 (layer 1)"


def test_text_explorer_heatmap_shows_the_top_units_signed_and_labelled():
    st, ex = _explorer(layer=0, unit=3, top_units=4)
    r = unit_correlations(st.c[0, 0, :, 0], _depth())
    top = rank_units(r)[:4].tolist()
    assert ex.heat_units == top
    rows = np.asarray(ex.heat_images[0].get_array())  # (4, T)
    for k, u in enumerate(top):
        v = st.c[0, 0, :, 0, u].numpy()
        np.testing.assert_allclose(rows[k], np.sign(r[u]) * v / np.abs(v).max(), rtol=1e-5)
    labels = [t.get_text() for t in ex.heat_images[0].axes.get_yticklabels()]
    assert labels == [f"unit {u} (r = {r[u]:+.2f})" for u in top]
    marker = ex.unit_markers[0]
    assert marker.get_visible() == (3 in top)
    ex.unit.value = top[2]
    assert marker.get_visible() and marker.get_y() + marker.get_height() / 2 == pytest.approx(2)


def test_text_explorer_colorbars_sit_beside_their_own_panels():
    _, ex = _explorer()
    ex.fig.canvas.draw()
    text_ax, heat_ax = ex.text_image.axes, ex.heat_images[0].axes
    for panel, bar in ((text_ax, ex.text_colorbar.ax), (heat_ax, ex.heat_colorbar.ax)):
        assert bounds_px(panel)[2] <= bounds_px(bar)[0]  # to the right of its panel
        assert overlaps_vertically(panel, bar)
    assert not overlaps_vertically(text_ax, ex.heat_colorbar.ax)
    assert ex.text_colorbar.mappable is ex.text_image
    assert ex.heat_colorbar.mappable is ex.heat_images[0]


def test_text_explorer_flips_the_quantity_axis_for_a_negative_r():
    st, ex = _explorer(layer=0)
    r = ex.correlation(0, "c", "bracket depth")
    for unit in (int(np.argmin(r)), int(np.argmax(r))):
        ex.unit.value = unit
        low, high = ex.quantity_axes.get_ylim()
        assert (low > high) == (r[unit] < 0)  # flipped: the quantity moves with the unit
        assert ("flipped" in ex.quantity_axes.get_ylabel()) == (r[unit] < 0)
        assert ex.sign == (-1.0 if r[unit] < 0 else 1.0)
        np.testing.assert_allclose(ex.quantity_line.get_ydata(), _depth())
        assert f"(r = {r[unit]:+.2f} with bracket depth)" in ex.text_image.axes.get_title()


def test_text_explorer_quantity_picker_reranks():
    st = _states()
    in_list = np.cumsum([{"[": 1, "]": -1}.get(ch, 0) for ch in TEXT]).astype(float)
    ex = TextExplorer(TEXT, st, unit=1, quantity=("bracket depth", _depth()),
                      quantities={"list depth": in_list})
    assert [v for _, v in ex.quantity.options] == ["bracket depth", "list depth"]
    ex.quantity.value = "list depth"
    r = unit_correlations(st.c[0, 0, :, 0], in_list)
    assert [value for _, value in ex.unit.options] == rank_units(r).tolist()
    assert ex.unit.value == 1
    np.testing.assert_allclose(ex.quantity_line.get_ydata(), in_list)
    assert ex.quantity_axes.get_ylabel().startswith("list depth")


def test_text_explorer_without_a_quantity_ranks_by_size():
    st = _states()
    ex = TextExplorer(TEXT, st, unit=0)
    assert ex.quantity.disabled and ex.quantity_axes is None
    biggest = np.argsort(-np.abs(st.c[0, 0, :, 0].numpy()).max(0), kind="stable").tolist()
    assert [value for _, value in ex.unit.options] == biggest
    assert ex.sign == 1.0


def test_clicking_a_character_or_the_timeline_goes_to_that_step():
    _, ex = _explorer()
    line, column = 1, 5  # the "a" of 'a (
    t = TEXT.index("'a (") + 1
    assert char_cells(TEXT)[t].tolist() == [line, column]
    ex.fig.canvas.draw()
    _click(ex.fig, ex.text_image.axes, column + 0.3, line - 0.2)
    assert ex.slider.value == t and ex.text_cursor.get_xy() == (column - 0.5, line - 0.5)
    _click(ex.fig, ex.text_image.axes, 25, 1)  # right of the line's end: nothing there
    assert ex.slider.value == t
    _click(ex.fig, ex.trace_axes, 7.4, 0)
    assert ex.slider.value == 7
    _click(ex.fig, ex.heat_images[0].axes, 30.2, 1)
    assert ex.slider.value == 30
    assert ex.select_character(2, 4) == TEXT.index("[[")
    with pytest.raises(ValueError, match="no character at line 0, column 40"):
        ex.select_character(0, 40)


def test_play_step_sets_how_far_play_moves():
    _, ex = _explorer(play_step=5)
    assert ex.play.step == 5
    ex.play_step.value = 20
    assert ex.play.step == 20
    assert ex.play.interval == 300
    with pytest.raises(ValueError, match="play_step must be one of"):
        _explorer(play_step=3)


def test_text_explorer_says_no_clearly():
    text = "f(x)\n"
    st = _states(text)
    with pytest.raises(ValueError, match="5 steps but the text has 4"):
        TextExplorer(text[:-1], st)
    with pytest.raises(ValueError, match="kind"):
        TextExplorer(text, st, kind="g")
    with pytest.raises(ValueError, match=r"unit must be in 0\.\.5, got 6"):
        TextExplorer(text, st, unit=6)
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.1, got 2"):
        TextExplorer(text, st, layer=2)
    with pytest.raises(ValueError, match="one value per character"):
        TextExplorer(text, st, quantity=("depth", [1, 2]))
    projected = nn.LSTM(3, 6, num_layers=2, proj_size=2)
    with torch.no_grad():
        st_proj = capture(projected, torch.randn(len(text), 1, 3))
    with pytest.raises(ValueError, match="proj_size"):
        TextExplorer(text, st_proj)
