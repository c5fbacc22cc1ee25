"""Pure matplotlib helpers for an LSTM's gates and cell state.

Each function takes data (tensors or arrays) and an optional Axes or Figure, draws, and returns
what it drew on. None reads global state, changes rcParams or shows anything; ``set_step``
changes the artists of a figure made by ``plot_step`` and leaves the redraw to the caller. It
changes only the artists that move and marks no Axes stale, so that a caller can blit them.

Shape legend: T time steps, H hidden size, H_out = proj_size if proj_size > 0 else H,
K steps of history.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .core import GATE_NAMES
from .style import CMAP, DPI, GATE_COLORS, MAX_WIDTH_IN, STATE_COLORS

__all__ = ["gate_heatmap", "state_lines", "plot_step", "set_step", "plot_histograms"]


def _np(x) -> np.ndarray:
    """A tensor (detached, on the CPU) or array-like as a float numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float()
    return np.asarray(x)


def _new_axes(ax: Optional[Axes], figsize=(6, 3)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, dpi=DPI, layout="constrained")
    return ax


def _unit_ticks(ax: Axes, n: int) -> None:
    """Every unit labelled when there are few, else a few integer ticks."""
    if n <= 16:
        ax.set_xticks(range(n))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(8, integer=True))


def _cells(ax: Axes, values: np.ndarray, vmin: float, vmax: float):
    """(rows, cols) values as a grid of cells, row 0 at the top and cell (r, k) centred on
    (k, r), as ``imshow`` places them. A QuadMesh (``ax.collections[-1]``), not an image: a new
    step redraws an 8x8 grid in about 0.5 ms, where Agg resamples an image in 3-6 ms."""
    rows, cols = values.shape
    mesh = ax.pcolormesh(np.arange(cols + 1) - 0.5, np.arange(rows + 1) - 0.5, values,
                         cmap=CMAP, vmin=vmin, vmax=vmax)
    ax.set_ylim(rows - 0.5, -0.5)
    return mesh


