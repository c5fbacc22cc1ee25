"""Notebook 04: one layer's gates, c_t and h_t, step by step (``GateStepViewer``).

Shape legend: T steps, H hidden, H_out = P or H.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from ..display import Blitter
from ..gateplots import plot_step, set_step
from ..style import DPI, MAX_WIDTH_IN
from .controls import _box, _freeze_layout, _layer_ids, time_step_controls

__all__ = ["GateStepViewer"]


class GateStepViewer:
    """Play + "time step" slider showing the gates, c_{t-1} -> c_t and h_t of one layer at step
    t, and c over the last few steps.

    Display ``viewer`` (or ``viewer.widget``); setting ``viewer.slider.value = t`` (or dragging
    it) redraws the moving artists only.

    Args:
        states: an ``LSTMStates`` with gates, c and h.
        layer, direction, batch: which layer (index into the captured layers), direction and
            batch element.
        interval_ms: Play's time between steps.
        history: K, how many steps the history heatmap shows (0: none).

    Attributes:
        gates: (4, T, H) the shown layer's gates, order i, f, g, o.
        c: (T, H) its cell states; h: (T, H_out) its hidden states.
        axes: (gate Axes, state Axes[, history Axes]) of ``fig``; the gates' heatmap is
            ``axes[0].collections[0]`` (a QuadMesh, ``get_array()`` (4, H)); c_t, h_t and
            c_{t-1} are ``axes[1].lines[0]``, ``[1]``, ``[3]``; the segments c_{t-1} -> c_t are
            ``axes[1].collections[0]``; the history is ``axes[2].collections[0]``, (K, H),
            row 0 = step t.
        slider, play, widget: the IntSlider, the Play button and the box holding both and
            the figure. ``blitter``: the ``Blitter`` of the moving artists.
    """

    def __init__(self, states, layer: int = 0, direction: int = 0, batch: int = 0,
                 interval_ms: int = 400, history: int = 8):
        for name in ("gates", "c", "h"):
            if getattr(states, name, None) is None:
                raise ValueError(f"GateStepViewer needs states.{name}: capture with that field"
                                 " (capture(lstm, x) captures every field)")
        L, D, _, T, B = states.gates.shape[:5]
        for arg, value, size in (("layer", layer, L), ("direction", direction, D),
                                 ("batch", batch, B)):
            if not 0 <= value < size:
                raise ValueError(f"{arg} must be in 0..{size - 1}, got {value}")
        self.gates = states.gates[layer, direction, :, :, batch].detach().cpu()  # (4, T, H)
        self.c = states.c[layer, direction, :, batch].detach().cpu()  # (T, H)
        self.h = states.h[layer, direction, :, batch].detach().cpu()  # (T, H_out)
        self.history = history
        with plt.ioff():
            self.fig = plt.figure(figsize=(MAX_WIDTH_IN, 5.2 if history else 3.4), dpi=DPI,
                                  layout="constrained")
        name = _layer_ids(states, L)[layer]
        where = f"layer {name}, " + (f"direction {direction}, " if D == 2 else "")
        self.fig.suptitle(where + f"batch item {batch}")
        self.axes = plot_step(self.gates, self.c, self.h, 0, fig=self.fig, history=history)
        _freeze_layout(self.fig)  # a new title at each step must not move the axes
        ax_gates, ax_state = self.axes[0], self.axes[1]
        moving = [ax_gates.collections[0], ax_gates.title, *ax_state.lines[:2],
                  ax_state.lines[3], ax_state.collections[0]]
        if history:
            moving.append(self.axes[2].collections[0])
        self.blitter = Blitter(self.fig, moving)
        self.play, self.slider = time_step_controls(T, interval_ms, on_step=self._show)
        self.widget = _box(widgets.HBox([self.play, self.slider]), self.fig)

    @property
    def step(self) -> int:
        """The step shown (the slider's value)."""
        return self.slider.value

    def show_step(self, t: int) -> None:
        """Shows step t; called when the slider moves."""
        set_step(self.axes, self.gates, self.c, self.h, t)
        self.blitter.update()

    def _show(self, change) -> None:
        self.show_step(change["new"])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
