"""Pure plotting functions for every layer's states: data and optional Axes in, the Axes out.

Shape legend: L layers, D directions (1 or 2), T time steps, B batch, H hidden size,
H_out = proj_size if proj_size > 0 else H.

Conventions (``lstm_states.style``): layer 0 at the bottom when a new figure stacks layers,
time along x with ``style.time_limits`` (a cursor at t = 0 or T-1 stays visible), c_t and h_t
in their colours, RdBu_r symmetric about 0. Nothing here reads global state or changes rcParams;
matplotlib is imported when a function is called, so ``import lstm_states`` never needs it.
"""

from __future__ import annotations

from typing import Optional, Sequence

from .style import CMAP, CURSOR, DPI, MAX_WIDTH_IN, TIME_LABEL, time_limits

__all__ = ["select_sequence", "symmetric_limit", "value_range", "plot_state_heatmaps",
           "plot_states_at_step"]


def select_sequence(states, batch_index: int, direction: int):
    """(h, c) of one batch element and direction as float numpy arrays.

    Args:
        states: an ``LSTMStates`` (or anything with ``.h`` (L, D, T, B, H_out) and ``.c``
            (L, D, T, B, H)).
        batch_index, direction: which sequence and which direction (0 forward, 1 reverse).

    Returns:
        h (L, T, H_out), c (L, T, H).
    """
    h, c = states.h, getattr(states, "c", None)
    if h is None or c is None:
        raise ValueError("these states have no " + ("h" if h is None else "c") + ": capture"
                         " them with that field (e.g. capture(lstm, x) captures every field)")
    if h.dim() != 5 or c.dim() != 5:
        raise ValueError(f"states.h and states.c must be 5-D (L, D, T, B, H), got shapes"
                         f" {tuple(h.shape)} and {tuple(c.shape)}")
    D, B = h.shape[1], h.shape[3]
    if not 0 <= direction < D:
        raise ValueError(f"direction must be in 0..{D - 1} for these states (D={D}), got"
                         f" {direction}")
    if not 0 <= batch_index < B:
        raise ValueError(f"batch_index must be in 0..{B - 1} (batch size {B}), got {batch_index}")
    h = h[:, direction, :, batch_index].detach().cpu().float().numpy()  # (L, T, H_out)
    c = c[:, direction, :, batch_index].detach().cpu().float().numpy()  # (L, T, H)
    return h, c


def symmetric_limit(values) -> float:
    """max |values|, or 1 where every value is 0: a colour scale -lim..lim."""
    import numpy as np

    m = float(np.abs(values).max()) if np.size(values) else 0.0
    return m if m > 0 else 1.0


def _stacked_axes(L: int, ncols: int, width: float, row_height: float, **gridspec_kw):
    """A new figure of L rows, layer 0 in the bottom row; returns (fig, axes) with axes[layer]."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(L, ncols, figsize=(width, row_height * L + 0.9), dpi=DPI,
                             squeeze=False, layout="constrained", gridspec_kw=gridspec_kw)
    return fig, axes[::-1]  # row L-1 of the grid is layer 0


def plot_state_heatmaps(states, batch_index: int = 0, direction: int = 0,
                        t: Optional[int] = None, axes=None):
    """Heatmaps of every layer's h_t and c_t over time (rows: units, columns: steps).

    h and c have a colour scale each (symmetric about 0, shared by every layer, so layers can
    be compared); each column of heatmaps has its colorbar beside it, labelled with what it
    shows and its limit.

    Args:
        states: an ``LSTMStates`` (or anything with ``.h`` (L, D, T, B, H_out) and ``.c``
            (L, D, T, B, H)).
        batch_index, direction: which sequence and direction to show.
        t: if given, a vertical cursor is drawn at step t on every heatmap.
        axes: (L, 2) array of Axes, ``axes[layer]`` = (h Axes, c Axes); a new figure (layer 0 at
            the bottom) if None.

    Returns:
        The (L, 2) array of Axes, ``axes[layer]``. ``axes[l, 0].images[0]`` holds layer l's h as
        (H_out, T), ``axes[l, 1].images[0]`` its c as (H, T); the cursor, if any, is each Axes'
        last line. The two colorbars are ``axes[0, k].images[0].colorbar``.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    h, c = select_sequence(states, batch_index, direction)
    L, T = h.shape[0], h.shape[1]
    if axes is None:
        _, axes = _stacked_axes(L, 2, MAX_WIDTH_IN, 1.7)
    axes = np.asarray(axes).reshape(L, 2)
    for col, (name, values) in enumerate((("h", h), ("c", c))):
        lim = symmetric_limit(values)
        image = None
        for layer in range(L):
            ax = axes[layer, col]
            image = ax.imshow(values[layer].T, cmap=CMAP, vmin=-lim, vmax=lim, origin="lower",
                              aspect="auto", interpolation="nearest")  # (units, T)
            ax.set_xlim(*time_limits(T))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
            ax.set_title(f"layer {layer}: {name}_t", fontsize=10)
            ax.set_ylabel("unit")
            ax.set_xlabel(TIME_LABEL if layer == 0 else "")
            if t is not None:
                ax.axvline(t, **CURSOR)
        cbar = ax.figure.colorbar(image, ax=list(axes[:, col]), shrink=0.9, aspect=30)
        cbar.set_label(f"{name}_t, every layer (|{name}| ≤ {lim:.2f})")
        for layer in range(L):  # one colorbar per column: every image of it knows it
            axes[layer, col].images[0].colorbar = cbar
    return axes


def plot_states_at_step(states, t: int, batch_index: int = 0, direction: int = 0, axes=None):
    """Every layer's c_t and h_t at one step t, as values per unit (``gateplots.state_lines``
    on each layer).

    Args:
        states: an ``LSTMStates`` (or anything with ``.h`` and ``.c``, see
            ``plot_state_heatmaps``).
        t: the time step.
        batch_index, direction: which sequence and direction to show.
        axes: L Axes, ``axes[layer]``; a new figure (layer 0 at the bottom) if None.

    Returns:
        The (L,) array of Axes. ``axes[l].lines[0]`` is layer l's c_t (y: H values),
        ``axes[l].lines[1]`` its h_t (y: H_out values). One y range for every layer and step
        (h and c on one scale), so that moving t never rescales the axes.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from .gateplots import state_lines

    h, c = select_sequence(states, batch_index, direction)  # (L, T, H_out), (L, T, H)
    L, T = h.shape[0], h.shape[1]
    if not 0 <= t < T:
        raise ValueError(f"t must be in 0..{T - 1}, got {t}")
    if axes is None:
        _, axes = _stacked_axes(L, 1, 3.5, 1.7)
    axes = np.asarray(axes).reshape(L)
    low, high = value_range(h, c)
    for layer in range(L):
        state_lines(c[layer, t], h[layer, t], ax=axes[layer], ylim=(low, high),
                    title=f"layer {layer} at t = {t}", legend=layer == L - 1)
        axes[layer].set_xlabel("hidden unit" if layer == 0 else "")
        if c.shape[2] <= 16:
            axes[layer].set_xticks(range(c.shape[2]))
        else:
            axes[layer].xaxis.set_major_locator(MaxNLocator(8, integer=True))
    return axes


def value_range(*arrays: Sequence) -> tuple:
    """(low, high) covering every value of the arrays with a 5 % margin: a fixed y range."""
    import numpy as np

    low = min(float(np.min(a)) for a in arrays)
    high = max(float(np.max(a)) for a in arrays)
    pad = 0.05 * (high - low) + 1e-6
    return low - pad, high + pad