def gate_heatmap(gates, ax: Optional[Axes] = None, title: str = "gates",
                 colorbar: bool = True) -> Axes:
    """The four gates of one step as a heatmap, one row per gate in PyTorch's order i, f, g, o.

    Args:
        gates: (4, H) gate values after their activations: i, f, o in (0, 1), g in (-1, 1).
        ax: where to draw; a new figure's Axes if None.
        title: the Axes title.
        colorbar: draw a colorbar beside the Axes ("gate value", -1..1).

    Returns:
        The Axes. Its grid of cells is ``ax.collections[0]`` (a QuadMesh whose ``get_array()``
        is the (4, H) gates; colour scale fixed to -1..1); the row labels are coloured with the
        gate colours of ``lstm_states.style``.
    """
    gates = _np(gates)
    if gates.ndim != 2 or gates.shape[0] != len(GATE_NAMES):
        raise ValueError(f"gates must be (4, H), got shape {gates.shape}")
    ax = _new_axes(ax)
    cells = _cells(ax, gates, -1, 1)  # (4, H)
    ax.set_yticks(range(len(GATE_NAMES)), [f"{n}_t" for n in GATE_NAMES])
    for label, name in zip(ax.get_yticklabels(), GATE_NAMES, strict=True):
        label.set_color(GATE_COLORS[name])
        label.set_fontweight("bold")
    _unit_ticks(ax, gates.shape[1])
    ax.set_xlabel("hidden unit")
    ax.set_title(title, fontsize=10)
    if colorbar:
        ax.figure.colorbar(cells, ax=ax, label="gate value", shrink=0.9)
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
        The Axes; ``ax.lines[0]`` is c, ``ax.lines[1]`` is h (colours of
        ``lstm_states.style.STATE_COLORS``), ``ax.lines[2]`` the zero line.
    """
    c, h = _np(c), _np(h)
    ax = _new_axes(ax)
    ax.plot(np.arange(len(c)), c, "o-", color=STATE_COLORS["c"], label="$c_t$")
    ax.plot(np.arange(len(h)), h, "s--", color=STATE_COLORS["h"], label="$h_t$")
    ax.axhline(0, color="0.7", lw=0.8, zorder=0)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("hidden unit")
    ax.set_ylabel("value")
    ax.set_title(title, fontsize=10)
    if legend:
        ax.legend(loc="upper right", fontsize=8)
    return ax


# the state panel's title names no step (the gate panel's does): it stays the same at every step,
# so a step does not lay out mathtext again (about 10 ms for each new string)
STATE_TITLE = "$c_{t-1} \\to c_t$ and $h_t$"


def _titles(t: int) -> Tuple[str, str]:
    return f"gates at step t = {t}", STATE_TITLE


def _history(c: np.ndarray, t: int, K: int) -> np.ndarray:
    """(K, H): c at steps t-K+1..t (row 0 = step t), NaN before step 0."""
    out = np.full((K, c.shape[1]), np.nan)
    for k in range(K):
        if t - k >= 0:
            out[k] = c[t - k]
    return out


def _segments(c_prev: np.ndarray, c_now: np.ndarray) -> np.ndarray:
    """(H, 2, 2): one vertical segment per unit from c_{t-1} to c_t."""
    x = np.arange(len(c_now), dtype=float)
    return np.stack([np.stack([x, c_prev], 1), np.stack([x, c_now], 1)], 1)


def plot_step(gates, c, h, t: int, fig: Optional[Figure] = None, history: int = 0,
              c0=None):
    """One layer's gates, c_{t-1} -> c_t and h_t at step t (and optionally c over the last steps).

    Args:
        gates: (4, T, H) one layer's (and direction's, batch item's) gates, order i, f, g, o.
        c: (T, H) its cell states.
        h: (T, H_out) its hidden states.
        t: the step to draw.
        fig: the Figure to draw on (should be empty); a new one if None.
        history: K > 0 adds a heatmap under the gates of c at steps t-K+1..t (row "t" at the
            top, NaN before step 0), same units as the gate heatmap above it.
        c0: (H,) the initial cell state (c_{-1}, what c_{t-1} is at t = 0); zeros if None.

    Returns:
        (gate Axes, state Axes), plus the history Axes if history > 0; pass them to
        ``set_step`` to show another step. In the state Axes ``lines[0]`` is c_t,
        ``lines[1]`` h_t, ``lines[2]`` c_{t-1}, and ``collections[0]`` the segments
        c_{t-1} -> c_t, one per unit.
    """
    gates, c, h = _np(gates), _np(c), _np(h)
    T = c.shape[0]
    if not 0 <= t < T:
        raise ValueError(f"t must be in 0..{T - 1}, got {t}")
    if fig is None:
        fig = plt.figure(figsize=(MAX_WIDTH_IN, 5.0 if history else 3.2), dpi=DPI,
                         layout="constrained")
    c_init = np.zeros(c.shape[1]) if c0 is None else _np(c0)
    c_prev = c[t - 1] if t > 0 else c_init
    lo = float(min(c.min(), h.min(), c_init.min(), -1.0))
    hi = float(max(c.max(), h.max(), c_init.max(), 1.0))
    pad = 0.05 * (hi - lo)
    title_gates, title_state = _titles(t)
    if history:
        grid = fig.add_gridspec(2, 2, width_ratios=[3, 2], height_ratios=[1, 1.3])
        ax_gates = fig.add_subplot(grid[0, 0])
        ax_hist = fig.add_subplot(grid[1, 0], sharex=ax_gates)
        ax_state = fig.add_subplot(grid[:, 1])
    else:
        ax_gates, ax_state = fig.subplots(1, 2, width_ratios=[3, 2])
    gate_heatmap(gates[:, t], ax=ax_gates, title=title_gates)  # (4, H)
    state_lines(c[t], h[t], ax=ax_state, ylim=(lo - pad, hi + pad), title=title_state)
    ax_state.plot(np.arange(c.shape[1]), c_prev, "o", mfc="none", color=STATE_COLORS["c"],
                  alpha=0.6, label="$c_{t-1}$")
    from matplotlib.collections import LineCollection

    ax_state.add_collection(LineCollection(_segments(c_prev, c[t]), colors=STATE_COLORS["c"],
                                           linewidths=2.0, alpha=0.5))
    ax_state.legend(loc="upper right", fontsize=8)
    _unit_ticks(ax_state, c.shape[1])
    if not history:
        return ax_gates, ax_state
    lim = float(np.abs(np.concatenate([c.ravel(), c_init])).max()) or 1.0
    cells = _cells(ax_hist, _history(c, t, history), -lim, lim)  # (K, H)
    ax_hist.set_yticks(range(history), ["t"] + [f"t-{k}" for k in range(1, history)])
    ax_hist.set_xlabel("hidden unit")
    ax_gates.set_xlabel("")
    ax_hist.set_title(f"c of every unit over the last {history} steps", fontsize=10)
    fig.colorbar(cells, ax=ax_hist, label=f"c (|c| ≤ {lim:.2f})", shrink=0.9)
    return ax_gates, ax_state, ax_hist


def set_step(axes: Sequence[Axes], gates, c, h, t: int, c0=None) -> None:
    """Shows step t on axes made by ``plot_step`` (same data); the caller redraws.

    Args:
        axes: the Axes ``plot_step`` returned (2, or 3 with a history).
        gates, c, h: the same (4, T, H), (T, H), (T, H_out) data given to ``plot_step``.
        t: the step to show.
        c0: the same initial cell state given to ``plot_step``.
    """
    ax_gates, ax_state = axes[0], axes[1]
    c_np = _np(c)
    c_prev = c_np[t - 1] if t > 0 else (np.zeros(c_np.shape[1]) if c0 is None else _np(c0))
    title_gates, _ = _titles(t)
    ax_gates.collections[0].set_array(_np(gates[:, t]))  # (4, H)
    ax_gates.title.set_text(title_gates)  # not set_title: it would mark the Axes stale
    ax_state.lines[0].set_ydata(c_np[t])  # (H,)
    ax_state.lines[1].set_ydata(_np(h[t]))  # (H_out,)
    ax_state.lines[3].set_ydata(c_prev)  # (H,)
    ax_state.collections[0].set_segments(_segments(c_prev, c_np[t]))
    if len(axes) > 2:
        cells = axes[2].collections[0]
        cells.set_array(_history(c_np, t, cells.get_array().shape[0]))  # (K, H)


def plot_histograms(values: Mapping[str, object], ax: Optional[Axes] = None, bins: int = 40,
                    value_range: Tuple[float, float] = (-1.0, 1.0),
                    title: str = "") -> Axes:
    """Overlaid histograms, one outline per named set of values (each flattened); the height of
    a bar is the **fraction** of that set's values in the bin (each outline sums to 1 over the
    bins, for values inside value_range).

    Args:
        values: name -> tensor or array of any shape, e.g. {"i": st.gate("i"), ...}. A name
            that is a gate ("i", "f", "g", "o", or "i_t", ...) gets its gate colour.
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
        gate = name[:-2] if name.endswith("_t") else name
        color = GATE_COLORS.get(gate, "0.25")
        ax.hist(v, bins=edges, histtype="step", lw=1.5, label=name, color=color,
                weights=np.full(v.shape, 1.0 / max(v.size, 1)))
    ax.set_xlabel("value")
    ax.set_ylabel("fraction of values")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    return ax
