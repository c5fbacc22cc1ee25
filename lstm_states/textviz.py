"""Text coloured by one LSTM unit, and a widget to walk through it step by step.

``plot_colored_text`` is a pure matplotlib function: each character of a text sits in its own
cell of a (line, column) grid whose background is coloured by a value per character (one unit's
activation after reading that character). ``TextExplorer`` wraps it with ipywidgets: pickers
for the layer, the state (c or h) and the unit, and a Play + "time step" slider that moves a
cursor through the text and the heatmaps and shows the unit's gates at that step. Use it with
``%matplotlib widget`` (ipympl); with a non-interactive backend (Agg, in tests) ``.widget`` holds
the controls only and the callbacks still update ``.fig``.

Shape legend: L layers, T time steps (characters), H hidden size.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

from .widgets import _box, _freeze_layout, time_step_controls

__all__ = ["char_cells", "text_grid", "plot_colored_text", "TextExplorer"]

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


def _unit_title(layer: int, kind: str, unit: int) -> str:
    return f"layer {layer}, {kind}_t of unit {unit}"


class TextExplorer:
    """Text coloured by a chosen unit, with a cursor moved by a Play + "time step" slider.

    Top: the text, each character coloured by the chosen unit's state after reading it, and a
    box around character t. Middle: heatmaps of every layer's chosen state (units x time) with a
    cursor at t and a line at the chosen unit. Bottom: the unit over the whole text (with an
    optional known quantity on a second axis) and its gates i, f, g, o at step t.

    Args:
        text: the T characters the LSTM read.
        states: an ``LSTMStates`` for that text, batch of one: ``.h`` (L, 1, T, 1, H), ``.c``,
            ``.gates`` (L, 1, 4, T, 1, H).
        layer, unit, kind: what to show first; kind is "c" or "h".
        quantity: optional (name, (T,) values) drawn under the unit's trace.
        interval_ms: Play's time between steps.

    Attributes:
        slider (IntSlider "time step"), play, layer, kind (ToggleButtons), unit
        (BoundedIntText): the controls; ``widget``: the VBox to display.
        fig; text_image (AxesImage of the text grid); text_cursor (Rectangle around character
        t); heat_images, heat_cursors, unit_markers (one per layer); trace (Line2D of the
        unit over time), trace_cursor; gate_bars (four Rectangles, heights i, f, g, o at t);
        gate_axes.
        h, c: numpy (L, T, H); gates: numpy (L, 4, T, H): the data shown.
    """

    def __init__(self, text: str, states, layer: int = 0, unit: int = 0, kind: str = "c",
                 quantity: Optional[Tuple[str, Sequence[float]]] = None,
                 interval_ms: int = 300):
        if states.h.shape[1] != 1 or states.h.shape[3] != 1:
            raise ValueError("TextExplorer shows one sequence of a one-direction LSTM: capture"
                             " the text as a batch of one (T, 1, I) with bidirectional=False")
        if states.h.shape[2] != len(text):
            raise ValueError(f"states have {states.h.shape[2]} steps but the text has"
                             f" {len(text)} characters")
        if kind not in ("c", "h"):
            raise ValueError(f"kind must be 'c' or 'h', got {kind!r}")
        self.text = text
        self.h = states.h[:, 0, :, 0].detach().cpu().float().numpy()  # (L, T, H)
        self.c = states.c[:, 0, :, 0].detach().cpu().float().numpy()  # (L, T, H)
        self.gates = states.gates[:, 0, :, :, 0].detach().cpu().float().numpy()  # (L, 4, T, H)
        L, T, H = self.c.shape
        self.cells = char_cells(text)  # (T, 2)
        # heatmap colour limits per layer: h is within [-1, 1]; c is not, and differs by layer
        self._limits = {"h": [1.0] * L,
                        "c": [float(np.quantile(np.abs(self.c[k]), 0.95)) or 1.0 for k in range(L)]}

        with plt.ioff():
            self.fig = plt.figure(figsize=(11, 8.6), layout="constrained")
        grid = self.fig.add_gridspec(3, 2, height_ratios=[3.4, 1.5, 1.4], width_ratios=[3, 1])
        ax_text = self.fig.add_subplot(grid[0, :])
        heat = grid[1, :].subgridspec(1, L)
        self.heat_axes = [self.fig.add_subplot(heat[0, k]) for k in range(L)]
        self.trace_axes = self.fig.add_subplot(grid[2, 0])
        self.gate_axes = self.fig.add_subplot(grid[2, 1])

        values = self._values(layer, kind, unit)  # (T,)
        self.text_image = plot_colored_text(text, values, ax=ax_text,
                                            limit=self._unit_limit(values))
        self.text_colorbar = self.fig.colorbar(self.text_image, ax=ax_text, shrink=0.9,
                                               label="activation")
        row, col = self.cells[0]
        self.text_cursor = Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black",
                                     linewidth=1.8)
        ax_text.add_patch(self.text_cursor)

        self.heat_images, self.heat_cursors, self.unit_markers = [], [], []
        for k, ax in enumerate(self.heat_axes):
            data = (self.c if kind == "c" else self.h)[k].T  # (T, H) -> (H, T)
            lim = self._limits[kind][k]
            self.heat_images.append(ax.imshow(data, cmap="RdBu_r", vmin=-lim, vmax=lim,
                                              origin="lower", aspect="auto",
                                              interpolation="nearest"))
            self.heat_cursors.append(ax.axvline(0, color="black", linewidth=1.2))
            self.unit_markers.append(ax.axhline(unit, color="gold", linewidth=1.0,
                                                visible=k == layer))
            ax.set_title(f"layer {k}: {kind}_t of every unit", fontsize=10)
            ax.set_xlabel("time step t (character)")
            ax.set_ylabel("unit")
            self.fig.colorbar(self.heat_images[-1], ax=ax, shrink=0.9)

        steps = np.arange(T)
        (self.trace,) = self.trace_axes.plot(steps, values, color="tab:blue", linewidth=1.0)
        self.trace_cursor = self.trace_axes.axvline(0, color="black", linewidth=1.2)
        self.trace_axes.set_xlabel("time step t (character)")
        self.trace_axes.set_ylabel(f"{kind}_t", color="tab:blue")
        self.trace_axes.set_xlim(0, T - 1)
        if quantity is not None:
            name, q = quantity
            twin = self.trace_axes.twinx()
            twin.plot(steps, np.asarray(q, dtype=float), color="0.5", linewidth=0.8)
            twin.set_ylabel(name, color="0.4")

        self.gate_bars = list(self.gate_axes.bar(["i", "f", "g", "o"], self.gates[layer, :, 0, unit],
                                                 color=["tab:green", "tab:orange", "tab:purple",
                                                        "tab:red"]))
        self.gate_axes.axhline(0, color="black", linewidth=0.6)
        self.gate_axes.set_ylim(-1.05, 1.05)
        self.gate_axes.set_ylabel("gate value")
        self._show_unit_titles(layer, kind, unit)
        self._show_gate_title(0, layer, unit)
        _freeze_layout(self.fig)  # new titles at each step must not move the axes

        self.play, self.slider = time_step_controls(T, interval_ms)
        self.layer = widgets.Dropdown(options=[(f"layer {k}", k) for k in range(L)], value=layer,
                                      description="layer")
        self.kind = widgets.ToggleButtons(options=["c", "h"], value=kind, description="state")
        self.unit = widgets.BoundedIntText(value=unit, min=0, max=H - 1, description="unit")
        self.slider.observe(self._on_step, names="value")
        for control in (self.layer, self.kind, self.unit):
            control.observe(self._on_unit, names="value")
        self.widget = _box([widgets.HBox([self.play, self.slider]),
                            widgets.HBox([self.layer, self.kind, self.unit])], self.fig)

    # --- what is shown ---
    def _values(self, layer: int, kind: str, unit: int) -> np.ndarray:
        return (self.c if kind == "c" else self.h)[layer, :, unit]  # (T,)

    def _unit_limit(self, values: np.ndarray) -> float:
        return float(np.abs(values).max()) or 1.0

    def _show_unit_titles(self, layer: int, kind: str, unit: int) -> None:
        self.text_image.axes.set_title("the text coloured by " + _unit_title(layer, kind, unit))
        self.trace_axes.set_title(_unit_title(layer, kind, unit) + " over the text", fontsize=10)

    def _show_gate_title(self, t: int, layer: int, unit: int) -> None:
        ch = self.text[t]
        c_prev = self.c[layer, t - 1, unit] if t > 0 else 0.0
        self.gate_axes.set_title(f"t = {t}, read {ch!r}\nc: {c_prev:+.2f} -> "
                                 f"{self.c[layer, t, unit]:+.2f}", fontsize=10)

    def show_step(self, t: int) -> None:
        """Moves every cursor to step t and shows the unit's gates there."""
        row, col = self.cells[t]
        self.text_cursor.set_xy((col - 0.5, row - 0.5))
        for line in (*self.heat_cursors, self.trace_cursor):
            line.set_xdata([t, t])
        layer, unit = self.layer.value, self.unit.value
        for bar, value in zip(self.gate_bars, self.gates[layer, :, t, unit], strict=True):
            bar.set_height(value)
        self._show_gate_title(t, layer, unit)
        self.fig.canvas.draw_idle()

    def show_unit(self, layer: int, kind: str, unit: int) -> None:
        """Colours the text and the trace by ``kind`` of ``unit`` in ``layer``."""
        values = self._values(layer, kind, unit)
        lim = self._unit_limit(values)
        self.text_image.set_data(text_grid(self.text, values))
        self.text_image.set_clim(-lim, lim)
        self.trace.set_ydata(values)
        self.trace_axes.set_ylabel(f"{kind}_t", color="tab:blue")
        self.trace_axes.set_ylim(values.min() - 0.05 * lim, values.max() + 0.05 * lim)
        for k, (image, marker) in enumerate(zip(self.heat_images, self.unit_markers, strict=True)):
            image.set_data((self.c if kind == "c" else self.h)[k].T)  # (H, T)
            image.set_clim(-self._limits[kind][k], self._limits[kind][k])
            image.axes.set_title(f"layer {k}: {kind}_t of every unit", fontsize=10)
            marker.set_ydata([unit, unit])
            marker.set_visible(k == layer)
        self._show_unit_titles(layer, kind, unit)
        self.show_step(self.slider.value)

    def _on_step(self, change) -> None:
        self.show_step(change["new"])

    def _on_unit(self, change) -> None:
        self.show_unit(self.layer.value, self.kind.value, self.unit.value)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
