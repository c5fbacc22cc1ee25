"""The notebooks' widgets: ipywidgets around the pure plotting functions of ``lstm_states.plots``,
``lstm_states.gateplots`` and ``lstm_states.textviz``. The only module that imports ipywidgets.

Use them with ``%matplotlib widget`` (ipympl): ``.widget`` is a VBox of the controls above the
live figure. With a non-interactive backend (Agg, in tests) ``.widget`` holds the controls only;
the callbacks work the same and update ``.fig``.

Shape legend: L layers, D directions, T steps, B batch, I input, H hidden, H_out = P or H.
"""

from __future__ import annotations

import html
from typing import Dict, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn

from .core import LSTMStates
from .diagrams import plot_output_grid
from .gateplots import plot_step, set_step
from .plots import _select, plot_state_heatmaps, plot_states_at_step
from .textviz import char_cells, plot_colored_text, text_grid

__all__ = ["StateExplorer", "ReturnsExplorer", "GateStepViewer", "TextExplorer"]


def _box(controls, fig) -> widgets.VBox:
    """VBox of the controls (a widget, or a list of rows) above the figure's canvas when it is
    a widget (ipympl)."""
    children = list(controls) if isinstance(controls, (list, tuple)) else [controls]
    if isinstance(fig.canvas, widgets.DOMWidget):
        fig.canvas.header_visible = False  # no "Figure N" line above the plot
        children.append(fig.canvas)
    return widgets.VBox(children)


def _freeze_layout(fig) -> None:
    """Lays the figure out once, then keeps it: new titles at each step must not move the axes."""
    fig.get_layout_engine().execute(fig)
    fig.set_layout_engine("none")


def time_step_controls(num_steps: int, interval_ms: int = 300):
    """A Play button and an ``IntSlider(description="time step")`` over 0..num_steps-1, linked
    in the browser. Returns (play, slider)."""
    slider = widgets.IntSlider(value=0, min=0, max=num_steps - 1, step=1,
                               description="time step", continuous_update=True)
    play = widgets.Play(value=0, min=0, max=num_steps - 1, step=1, interval=interval_ms,
                        description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    return play, slider


class StateExplorer:
    """A time-step slider (with Play) over every layer's h_t and c_t.

    Left: heatmaps of h and c per layer (units x time) with a cursor at step t. Right: the
    values of h_t and c_t per unit at step t. Moving the slider only moves the cursors and
    changes the line data (``set_xdata``/``set_ydata`` + ``draw_idle``); the layout is fixed.

    Args:
        states: an ``LSTMStates`` (from ``lstm_states.capture``), or anything with ``.h``
            (L, D, T, B, H_out) and ``.c`` (L, D, T, B, H).
        batch_index: which sequence of the batch to show.
        direction: 0 forward, 1 reverse (bidirectional only); for the reverse direction step t
            is input position t, as in ``output[t]``.
        title: figure title; a default names the batch element and direction.

    Attributes:
        slider: ``IntSlider(description="time step")``, 0..T-1.
        play: ``Play`` linked to the slider in the browser.
        fig: the matplotlib Figure. ``widget``: the VBox to display.
        heatmap_axes: (L, 2) Axes (h, c); ``images``: L lists [h, c] of AxesImage, data
            (units, T).
        cursors: list of the 2*L vertical lines at step t.
        value_axes: (L,) Axes; ``c_lines``/``h_lines``: lists of L Line2D, y = c_t / h_t.
        h, c: numpy (L, T, H_out) and (L, T, H): the data shown.
    """

    def __init__(self, states, batch_index: int = 0, direction: int = 0,
                 title: Optional[str] = None):
        self.states = states
        self.batch_index = batch_index
        self.direction = direction
        L, D, T = states.h.shape[0], states.h.shape[1], states.h.shape[2]
        self.num_steps = T
        # the data shown; checks batch_index and direction before any figure is made
        self.h, self.c = _select(states, batch_index, direction)  # (L, T, H_out), (L, T, H)
        with plt.ioff():
            self.fig, axes = plt.subplots(L, 3, figsize=(10, 1.9 * L + 1.0), squeeze=False,
                                          layout="constrained",
                                          gridspec_kw={"width_ratios": [1.2, 1.2, 1.0]})
        self.heatmap_axes = axes[:, :2]
        self.value_axes = axes[:, 2]
        plot_state_heatmaps(states, batch_index, direction, t=0, axes=self.heatmap_axes)
        plot_states_at_step(states, 0, batch_index, direction, axes=self.value_axes)
        self.images = [[ax.images[0] for ax in row] for row in self.heatmap_axes]  # (L, 2)
        self.cursors = [ax.lines[-1] for ax in self.heatmap_axes.ravel()]
        self.c_lines = [ax.lines[0] for ax in self.value_axes]
        self.h_lines = [ax.lines[1] for ax in self.value_axes]
        if title is None:
            where = f"batch element {batch_index}"
            if D == 2:
                where += ", " + ("forward", "reverse")[direction] + " direction"
            title = f"Every layer's h_t and c_t ({where})"
        self.fig.suptitle(title)
        _freeze_layout(self.fig)  # moving the slider must not re-run the layout
        self.play, self.slider = time_step_controls(T, interval_ms=300)
        self.slider.observe(self._on_step, names="value")
        self.widget = _box(widgets.HBox([self.play, self.slider]), self.fig)

    @property
    def step(self) -> int:
        """The step shown (the slider's value)."""
        return self.slider.value

    def _on_step(self, change) -> None:
        self.show_step(change["new"])

    def show_step(self, t: int) -> None:
        """Moves the cursors to step t and shows h_t, c_t; called when the slider moves."""
        for cursor in self.cursors:
            cursor.set_xdata([t, t])
        for layer, ax in enumerate(self.value_axes):
            self.h_lines[layer].set_ydata(self.h[layer, t])
            self.c_lines[layer].set_ydata(self.c[layer, t])
            ax.title.set_text(f"layer {layer} at t = {t}")
        self.fig.canvas.draw_idle()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ----------------------------------------------------------------------------------------------
# notebook 01: what nn.LSTM returns, for a configuration the reader picks

# The layouts PyTorch documents, in the shape legend's symbols
_LAYOUTS = {
    "input": ("(T, B, I)", "(B, T, I)"),
    "output": ("(T, B, D*H_out)", "(B, T, D*H_out)"),
    "h_n": ("(L*D, B, H_out)", "(L*D, B, H_out)"),
    "c_n": ("(L*D, B, H)", "(L*D, B, H)"),
}


def lstm_return_shapes(num_layers: int, bidirectional: bool, batch_first: bool,
                       proj_size: int, input_size: int = 3, hidden_size: int = 4,
                       steps: int = 6, batch: int = 3) -> Dict[str, Tuple[int, ...]]:
    """Runs a real ``nn.LSTM`` of that configuration on zeros and returns the shapes it gives.

    Returns ``{"input": ..., "output": ..., "h_n": ..., "c_n": ...}`` as tuples.
    """
    lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first, proj_size=proj_size)
    x = torch.zeros((batch, steps, input_size) if batch_first else (steps, batch, input_size))
    with torch.no_grad():
        output, (h_n, c_n) = lstm(x)
    return {"input": tuple(x.shape), "output": tuple(output.shape), "h_n": tuple(h_n.shape),
            "c_n": tuple(c_n.shape)}


