"""The notebooks' widgets: ipywidgets around the pure plotting functions of ``lstm_states.plots``,
``lstm_states.gateplots``, ``lstm_states.textviz`` and ``lstm_states.diagrams``. The only module
that imports ipywidgets.

Use them with ``%matplotlib widget`` (ipympl): ``.widget`` is a VBox of the controls above the
live figure. With a non-interactive backend (Agg, in tests) ``.widget`` holds the controls only;
the callbacks work the same and update ``.fig``.

Every widget shows in a notebook (as ``explorer`` or ``explorer.widget``) as one output whose
mime bundle holds the live widget view, a PNG of the figure as it is when shown (what JupyterLab
before running, nbconvert's HTML and repository viewers display) and text/plain. Every control
is an attribute, so a notebook cell can set it (``explorer.slider.value = 7``) and check what the
figure then shows. A time step redraws only the artists that move (``display.Blitter``).

Shape legend: L layers, D directions, T steps, B batch, I input, H hidden, H_out = P or H,
N units shown.
"""

from __future__ import annotations

import html
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .diagrams import plot_output_grid
from .display import Blitter, png_bundle
from .gateplots import plot_step, set_step
from .plots import plot_state_heatmaps, plot_states_at_step, select_sequence, symmetric_limit
from .style import CURSOR, DPI, GATE_COLORS, MAX_WIDTH_IN, STATE_COLORS, TIME_LABEL, time_limits
from .textviz import (
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

__all__ = ["StateExplorer", "ReturnsExplorer", "GateStepViewer", "TextExplorer",
           "figure_widget", "time_step_controls", "lstm_return_shapes"]


# ----------------------------------------------------------------------------------------------
# shared pieces

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


# ----------------------------------------------------------------------------------------------
# notebooks 02, 03: every layer's h_t and c_t

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
        from .plots import value_range

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


# ----------------------------------------------------------------------------------------------
# notebook 01: what nn.LSTM returns, for a configuration the reader picks

# The layouts PyTorch documents, in the shape legend's symbols (batched, batch_first, unbatched)
_LAYOUTS = {
    "input": ("(T, B, I)", "(B, T, I)", "(T, I)"),
    "output": ("(T, B, D*H_out)", "(B, T, D*H_out)", "(T, D*H_out)"),
    "h_n": ("(L*D, B, H_out)", "(L*D, B, H_out)", "(L*D, H_out)"),
    "c_n": ("(L*D, B, H)", "(L*D, B, H)", "(L*D, H)"),
}
_PACKED_LAYOUTS = {  # for a PackedSequence: .data of input/output, and output once padded
    "input": "PackedSequence, .data (sum(lengths), I)",
    "output": "PackedSequence, .data (sum(lengths), D*H_out)",
    "output padded": ("(T, B, D*H_out)", "(B, T, D*H_out)"),
}


def _run_lstm(num_layers: int, bidirectional: bool, batch_first: bool, proj_size: int,
              input_size: int, hidden_size: int, steps: int, batch: int,
              lengths: Optional[Sequence[int]], unbatched: bool):
    """A real nn.LSTM of that configuration on seeded random input: (shapes, h_n steps).
    Draws nothing from torch's global random state (a notebook's later cells are unaffected)."""
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):  # nn.LSTM's own init draws from the global state
        lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers,
                       bidirectional=bidirectional, batch_first=batch_first, proj_size=proj_size)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.rand(p.shape, generator=g) - 0.5)
        if unbatched:
            x = torch.rand(steps, input_size, generator=g)  # (T, I)
        else:
            x = torch.rand(batch, steps, input_size, generator=g)  # (B, T, I)
            if not batch_first:
                x = x.transpose(0, 1)  # (T, B, I)
        shapes: Dict[str, Tuple[int, ...]] = {}
        if lengths is None:
            output, (h_n, c_n) = lstm(x)
            shapes["input"], shapes["output"] = tuple(x.shape), tuple(output.shape)
            padded = output if not unbatched else output[:, None]  # (T, B, ...) or (B, T, ...)
            if batch_first and not unbatched:
                padded = padded.transpose(0, 1)
        else:
            packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first,
                                          enforce_sorted=False)
            output, (h_n, c_n) = lstm(packed)
            padded, _ = pad_packed_sequence(output, batch_first=batch_first,
                                            total_length=steps)
            shapes["input"], shapes["output"] = (tuple(packed.data.shape),
                                                 tuple(output.data.shape))
            shapes["output padded"] = tuple(padded.shape)
            if batch_first:
                padded = padded.transpose(0, 1)  # (T, B, D*H_out)
        shapes["h_n"], shapes["c_n"] = tuple(h_n.shape), tuple(c_n.shape)
    # which step of the top layer's forward output each sequence's h_n equals
    h_out = proj_size or hidden_size
    top = h_n[-2 if bidirectional else -1]  # (B, H_out) or (H_out,)
    top = top if not unbatched else top[None]
    steps_held = []
    for b in range(top.shape[0]):
        match = [t for t in range(steps) if torch.equal(padded[t, b, :h_out], top[b])]
        steps_held.append(match[-1] if match else None)
    return shapes, steps_held


