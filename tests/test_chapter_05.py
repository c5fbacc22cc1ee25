"""Chapter 05's TextExplorer, built with the chapter's own data (the seed-0 model on the
hand-written text, opened on the counter): what each control does to the figure.

These checks stood in the chapter's cells until issue 19 moved them here; a learner's cells keep
only the claims about the model.
"""

import numpy as np
import pytest
import torch

from lstm_states import capture
from lstm_states.textviz import char_cells, text_grid
from notebooks.charlm import (
    encode,
    held_out_text,
    load_checkpoint,
    python_structure,
    unit_correlations,
)
from notebooks.study import load_results

pytest.importorskip("ipywidgets")
from lstm_states.widgets import TextExplorer  # noqa: E402

TEXT = held_out_text()


@pytest.fixture(scope="module")
def chapter():
    """The chapter's states, quantities, counter and explorer."""
    model, _ = load_checkpoint()
    with torch.no_grad():
        st = capture(model.lstm, model.embedding(encode(TEXT))[:, None])
    known = python_structure(TEXT)
    counter = load_results()[0]["counter"]  # chosen on the selection text
    explorer = TextExplorer(TEXT, st, layer=0, unit=counter, kind="c", quantities=known)
    r = unit_correlations(st, known)
    yield st, known, counter, explorer, r
    import matplotlib.pyplot as plt

    plt.close(explorer.fig)


def test_the_slider_moves_the_cursors_and_the_gate_bars(chapter):
    st, known, counter, explorer, _ = chapter
    depth = known["bracket depth"]
    k = int(torch.nonzero(depth == depth.max())[0])  # the first character at depth 7
    explorer.slider.value = k
    row, col = char_cells(TEXT)[k]
    assert explorer.text_cursor.get_xy() == (col - 0.5, row - 0.5)  # the box around character k
    for cursor in [*explorer.heat_cursors, explorer.trace_cursor]:
        assert list(cursor.get_xdata()) == [k, k]
    shown = torch.tensor([bar.get_height() for bar in explorer.gate_bars])
    torch.testing.assert_close(shown, st.gates[0, 0, :, k, 0, counter])  # i, f, g, o at step k
    c = st.c[0, 0, :, 0, counter]
    assert explorer.gate_axes.get_title() == (f"t = {k}, read {TEXT[k]!r}\n"
                                              f"c: {c[k - 1]:+.2f} -> {c[k]:+.2f}")


def test_choosing_another_unit_recolours_the_text(chapter):
    st, _, counter, explorer, r = chapter
    r_depth = r["bracket depth", 0, "c"]
    second = int(r_depth.abs().argsort(descending=True)[1])
    assert second != counter
    before = np.ma.filled(explorer.text_image.get_array(), np.nan).copy()
    explorer.unit.value = second
    try:
        after = np.ma.filled(explorer.text_image.get_array(), np.nan)
        np.testing.assert_allclose(after, text_grid(TEXT, st.c[0, 0, :, 0, second]))
        assert not np.allclose(before, after, equal_nan=True)
    finally:
        explorer.unit.value = counter


def test_the_unit_picker_ranks_every_unit_and_the_heatmap_shows_the_first_ten(chapter):
    st, _, counter, explorer, r = chapter
    r_depth = r["bracket depth", 0, "c"]
    ranked = [u for _, u in explorer.unit.options]
    assert ranked[0] == int(r_depth.abs().argmax()) and sorted(ranked) == list(range(128))
    assert all(abs(r_depth[a]) >= abs(r_depth[b]) - 1e-6
               for a, b in zip(ranked[:-1], ranked[1:], strict=True))
    assert all(label == f"{u} (r = {float(r_depth[u]):+.2f})" for label, u in explorer.unit.options)
    assert explorer.heat_units == ranked[:10]
    heat = explorer.heat_images[0].get_array()  # (10, T)
    for row, u in enumerate(explorer.heat_units):
        c_u = st.c[0, 0, :, 0, u]
        np.testing.assert_allclose(heat[row], torch.sign(r_depth[u]) * c_u / c_u.abs().max(),
                                   atol=1e-6)


def test_the_quantity_axis_is_flipped_for_a_unit_that_counts_down(chapter):
    st, _, counter, explorer, r = chapter
    r_depth = r["bracket depth", 0, "c"]
    ranked = [u for _, u in explorer.unit.options]

    def flipped():
        low, high = explorer.quantity_axes.get_ylim()
        return low > high

    assert explorer.sign == np.sign(float(r_depth[counter])) and flipped() == (r_depth[counter] < 0)
    down = next(u for u in ranked if r_depth[u] < 0)  # the best unit of each sign
    up = next(u for u in ranked if r_depth[u] > 0)
    try:
        for u in (down, up):
            explorer.unit.value = u
            np.testing.assert_array_equal(explorer.trace.get_ydata(), st.c[0, 0, :, 0, u].numpy())
            negative = bool(r_depth[u] < 0)
            assert flipped() == negative and explorer.sign == (-1 if negative else 1)
            assert ("axis flipped" in explorer.quantity_axes.get_ylabel()) == negative
    finally:
        explorer.unit.value = counter


def test_rank_by_another_quantity_keeps_the_unit(chapter):
    _, known, counter, explorer, r = chapter
    explorer.quantity.value = "position in line"
    try:
        assert explorer.unit.value == counter
        r_line = r["position in line", 0, "c"]
        assert set(explorer.heat_units) == set(r_line.abs().argsort(descending=True)[:10].tolist())
        np.testing.assert_array_equal(explorer.quantity_line.get_ydata(),
                                      known["position in line"].numpy())
    finally:
        explorer.quantity.value = "bracket depth"


def test_a_click_on_a_character_goes_to_its_step(chapter):
    st, _, counter, explorer, _ = chapter
    lines = TEXT.split("\n")
    line_no = next(n for n, s in enumerate(lines) if s.startswith("key = "))  # the deepest line
    column = lines[line_no].index("(")
    t_click = explorer.select_character(line_no, column)
    assert t_click == sum(len(s) + 1 for s in lines[:line_no]) + column and TEXT[t_click] == "("
    assert explorer.step == t_click and explorer.slider.value == t_click
    c = st.c[0, 0, :, 0, counter]
    assert explorer.gate_axes.get_title() == (f"t = {t_click}, read '('\n"
                                              f"c: {c[t_click - 1]:+.2f} -> {c[t_click]:+.2f}")


def test_play_step_sets_how_far_play_moves(chapter):
    explorer = chapter[3]
    explorer.play_step.value = 20
    try:
        assert explorer.play.step == 20
    finally:
        explorer.play_step.value = 1
