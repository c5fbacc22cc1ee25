"""Pure matplotlib helpers for an LSTM's gates and cell state.

Each function takes data (tensors or arrays) and an optional Axes or Figure, draws, and returns
what it drew on. None reads global state, changes rcParams or shows anything; ``set_step``
changes the artists of a figure made by ``plot_step`` and leaves the redraw to the caller.

Shape legend: T time steps, H hidden size, H_out = proj_size if proj_size > 0 else H.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .core import GATE_NAMES

__all__ = ["gate_heatmap", "state_lines", "plot_step", "set_step", "plot_histograms"]


def _np(x) -> np.ndarray:
    """A tensor (detached, on the CPU) or array-like as a numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def _new_axes(ax: Optional[Axes], figsize=(6, 3)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def gate_heatmap(gates, ax: Optional[Axes] = None, title: str = "gates") -> Axes:
    """The four gates of one step as a heatmap, one row per gate in PyTorch's order i, f, g, o.

    Args:
        gates: (4, H) gate values after their activations: i, f, o in (0, 1), g in (-1, 1).
        ax: where to draw; a new figure's Axes if None.
        title: the Axes title.

    Returns:
        The Axes. Its image is ``ax.images[0]`` (colour scale fixed to -1..1, with a colorbar).
    """
    gates = _np(gates)
    if gates.ndim != 2 or gates.shape[0] != len(GATE_NAMES):
        raise ValueError(f"gates must be (4, H), got shape {gates.shape}")
    ax = _new_axes(ax)
    im = ax.imshow(gates, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto",
                   interpolation="nearest")
    ax.set_yticks(range(len(GATE_NAMES)), [f"{n}_t" for n in GATE_NAMES])
    ax.set_xlabel("hidden unit")
    ax.set_ylabel("gate")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, label="gate value")
    return ax


def state_lines(c, h, ax: Optional[Axes] = None, ylim: Optional[Tuple[float, float]] = None,
                title: str = "cell and hidden state", legend: bool = True) -> Axes:
    """c_t and h_t of one step against the hidden unit index.

    Args:
        c: (H,) cell state.
        h: (H_out,) hidden state (H_out < H with proj_size).
        ax: where to draw; a new figure's Axes if None.
        ylim: fixed y range, so that the axes do not jump when the data change.
        title: the Axes title.
        legend: whether to draw the legend.

    Returns:
        The Axes; ``ax.lines[0]`` is c, ``ax.lines[1]`` is h.
    """
    c, h = _np(c), _np(h)
    ax = _new_axes(ax)
    ax.plot(np.arange(len(c)), c, "o-", label="$c_t$")
    ax.plot(np.arange(len(h)), h, "s--", label="$h_t$")
    ax.axhline(0, color="0.7", lw=0.8, zorder=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("hidden unit")
    ax.set_ylabel("value")
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(loc="upper right", fontsize=8)
    return ax


def _titles(t: int) -> Tuple[str, str]:
    return f"gates at step t = {t}", f"$c_t$ and $h_t$ at step t = {t}"


def plot_step(gates, c, h, t: int, fig: Optional[Figure] = None) -> Tuple[Axes, Axes]:
    """One layer's gates, c_t and h_t at step t, side by side.

    Args:
        gates: (4, T, H) one layer's (and direction's, batch item's) gates, order i, f, g, o.
        c: (T, H) its cell states.
        h: (T, H_out) its hidden states.
        t: the step to draw.
        fig: the Figure to draw on (should be empty); a new one if None.

    Returns:
        (gate Axes, state Axes); pass them to ``set_step`` to show another step.
    """
    gates, c, h = _np(gates), _np(c), _np(h)
    if fig is None:
        fig = plt.figure(figsize=(10, 3.4), layout="constrained")
    ax_gates, ax_state = fig.subplots(1, 2, width_ratios=[3, 2])
    lo = float(min(c.min(), h.min(), -1.0))
    hi = float(max(c.max(), h.max(), 1.0))
    pad = 0.05 * (hi - lo)
    title_gates, title_state = _titles(t)
    gate_heatmap(gates[:, t], ax=ax_gates, title=title_gates)  # (4, H)
    state_lines(c[t], h[t], ax=ax_state, ylim=(lo - pad, hi + pad), title=title_state)
    return ax_gates, ax_state


def set_step(axes: Sequence[Axes], gates, c, h, t: int) -> None:
    """Shows step t on axes made by ``plot_step`` (same data); the caller redraws.

    Args:
        axes: (gate Axes, state Axes) as ``plot_step`` returned them.
        gates, c, h: the same (4, T, H), (T, H), (T, H_out) data given to ``plot_step``.
        t: the step to show.
    """
    ax_gates, ax_state = axes
    title_gates, title_state = _titles(t)
    ax_gates.images[0].set_data(_np(gates[:, t]))  # (4, H)
    ax_gates.set_title(title_gates)
    ax_state.lines[0].set_ydata(_np(c[t]))  # (H,)
    ax_state.lines[1].set_ydata(_np(h[t]))  # (H_out,)
    ax_state.set_title(title_state)


def plot_histograms(values: Mapping[str, object], ax: Optional[Axes] = None, bins: int = 40,
                    value_range: Tuple[float, float] = (-1.0, 1.0),
                    title: str = "") -> Axes:
    """Overlaid histograms, one outline per named set of values (each flattened).

    Args:
        values: name -> tensor or array of any shape, e.g. {"i": st.gate("i"), ...}.
        ax: where to draw; a new figure's Axes if None.
        bins: number of bins over ``value_range``.
        value_range: (low, high) of the bins.
        title: the Axes title.

    Returns:
        The Axes; one patch per name, in the order given, with the name as its label.
    """
    ax = _new_axes(ax)
    edges = np.linspace(value_range[0], value_range[1], bins + 1)
    for name, v in values.items():
        v = _np(v).ravel()
        ax.hist(v, bins=edges, histtype="step", lw=1.5, label=name,
                weights=np.full(v.shape, 1.0 / max(v.size, 1)))
    ax.set_xlabel("value")
    ax.set_ylabel("fraction of values")
    ax.set_title(title)
    ax.legend(loc="best")
    return ax
