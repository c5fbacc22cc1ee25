"""Text coloured by one LSTM unit: pure matplotlib functions.

``plot_colored_text`` puts each character of a text in its own cell of a (line, column) grid
whose background is coloured by a value per character (one unit's activation after reading
that character). ``lstm_states.widgets.TextExplorer`` builds notebook 05's explorer on it.

Shape legend: T time steps (characters).
"""

from __future__ import annotations

from typing import Optional

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

__all__ = ["char_cells", "text_grid", "plot_colored_text"]

NEWLINE_GLYPH = "\u00b6"  # the pilcrow, drawn where a line ends (the model reads "\n" there)


def char_cells(text: str) -> np.ndarray:
    """(T, 2) int array: the (line, column) cell of each character; a newline ends its line."""
    cells = np.zeros((len(text), 2), dtype=int)
    row = col = 0
    for t, ch in enumerate(text):
        cells[t] = row, col
        row, col = (row + 1, 0) if ch == "\n" else (row, col + 1)
    return cells


def text_grid(text: str, values) -> np.ndarray:
    """values (T,) placed on the text's (lines, columns) grid; NaN where there is no character."""
    if not text:
        raise ValueError("text is empty: there is nothing to colour")
    values = np.asarray(values, dtype=float)
    if values.shape != (len(text),):
        raise ValueError(f"need one value per character: {len(text)}, got shape {values.shape}")
    cells = char_cells(text)
    grid = np.full((cells[:, 0].max() + 1, cells[:, 1].max() + 1), np.nan)  # (lines, columns)
    grid[cells[:, 0], cells[:, 1]] = values
    return grid


def plot_colored_text(text: str, values, ax: Optional[Axes] = None, cmap: str = "RdBu_r",
                      limit: Optional[float] = None, fontsize: float = 7.0,
                      title: Optional[str] = None) -> AxesImage:
    """Draws ``text`` with each character's cell coloured by its value.

    Args:
        text: T characters (newlines break the lines).
        values: (T,) one value per character (e.g. one unit's c_t after reading character t).
        ax: Axes to draw on; a new figure if None.
        cmap: a diverging colormap; the colour scale is symmetric about 0.
        limit: colour scale [-limit, limit]; default max |values|.
        fontsize: of the characters.
        title: Axes title.

    Returns:
        The AxesImage of the (lines, columns) grid (``text_grid(text, values)``); update it with
        ``set_data``/``set_clim``. The characters are ``ax.texts``.
    """
    grid = text_grid(text, values)
    if limit is None:
        limit = float(np.nanmax(np.abs(grid))) or 1.0
    if ax is None:
        _, ax = plt.subplots(figsize=(0.11 * grid.shape[1] + 1, 0.16 * grid.shape[0] + 0.6))
    image = ax.imshow(grid, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")  # (lines, columns)
    for (row, col), ch in zip(char_cells(text), text, strict=True):
        if ch == " ":
            continue
        glyph, colour = (NEWLINE_GLYPH, "0.55") if ch == "\n" else (ch, "black")
        ax.text(col, row, glyph, ha="center", va="center", fontsize=fontsize,
                family="monospace", color=colour)
    ax.set_xlabel("column")
    ax.set_ylabel("line")
    if title is not None:
        ax.set_title(title)
    return image
