"""A time-step slider over one layer's gates, c_t and h_t (ipywidgets + ipympl).

Needs ``%matplotlib widget`` in the notebook. Drawing is done by ``lstm_states.gateplots``;
this module only wires a Play button and an IntSlider to it.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .core import LSTMStates
from .gateplots import plot_step, set_step
from .widgets import _box, _freeze_layout, time_step_controls

__all__ = ["GateStepViewer"]


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