def lstm_return_shapes(num_layers: int, bidirectional: bool, batch_first: bool,
                       proj_size: int, input_size: int = 3, hidden_size: int = 4,
                       steps: int = 6, batch: int = 3, lengths: Optional[Sequence[int]] = None,
                       unbatched: bool = False) -> Dict[str, Tuple[int, ...]]:
    """Runs a real ``nn.LSTM`` of that configuration and returns the shapes it gives.

    Args:
        num_layers, bidirectional, batch_first, proj_size: as for ``nn.LSTM``.
        input_size, hidden_size, steps, batch: I, H, T, B of the example.
        lengths: B sequence lengths (each 1..T): the input is then packed
            (``pack_padded_sequence``); None: a plain padded tensor.
        unbatched: input (T, I) without a batch dimension (not with lengths).

    Returns:
        ``{"input": ..., "output": ..., "h_n": ..., "c_n": ...}`` as tuples; for packed input
        ``input``/``output`` are the shapes of the PackedSequences' ``.data`` and
        ``"output padded"`` is the output after ``pad_packed_sequence``.
    """
    lengths = _check_lengths(lengths, steps, batch, unbatched)
    return _run_lstm(num_layers, bidirectional, batch_first, proj_size, input_size, hidden_size,
                     steps, batch, lengths, unbatched)[0]


def _check_lengths(lengths, steps: int, batch: int, unbatched: bool):
    if lengths is None:
        return None
    if unbatched:
        raise ValueError("packed input is always batched: use lengths or unbatched, not both")
    lengths = [int(n) for n in lengths]
    if len(lengths) != batch or not all(1 <= n <= steps for n in lengths):
        raise ValueError(f"lengths must be {batch} numbers (one per sequence), each in"
                         f" 1..{steps}, got {lengths}")
    return lengths


def parse_lengths(text: str) -> List[int]:
    """'6, 4, 2' -> [6, 4, 2] (commas or spaces)."""
    parts = text.replace(",", " ").split()
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"lengths must be whole numbers separated by commas, got {text!r}") from None


