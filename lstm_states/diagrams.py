"""Diagrams of what an LSTM computes and what ``nn.LSTM`` returns of it, drawn with matplotlib.

Shape legend: L layers, D directions (1 or 2), T time steps, H hidden size,
H_out = proj_size if proj_size > 0 else H.

Each diagram comes with the data it claims (``return_cells``), so that a test or a notebook can
check the picture against the tensors ``nn.LSTM`` returns. matplotlib is imported when a
function is called, so ``import lstm_states`` never needs it.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

__all__ = ["return_cells", "plot_output_grid", "OUTPUT_COLOR", "H_N_COLOR", "C_N_COLOR"]

OUTPUT_COLOR = "#9ecae1"  # fill of the cells that ``output`` holds
H_N_COLOR = "#d62728"  # outline of the cells that ``h_n`` holds
C_N_COLOR = "#2ca02c"  # outline of the cells that ``c_n`` holds

Cell = Tuple[int, int, str, int, int]  # (layer, direction, "h" or "c", t, index in the return)


def return_cells(num_layers: int, bidirectional: bool, steps: int) -> Dict[str, List[Cell]]:
    """Which (layer, direction, state, step) cells each of nn.LSTM's returns holds.

    Args:
        num_layers, bidirectional: as for ``nn.LSTM``.
        steps: T, the number of time steps (for packed input: a sequence's own length).

    Returns:
        ``{"output": [...], "h_n": [...], "c_n": [...]}``, each a list of cells
        ``(layer, direction, state, t, index)``. For ``output`` the index is t: the cell is
        ``output[t, :, direction*H_out:(direction+1)*H_out]`` (``output[:, t, ...]`` if
        batch_first). For ``h_n``/``c_n`` it is k = layer * D + direction, the row of
        ``h_n[k]``/``c_n[k]`` (layer-major). The forward direction ends at t = T-1, the reverse
        direction at t = 0.
    """
    if num_layers < 1 or steps < 1:
        raise ValueError(f"num_layers and steps must be >= 1, got {num_layers} and {steps}")
    D = 2 if bidirectional else 1
    top = num_layers - 1
    cells: Dict[str, List[Cell]] = {"output": [], "h_n": [], "c_n": []}
    for t in range(steps):
        for d in range(D):
            cells["output"].append((top, d, "h", t, t))
    for layer in range(num_layers):
        for d in range(D):
            k = layer * D + d
            last = steps - 1 if d == 0 else 0
            cells["h_n"].append((layer, d, "h", last, k))
            cells["c_n"].append((layer, d, "c", last, k))
    return cells


def _grid_row(layer: int, direction: int, state: str, D: int) -> int:
    """Row of a cell in the grid picture, counted from the bottom: layer 0 at the bottom, and
    within one layer and direction the c row under the h row."""
    return (layer * D + direction) * 2 + (1 if state == "h" else 0)


def plot_output_grid(num_layers: int = 2, bidirectional: bool = False, steps: int = 6,
                     batch_first: bool = False, hidden_size: Optional[int] = None,
                     proj_size: int = 0, ax=None):
    """Draws the layers x time grid of an LSTM's states and marks what each return holds.

    Each row is one state (h or c) of one layer and direction, each column one time step.
    Filled cells are in ``output``; cells outlined in red are in ``h_n`` and in green in ``c_n``,
    labelled with their row of ``h_n``/``c_n``. Every other cell is computed by nn.LSTM but not
    returned.

    Args:
        num_layers, bidirectional, batch_first, proj_size: as for ``nn.LSTM``.
        steps: T, the number of columns.
        hidden_size: if given, the legend states the vector sizes (H_out for h, H for c).
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes. ``ax.images[0]`` holds the grid, (2*L*D, T): 1 where ``output`` holds the cell.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch, Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.9 * steps + 2.5), 1.0 + 0.42 * num_layers
                                      * (4 if bidirectional else 2)), layout="constrained")
    D = 2 if bidirectional else 1
    cells = return_cells(num_layers, bidirectional, steps)
    rows = 2 * num_layers * D
    grid = np.zeros((rows, steps))  # (2*L*D, T)
    for layer, d, state, t, _ in cells["output"]:
        grid[_grid_row(layer, d, state, D), t] = 1
    ax.imshow(grid, cmap=ListedColormap(["white", OUTPUT_COLOR]), vmin=0, vmax=1,
              origin="lower", aspect="auto", extent=(-0.5, steps - 0.5, -0.5, rows - 0.5))
    for name, color in (("h_n", H_N_COLOR), ("c_n", C_N_COLOR)):
        for layer, d, state, t, k in cells[name]:
            row = _grid_row(layer, d, state, D)
            ax.add_patch(Rectangle((t - 0.44, row - 0.4), 0.88, 0.8, fill=False, edgecolor=color,
                                   linewidth=2.5, label=f"{name}[{k}]"))
            ax.text(t, row, f"{name}[{k}]", ha="center", va="center", fontsize=8, color=color,
                    fontweight="bold")
    # thin lines between cells, thicker ones between layers
    for y in range(rows + 1):
        ax.axhline(y - 0.5, color="0.3" if y % (2 * D) == 0 else "0.8", linewidth=1.2 if
                   y % (2 * D) == 0 else 0.6)
    for x in range(steps + 1):
        ax.axvline(x - 0.5, color="0.8", linewidth=0.6)

    labels = [""] * rows
    for layer in range(num_layers):
        for d in range(D):
            tag = ("", " fwd", " rev")[d + 1 if D == 2 else 0]
            for state in ("h", "c"):
                labels[_grid_row(layer, d, state, D)] = f"layer {layer}{tag} {state}_t"
    ax.set_yticks(range(rows), labels)
    ax.set_xticks(range(steps))
    ax.set_xlabel("time step t")
    ax.set_ylabel("layer, direction, state")
    ax.set_title(f"nn.LSTM(num_layers={num_layers}, bidirectional={bidirectional}, "
                 f"batch_first={batch_first}, proj_size={proj_size}): what each return holds",
                 fontsize=10)

    h_size = c_size = ""
    if hidden_size is not None:
        h_out = proj_size if proj_size > 0 else hidden_size
        h_size, c_size = f", size {h_out}", f", size {hidden_size}"
    out_index = "output[:, t]" if batch_first else "output[t]"
    out_label = f"{out_index}: top layer's h_t{h_size}"
    if D == 2:
        out_label += " (fwd | rev side by side)"
    handles = [Patch(facecolor=OUTPUT_COLOR, edgecolor="0.5", label=out_label),
               Patch(facecolor="white", edgecolor=H_N_COLOR, linewidth=2.5,
                     label=f"h_n[k]: last h_t of every layer{h_size}"),
               Patch(facecolor="white", edgecolor=C_N_COLOR, linewidth=2.5,
                     label=f"c_n[k]: last c_t of every layer{c_size}")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
              fontsize=8, frameon=False)
    return ax
