"""The pieces every explorer shares: the VBox of controls above the live figure that displays
with a PNG of it (``_box``, ``figure_widget``), the Play + "time step" slider pair, and small
helpers for the figure's layout and the captured layers' numbers."""

from __future__ import annotations

from typing import List

import ipywidgets as widgets

from ..display import png_bundle

__all__ = ["figure_widget", "time_step_controls"]


def _with_picture(box: widgets.Box, fig) -> widgets.Box:
    """Makes ``box`` display as its widget view plus a PNG of ``fig`` (made when shown).

    The box keeps its own text/plain and widget-view; the PNG is what a reader sees where no
    kernel runs. An instance attribute, as ipywidgets itself sets ``_repr_mimebundle_`` on
    closed widgets: ``explorer.widget`` in a notebook cell then stores the picture too."""
    widget_bundle = type(box)._repr_mimebundle_.__get__(box)

    def bundle(**kwargs):
        data = widget_bundle(**kwargs)
        if data is not None:
            data["image/png"] = png_bundle(fig, "")["image/png"]
        return data

    box._repr_mimebundle_ = bundle
    return box


def _box(controls, fig) -> widgets.VBox:
    """VBox of the controls (a widget, or a list of rows) above the figure's canvas when it is
    a widget (ipympl); it displays with a PNG of the figure (``_with_picture``)."""
    children = list(controls) if isinstance(controls, (list, tuple)) else [controls]
    if isinstance(fig.canvas, widgets.DOMWidget):
        fig.canvas.header_visible = False  # no "Figure N" line above the plot
        fig.canvas.toolbar_position = "right"
        children.append(fig.canvas)
    return _with_picture(widgets.VBox(children), fig)


def figure_widget(fig) -> widgets.VBox:
    """A plain matplotlib figure for a notebook: the live ipympl canvas (zoom, pan) in a VBox
    that also carries a PNG of the figure, so that it shows without a kernel.

    For a figure nothing changes later, ``lstm_states.display.Picture(fig)`` stores only the
    PNG. Example: ``with plt.ioff(): fig, ax = plt.subplots()`` ... ``figure_widget(fig)``."""
    return _box([], fig)


def _freeze_layout(fig) -> None:
    """Lays the figure out once, then keeps it: new titles at each step must not move the axes."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    fig.set_layout_engine("none")


def time_step_controls(num_steps: int, interval_ms: int = 300, on_step=None):
    """A Play button and an ``IntSlider(description="time step")`` over 0..num_steps-1, linked
    in the kernel. Returns (play, slider).

    ``on_step`` (optional) observes the slider's value (called with traitlets' ``change``). It
    is registered before the link to Play, so a step's redraw leaves the kernel before Play is
    told the new value; and since the link is in the kernel, a key press on the slider sends one
    message to the kernel, not one per linked widget.
    """
    slider = widgets.IntSlider(value=0, min=0, max=num_steps - 1, step=1,
                               description="time step", continuous_update=True)
    play = widgets.Play(value=0, min=0, max=num_steps - 1, step=1, interval=interval_ms,
                        description="play")
    if on_step is not None:
        slider.observe(on_step, names="value")
    widgets.link((play, "value"), (slider, "value"))
    return play, slider


def _layer_ids(states, L: int) -> List[int]:
    """The layer numbers of the L captured layers (``states.layers`` when only some were)."""
    ids = getattr(states, "layers", None)
    return [int(k) for k in ids] if ids is not None else list(range(L))
