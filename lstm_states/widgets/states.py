"""Notebooks 02, 03, 07: every layer's h_t and c_t (h_t alone for a GRU or an RNN), with a
time-step slider (``StateExplorer``).

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
from ..style import CMAP, CURSOR, DPI, MAX_WIDTH_IN, STATE_COLORS, TIME_LABEL, time_limits
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

    States with no c at all (``GRUStates``, ``RNNStates``: the module has no cell state) are shown
    as h alone: one heatmap column and the h_t lines. An ``LSTMStates`` captured without c is
    refused ("no c"): its c exists but was not kept.

    Args:
        states: an ``LSTMStates`` (from ``lstm_states.capture``), or anything with ``.h``
            (L, D, T, B, H_out) and ``.c`` (L, D, T, B, H); or a ``GRUStates`` / ``RNNStates``
            (anything with ``.h`` and no ``.c``).
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
        has_c: False for states with no c (h shown alone; then every "[h, c]" below is "[h]"
        and c_lines is empty).
        heatmap_axes: {layer: (h Axes, c Axes)}; images: {layer: [h, c] AxesImage}, data
        (units, T); colorbars: [h colorbar, c colorbar].
        cursors: the vertical lines at step t, [h, c] of each shown layer in turn.
        value_axes: {layer: Axes}, titled "layer k at t"; h_lines, c_lines: {layer: Line2D},
        y = h_t / c_t; step_text: the Text "t = <step>" above them.
        h, c: numpy (L, T, H_out) and (L, T, H): the selection's data (c None without c).
        blitter: the ``Blitter`` of the moving artists.
    """

    def __init__(self, states, batch_index: int = 0, direction: int = 0,
                 title: Optional[str] = None, layers="all", interval_ms: int = 300):
        self.states = states
        self.has_c = hasattr(states, "c")  # a GRU's or an RNN's states have no c field at all
        # the data shown; checks batch_index and direction before any figure is made
        self.h, self.c = self._select(batch_index, direction)  # (L,T,H_out), (L,T,H) or None
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

    def _select(self, batch_index: int, direction: int):
        """(h (L, T, H_out), c (L, T, H) or None without c) of one sequence, as numpy."""
        if self.has_c:
            return select_sequence(self.states, batch_index, direction)
        # select_sequence's checks (h kept, 5-D, direction, batch_index) on h alone: h stands
        # in for the c these states do not have, and only h is kept
        view = _Selected.with_c(self.states.h)
        return select_sequence(view, batch_index, direction)[0], None

    @property
    def _names(self) -> tuple:
        """The states shown: ("h", "c"), or ("h",) without c."""
        return ("h", "c") if self.has_c else ("h",)

    def _build(self) -> None:
        """(Re)makes every Axes for the shown layers; layer 0 in the bottom row."""
        fig = self.fig
        if getattr(self, "blitter", None) is not None:
            self.blitter.disconnect()  # its artists go with fig.clear()
        fig.clear()
        fig.set_layout_engine("constrained")
        rows = self._rows()
        n, k = len(rows), len(self._names)  # k heatmap columns, then the values at t
        grid = fig.add_gridspec(n, k + 1, width_ratios=[1.15] * k + [1.0])
        axes = np.array([[fig.add_subplot(grid[n - 1 - r, col]) for col in range(k + 1)]
                         for r in range(n)])  # axes[r]: row r from the bottom
        t = self.slider.value
        if self.has_c:
            view = _Selected(self.h[rows], self.c[rows])
            plot_state_heatmaps(view, 0, 0, t=t, axes=axes[:, :2])
            plot_states_at_step(view, t, 0, 0, axes=axes[:, 2])
        else:
            _h_heatmaps(self.h[rows], t, axes[:, 0])
            _h_at_step(self.h[rows], t, axes[:, 1])
        self.colorbars = [axes[0, col].images[0].colorbar for col in range(k)]
        self.heatmap_axes, self.images, self.value_axes = {}, {}, {}
        self.h_lines, self.c_lines, self.cursors = {}, {}, []
        for r, index in enumerate(rows):
            layer = self.layer_ids[index]
            self.heatmap_axes[layer] = tuple(axes[r, :k])
            self.images[layer] = [axes[r, col].images[0] for col in range(k)]
            for col, name in enumerate(self._names):  # titles with the true layer number
                axes[r, col].set_title(f"layer {layer}: {name}_t", fontsize=10)
            self.cursors += [axes[r, col].lines[-1] for col in range(k)]
            self.value_axes[layer] = axes[r, k]
            axes[r, k].set_title(f"layer {layer} at t", fontsize=10)  # t: the label's step
            if self.has_c:
                self.c_lines[layer], self.h_lines[layer] = axes[r, 2].lines[0], axes[r, 2].lines[1]
            else:
                self.h_lines[layer] = axes[r, 1].lines[0]
        self._spans = []
        self._draw_padding()
        title = fig.suptitle(self._describe())
        # one label names the step for every row: one short text to redraw per step (a child
        # of the top row's Axes, where savefig draws animated artists too; kept out of layout)
        self.step_text = axes[-1, k].text(0.99, title.get_position()[1], "", ha="right",
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
        return f"Every layer's {' and '.join(n + '_t' for n in self._names)} ({where})"

    def show_step(self, t: int) -> None:
        """Moves the cursors to step t and shows h_t, c_t; called when the slider moves."""
        for cursor in self.cursors:
            cursor.set_xdata([t, t])
        for layer in self.value_axes:
            index = self.layer_ids.index(layer)
            self.h_lines[layer].set_ydata(self.h[index, t])
            if self.has_c:
                self.c_lines[layer].set_ydata(self.c[index, t])
        self.step_text.set_text(f"t = {t}")
        self.blitter.update()

    def show_selection(self) -> None:
        """Shows the picked batch element and direction (same layers, same step)."""
        self.h, self.c = self._select(self.batch.value, self.direction.value)
        rows = self._rows()
        shown = [self.h[rows]] + ([self.c[rows]] if self.has_c else [])
        for col, (name, data) in enumerate(zip(self._names, shown, strict=True)):
            lim = symmetric_limit(data)
            for r, layer in enumerate(self.shown_layers):
                image = self.images[layer][col]
                image.set_data(data[r].T)  # (units, T)
                image.set_clim(-lim, lim)
            self.colorbars[col].set_label(f"{name}_t, every layer (|{name}| ≤ {lim:.2f})")
        low, high = value_range(*shown)
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

    @classmethod
    def with_c(cls, h: torch.Tensor) -> _Selected:
        """Full states h (L, D, T, B, H) with h standing in as c too (for select_sequence)."""
        view = cls.__new__(cls)
        view.h = view.c = h
        return view


def _h_heatmaps(h: np.ndarray, t: int, axes) -> None:
    """h alone, as ``plot_state_heatmaps`` draws its h column: h (L, T, H), axes (L,) layer 0
    first; a cursor at t (each Axes' last line) and one colorbar, known to every image."""
    from matplotlib.ticker import MaxNLocator

    lim = symmetric_limit(h)
    L, T = h.shape[0], h.shape[1]
    for layer in range(L):
        ax = axes[layer]
        image = ax.imshow(h[layer].T, cmap=CMAP, vmin=-lim, vmax=lim, origin="lower",
                          aspect="auto", interpolation="nearest")  # (units, T)
        ax.set_xlim(*time_limits(T))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("unit")
        ax.set_xlabel(TIME_LABEL if layer == 0 else "")
        ax.axvline(t, **CURSOR)
    cbar = axes[0].figure.colorbar(image, ax=list(axes), shrink=0.9, aspect=30)
    cbar.set_label(f"h_t, every layer (|h| ≤ {lim:.2f})")
    for layer in range(L):
        axes[layer].images[0].colorbar = cbar


def _h_at_step(h: np.ndarray, t: int, axes) -> None:
    """h_t per unit, as ``plot_states_at_step`` draws it (its h line alone, one y range for
    every layer and step): h (L, T, H), axes (L,) layer 0 first; ``axes[l].lines[0]`` is h_t."""
    from matplotlib.ticker import MaxNLocator

    low, high = value_range(h)
    for layer, ax in enumerate(axes):
        ax.plot(np.arange(h.shape[2]), h[layer, t], "s--", color=STATE_COLORS["h"],
                label="$h_t$")
        ax.axhline(0, color="0.7", lw=0.8, zorder=0)
        ax.set_ylim(low, high)
        ax.set_ylabel("value")
        ax.set_xlabel("hidden unit" if layer == 0 else "")
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))
        if layer == len(axes) - 1:
            ax.legend(loc="upper right", fontsize=8)
