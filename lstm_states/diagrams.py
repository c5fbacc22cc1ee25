"""Diagrams of what an LSTM computes and what ``nn.LSTM`` returns of it, drawn with matplotlib.

Shape legend: L layers, D directions (1 or 2), T time steps, B batch, H hidden size,
H_out = proj_size if proj_size > 0 else H.

Each diagram is drawn from data that a test or a notebook can check against tensors:

- the unrolled layers x time grid (``plot_output_grid``) from ``return_cells`` (which states
  ``output``, ``h_n`` and ``c_n`` hold), ``grid_edges`` (which state feeds which) and
  ``inputs_seen`` (which inputs each state has read, following the edges);
- the LSTM cell (``plot_lstm_cell``) from ``CELL_GRAPH``, the cell's equations as a graph of
  operations, which ``run_cell_graph`` evaluates on real parameters.

Every arrow and marked cell carries a ``gid`` naming what it stands for, so a test can read the
picture back. matplotlib is imported when a function is called, so ``import lstm_states`` never
needs it.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

from .style import GATE_COLORS

__all__ = ["return_cells", "grid_edges", "inputs_seen", "plot_output_grid", "CELL_GRAPH",
           "run_cell_graph", "plot_lstm_cell", "OUTPUT_COLOR", "H_N_COLOR", "C_N_COLOR",
           "SEEN_COLOR"]

OUTPUT_COLOR = "#9ecae1"  # fill of the cells that ``output`` holds
H_N_COLOR = "#d62728"  # outline of the cells that ``h_n`` holds
C_N_COLOR = "#2ca02c"  # outline of the cells that ``c_n`` holds
SEEN_COLOR = "#ff7f0e"  # hatching of the states that have read a chosen input

Cell = Tuple[int, int, str, int, int]  # (layer, direction, "h" or "c", t, index in the return)
Node = Union[Tuple[str, int], Tuple[int, int, int]]  # ("x", t) or (layer, direction, t)


# ---------------------------------------------------------------------------------------------
# The unrolled grid: its data


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
    _check_sizes(num_layers, steps)
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


def grid_edges(num_layers: int, bidirectional: bool, steps: int) -> List[Tuple[Node, Node]]:
    """What feeds what in an unrolled (stacked, maybe bidirectional) LSTM.

    Nodes are ``("x", t)`` (the input at position t) and ``(layer, direction, t)`` (that
    layer's and direction's state (h_t, c_t) at input position t).

    Returns:
        a list of edges ``(source, target)``:
        - the recurrence: ``(l, 0, t-1) -> (l, 0, t)`` forward, ``(l, 1, t+1) -> (l, 1, t)``
          reverse (the reverse direction reads the sequence from its end);
        - the input: ``("x", t) -> (0, d, t)``, and ``(l-1, d', t) -> (l, d, t)`` for every d'
          and d: each direction of layer l reads ``[forward h_t, reverse h_t]`` of layer l-1.
    """
    _check_sizes(num_layers, steps)
    D = 2 if bidirectional else 1
    edges: List[Tuple[Node, Node]] = []
    for layer in range(num_layers):
        for d in range(D):
            for t in range(steps):
                if layer == 0:
                    edges.append((("x", t), (0, d, t)))
                else:
                    edges.extend(((layer - 1, below, t), (layer, d, t)) for below in range(D))
                prev = t - 1 if d == 0 else t + 1
                if 0 <= prev < steps:
                    edges.append(((layer, d, prev), (layer, d, t)))
    return edges


def inputs_seen(num_layers: int, bidirectional: bool, steps: int) -> Dict[Node, FrozenSet[int]]:
    """For each state node, the input positions it has read: those with a path to it in
    ``grid_edges`` (a state depends on x_s exactly when such a path exists)."""
    edges = grid_edges(num_layers, bidirectional, steps)
    sources: Dict[Node, List[Node]] = {}
    for src, dst in edges:
        sources.setdefault(dst, []).append(src)
    seen: Dict[Node, FrozenSet[int]] = {}

    def visit(node: Node) -> FrozenSet[int]:
        if node[0] == "x":
            return frozenset([node[1]])
        if node not in seen:
            seen[node] = frozenset().union(*(visit(s) for s in sources.get(node, [])))
        return seen[node]

    # visit in an order where every source comes first: layer by layer, each direction in the
    # order it runs (keeps the recursion shallow for long sequences)
    D = 2 if bidirectional else 1
    for layer in range(num_layers):
        for d in range(D):
            for t in (range(steps) if d == 0 else reversed(range(steps))):
                visit((layer, d, t))
    return seen


def _check_sizes(num_layers: int, steps: int) -> None:
    if num_layers < 1 or steps < 1:
        raise ValueError(f"num_layers and steps must be >= 1, got {num_layers} and {steps}")


# ---------------------------------------------------------------------------------------------
# The unrolled grid: the picture

_HALF_W = 0.3  # half the width of a node (one column is 1 wide)
_GAP = 0.2  # white space between the bands of two layers/directions (a band is 2 rows)


def _grid_row(layer: int, direction: int, state: str, D: int) -> int:
    """Row of a cell in the grid picture, counted from the bottom: layer 0 at the bottom, and
    within one layer and direction the c row under the h row."""
    return (layer * D + direction) * 2 + (1 if state == "h" else 0)


def _node_box(layer: int, d: int, t: int, D: int) -> Tuple[float, float, float, float]:
    """(left, bottom, right, top) of a state node: its c cell and its h cell stacked."""
    bottom = _grid_row(layer, d, "c", D) - 0.5 + _GAP / 2
    return t - _HALF_W, bottom, t + _HALF_W, bottom + 2 - _GAP


def plot_output_grid(num_layers: int = 2, bidirectional: bool = False, steps: int = 6,
                     batch_first: bool = False, hidden_size: Optional[int] = None,
                     proj_size: int = 0, seen_from: Optional[int] = None, ax=None):
    """Draws the unrolled layers x time grid of an LSTM and marks what each return holds.

    Each node is one layer's and direction's state at one input position: its h_t cell over its
    c_t cell. Arrows are ``grid_edges``: the recurrence (to the right forward, to the left
    reverse) and each layer's input (x_t, or the layer below). Filled cells are in ``output``;
    cells outlined in red are in ``h_n`` and in green in ``c_n``, labelled with their row.
    Every other cell is computed by nn.LSTM but not returned.

    Args:
        num_layers, bidirectional, batch_first, proj_size: as for ``nn.LSTM``.
        steps: T, the number of columns.
        hidden_size: if given, the legend states the vector sizes (H_out for h, H for c).
        seen_from: if given, an input position s: hatch every state that has read x_s
            (``inputs_seen``).
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes. ``ax.images[0]`` holds the grid, (2*L*D, T) with row ``_grid_row``: 1 where
        ``output`` holds the cell. Arrows have gid ``"edge <source> -> <target>"``, the h_n/c_n
        outlines ``"h_n[k]"``/``"c_n[k]"``, hatched nodes ``"seen <node>"``.
    """
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch, Patch, Rectangle
    from matplotlib.path import Path

    D = 2 if bidirectional else 1
    rows = 2 * num_layers * D
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.9 * steps + 2.5), 1.6 + 0.42 * (rows + 2)),
                             layout="constrained")
    cells = return_cells(num_layers, bidirectional, steps)
    grid = np.zeros((rows, steps))  # (2*L*D, T)
    for layer, d, state, t, _ in cells["output"]:
        grid[_grid_row(layer, d, state, D), t] = 1
    ax.imshow(grid, cmap=ListedColormap(["white", OUTPUT_COLOR]), vmin=0, vmax=1,
              origin="lower", aspect="auto", extent=(-0.5, steps - 0.5, -0.5, rows - 0.5),
              zorder=0)
    # white gutters between the columns and between the bands turn the grid into nodes
    for t in range(steps + 1):
        ax.add_patch(Rectangle((t - 1 + _HALF_W, -2.5), 1 - 2 * _HALF_W, rows + 3,
                               facecolor="white", edgecolor="none", zorder=1))
    for band in range(num_layers * D + 1):
        ax.add_patch(Rectangle((-1, 2 * band - 0.5 - _GAP / 2), steps + 1, _GAP,
                               facecolor="white", edgecolor="none", zorder=1))
    for layer in range(num_layers):
        for d in range(D):
            for t in range(steps):
                left, bottom, right, top = _node_box(layer, d, t, D)
                ax.add_patch(Rectangle((left, bottom), right - left, top - bottom, fill=False,
                                       edgecolor="0.45", linewidth=0.8, zorder=2))
                ax.plot([left, right], [bottom + 1 - _GAP / 2] * 2, color="0.75", lw=0.6,
                        zorder=2)  # between the c cell (below) and the h cell (above)
    # the inputs x_t, under layer 0
    x_bottom, x_top = -1.9, -1.0
    for t in range(steps):
        ax.add_patch(Rectangle((t - _HALF_W, x_bottom), 2 * _HALF_W, x_top - x_bottom,
                               facecolor="0.93", edgecolor="0.45", linewidth=0.8, zorder=2))
        ax.text(t, (x_bottom + x_top) / 2, f"x_{t}", ha="center", va="center", fontsize=8,
                zorder=3)

    # what has read x_s
    if seen_from is not None:
        if not 0 <= seen_from < steps:
            raise ValueError(f"seen_from must be an input position in [0, {steps}), got "
                             f"{seen_from}")
        for node, seen in inputs_seen(num_layers, bidirectional, steps).items():
            if seen_from in seen:
                left, bottom, right, top = _node_box(*node, D)
                ax.add_patch(Rectangle((left, bottom), right - left, top - bottom, fill=False,
                                       hatch="///", edgecolor=SEEN_COLOR, linewidth=0,
                                       zorder=2.5, gid=f"seen {node}"))
        ax.add_patch(Rectangle((seen_from - _HALF_W, x_bottom), 2 * _HALF_W, x_top - x_bottom,
                               fill=False, hatch="///", edgecolor=SEEN_COLOR, linewidth=0,
                               zorder=2.5, gid=f"seen {('x', seen_from)}"))

    # the arrows of grid_edges
    arrow = dict(arrowstyle="-|>", mutation_scale=8, color="0.25", linewidth=0.9, zorder=4,
                 shrinkA=0, shrinkB=0)
    side = 0.42  # a vertical route in the column gutter, left (forward) or right (reverse)
    for src, dst in grid_edges(num_layers, bidirectional, steps):
        layer, d, t = dst
        left, bottom, right, top = _node_box(layer, d, t, D)
        mid = (bottom + top) / 2
        if src[0] == "x":
            start = (t, x_top)
            if d == 0:
                path = [start, (t, bottom)]
            else:  # around layer 0's forward node, on the right
                path = [(t + 0.1, x_top), (t + 0.1, x_top + 0.25), (t + side, x_top + 0.25),
                        (t + side, mid), (right, mid)]
        elif src[2] != t:  # the recurrence, at the height of the h/c divider
            s_left, _, s_right, _ = _node_box(*src, D)
            path = [(s_right, mid), (left, mid)] if d == 0 else [(s_left, mid), (right, mid)]
        else:  # the layer below, same position
            s_left, s_bottom, s_right, s_top = _node_box(*src, D)
            s_mid = (s_bottom + s_top) / 2
            if D == 1:
                path = [(t, s_top), (t, bottom)]
            elif src[1] == 0:  # from the forward node, up the left gutter
                path = [(s_left, s_mid), (t - side, s_mid), (t - side, mid), (left, mid)]
            else:  # from the reverse node, up the right gutter
                path = [(s_right, s_mid), (t + side, s_mid), (t + side, mid), (right, mid)]
        codes = [Path.MOVETO] + [Path.LINETO] * (len(path) - 1)
        ax.add_patch(FancyArrowPatch(path=Path(path, codes), gid=f"edge {src} -> {dst}", **arrow))

    # what h_n and c_n hold
    for name, color in (("h_n", H_N_COLOR), ("c_n", C_N_COLOR)):
        for layer, d, state, t, k in cells[name]:
            row = _grid_row(layer, d, state, D)
            y0 = row - 0.5 + (_GAP / 2 if state == "c" else 0)
            ax.add_patch(Rectangle((t - _HALF_W, y0), 2 * _HALF_W, 1 - _GAP / 2, fill=False,
                                   edgecolor=color, linewidth=2.2, zorder=3, gid=f"{name}[{k}]"))
            ax.text(t, y0 + (1 - _GAP / 2) / 2, f"{name}[{k}]", ha="center", va="center",
                    fontsize=7, color=color, fontweight="bold", zorder=5)

    labels = [""] * rows
    for layer in range(num_layers):
        for d in range(D):
            tag = ("", " fwd", " rev")[d + 1 if D == 2 else 0]
            for state in ("h", "c"):
                labels[_grid_row(layer, d, state, D)] = f"layer {layer}{tag} {state}_t"
    ax.set_yticks([(x_bottom + x_top) / 2, *range(rows)], ["input x_t", *labels], fontsize=8)
    ax.set_xticks(range(steps))
    ax.set_xlim(-0.6, steps - 0.4)
    ax.set_ylim(x_bottom - 0.2, rows - 0.3)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("time step t (input position; the reverse direction runs from right to left)"
                  if D == 2 else "time step t")
    ax.set_ylabel("layer, direction, state")
    ax.set_title(f"what nn.LSTM(num_layers={num_layers}, bidirectional={bidirectional}, "
                 f"batch_first={batch_first}, proj_size={proj_size}) returns", fontsize=9)

    h_size = c_size = ""
    if hidden_size is not None:
        h_out = proj_size if proj_size > 0 else hidden_size
        h_size, c_size = f", size {h_out}", f", size {hidden_size}"
    out_index = "output[:, t]" if batch_first else "output[t]"
    out_label = f"{out_index}: top layer's h_t{h_size}"
    if D == 2:
        out_label += " (fwd | rev side by side)"
    handles = [Patch(facecolor=OUTPUT_COLOR, edgecolor="0.5", label=out_label),
               Patch(facecolor="white", edgecolor=H_N_COLOR, linewidth=2.2,
                     label=f"h_n[k]: last h_t of every layer{h_size}"),
               Patch(facecolor="white", edgecolor=C_N_COLOR, linewidth=2.2,
                     label=f"c_n[k]: last c_t of every layer{c_size}"),
               Line2D([], [], color="0.25", marker=">", markersize=5,
                      label="feeds: (h, c) to the next step; h up to the layer above")]
    if seen_from is not None:
        handles.append(Patch(facecolor="white", edgecolor=SEEN_COLOR, hatch="///",
                             label=f"has read x_{seen_from}"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              fontsize=8, frameon=False)
    return ax


# ---------------------------------------------------------------------------------------------
# The LSTM cell: its equations as a graph, evaluated and drawn

CELL_GRAPH: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    # (node, operation, inputs), in an order where every input comes first.
    # "x_t", "h_{t-1}" and "c_{t-1}" are the inputs of the step.
    ("[x_t, h_{t-1}]", "concat", ("x_t", "h_{t-1}")),
    ("i_t", "sigmoid gate i", ("[x_t, h_{t-1}]",)),  # i = σ(W_ii x + b_ii + W_hi h + b_hi)
    ("f_t", "sigmoid gate f", ("[x_t, h_{t-1}]",)),
    ("g_t", "tanh gate g", ("[x_t, h_{t-1}]",)),
    ("o_t", "sigmoid gate o", ("[x_t, h_{t-1}]",)),
    ("f_t ⊙ c_{t-1}", "mul", ("f_t", "c_{t-1}")),
    ("i_t ⊙ g_t", "mul", ("i_t", "g_t")),
    ("c_t", "add", ("f_t ⊙ c_{t-1}", "i_t ⊙ g_t")),  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    ("tanh(c_t)", "tanh", ("c_t",)),
    ("h_t", "mul", ("o_t", "tanh(c_t)")),  # h_t = o_t ⊙ tanh(c_t)
)
"""One step of one LSTM layer (no projection) as the cell diagram draws it."""

_GATE_INDEX = {"i": 0, "f": 1, "g": 2, "o": 3}  # nn.LSTM's order of the four row blocks


def run_cell_graph(x, h_prev, c_prev, weight_ih, weight_hh, bias_ih=None, bias_hh=None,
                   graph: Sequence[Tuple[str, str, Tuple[str, ...]]] = CELL_GRAPH):
    """Evaluates the cell diagram's graph: one step of one layer.

    Args:
        x: (B, I); h_prev, c_prev: (B, H). weight_ih (4H, I), weight_hh (4H, H), bias_ih and
            bias_hh (4H,) or None: one layer's ``nn.LSTM`` parameters (no proj_size), row
            blocks in the order i, f, g, o.
        graph: the graph to evaluate (``CELL_GRAPH``).

    Returns:
        dict: every node's value, each (B, H) (the concat (B, I + H)).
    """
    import torch

    H = weight_hh.shape[1]
    if weight_hh.shape[0] != 4 * H:
        raise ValueError(f"weight_hh must be (4H, H) (no proj_size), got {tuple(weight_hh.shape)}")
    weight = torch.cat([weight_ih, weight_hh], dim=1)  # (4H, I + H): acts on [x, h]
    bias = sum(b for b in (bias_ih, bias_hh) if b is not None)
    values = {"x_t": x, "h_{t-1}": h_prev, "c_{t-1}": c_prev}
    for node, op, inputs in graph:
        a = [values[name] for name in inputs]
        if op == "concat":
            values[node] = torch.cat(a, dim=-1)  # (B, I + H)
        elif op.endswith(tuple(f"gate {g}" for g in _GATE_INDEX)):
            k = _GATE_INDEX[op[-1]]
            pre = a[0] @ weight[k * H:(k + 1) * H].T  # (B, I + H) -> (B, H)
            if not isinstance(bias, int):
                pre = pre + bias[k * H:(k + 1) * H]
            values[node] = torch.sigmoid(pre) if op.startswith("sigmoid") else torch.tanh(pre)
        elif op == "mul":
            values[node] = a[0] * a[1]
        elif op == "add":
            values[node] = a[0] + a[1]
        elif op == "tanh":
            values[node] = torch.tanh(a[0])
        else:
            raise ValueError(f"unknown operation {op!r} at node {node!r}")
    return values


_CELL_LAYOUT = {  # where each node sits in the cell picture (x, y)
    "c_{t-1}": (0.0, 3.0), "h_{t-1}": (0.0, 0.0), "x_t": (1.0, -1.1),
    "[x_t, h_{t-1}]": (1.0, 0.0),
    "f_t": (2.0, 1.2), "i_t": (3.0, 1.2), "g_t": (4.0, 1.2), "o_t": (5.2, 1.2),
    "f_t ⊙ c_{t-1}": (2.0, 3.0), "i_t ⊙ g_t": (3.5, 2.1), "c_t": (3.5, 3.0),
    "tanh(c_t)": (5.2, 2.3), "h_t": (6.2, 1.2),
}
_OP_LABEL = {"mul": "×", "add": "+", "tanh": "tanh", "concat": ""}


def plot_lstm_cell(values: Optional[Mapping[str, float]] = None, ax=None):
    """Draws one LSTM cell from ``CELL_GRAPH``: the four gates, the c path and the h path.

    The cell state runs along the top (c_{t-1} -> × f_t -> + i_t ⊙ g_t -> c_t); the hidden
    state leaves on the right (h_t = o_t ⊙ tanh(c_t)); x_t and h_{t-1} enter at the bottom and
    feed all four gates (σ for i, f, o; tanh for g).

    Args:
        values: optional numbers to print under the nodes, by node name (e.g. one unit's values
            from ``run_cell_graph``).
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes. Each arrow has gid ``"edge <source> -> <target>"`` for the graph's edges (and
        ``"out c_t"``, ``"out h_t"`` for the two outputs); each node's label has gid
        ``"node <name>"``, each printed value ``"value <name>"``; each gate's box has gid
        ``"gate i"`` (f, g, o) and the gate's colour of ``lstm_states.style.GATE_COLORS``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    ops = {node: op for node, op, _ in CELL_GRAPH}
    patch = {}  # node -> the patch its arrows start and stop at
    for node, (x, y) in _CELL_LAYOUT.items():
        op = ops.get(node, "input")
        if op.startswith(("sigmoid", "tanh gate")):
            color = GATE_COLORS[op[-1]]  # the gate's colour everywhere in the package
            patch[node] = FancyBboxPatch((x - 0.32, y - 0.25), 0.64, 0.5,
                                         boxstyle="round,pad=0.02",
                                         facecolor=to_rgba(color, 0.18), edgecolor=color,
                                         linewidth=1.6, zorder=2, gid=f"gate {op[-1]}")
            label = ("σ" if op.startswith("sigmoid") else "tanh") + f"\n{node}"
        elif op in ("mul", "add", "tanh"):
            patch[node] = Circle((x, y), 0.22 if op != "tanh" else 0.3, facecolor="#c6dbef",
                                 edgecolor="0.3", zorder=2)
            label = _OP_LABEL[op]
        elif op == "concat":
            patch[node] = Circle((x, y), 0.05, color="0.25", zorder=2)
            label = ""
        else:  # an input of the step: its name, in an invisible circle
            patch[node] = Circle((x, y), 0.3, fill=False, edgecolor="none")
            label = node
        ax.add_patch(patch[node])
        ax.text(x, y, label, ha="center", va="center", fontsize=9 if op != "tanh" else 8,
                zorder=3, gid=f"node {node}")
        if values is not None and node in values:
            ax.text(x, y - (0.42 if op != "input" else 0.32), f"{float(values[node]):+.2f}",
                    ha="center", va="top", fontsize=7.5, color="0.3", zorder=3,
                    gid=f"value {node}")
    # outputs of the step
    ax.text(7.2, 3.0, "c_t", ha="left", va="center", fontsize=9)
    ax.text(7.2, 1.2, "h_t", ha="left", va="center", fontsize=9)
    ax.text(7.2, 0.85, "(output of the step, next step's\nh_{t-1}, the layer above's x_t)",
            ha="left", va="top", fontsize=7, color="0.35")
    ax.text(7.2, 2.7, "(next step's c_{t-1})", ha="left", va="top", fontsize=7, color="0.35")

    arrow = dict(arrowstyle="-|>", mutation_scale=10, color="0.25", linewidth=1.0, zorder=1.5,
                 shrinkA=1, shrinkB=1)
    for node, _, inputs in CELL_GRAPH:
        for src in inputs:
            style = "arc3"
            if src == "[x_t, h_{t-1}]" or (src, node) == ("c_t", "tanh(c_t)"):
                style = "angle,angleA=0,angleB=90,rad=0"  # along, then up (or down) into it
            ax.add_patch(FancyArrowPatch(_CELL_LAYOUT[src], _CELL_LAYOUT[node],
                                         connectionstyle=style, patchA=patch[src],
                                         patchB=patch[node], gid=f"edge {src} -> {node}",
                                         **arrow))
    for node, end in (("c_t", (7.1, 3.0)), ("h_t", (7.1, 1.2))):
        ax.add_patch(FancyArrowPatch(_CELL_LAYOUT[node], end, patchA=patch[node],
                                     gid=f"out {node}", **arrow))
    ax.set_xlim(-0.6, 9.6)
    ax.set_ylim(-1.6, 3.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("one LSTM cell: c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t,   h_t = o_t ⊙ tanh(c_t)",
                 fontsize=10)
    return ax
