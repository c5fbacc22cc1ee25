"""Notebooks 02, 03: every layer's h_t and c_t, with a time-step slider (``StateExplorer``).

Shape legend: L layers, D directions, T steps, B batch, H hidden, H_out = P or H.
"""

from __future__ import annotations

from typing import List, Optional

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..display import Blitter
from ..plots import (
    plot_state_heatmaps,
    plot_states_at_step,
    select_sequence,
    symmetric_limit,
    value_range,
)
from ..style import DPI, MAX_WIDTH_IN
from .controls import _box, _freeze_layout, _layer_ids, time_step_controls

__all__ = ["StateExplorer"]


class StateExplorer:
    """A time-step slider (with Play) over every layer's h_t and c_t, with pickers for the batch
    element, the layer(s) shown and the direction.

    Rows are layers, layer 0 at the bottom. Left: heatmaps of h and c (units x time) with a
    cursor at step t, each with its colorbar beside its column (one scale per state, shared by
    every layer). Right: h_t and c_t per unit at step t (one y scale for every layer), the step
    written once at the top right ("t = 5"). A time step moves only the cursors, the lines and
    that label (blitted); a picker redraws all.

    Args:
        states: an ``LSTMStates`` (from ``lstm_states.capture``), or anything with ``.h``
            (L, D, T, B, H_out) and ``.c`` (L, D, T, B, H).
        batch_index: which sequence of the batch to show first.
        direction: 0 forward, 1 reverse (bidirectional only); for the reverse direction step t
            is input position t, as in ``output[t]``.
        title: figure title while the first selection is shown; a default names the batch
            element and direction.
        layers: the layers to show first (``"all"`` or one layer number).
        interval_ms: Play's time between steps.

    Attributes:
        slider (IntSlider "time step", 0..T-1), play: the time controls.
        batch (Dropdown "batch", values 0..B-1, labels with each sequence's length for packed
        input), layer (Dropdown "layer", values "all" or a layer number), direction
        (ToggleButtons, values 0 forward / 1 reverse, disabled for one direction): the pickers;
        setting ``.value`` from code redraws.
        shown_layers: the layer numbers now shown, bottom row first.
        fig; widget: the VBox to display.
        heatmap_axes: {layer: (h Axes, c Axes)}; images: {layer: [h, c] AxesImage}, data
        (units, T); colorbars: [h colorbar, c colorbar].
        cursors: the vertical lines at step t, [h, c] of each shown layer in turn.
        value_axes: {layer: Axes}, titled "layer k at t"; h_lines, c_lines: {layer: Line2D},
        y = h_t / c_t; step_text: the Text "t = <step>" above them.
        h, c: numpy (L, T, H_out) and (L, T, H): the selection's data.
        blitter: the ``Blitter`` of the moving artists.
    """

    def __init__(self, states, batch_index: int = 0, direction: int = 0,
                 title: Optional[str] = None, layers="all", interval_ms: int = 300):
        self.states = states
        # the data shown; checks batch_index and direction before any figure is made
        self.h, self.c = select_sequence(states, batch_index, direction)  # (L,T,H_out), (L,T,H)
        L, D, T, B = states.h.shape[0], states.h.shape[1], states.h.shape[2], states.h.shape[3]
        self.num_steps, self.num_layers, self.num_directions = T, L, D
        self.layer_ids = _layer_ids(states, L)
        if layers != "all" and layers not in self.layer_ids:
            raise ValueError(f"layers must be 'all' or one of {self.layer_ids}, got {layers!r}")
        self._title, self._first = title, (batch_index, direction)
        lengths = getattr(states, "lengths", None)
        self.lengths = None if lengths is None else [int(n) for n in lengths]

        self.play, self.slider = time_step_controls(T, interval_ms, on_step=self._on_step)
        self.batch = widgets.Dropdown(
            options=[(str(b) if self.lengths is None else f"{b} (length {self.lengths[b]})", b)
                     for b in range(B)], value=batch_index, description="batch")
        self.layer = widgets.Dropdown(options=[("all", "all")] + [(str(k), k)
                                                                   for k in self.layer_ids],
                                      value=layers, description="layer")
        self.direction = widgets.ToggleButtons(options=[("forward", 0), ("reverse", 1)][:D],
                                               value=direction, description="direction",
                                               disabled=D == 1)
        self.direction.style.button_width = "6em"
        with plt.ioff():
            self.fig = plt.figure(figsize=(MAX_WIDTH_IN, min(1.6 * L + 1.2, 8.6)), dpi=DPI)
        self._build()
        for picker in (self.batch, self.direction):
            picker.observe(self._on_selection, names="value")
        self.layer.observe(self._on_layer, names="value")
        pickers = [self.batch, self.layer] + ([self.direction] if D == 2 else [])
        self.widget = _box([widgets.HBox([self.play, self.slider]), widgets.HBox(pickers)],
                           self.fig)

    # --- the figure ---
    @property
    def batch_index(self) -> int:
        """The batch element shown."""
        return self.batch.value

    @property
    def step(self) -> int:
        """The step shown (the slider's value)."""
        return self.slider.value

    @property
    def shown_layers(self) -> List[int]:
        return self.layer_ids if self.layer.value == "all" else [self.layer.value]

    def _rows(self) -> List[int]:
        """Indices (into h, c) of the shown layers, bottom row first."""
        return [self.layer_ids.index(k) for k in self.shown_layers]

    def _build(self) -> None:
        """(Re)makes every Axes for the shown layers; layer 0 in the bottom row."""
        fig = self.fig
        if getattr(self, "blitter", None) is not None:
            self.blitter.disconnect()  # its artists go with fig.clear()
        fig.clear()
        fig.set_layout_engine("constrained")
        rows = self._rows()
        n = len(rows)
        grid = fig.add_gridspec(n, 3, width_ratios=[1.15, 1.15, 1.0])
        axes = np.array([[fig.add_subplot(grid[n - 1 - r, col]) for col in range(3)]
                         for r in range(n)])  # axes[r]: row r from the bottom
        view = _Selected(self.h[rows], self.c[rows])
        t = self.slider.value
        plot_state_heatmaps(view, 0, 0, t=t, axes=axes[:, :2])
        plot_states_at_step(view, t, 0, 0, axes=axes[:, 2])
        self.colorbars = [axes[0, 0].images[0].colorbar, axes[0, 1].images[0].colorbar]
        self.heatmap_axes, self.images, self.value_axes = {}, {}, {}
        self.h_lines, self.c_lines, self.cursors = {}, {}, []
        for r, index in enumerate(rows):
            layer = self.layer_ids[index]
            self.heatmap_axes[layer] = (axes[r, 0], axes[r, 1])
            self.images[layer] = [axes[r, 0].images[0], axes[r, 1].images[0]]
            for col in range(2):  # titles with the true layer number
                axes[r, col].set_title(f"layer {layer}: {'hc'[col]}_t", fontsize=10)
            self.cursors += [axes[r, 0].lines[-1], axes[r, 1].lines[-1]]
            self.value_axes[layer] = axes[r, 2]
            axes[r, 2].set_title(f"layer {layer} at t", fontsize=10)  # t: the label's step
            self.c_lines[layer], self.h_lines[layer] = axes[r, 2].lines[0], axes[r, 2].lines[1]
        self._spans = []
        self._draw_padding()
        title = fig.suptitle(self._describe())
        # one label names the step for every row: one short text to redraw per step (a child
        # of the top row's Axes, where savefig draws animated artists too; kept out of layout)
        self.step_text = axes[-1, 2].text(0.99, title.get_position()[1], "", ha="right",
                                          va="top", fontsize=12, fontweight="bold",
                                          transform=fig.transFigure, in_layout=False)
        _freeze_layout(fig)  # moving the slider must not re-run the layout
        self.blitter = Blitter(fig, [*self.cursors, *self.h_lines.values(),
                                     *self.c_lines.values(), self.step_text])
        self.show_step(t)

    def _draw_padding(self) -> None:
        """Grey hatching over the steps past the shown sequence's end (packed input)."""
        for span in self._spans:
            span.remove()
        self._spans = []
        if self.lengths is None:
            return
        n = self.lengths[self.batch.value]
        if n >= self.num_steps:
            return
        for axes in self.heatmap_axes.values():
            for ax in axes:
                self._spans.append(ax.axvspan(n - 0.5, self.num_steps - 0.5, facecolor="none",
                                              edgecolor="0.45", hatch="//", linewidth=0))
        top = self.heatmap_axes[self.shown_layers[-1]][0]  # the top row's h heatmap
        label = top.text((n - 0.5 + self.num_steps - 0.5) / 2, 0.5, "past the end",
                         transform=top.get_xaxis_transform(), rotation=90, fontsize=7,
                         ha="center", va="center", color="0.25",
                         bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
        self._spans.append(label)

    def _describe(self) -> str:
        b, d = self.batch.value, self.direction.value
        if self._title is not None and (b, d) == self._first:
            return self._title
        where = f"batch element {b}"
        if self.lengths is not None:
            where += f" (length {self.lengths[b]})"
        if self.num_directions == 2:
            where += ", " + ("forward", "reverse")[d] + " direction"
        return f"Every layer's h_t and c_t ({where})"

    def show_step(self, t: int) -> None:
        """Moves the cursors to step t and shows h_t, c_t; called when the slider moves."""
        for cursor in self.cursors:
            cursor.set_xdata([t, t])
        for layer in self.value_axes:
            index = self.layer_ids.index(layer)
            self.h_lines[layer].set_ydata(self.h[index, t])
            self.c_lines[layer].set_ydata(self.c[index, t])
        self.step_text.set_text(f"t = {t}")
        self.blitter.update()

    def show_selection(self) -> None:
        """Shows the picked batch element and direction (same layers, same step)."""
        self.h, self.c = select_sequence(self.states, self.batch.value, self.direction.value)
        rows = self._rows()
        for col, (name, data) in enumerate((("h", self.h[rows]), ("c", self.c[rows]))):
            lim = symmetric_limit(data)
            for r, layer in enumerate(self.shown_layers):
                image = self.images[layer][col]
                image.set_data(data[r].T)  # (units, T)
                image.set_clim(-lim, lim)
            self.colorbars[col].set_label(f"{name}_t, every layer (|{name}| ≤ {lim:.2f})")
        low, high = value_range(self.h[rows], self.c[rows])
        for ax in self.value_axes.values():
            ax.set_ylim(low, high)
        self._draw_padding()
        self.fig.suptitle(self._describe())
        self.blitter.invalidate()
        self.show_step(self.slider.value)

    def _on_step(self, change) -> None:
        self.show_step(change["new"])

    def _on_selection(self, change) -> None:
        self.show_selection()

    def _on_layer(self, change) -> None:
        self._build()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class _Selected:
    """One selection (h (L, T, H_out), c (L, T, H) numpy) dressed as states with B = D = 1,
    for the plotting functions."""

    def __init__(self, h: np.ndarray, c: np.ndarray):
        self.h = torch.from_numpy(h)[:, None, :, None]  # (L, 1, T, 1, H_out)
        self.c = torch.from_numpy(c)[:, None, :, None]  # (L, 1, T, 1, H)
