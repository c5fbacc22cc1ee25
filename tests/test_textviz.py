"""lstm_states.textviz: the coloured text, the text grid and the ranked units. widgets.TextExplorer
(notebook 05), built on them, is tested in tests/test_widgets_text.py."""

import matplotlib
import numpy as np
import pytest

from lstm_states.textviz import (
    char_cells,
    plot_colored_text,
    plot_unit_heatmap,
    rank_units,
    step_at,
    step_grid,
    text_grid,
    unit_correlations,
)
from tests.figtools import close_figures  # noqa: F401

# ---------------------------------------------------------------------------------------------
# textviz


def test_char_cells_and_text_grid():
    text = "ab\nc\n\nde"
    assert char_cells(text).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 0],
                                         [3, 0], [3, 1]]
    grid = text_grid(text, np.arange(8.0))
    assert grid.shape == (4, 3)
    assert grid[0].tolist() == [0, 1, 2] and grid[3, :2].tolist() == [6, 7]
    assert np.isnan(grid[1, 2]) and np.isnan(grid[3, 2])
    assert step_grid(text)[1].tolist() == [3, 4, -1]
    assert step_at(text, 1.2, 0.9) == 4 and step_at(text, 2, 1) is None
    assert step_at(text, 9, 0) is None and step_at(text, 0, -1) is None
    with pytest.raises(ValueError, match="one value per character"):
        text_grid(text, np.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        text_grid("", [])


def test_plot_colored_text_puts_each_character_on_its_column():
    text = "f(a, 'b')  # $x$ and $y$\n  [1]\n"
    values = np.linspace(-1, 1, len(text))
    image = plot_colored_text(text, values, title="t")
    ax = image.axes
    np.testing.assert_allclose(image.get_clim(), (-1, 1))
    assert ax.get_title() == "t"
    code = ax.artists[0]
    assert [t.get_text() for t in code.lines] == text.split("\n")  # no mathtext: $ stays
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    (x0, _), (x1, _) = ax.transData.transform([(0, 0), (1, 0)])
    with matplotlib.rc_context({"text.hinting": "no_hinting"}):  # as CodeText draws them
        for line in code.lines:
            if line.get_text():
                width = line.get_window_extent(renderer).width / (x1 - x0)
                assert width == pytest.approx(len(line.get_text()), abs=0.25)  # columns
    assert [t.get_text()[-1] for t in code.ends] == ["\u00b6", "\u00b6"]


def test_unit_correlations_and_ranking():
    q = np.arange(10.0)
    values = np.stack([2 * q + 1, -q, np.ones(10), np.sin(q)], 1)  # (T, H)
    r = unit_correlations(values, q)
    np.testing.assert_allclose(r[:3], [1, -1, 0], atol=1e-12)
    assert r[3] == pytest.approx(np.corrcoef(values[:, 3], q)[0, 1])
    assert rank_units(r).tolist() == [0, 1, 3, 2]
    with pytest.raises(ValueError, match=r"values \(T, H\)"):
        unit_correlations(values, q[:5])


def test_plot_unit_heatmap_rows_are_signed_and_scaled():
    q = np.arange(10.0)
    values = np.stack([2 * q + 1, -3 * q, np.sin(q)], 1)
    r = unit_correlations(values, q)
    image = plot_unit_heatmap(values, [1, 0], r)
    rows = np.asarray(image.get_array())
    np.testing.assert_allclose(rows[0], 3 * q / 27)  # sign(r) = -1 flips unit 1
    np.testing.assert_allclose(rows[1], (2 * q + 1) / 19)
    labels = [t.get_text() for t in image.axes.get_yticklabels()]
    assert labels == ["unit 1 (r = -1.00)", "unit 0 (r = +1.00)"]
    assert image.colorbar.ax.get_ylabel().startswith("sign(r)·c_t / max|c_t|")
    with pytest.raises(ValueError, match="units in 0..2"):
        plot_unit_heatmap(values, [3])
