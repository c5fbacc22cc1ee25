"""Text coloured by one LSTM unit, and the units that track a known quantity: pure functions.

``plot_colored_text`` puts each character of a text in its own cell of a (line, column) grid
whose background is coloured by a value per character (one unit's activation after reading
that character). ``unit_correlations`` and ``rank_units`` find the units that follow a quantity
(e.g. bracket depth); ``plot_unit_heatmap`` shows only those units, ranked and labelled.
``lstm_states.widgets.TextExplorer`` builds notebook 05's explorer on them.

Shape legend: T time steps (characters), H units, N units shown.
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.image import AxesImage
from matplotlib.text import Text

from .style import CMAP, DPI, TIME_LABEL, time_limits

__all__ = ["char_cells", "text_grid", "step_grid", "step_at", "plot_colored_text",
           "CodeText", "unit_correlations", "rank_units", "scaled_unit_rows", "unit_labels",
           "plot_unit_heatmap"]

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


def step_grid(text: str) -> np.ndarray:
    """(lines, columns) int array: the step t of the character in each cell, -1 where none."""
    grid = text_grid(text, np.arange(len(text)))
    return np.where(np.isnan(grid), -1, grid).astype(int)


def step_at(text: str, x: float, y: float) -> Optional[int]:
    """The step of the character drawn at data coordinates (x, y) of ``plot_colored_text``'s
    Axes (x: column, y: line), or None where there is no character."""
    grid = step_grid(text)
    row, col = int(round(y)), int(round(x))
    if 0 <= row < grid.shape[0] and 0 <= col < grid.shape[1] and grid[row, col] >= 0:
        return int(grid[row, col])
    return None


class CodeText(Artist):
    """The characters of a text, one ``Text`` per line in a monospace font whose size is set at
    each draw so that character k of a line fills column k of the grid (Axes data x = column,
    y = line). 2 artists per line instead of one per character: a full redraw of a 1200-character
    text took 0.22 s instead of 0.72 s on the 2-core CI machine.

    Attributes:
        lines: the ``Text`` of each line (black), ``ends``: the newline marks (grey pilcrows).
    """

    def __init__(self, text: str, color: str = "black", newline_color: str = "0.55"):
        super().__init__()
        rows = text.split("\n")
        self.lines = [Text(-0.5, r, line, family="monospace", ha="left", va="center",
                           color=color, parse_math=False) for r, line in enumerate(rows)]
        self.ends = [Text(-0.5, r, " " * len(line) + NEWLINE_GLYPH, family="monospace",
                          ha="left", va="center", color=newline_color, parse_math=False)
                     for r, line in enumerate(rows[:-1])]  # every line but the last ends in \n

    def set_figure(self, fig):
        super().set_figure(fig)
        for t in (*self.lines, *self.ends):
            t.set_figure(fig)

    def _fit(self, renderer) -> None:
        ax = self.axes
        (x0, y0), (x1, y1) = ax.transData.transform([(0, 0), (1, 1)])
        col_px, row_px = abs(x1 - x0), abs(y1 - y0)
        n = 60
        probe = FontProperties(family="monospace", size=10.0)
        width, _, _ = renderer.get_text_width_height_descent("M" * n, probe, ismath=False)
        size = 10.0 * n * col_px / width  # n characters = n columns
        size = min(size, 1.2 * row_px * 72 / self.figure.dpi)  # and not much taller than a row
        for t in (*self.lines, *self.ends):
            t.set_fontsize(size)
            t.set_transform(ax.transData)
            t.set_clip_box(ax.bbox)

    def draw(self, renderer):
        if not self.get_visible():
            return
        # Unhinted glyphs: their advance is proportional to the size, so the characters of a
        # line stay on their columns (hinted advances are whole pixels: 2 columns off after
        # 86 characters). Only these texts are drawn under this setting; it is restored after.
        with matplotlib.rc_context({"text.hinting": "no_hinting"}):
            self._fit(renderer)
            for t in (*self.lines, *self.ends):
                t.draw(renderer)
        self.stale = False


def plot_colored_text(text: str, values, ax: Optional[Axes] = None, cmap: str = CMAP,
                      limit: Optional[float] = None, title: Optional[str] = None) -> AxesImage:
    """Draws ``text`` with each character's cell coloured by its value.

    Args:
        text: T characters (newlines break the lines; a grey ¶ marks each newline).
        values: (T,) one value per character (e.g. one unit's c_t after reading character t).
        ax: Axes to draw on; a new figure if None.
        cmap: a diverging colormap; the colour scale is symmetric about 0.
        limit: colour scale [-limit, limit]; default max |values|.
        title: Axes title.

    Returns:
        The AxesImage of the (lines, columns) grid (``text_grid(text, values)``); update it with
        ``set_data``/``set_clim``. The characters are the ``CodeText`` artist in ``ax.artists``.
    """
    grid = text_grid(text, values)
    if limit is None:
        limit = float(np.nanmax(np.abs(grid))) or 1.0
    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.1 * grid.shape[1] + 1.2, 8.2),
                                      0.17 * grid.shape[0] + 0.8), dpi=DPI, layout="constrained")
    image = ax.imshow(grid, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")  # (lines, columns)
    ax.add_artist(CodeText(text))
    ax.set_xlabel("column")
    ax.set_ylabel("line")
    if title is not None:
        ax.set_title(title)
    return image


def unit_correlations(values, quantity) -> np.ndarray:
    """Pearson r of every unit with a quantity over the T steps.

    Args:
        values: (T, H) one state of every unit (e.g. ``st.c[layer, 0, :, 0]``).
        quantity: (T,) a known value per step (e.g. bracket depth).

    Returns:
        (H,) float array; 0 for a constant unit (or a constant quantity).
    """
    a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    q = np.asarray(quantity.detach().cpu() if hasattr(quantity, "detach") else quantity,
                   dtype=float)
    if a.ndim != 2 or q.shape != (a.shape[0],):
        raise ValueError(f"need values (T, H) and quantity (T,), got {a.shape} and {q.shape}")
    a = a - a.mean(0)  # (T, H)
    q = q - q.mean()  # (T,)
    denom = np.sqrt((a * a).sum(0) * (q * q).sum())  # (H,)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * q[:, None]).sum(0) / denom
    return np.where(denom > 0, r, 0.0)


def rank_units(r) -> np.ndarray:
    """(H,) unit indices by |r|, largest first (ties: lower index first)."""
    r = np.asarray(r, dtype=float)
    return np.argsort(-np.abs(r), kind="stable")


def plot_unit_heatmap(values, units: Sequence[int], r=None, ax: Optional[Axes] = None,
                      name: str = "c", colorbar: bool = True) -> AxesImage:
    """Chosen units over time, one row each (first unit on top), each scaled to its own range.

    Each row shows ``sign * values[:, u] / max|values[:, u]|``, where sign is the sign of r[u]
    when r is given (so that every row moves the same way as the quantity) and +1 otherwise.

    Args:
        values: (T, H) one state of every unit.
        units: the N units to show, top row first (e.g. ``rank_units(r)[:10]``).
        r: optional (H,) correlation of each unit with a quantity: it labels the rows and sets
            their signs.
        ax: Axes to draw on; a new figure if None.
        name: the state's name for the labels ("c" or "h").
        colorbar: draw a colorbar beside the Axes saying what the colours are.

    Returns:
        The AxesImage, data (N, T); row labels "unit 33 (r = -0.86)".
    """
    v = np.asarray(values, dtype=float)
    units = [int(u) for u in units]
    if v.ndim != 2 or not units or not all(0 <= u < v.shape[1] for u in units):
        raise ValueError(f"need values (T, H) and units in 0..{v.shape[-1] - 1}, got shape"
                         f" {v.shape} and units {units}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.25 * len(units) + 1.0), dpi=DPI, layout="constrained")
    rows = scaled_unit_rows(v, units, r)  # (N, T)
    image = ax.imshow(rows, cmap=CMAP, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlim(*time_limits(v.shape[0]))
    ax.set_yticks(range(len(units)), unit_labels(units, r))
    ax.set_xlabel(TIME_LABEL)
    if colorbar:
        what = f"sign(r)·{name}_t" if r is not None else f"{name}_t"
        ax.figure.colorbar(image, ax=ax, label=f"{what} / max|{name}_t|\n(each unit)",
                           shrink=0.95)
    return image


def scaled_unit_rows(v, units: Sequence[int], r=None) -> np.ndarray:
    """(N, T): each chosen unit's values (v: (T, H)) over its max |value|, times sign(r[u]) if r
    is given."""
    v = np.asarray(v, dtype=float)
    rows = v[:, units].T  # (T, H) -> (N, T)
    scale = np.abs(rows).max(1, keepdims=True)
    rows = rows / np.where(scale > 0, scale, 1.0)
    if r is not None:
        signs = np.sign(np.asarray(r, dtype=float)[units])
        rows = rows * np.where(signs == 0, 1.0, signs)[:, None]
    return rows


def unit_labels(units: Sequence[int], r=None) -> list:
    """Row labels: "unit 33 (r = -0.86)", or "unit 33" without r."""
    if r is None:
        return [f"unit {u}" for u in units]
    return [f"unit {u} (r = {float(r[u]):+.2f})" for u in units]
