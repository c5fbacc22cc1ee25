"""Thin ipywidgets wrappers around ``lstm_states.plots`` (the only module importing ipywidgets).

Use them with ``%matplotlib widget`` (ipympl): ``.widget`` is a VBox of the controls above the
live figure. With a non-interactive backend (Agg, in tests) ``.widget`` holds the controls only;
the callbacks work the same and update ``.fig``.

Shape legend: L layers, D directions, T steps, B batch, I input, H hidden, H_out = P or H.
"""

from __future__ import annotations

import html
from typing import Dict, Optional, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import nn

from .plots import _select, plot_output_grid, plot_state_heatmaps, plot_states_at_step

__all__ = ["StateExplorer", "ReturnsExplorer"]


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
        value_axes: (L,) Axes; ``h_lines``/``c_lines``: lists of L Line2D, y = h_t / c_t.
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
        self.h_lines = [ax.lines[-2] for ax in self.value_axes]
        self.c_lines = [ax.lines[-1] for ax in self.value_axes]
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

    Shows the layers x time grid of ``plots.plot_output_grid`` and the shapes of ``output``,
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
