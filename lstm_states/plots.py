"""Pure plotting functions: they take data and optional Axes, and return the Axes they drew on.

Shape legend: L layers, D directions (1 or 2), T time steps, B batch, H hidden size,
H_out = proj_size if proj_size > 0 else H.

Nothing here reads global state or changes rcParams; matplotlib is imported when a function is
called, so ``import lstm_states`` never needs it.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["plot_state_heatmaps", "plot_states_at_step"]

def _select(states, batch_index: int, direction: int):
    """(h, c) of one batch element and direction as numpy: (L, T, H_out), (L, T, H)."""
    h, c = states.h, states.c  # (L, D, T, B, H_out), (L, D, T, B, H)
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


def _symmetric_limit(values) -> float:
    import numpy as np

    m = float(np.abs(values).max())
    return m if m > 0 else 1.0


def plot_state_heatmaps(states, batch_index: int = 0, direction: int = 0,
                        t: Optional[int] = None, axes=None):
    """Heatmaps of every layer's h_t and c_t over time (rows: units, columns: steps).

    Args:
        states: an ``LSTMStates`` (or anything with ``.h`` (L, D, T, B, H_out) and ``.c``
            (L, D, T, B, H)).
        batch_index, direction: which sequence and direction to show.
        t: if given, a vertical cursor is drawn at step t on every heatmap.
        axes: (L, 2) array of Axes, column 0 for h and 1 for c; a new figure if None.

    Returns:
        The (L, 2) array of Axes. ``axes[l, 0].images[0]`` holds layer l's h as (H_out, T),
        ``axes[l, 1].images[0]`` its c as (H, T); the cursor, if any, is each Axes' last line.
        One colorbar per column, symmetric about 0 and shared by all layers.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    h, c = _select(states, batch_index, direction)
    L = h.shape[0]
    if axes is None:
        _, axes = plt.subplots(L, 2, figsize=(9, 1.9 * L + 0.6), squeeze=False,
                               layout="constrained")
    axes = np.asarray(axes).reshape(L, 2)
    for col, (name, values) in enumerate((("h", h), ("c", c))):
        lim = _symmetric_limit(values)
        image = None
        for layer in range(L):
            ax = axes[layer, col]
            image = ax.imshow(values[layer].T, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower",
                              aspect="auto", interpolation="nearest")  # (units, T)
            ax.set_title(f"layer {layer}: {name}_t", fontsize=10)
            ax.set_ylabel("unit")
            ax.set_xlabel("time step t" if layer == L - 1 else "")
            if t is not None:
                ax.axvline(t, color="black", linewidth=1.5)
        ax.figure.colorbar(image, ax=list(axes[:, col]), label=f"{name}_t", shrink=0.9)
    return axes


def plot_states_at_step(states, t: int, batch_index: int = 0, direction: int = 0, axes=None):
    """Every layer's c_t and h_t at one step t, as values per unit (``gateplots.state_lines``
    on each layer).

    Args:
        states: an ``LSTMStates`` (or anything with ``.h`` and ``.c``, see
            ``plot_state_heatmaps``).
        t: the time step.
        batch_index, direction: which sequence and direction to show.
        axes: L Axes, one per layer; a new figure if None.

    Returns:
        The (L,) array of Axes. ``axes[l].lines[0]`` is layer l's c_t (y: H values),
        ``axes[l].lines[1]`` its h_t (y: H_out values). The y-limits cover every step, so that
        moving t never rescales the axes.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .gateplots import state_lines

    h, c = _select(states, batch_index, direction)  # (L, T, H_out), (L, T, H)
    L, T = h.shape[0], h.shape[1]
    if not 0 <= t < T:
        raise ValueError(f"t must be in 0..{T - 1}, got {t}")
    if axes is None:
        _, axes = plt.subplots(L, 1, figsize=(4, 1.9 * L + 0.6), squeeze=False,
                               layout="constrained")
    axes = np.asarray(axes).reshape(L)
    low = min(float(h.min()), float(c.min()))
    high = max(float(h.max()), float(c.max()))
    pad = 0.05 * (high - low) + 1e-6
    for layer in range(L):
        state_lines(c[layer, t], h[layer, t], ax=axes[layer], ylim=(low - pad, high + pad),
                    title=f"layer {layer} at t = {t}", legend=layer == 0)
        axes[layer].set_xlabel("hidden unit" if layer == L - 1 else "")
        axes[layer].set_xticks(range(c.shape[2]))
    return axes
