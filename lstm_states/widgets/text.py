"""Notebook 05: a text coloured by one unit of a trained model (``TextExplorer``).

Shape legend: L layers, T steps (characters), H hidden, N units shown.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from ..display import Blitter
from ..style import CURSOR, DPI, GATE_COLORS, MAX_WIDTH_IN, STATE_COLORS, TIME_LABEL, time_limits
from ..textviz import (
    char_cells,
    plot_colored_text,
    plot_unit_heatmap,
    rank_units,
    scaled_unit_rows,
    step_at,
    text_grid,
    unit_correlations,
    unit_labels,
)
from .controls import _box, _freeze_layout, _layer_ids, time_step_controls

__all__ = ["TextExplorer"]


def _unit_title(layer: int, kind: str, unit: int) -> str:
    return f"layer {layer}, {kind}_t of unit {unit}"


class TextExplorer:
    """Text coloured by a chosen unit, with a cursor moved by a Play + "time step" slider.

    Top: the text, each character coloured by the chosen unit's state after reading it, and a
    box around character t; click a character to go to its step. Middle: the units of the
    chosen layer that matter, ranked by |r| with the chosen quantity (by max |value| without
    one), each row scaled to its own range and multiplied by sign(r), labelled with its r; a
    cursor at t and the chosen unit outlined. Bottom: the unit over the whole text with the
    quantity on a second axis, flipped when r < 0 so that both move together (the axis label
    says so), and the unit's gates i, f, g, o at step t with c_{t-1} -> c_t in the title.
    A time step redraws only the cursors, the bars and that title (blitted).

    Args:
        text: the T characters the LSTM read.
        states: an ``LSTMStates`` for that text, batch of one, one direction, no proj_size:
            ``.h`` (L, 1, T, 1, H), ``.c``, ``.gates`` (L, 1, 4, T, 1, H).
        layer, unit, kind: what to show first; kind is "c" or "h".
        quantity: optional (name, (T,) values) known per character, e.g. bracket depth.
        quantities: optional {name: (T,) values}: more quantities to pick from.
        interval_ms: Play's time between frames.
        play_step: steps per Play frame at the start (1, 2, 5, 10, 20 or 50).
        top_units: N, how many ranked units the middle heatmap shows.

    Attributes:
        slider (IntSlider "time step"), play, play_step (Dropdown, steps per Play frame),
        layer (Dropdown), kind (ToggleButtons "c"/"h"), unit (Dropdown: every unit, ranked by
        |r|, labels "33 (r = -0.86)"; ``unit.value = 102`` picks unit 102), quantity (Dropdown
        of the quantities' names, "" for none): the controls; setting ``.value`` redraws.
        widget: the VBox to display; fig.
        text_image (AxesImage of the text grid), text_colorbar, text_cursor (Rectangle around
        character t); heat_images, heat_cursors, unit_markers (one each: the ranked heatmap,
        data (N, T), its cursor and the outline of the chosen unit's row); heat_units (the N
        units shown, top row first); trace (Line2D of the unit over time), trace_cursor,
        quantity_axes (the trace's twin Axes, or None), quantity_line; gate_bars (four
        Rectangles, heights i, f, g, o at t), gate_axes (its title: "t = 12, read 'x'",
        "c: +0.31 -> +0.45").
        correlation(layer, kind, name): the (H,) r used for the ranking.
        h, c: numpy (L, T, H); gates: numpy (L, 4, T, H): the data shown.
    """

    def __init__(self, text: str, states, layer: int = 0, unit: int = 0, kind: str = "c",
                 quantity: Optional[Tuple[str, Sequence[float]]] = None,
                 interval_ms: int = 300, quantities: Optional[Mapping[str, object]] = None,
                 play_step: int = 1, top_units: int = 10):
        for name in ("gates", "c", "h"):
            if getattr(states, name, None) is None:
                raise ValueError(f"TextExplorer needs states.{name}: capture with that field"
                                 " (capture(lstm, x) captures every field)")
        if states.h.shape[1] != 1 or states.h.shape[3] != 1:
            raise ValueError("TextExplorer shows one sequence of a one-direction LSTM: capture"
                             " the text as a batch of one (T, 1, I) with bidirectional=False")
        if states.h.shape[2] != len(text):
            raise ValueError(f"states have {states.h.shape[2]} steps but the text has"
                             f" {len(text)} characters")
        if states.h.shape[-1] != states.c.shape[-1]:
            raise ValueError("TextExplorer needs an LSTM without proj_size: with a projection,"
                             " h's units are not c's and the gates' units")
        if kind not in ("c", "h"):
            raise ValueError(f"kind must be 'c' or 'h', got {kind!r}")
        if not 0 <= layer < states.h.shape[0]:
            raise ValueError(f"layer must be in 0..{states.h.shape[0] - 1}, got {layer}")
        if not 0 <= unit < states.c.shape[-1]:
            raise ValueError(f"unit must be in 0..{states.c.shape[-1] - 1}, got {unit}")
        steps_per_frame = (1, 2, 5, 10, 20, 50)
        if play_step not in steps_per_frame:
            raise ValueError(f"play_step must be one of {steps_per_frame}, got {play_step}")
        self.text = text
        self.h = states.h[:, 0, :, 0].detach().cpu().float().numpy()  # (L, T, H)
        self.c = states.c[:, 0, :, 0].detach().cpu().float().numpy()  # (L, T, H)
        self.gates = states.gates[:, 0, :, :, 0].detach().cpu().float().numpy()  # (L, 4, T, H)
        L, T, H = self.c.shape
        self.cells = char_cells(text)  # (T, 2)
        self.quantities: Dict[str, np.ndarray] = {}
        if quantity is not None:
            self.quantities[quantity[0]] = quantity[1]
        self.quantities.update(quantities or {})
        for name, q in self.quantities.items():
            q = np.asarray(q.detach().cpu() if hasattr(q, "detach") else q, dtype=float)
            if q.shape != (T,):
                raise ValueError(f"quantity {name!r} needs one value per character ({T}),"
                                 f" got shape {q.shape}")
            self.quantities[name] = q
        self._r: Dict[Tuple[int, str, str], np.ndarray] = {}
        self.top_units = min(top_units, H)
        first_q = next(iter(self.quantities), "")

        # controls first: the figure reads them
        self.play, self.slider = time_step_controls(T, interval_ms, on_step=self._on_step)
        self.play.step = play_step
        self.play_step = widgets.Dropdown(options=steps_per_frame, value=play_step,
                                          description="play step")
        widgets.link((self.play_step, "value"), (self.play, "step"))  # in the kernel
        self.layer_ids = _layer_ids(states, L)  # layer numbers of the captured layers
        self.layer = widgets.Dropdown(options=[(f"layer {n}", k) for k, n in
                                               enumerate(self.layer_ids)], value=layer,
                                      description="layer")
        self.kind = widgets.ToggleButtons(options=["c", "h"], value=kind, description="state")
        self.kind.style.button_width = "3em"
        self.quantity = widgets.Dropdown(options=[(n or "none", n) for n in self.quantities]
                                         or [("none", "")], value=first_q,
                                         description="rank by", disabled=not self.quantities)
        self.unit = widgets.Dropdown(options=self._unit_options(layer, kind, first_q),
                                     value=unit, description="unit")

        with plt.ioff():
            self.fig = plt.figure(figsize=(MAX_WIDTH_IN, 8.8), dpi=DPI, layout="constrained")
        grid = self.fig.add_gridspec(3, 2, height_ratios=[4.2, 2.2, 1.7], width_ratios=[3.2, 1])
        ax_text = self.fig.add_subplot(grid[0, :])
        ax_heat = self.fig.add_subplot(grid[1, :])
        self.trace_axes = self.fig.add_subplot(grid[2, 0])
        self.gate_axes = self.fig.add_subplot(grid[2, 1])

        values = self._values(layer, kind, unit)  # (T,)
        lim = self._unit_limit(values)
        self.text_image = plot_colored_text(text, values, ax=ax_text, limit=lim)
        self.text_image.set_alpha(0.75)  # lighter colours: the characters stay readable
        self.text_colorbar = self.fig.colorbar(self.text_image, ax=ax_text, shrink=0.9,
                                               pad=0.01, aspect=25)
        row, col = self.cells[0]
        self.text_cursor = Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black",
                                     linewidth=2.0)
        ax_text.add_patch(self.text_cursor)

        r = self.correlation(layer, kind, first_q) if first_q else None
        self.heat_units = self._ranked(layer, kind, first_q)[:self.top_units]
        data = self.c[layer] if kind == "c" else self.h[layer]  # (T, H)
        heat = plot_unit_heatmap(data, self.heat_units, r, ax=ax_heat, name=kind)
        self.heat_images = [heat]
        self.heat_colorbar = heat.colorbar
        self.heat_cursors = [ax_heat.axvline(0, **CURSOR)]
        self.unit_markers = [ax_heat.add_patch(Rectangle((-0.5, -0.42), T, 0.84, fill=False,
                                                         edgecolor="gold", linewidth=2.5))]

        steps = np.arange(T)
        (self.trace,) = self.trace_axes.plot(steps, values, color=STATE_COLORS[kind],
                                             linewidth=1.0)
        self.trace_cursor = self.trace_axes.axvline(0, **CURSOR)
        self.trace_axes.set_xlabel(TIME_LABEL + " (character)")
        self.trace_axes.set_xlim(*time_limits(T))
        self.quantity_axes = self.quantity_line = None
        if self.quantities:
            self.quantity_axes = self.trace_axes.twinx()
            (self.quantity_line,) = self.quantity_axes.plot(steps, self.quantities[first_q],
                                                            color="0.5", linewidth=0.8)
            self.quantity_axes.set_xlim(*time_limits(T))

        self.gate_bars = list(self.gate_axes.bar(
            ["i", "f", "g", "o"], self.gates[layer, :, 0, unit],
            color=[GATE_COLORS[g] for g in "ifgo"]))
        self.gate_axes.axhline(0, color="black", linewidth=0.6)
        self.gate_axes.set_ylim(-1.05, 1.05)
        self.gate_axes.set_ylabel("gate value")
        self.gate_axes.set_title(" \n ", fontsize=10)  # two lines, set at each step
        self._show_unit(layer, kind, unit, first_q)
        _freeze_layout(self.fig)  # new titles at each step must not move the axes
        self.blitter = Blitter(self.fig, [self.text_cursor, *self.heat_cursors,
                                          self.trace_cursor, *self.gate_bars,
                                          self.gate_axes.title])
        self._show_gates(0)

        self._busy = False
        for control in (self.layer, self.kind, self.unit, self.quantity):
            control.observe(self._on_unit, names="value")
        self.fig.canvas.mpl_connect("button_press_event", self._on_click)
        self.widget = _box([widgets.HBox([self.play, self.slider, self.play_step]),
                            widgets.HBox([self.layer, self.kind]),
                            widgets.HBox([self.quantity, self.unit])], self.fig)

    # --- what is shown ---
    def correlation(self, layer: int, kind: str, name: str) -> np.ndarray:
        """(H,) Pearson r of every unit's ``kind`` in ``layer`` with quantity ``name``."""
        key = (layer, kind, name)
        if key not in self._r:
            data = self.c[layer] if kind == "c" else self.h[layer]  # (T, H)
            self._r[key] = unit_correlations(data, self.quantities[name])
        return self._r[key]

    def _ranked(self, layer: int, kind: str, name: str) -> List[int]:
        """Every unit, most related to the quantity first (largest max |value| without one)."""
        if name:
            return [int(u) for u in rank_units(self.correlation(layer, kind, name))]
        data = self.c[layer] if kind == "c" else self.h[layer]  # (T, H)
        return [int(u) for u in np.argsort(-np.abs(data).max(0), kind="stable")]

    def _unit_options(self, layer: int, kind: str, name: str) -> List[Tuple[str, int]]:
        r = self.correlation(layer, kind, name) if name else None
        return [(f"{u}" if r is None else f"{u} (r = {r[u]:+.2f})", u)
                for u in self._ranked(layer, kind, name)]

    def _values(self, layer: int, kind: str, unit: int) -> np.ndarray:
        return (self.c if kind == "c" else self.h)[layer, :, unit]  # (T,)

    def _unit_limit(self, values: np.ndarray) -> float:
        return float(np.abs(values).max()) or 1.0

    @property
    def step(self) -> int:
        """The step shown (the slider's value)."""
        return self.slider.value

    @property
    def sign(self) -> float:
        """sign(r) of the shown unit with the chosen quantity (+1 without one): the quantity's
        axis is flipped when it is -1."""
        name = self.quantity.value
        if not name:
            return 1.0
        r = self.correlation(self.layer.value, self.kind.value, name)[self.unit.value]
        return -1.0 if r < 0 else 1.0

    def select_character(self, line: int, column: int) -> int:
        """Goes to the step of the character at (line, column), as a click on it does; returns
        the step. ValueError where there is no character."""
        t = step_at(self.text, column, line)
        if t is None:
            raise ValueError(f"no character at line {line}, column {column}")
        self.slider.value = t
        return t

    def _on_click(self, event) -> None:
        ax = event.inaxes
        if ax is None or event.xdata is None:
            return
        if ax is self.text_image.axes:
            t = step_at(self.text, event.xdata, event.ydata)
        elif ax in (self.heat_images[0].axes, self.trace_axes, self.quantity_axes):
            t = int(np.clip(round(event.xdata), 0, len(self.text) - 1))
        else:
            return
        if t is not None:
            self.slider.value = t

    def _show_gates(self, t: int) -> None:
        layer, unit = self.layer.value, self.unit.value
        for bar, value in zip(self.gate_bars, self.gates[layer, :, t, unit], strict=True):
            bar.set_height(value)
        ch = self.text[t]
        c_prev = self.c[layer, t - 1, unit] if t > 0 else 0.0
        # title.set_text, not set_title: set_title marks the Axes stale, and with ipympl in
        # interactive mode a stale figure is redrawn in full (0.5 s here) at every step
        self.gate_axes.title.set_text(f"t = {t}, read {ch!r}\nc: {c_prev:+.2f} -> "
                                      f"{self.c[layer, t, unit]:+.2f}")

    def show_step(self, t: int) -> None:
        """Moves every cursor to step t and shows the unit's gates there."""
        row, col = self.cells[t]
        self.text_cursor.set_xy((col - 0.5, row - 0.5))
        for line in (*self.heat_cursors, self.trace_cursor):
            line.set_xdata([t, t])
        self._show_gates(t)
        self.blitter.update()

    def _show_unit(self, layer: int, kind: str, unit: int, name: str) -> None:
        """Sets every static artist for this unit and quantity (no redraw)."""
        values = self._values(layer, kind, unit)
        lim = self._unit_limit(values)
        title = _unit_title(self.layer_ids[layer], kind, unit)
        r = self.correlation(layer, kind, name) if name else None
        self.text_image.set_data(text_grid(self.text, values))
        self.text_image.set_clim(-lim, lim)
        self.text_colorbar.set_label(f"{kind}_t of unit {unit} (layer {self.layer_ids[layer]})")
        self.text_image.axes.set_title("the text coloured by " + title + (
            f" (r = {r[unit]:+.2f} with {name})" if r is not None else ""), fontsize=10)

        self.heat_units = self._ranked(layer, kind, name)[:self.top_units]
        data = self.c[layer] if kind == "c" else self.h[layer]  # (T, H)
        heat = self.heat_images[0]
        heat.set_data(scaled_unit_rows(data, self.heat_units, r))
        heat.axes.set_yticks(range(len(self.heat_units)), unit_labels(self.heat_units, r),
                             fontsize=8)
        heat.axes.set_title(f"layer {self.layer_ids[layer]}: the {len(self.heat_units)} units "
                            + (f"most related to {name} (|r|)" if r is not None
                               else "with the largest |value|") + ", each on its own scale",
                            fontsize=10)
        what = f"sign(r)·{kind}_t" if r is not None else f"{kind}_t"
        self.heat_colorbar.set_label(f"{what} / max|{kind}_t|\n(each unit)")
        marker = self.unit_markers[0]
        marker.set_visible(unit in self.heat_units)
        if unit in self.heat_units:
            marker.set_y(self.heat_units.index(unit) - 0.42)

        self.trace.set_ydata(values)
        self.trace.set_color(STATE_COLORS[kind])
        self.trace_axes.set_ylabel(f"{kind}_t of unit {unit}", color=STATE_COLORS[kind])
        self.trace_axes.set_ylim(values.min() - 0.05 * lim, values.max() + 0.05 * lim)
        self.trace_axes.set_title(title + " over the text", fontsize=10)
        if self.quantity_axes is not None:
            q = self.quantities[name]
            self.quantity_line.set_ydata(q)
            low, high = float(q.min()), float(q.max())
            pad = 0.05 * (high - low) + 1e-6
            flip = r is not None and r[unit] < 0
            self.quantity_axes.set_ylim(*((high + pad, low - pad) if flip
                                          else (low - pad, high + pad)))
            self.quantity_axes.set_ylabel(name + (" (axis flipped,\nr < 0)" if flip else ""),
                                          color="0.4")

    def show_unit(self, layer: int, kind: str, unit: int, quantity: Optional[str] = None) -> None:
        """Colours the text, the heatmap and the trace by ``kind`` of ``unit`` in ``layer``
        (ranking by ``quantity``, default the chosen one), and redraws everything."""
        name = self.quantity.value if quantity is None else quantity
        self._show_unit(layer, kind, unit, name)
        self._show_gates(self.slider.value)
        self.blitter.invalidate()
        self.show_step(self.slider.value)

    def _on_step(self, change) -> None:
        self.show_step(change["new"])

    def _on_unit(self, change) -> None:
        if self._busy:
            return
        layer, kind, name = self.layer.value, self.kind.value, self.quantity.value
        if change["owner"] is not self.unit:  # new ranking: keep the unit, re-order the list
            self._busy = True
            try:
                unit = self.unit.value
                self.unit.options = self._unit_options(layer, kind, name)
                self.unit.value = unit
            finally:
                self._busy = False
        self.show_unit(layer, kind, self.unit.value, name)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
