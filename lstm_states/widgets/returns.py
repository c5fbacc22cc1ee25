"""Notebook 01: what nn.LSTM returns, for a configuration the reader picks
(``ReturnsExplorer``), and the shapes a real nn.LSTM gives (``lstm_return_shapes``).

Shape legend: L layers, D directions, T steps, B batch, I input, H hidden, H_out = P or H.
"""

from __future__ import annotations

import html
from typing import Dict, List, Optional, Sequence, Tuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..diagrams import plot_output_grid
from ..style import DPI, MAX_WIDTH_IN
from .controls import _box

__all__ = ["ReturnsExplorer", "lstm_return_shapes", "parse_lengths"]

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