class ReturnsExplorer:
    """Pick num_layers / bidirectional / batch_first / proj_size, packed lengths or unbatched
    input; see what nn.LSTM returns.

    Shows the layers x time grid of ``diagrams.plot_output_grid`` and the shapes of ``output``,
    ``h_n`` and ``c_n`` as a real ``nn.LSTM`` of that configuration returns them. With packed
    input the grid is drawn for one sequence (``sequence``), its steps past its length hatched:
    h_n holds each sequence's own last step, not step T-1.

    Args:
        input_size, hidden_size, steps, batch: the fixed sizes of the example LSTM and input.
        num_layers, bidirectional, batch_first, proj_size: the controls' starting values.
        lengths: starting lengths for packed input (default T, ~2T/3, ~T/3, ...); packed
            starts on when ``packed`` is True.
        packed, unbatched: starting values of those controls.

    Attributes:
        num_layers (IntSlider), bidirectional (Checkbox), batch_first (Checkbox),
        proj_size (ToggleButtons), packed (Checkbox), lengths (Text, e.g. "6, 4, 2"),
        sequence (Dropdown: the batch element drawn when packed), unbatched (Checkbox): the
        controls. ``shapes``: the last shapes, a dict of tuples; ``h_n_steps``: for each
        sequence, the step of the top layer's forward output that h_n holds (found by
        comparing the real tensors); ``error``: the message shown for bad lengths, or "".
        ``shapes_text``: HTML widget showing them. ``fig``, ``ax``: the grid; ``widget``: the
        VBox to display.
    """

    def __init__(self, input_size: int = 3, hidden_size: int = 4, steps: int = 6,
                 batch: int = 3, num_layers: int = 2, bidirectional: bool = False,
                 batch_first: bool = False, proj_size: int = 0,
                 lengths: Optional[Sequence[int]] = None, packed: bool = False,
                 unbatched: bool = False):
        self.input_size, self.hidden_size, self.steps, self.batch = (input_size, hidden_size,
                                                                     steps, batch)
        if lengths is None:
            lengths = [max(1, steps - (steps * b) // batch) for b in range(batch)]
        lengths = _check_lengths(lengths, steps, batch, False)
        self.num_layers = widgets.IntSlider(value=num_layers, min=1, max=4,
                                            description="num_layers")
        self.bidirectional = widgets.Checkbox(value=bidirectional, description="bidirectional")
        self.batch_first = widgets.Checkbox(value=batch_first, description="batch_first")
        proj_options = [("0 (none)", 0)] + [(str(p), p) for p in range(1, hidden_size)]
        self.proj_size = widgets.ToggleButtons(options=proj_options, value=proj_size,
                                               description="proj_size")
        self.proj_size.style.button_width = "4.5em"
        self.packed = widgets.Checkbox(value=packed, description="packed (lengths)")
        self.lengths = widgets.Text(value=", ".join(map(str, lengths)), description="lengths",
                                    continuous_update=False)
        self.sequence = widgets.Dropdown(options=list(range(batch)), value=0,
                                         description="sequence")
        self.unbatched = widgets.Checkbox(value=unbatched, description="unbatched (T, I)")
        if packed and unbatched:
            raise ValueError("packed input is always batched: use packed or unbatched, not both")
        self.shapes_text = widgets.HTML()
        self.shapes: Dict[str, Tuple[int, ...]] = {}
        self.h_n_steps: List[Optional[int]] = []
        self.error = ""
        with plt.ioff():
            self.fig, self.ax = plt.subplots(figsize=(MAX_WIDTH_IN, 5.0), dpi=DPI,
                                             layout="constrained")
        self._busy = False
        for control in (self.num_layers, self.bidirectional, self.batch_first, self.proj_size,
                        self.packed, self.lengths, self.sequence, self.unbatched):
            control.observe(self._on_change, names="value")
        self.redraw()
        controls = widgets.VBox([
            widgets.HBox([self.num_layers, self.bidirectional, self.batch_first]),
            self.proj_size,
            widgets.HBox([self.unbatched, self.packed, self.lengths, self.sequence]),
            self.shapes_text])
        self.widget = _box(controls, self.fig)

    def config(self) -> dict:
        """The nn.LSTM arguments the controls show."""
        return {"num_layers": self.num_layers.value, "bidirectional": self.bidirectional.value,
                "batch_first": self.batch_first.value, "proj_size": self.proj_size.value}

    def _lengths(self) -> Optional[List[int]]:
        """The packed lengths, or None when not packed; ValueError for bad text."""
        if not self.packed.value:
            return None
        return _check_lengths(parse_lengths(self.lengths.value), self.steps, self.batch, False)

    def _on_change(self, change) -> None:
        if self._busy:
            return
        self._busy = True
        try:  # packed and unbatched exclude each other: the one just ticked wins
            if change["owner"] is self.packed and change["new"]:
                self.unbatched.value = False
            elif change["owner"] is self.unbatched and change["new"]:
                self.packed.value = False
        finally:
            self._busy = False
        self.redraw()

    def redraw(self) -> None:
        """Redraws the grid and the shapes for the current controls."""
        cfg = self.config()
        self.sequence.disabled = self.lengths.disabled = not self.packed.value
        try:
            lengths = self._lengths()
        except ValueError as err:
            self.error = str(err)
            self.shapes_text.value = f"<b>{html.escape(self.error)}</b>"
            return
        self.error = ""
        unbatched = self.unbatched.value
        self.shapes, self.h_n_steps = _run_lstm(
            **cfg, input_size=self.input_size, hidden_size=self.hidden_size, steps=self.steps,
            batch=self.batch, lengths=lengths, unbatched=unbatched)
        self.ax.clear()
        b = self.sequence.value
        steps = self.steps if lengths is None else lengths[b]
        plot_output_grid(cfg["num_layers"], cfg["bidirectional"], steps,
                         batch_first=cfg["batch_first"], hidden_size=self.hidden_size,
                         proj_size=cfg["proj_size"], ax=self.ax)
        title = self.ax.get_title()
        if lengths is not None:
            self._hatch_padding(steps)
            title += f"\npacked: sequence {b} has length {steps}, so its h_n is step {steps - 1}"
        elif unbatched:
            title += "\nunbatched input (T, I): no batch dimension anywhere"
        self.ax.set_title(title, fontsize=10)
        self.shapes_text.value = self.shapes_html()
        self.fig.draw_without_rendering()  # lay out now: every picture of this state is the same
        self.fig.canvas.draw_idle()

    def _hatch_padding(self, n: int) -> None:
        """The steps n..T-1 of the drawn sequence: padding, not computed, zeros in output."""
        self.ax.set_xlim(-0.5, self.steps - 0.5)
        self.ax.set_xticks(range(self.steps))
        if n < self.steps:
            rows = self.ax.get_ylim()
            self.ax.add_patch(Rectangle((n - 0.5, rows[0]), self.steps - n, rows[1] - rows[0],
                                        facecolor="0.92", edgecolor="0.5", hatch="//",
                                        label="padding"))
            self.ax.text((n + self.steps - 1) / 2, sum(rows) / 2, "padding:\nnot computed,\n"
                         "zeros in output", ha="center", va="center", fontsize=8,
                         color="0.25", bbox={"facecolor": "white", "edgecolor": "none"})

    def shapes_html(self) -> str:
        """The shapes as an HTML table: symbolic layout and the sizes a real nn.LSTM gave."""
        cfg = self.config()
        bf = int(cfg["batch_first"])
        layout = 2 if self.unbatched.value else bf
        D = 2 if cfg["bidirectional"] else 1
        h_out = cfg["proj_size"] or self.hidden_size
        legend = (f"T={self.steps}, B={self.batch}, I={self.input_size}, H={self.hidden_size}, "
                  f"H_out={h_out}, L={cfg['num_layers']}, D={D}")
        rows = []
        for name, shape in self.shapes.items():
            if self.packed.value and name in _PACKED_LAYOUTS:
                symbols = _PACKED_LAYOUTS[name]
                symbols = symbols[bf] if isinstance(symbols, tuple) else symbols
            else:
                symbols = _LAYOUTS[name][layout]
            rows.append(f"<tr><td><code>{name}</code></td><td><code>{html.escape(symbols)}"
                        f"</code></td><td><code>{shape}</code></td></tr>")
        held = ""
        if self.packed.value:
            held = ("<div>h_n of the top layer (forward) holds step " + ", ".join(
                f"{s} of sequence {b}" for b, s in enumerate(self.h_n_steps)) + "</div>")
        return (f"<table><tr><th>tensor</th><th>layout</th><th>shape</th></tr>{''.join(rows)}"
                f"</table><div>{html.escape(legend)}</div>{held}")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ----------------------------------------------------------------------------------------------
# notebook 04: one layer's gates, c_t and h_t, step by step

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


# ----------------------------------------------------------------------------------------------
# notebook 05: a text coloured by one unit of a trained model

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
