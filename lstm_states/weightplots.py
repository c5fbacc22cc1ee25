"""Pictures for ``flatten_parameters()``: where an LSTM's weights live, and what a forward costs.

``weight_storages(module)`` reads, for every parameter, which block of memory (storage) holds
it, where in that block, and how many bytes; ``plot_weight_storages`` draws one row per moment
("before", "after flatten_parameters()", ...) so that "16 separate blocks" and "one buffer" can
be seen; ``plot_timings`` draws measured times as labelled bars. Data in, Axes out; matplotlib is
imported when a function is called.
"""

from __future__ import annotations

from typing import List, Mapping, NamedTuple, Sequence, Union

from .style import DPI, MAX_WIDTH_IN

__all__ = ["ParamBlock", "weight_storages", "plot_weight_storages", "plot_timings",
           "PARAM_COLORS"]

# one colour per kind of parameter, as nn.LSTM names them
PARAM_COLORS = {"weight_ih": "#4c72b0", "weight_hh": "#dd8452", "bias_ih": "#55a868",
                "bias_hh": "#c44e52", "weight_hr": "#8172b3"}


class ParamBlock(NamedTuple):
    """Where one parameter's data live."""
    name: str  # e.g. "weight_hh_l0_reverse"
    storage: int  # the storage's address (data_ptr of its untyped storage): same = same block
    offset: int  # bytes from the storage's start to the parameter's first element
    nbytes: int  # the parameter's own bytes
    storage_nbytes: int  # the whole storage's bytes
    data_ptr: int  # the parameter's address


def weight_storages(module) -> List[ParamBlock]:
    """Every parameter of ``module`` (in ``named_parameters`` order) and the memory holding it."""
    blocks = []
    for name, p in module.named_parameters():
        storage = p.untyped_storage()
        blocks.append(ParamBlock(name, storage.data_ptr(), p.data_ptr() - storage.data_ptr(),
                                 p.numel() * p.element_size(), storage.nbytes(), p.data_ptr()))
    return blocks


def _kind(name: str) -> str:
    return next((k for k in PARAM_COLORS if name.startswith(k)), "")


def plot_weight_storages(layouts: Mapping[str, Sequence[ParamBlock]], ax=None,
                         title: str = "Where the weights live"):
    """One row per moment: each storage a framed box (width: its bytes), each parameter a
    coloured block inside it at its offset; gaps separate storages. A parameter whose address
    differs from the row above is hatched ("moved").

    Args:
        layouts: label -> ``weight_storages(module)`` at that moment, top row first, e.g.
            {"before": ..., "after flatten_parameters()": ...}.
        ax: where to draw; a new figure if None.
        title: the Axes title.

    Returns:
        The Axes. Storage frames have gid "storage:<row>:<k>", parameter blocks gid
        "param:<row>:<name>"; each row's label says how many storages it has.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    if not layouts:
        raise ValueError("layouts is empty: give at least one moment, e.g. {'before': ...}")
    if ax is None:
        _, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 0.7 * len(layouts) + 1.6), dpi=DPI,
                             layout="constrained")
    previous: dict = {}  # name -> address in the row above
    any_moved = False
    widest = 0.0
    for row, (label, blocks) in enumerate(layouts.items()):
        storages: dict = {}  # address -> size, in order of first use
        for b in blocks:
            storages.setdefault(b.storage, b.storage_nbytes)
        total = sum(storages.values())
        gap = 0.01 * total
        x, start = 0.0, {}
        y = -row
        for k, (address, size) in enumerate(storages.items()):
            start[address] = x
            ax.add_patch(Rectangle((x, y - 0.3), size, 0.6, fill=False, edgecolor="black",
                                   linewidth=1.0, gid=f"storage:{row}:{k}"))
            x += size + gap
        widest = max(widest, x - gap)
        for b in blocks:
            moved = b.name in previous and previous[b.name] != b.data_ptr
            any_moved |= moved
            ax.add_patch(Rectangle((start[b.storage] + b.offset, y - 0.25), b.nbytes, 0.5,
                                   facecolor=PARAM_COLORS.get(_kind(b.name), "0.6"),
                                   edgecolor="white", linewidth=0.3, hatch="xx" if moved else None,
                                   gid=f"param:{row}:{b.name}"))
        previous = {b.name: b.data_ptr for b in blocks}
        n = len(storages)
        ax.text(0, y + 0.34, f"{label}: {n} storage{'s' if n != 1 else ''} for {len(blocks)}"
                " parameters", fontsize=9, va="bottom")
    ax.set_xlim(-0.01 * widest, 1.01 * widest)
    ax.set_ylim(-len(layouts) + 0.4, 0.9)
    ax.set_yticks([])
    ax.set_xlabel("bytes (each framed box is one storage, in order of first use;"
                  " gaps separate storages)")
    ax.set_title(title, fontsize=10)
    kinds = sorted({_kind(b.name) for blocks in layouts.values() for b in blocks} - {""},
                   key=list(PARAM_COLORS).index)
    handles = [Patch(facecolor=PARAM_COLORS[k], label=k) for k in kinds]
    if any_moved:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="xx",
                             label="moved since the row above"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.25),
              ncol=len(handles), fontsize=8, frameon=False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return ax


def plot_timings(timings: Mapping[str, Union[float, Sequence[float]]], ax=None,
                 unit: str = "ms", title: str = "Time of one forward pass"):
    """Measured times as horizontal bars, top to bottom in the order given, each labelled with
    its value; for a list of repeats the bar is the median and each repeat a dot.

    Args:
        timings: label -> a time, or a list of repeated measurements.
        ax: where to draw; a new figure if None.
        unit: the unit of the times, for the labels.
        title: the Axes title.

    Returns:
        The Axes; ``ax.patches`` are the bars (widths: the medians), ``ax.texts`` their labels.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if not timings:
        raise ValueError("timings is empty: give at least one label -> time")
    if ax is None:
        _, ax = plt.subplots(figsize=(min(MAX_WIDTH_IN, 7.0), 0.45 * len(timings) + 1.1),
                             dpi=DPI, layout="constrained")
    labels = list(timings)
    runs = [np.atleast_1d(np.asarray(timings[k], dtype=float)) for k in labels]
    if any(r.size == 0 or not np.isfinite(r).all() or (r < 0).any() for r in runs):
        raise ValueError("every time must be a finite number >= 0 (or a non-empty list of them)")
    medians = [float(np.median(r)) for r in runs]
    y = np.arange(len(labels))
    ax.barh(y, medians, color="#4c72b0", height=0.6)
    for k, r in enumerate(runs):
        if r.size > 1:
            ax.plot(r, np.full(r.shape, y[k]), "o", color="black", markersize=3)
    top = max(max(r.max() for r in runs), 1e-12)
    for k, m in enumerate(medians):
        ax.text(runs[k].max() + 0.015 * top, y[k], f"{m:.2f} {unit}", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # the first label on top
    ax.set_xlim(0, 1.18 * top)
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    return ax