class ReturnsExplorer:
    """Pick num_layers / bidirectional / batch_first / proj_size; see what nn.LSTM returns.

    Shows the layers x time grid of ``diagrams.plot_output_grid`` and the shapes of ``output``,
    ``h_n`` and ``c_n`` as a real ``nn.LSTM`` of that configuration returns them.

    Args:
        input_size, hidden_size, steps, batch: the fixed sizes of the example LSTM and input.
        num_layers, bidirectional, batch_first, proj_size: the controls' starting values.

    Attributes:
        num_layers (IntSlider), bidirectional (Checkbox), batch_first (Checkbox),
        proj_size (ToggleButtons): the controls. ``shapes``: the last shapes, a dict of tuples;
        ``shapes_text``: HTML widget showing them. ``fig``, ``ax``: the grid; ``widget``: the
        VBox to display.
    """

    def __init__(self, input_size: int = 3, hidden_size: int = 4, steps: int = 6,
                 batch: int = 3, num_layers: int = 2, bidirectional: bool = False,
                 batch_first: bool = False, proj_size: int = 0):
        self.input_size, self.hidden_size, self.steps, self.batch = (input_size, hidden_size,
                                                                     steps, batch)
        self.num_layers = widgets.IntSlider(value=num_layers, min=1, max=4,
                                            description="num_layers")
        self.bidirectional = widgets.Checkbox(value=bidirectional, description="bidirectional")
        self.batch_first = widgets.Checkbox(value=batch_first, description="batch_first")
        proj_options = [("0 (none)", 0)] + [(str(p), p) for p in range(1, hidden_size)]
        self.proj_size = widgets.ToggleButtons(options=proj_options, value=proj_size,
                                               description="proj_size")
        self.proj_size.style.button_width = "4.5em"
        self.shapes_text = widgets.HTML()
        self.shapes: Dict[str, Tuple[int, ...]] = {}
        with plt.ioff():
            self.fig, self.ax = plt.subplots(figsize=(8.5, 5.0), layout="constrained")
        for control in (self.num_layers, self.bidirectional, self.batch_first, self.proj_size):
            control.observe(self._on_change, names="value")
        self.redraw()
        controls = widgets.VBox([widgets.HBox([self.num_layers, self.bidirectional,
                                               self.batch_first]), self.proj_size,
                                 self.shapes_text])
        self.widget = _box(controls, self.fig)

    def config(self) -> dict:
        """The nn.LSTM arguments the controls show."""
        return {"num_layers": self.num_layers.value, "bidirectional": self.bidirectional.value,
                "batch_first": self.batch_first.value, "proj_size": self.proj_size.value}

    def _on_change(self, change) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Redraws the grid and the shapes for the current controls."""
        cfg = self.config()
        self.shapes = lstm_return_shapes(**cfg, input_size=self.input_size,
                                         hidden_size=self.hidden_size, steps=self.steps,
                                         batch=self.batch)
        self.ax.clear()
        plot_output_grid(cfg["num_layers"], cfg["bidirectional"], self.steps,
                         batch_first=cfg["batch_first"], hidden_size=self.hidden_size,
                         proj_size=cfg["proj_size"], ax=self.ax)
        self.shapes_text.value = self.shapes_html()
        self.fig.canvas.draw_idle()

    def shapes_html(self) -> str:
        """The shapes as an HTML table: symbolic layout and the sizes a real nn.LSTM gave."""
        cfg = self.config()
        bf = int(cfg["batch_first"])
        D = 2 if cfg["bidirectional"] else 1
        h_out = cfg["proj_size"] or self.hidden_size
        legend = (f"T={self.steps}, B={self.batch}, I={self.input_size}, H={self.hidden_size}, "
                  f"H_out={h_out}, L={cfg['num_layers']}, D={D}")
        rows = "".join(f"<tr><td><code>{name}</code></td><td><code>{_LAYOUTS[name][bf]}"
                       f"</code></td><td><code>{shape}</code></td></tr>"
                       for name, shape in self.shapes.items())
        return (f"<table><tr><th>tensor</th><th>layout</th><th>shape</th></tr>{rows}</table>"
                f"<div>{html.escape(legend)}</div>")

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ----------------------------------------------------------------------------------------------
# notebook 04: one layer's gates, c_t and h_t, step by step

class GateStepViewer:
    """Play + "time step" slider showing the gates, c_t and h_t of one layer at step t.

    Display ``viewer.widget``; setting ``viewer.slider.value = t`` (or dragging it) redraws.

    Attributes:
        gates: (4, T, H) the shown layer's gates, order i, f, g, o.
        c: (T, H) its cell states; h: (T, H_out) its hidden states.
        axes: (gate Axes, state Axes) of ``fig``; the heatmap is ``axes[0].images[0]``,
            c_t and h_t are ``axes[1].lines[0]`` and ``axes[1].lines[1]``.
        slider, play, widget: the IntSlider, the Play button and the box holding both and
            the figure.
    """

    def __init__(self, states: LSTMStates, layer: int = 0, direction: int = 0, batch: int = 0,
                 interval_ms: int = 400):
        self.gates = states.gates[layer, direction, :, :, batch].detach().cpu()  # (4, T, H)
        self.c = states.c[layer, direction, :, batch].detach().cpu()  # (T, H)
        self.h = states.h[layer, direction, :, batch].detach().cpu()  # (T, H_out)
        last = self.c.shape[0] - 1
        with plt.ioff():
            self.fig = plt.figure(figsize=(10, 3.4), layout="constrained")
        self.fig.suptitle(f"layer {layer}, direction {direction}, batch item {batch}")
        self.axes = plot_step(self.gates, self.c, self.h, 0, fig=self.fig)
        _freeze_layout(self.fig)  # a new title at each step must not move the axes
        self.play, self.slider = time_step_controls(last + 1, interval_ms)
        self.slider.observe(self._show, names="value")
        self.widget = _box(widgets.HBox([self.play, self.slider]), self.fig)

    def _show(self, change) -> None:
        set_step(self.axes, self.gates, self.c, self.h, change["new"])
        self.fig.canvas.draw_idle()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ----------------------------------------------------------------------------------------------
# notebook 05: a text coloured by one unit of a trained model

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
        states: an ``LSTMStates`` for that text, batch of one, one direction, no proj_size:
            ``.h`` (L, 1, T, 1, H), ``.c``, ``.gates`` (L, 1, 4, T, 1, H).
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
        if states.h.shape[-1] != states.c.shape[-1]:
            raise ValueError("TextExplorer needs an LSTM without proj_size: with a projection,"
                             " h's units are not c's and the gates' units")
        if kind not in ("c", "h"):
            raise ValueError(f"kind must be 'c' or 'h', got {kind!r}")
        if not 0 <= layer < states.h.shape[0]:
            raise ValueError(f"layer must be in 0..{states.h.shape[0] - 1}, got {layer}")
        if not 0 <= unit < states.c.shape[-1]:
            raise ValueError(f"unit must be in 0..{states.c.shape[-1] - 1}, got {unit}")
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
