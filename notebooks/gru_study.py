"""The study of chapter 07: does a GRU grow a bracket-depth counter as the LSTM of chapter 05 does?

Tutorial code beside :mod:`charlm` and :mod:`study` (``from gru_study import ...`` in a
notebook). The GRU is chapter 05's model with ``nn.GRU`` in place of ``nn.LSTM``
(``python notebooks/charlm.py --cell gru --seed K``): the same embedding, hidden size 128, 2
layers, recipe, seeds and training corpora. For each seed, and for the untrained model of each
seed, the same measurement is made on the LSTM and on the GRU, on chapter 05's texts:

- the **counter**: the layer-0 unit whose state has the largest |r| with the bracket depth on
  the *selection* text, and its r on the *test* text (the unit is never chosen there);
- the **null** of chapter 05 on the test text: the maximum |r| over the layer's 128 units (any
  unit, chosen on the test text itself) against the same maximum with the depth circularly
  shifted (:data:`study.SHIFTS` shifts, none closer than :data:`study.MIN_SHIFT` to 0), its 95th
  percentile and the p-value, called above chance at chapter 05's Bonferroni threshold
  ``study.ALPHA / study.TESTS`` (0.05 / 8). It tests alignment only ("better aligned here than at
  a shifted place"); what training added is the gap to the untrained model of the same seed;
- the counter's **staircase**: its mean state at each depth of the test text.

Fair comparison: one kind of state at a time, 128 units each (the max over more units is larger
by chance). The GRU has one state, h; the LSTM has h (what the next step and the layer above
read, like the GRU's h) and c (its cell state, where chapter 05 found the counter). Both LSTM
states are measured, and the like-for-like comparison is LSTM h against GRU h.

``python tools/gru_study.py`` runs :func:`compare` for every seed with both checkpoints and
stores ``notebooks/data/gru_study.pt``, which the chapter loads (and checks against seed 0,
computed live).

Shape legend: T time steps, H hidden size, S shifts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import torch
from torch import Tensor

from lstm_states import capture

try:  # from the repository root: notebooks.gru_study
    from . import study
    from .charlm import DATA, CharLM, correlations, encode, load_checkpoint, python_structure
except ImportError:  # beside the notebooks: gru_study
    import study

    from charlm import DATA, CharLM, correlations, encode, load_checkpoint, python_structure

__all__ = ["RESULTS", "KINDS", "gru_checkpoint", "seeds", "load_model", "untrained_model",
           "layer0", "depth_test", "compare", "scaled", "bend", "load_results", "plot_comparison",
           "plot_gru_step"]

RESULTS = DATA / "gru_study.pt"
KINDS = (("lstm", "c"), ("lstm", "h"), ("gru", "h"))
"""The states compared: (cell, state)."""


def gru_checkpoint(seed: int) -> Path:
    """The GRU of seed k: ``notebooks/data/chargru_seed{k}.pt`` (seed 0 included)."""
    return DATA / f"chargru_seed{seed}.pt"


def seeds() -> List[int]:
    """The seeds of study.SEEDS with both a trained LSTM and a trained GRU."""
    return [s for s in study.trained_seeds() if gru_checkpoint(s).exists()]


def load_model(cell: str, seed: int) -> CharLM:
    """The trained model of one cell type ("lstm" or "gru") and seed (eval mode)."""
    model, state = load_checkpoint(study.checkpoint(seed) if cell == "lstm" else gru_checkpoint(seed))
    assert model.cell == cell and state["info"]["seed"] == seed, (cell, seed, state["info"])
    return model


def untrained_model(cell: str, seed: int) -> CharLM:
    """The model of ``cell`` and ``seed`` before its first training step (as ``train`` makes it)."""
    torch.manual_seed(seed)
    return CharLM(cell=cell).eval()


@torch.no_grad()
def layer0(model: CharLM, text: str, state: str) -> Tensor:
    """(T, H): layer 0's ``state`` ("h" or "c") at every character of ``text``."""
    st = capture(model.rnn, model.embedding(encode(text))[:, None], fields=(state,), layers=[0])
    return getattr(st, state)[0, 0, :, 0]  # (T, H)


def depth_test(selection: Tensor, test: Tensor, depth_selection: Tensor,
               depth_test_: Tensor) -> Dict:
    """The counter and chapter 05's null for one kind of state of one model.

    Args:
        selection, test: (T, H) one state of layer 0 on the selection and the test text.
        depth_selection, depth_test_: (T,) the bracket depth of each text.

    Returns:
        dict: ``unit`` (chosen on the selection text), ``r selection`` and ``r test`` (its r on
        each text), ``observed`` (max |r| over the units on the test text), ``null`` (S,),
        ``p95``, ``p`` and ``above`` as ``study.null_test``, and ``staircase`` (the unit's mean
        state times the sign of its r, at each depth of ``study.staircase_depths``' test text).
    """
    r_sel = correlations(selection, depth_selection)  # (H,)
    unit = int(r_sel.abs().argmax())
    sign = float(torch.sign(r_sel[unit]))
    null = study.shift_null(test, depth_test_, study.shifts(depth_test_.numel()))  # (S,)
    observed = float(study.shift_null(test, depth_test_, torch.tensor([0]))[0])
    p = (1 + int((null >= observed).sum())) / (1 + null.numel())
    depths = range(int(depth_test_.max()) + 1)
    stairs = [float(sign * test[depth_test_ == d, unit].mean()) for d in depths
              if int((depth_test_ == d).sum()) > 0]
    return {"unit": unit, "r selection": float(r_sel[unit]),
            "r test": float(correlations(test[:, unit:unit + 1], depth_test_)[0]),
            "observed": observed, "null": null, "p95": float(null.quantile(0.95)), "p": p,
            "above": p < study.ALPHA / study.TESTS, "staircase": stairs}


def compare(seed: int) -> Dict:
    """For one seed: {(cell, state): {"trained": depth_test, "untrained": depth_test}} for every
    (cell, state) of :data:`KINDS`; the staircase runs over the test text's well-covered depths."""
    t = study.texts()
    depth = {name: python_structure(t[name])["bracket depth"] for name in ("selection", "test")}
    keep = len(study.staircase_depths(t["test"]))
    out: Dict = {}
    for cell, state in KINDS:
        out[cell, state] = {}
        for which, model in (("trained", load_model(cell, seed)),
                             ("untrained", untrained_model(cell, seed))):
            res = depth_test(layer0(model, t["selection"], state), layer0(model, t["test"], state),
                             depth["selection"], depth["test"])
            res["staircase"] = res["staircase"][:keep]
            out[cell, state][which] = res
    return out


def scaled(staircase: List[float]) -> List[float]:
    """A staircase moved and scaled so that depth 0 is 0 and its deepest depth is 1."""
    return [(v - staircase[0]) / (staircase[-1] - staircase[0]) for v in staircase]


def bend(staircase: List[float]) -> float:
    """How far the scaled staircase strays from the straight line of a counter that steps
    evenly at every depth: max over depths d of |scaled_d - d / D|. 0 for even steps; near 0.5
    for a staircase that does all its rising in one half."""
    s, D = scaled(staircase), len(staircase) - 1
    return max(abs(v - d / D) for d, v in enumerate(s))


def load_results(path: Path = RESULTS) -> Dict[int, Dict]:
    """The stored results of ``tools/gru_study.py``: {seed: compare(seed)}."""
    return torch.load(path, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------------------------
# pictures (each returns a matplotlib Figure made with plt.ioff(); show it with Picture(fig))

LABELS = {("lstm", "c"): "LSTM c", ("lstm", "h"): "LSTM h", ("gru", "h"): "GRU h"}


def plot_comparison(results: Dict[int, Dict]):
    """Left: per (cell, state), one dot per seed: the counter's |r| with the depth on the test
    text (filled: trained, open: untrained), and the null's 95th percentile of the max over
    units (grey tick). Right: the trained counters' staircases, each scaled so that depth 0
    is 0 and its deepest covered depth is 1 (a straight line from (0, 0) to the end counts
    evenly; a curve that flattens saturates)."""
    fig, (ax, ax2) = study._figure(1, 2, figsize=(10, 3.4), width_ratios=[1, 1.1])
    n = len(results)
    for q, kind in enumerate(KINDS):
        for k, (seed, res) in enumerate(results.items()):
            x = q + (k - (n - 1) / 2) * 0.12
            color = study.SEED_COLORS[k % len(study.SEED_COLORS)]
            for which, face in (("trained", color), ("untrained", "none")):
                ax.plot(x, abs(res[kind][which]["r test"]), "o", color=color, mfc=face,
                        markersize=6, label=f"seed {seed}" if (q, which) == (0, "trained") else None)
            ax.plot(x, res[kind]["trained"]["p95"], "_", color="0.4", markersize=8)
    ax.set_xticks(range(len(KINDS)), [LABELS[k] for k in KINDS])
    ax.set_ylim(0, 1)
    ax.set_ylabel("|r| of the counter with the depth\n(test text)", fontsize=9)
    ax.set_title("filled: trained, open: untrained; grey: null's 95th percentile", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    for k, (seed, res) in enumerate(results.items()):
        for kind, style in ((("lstm", "c"), "o-"), (("gru", "h"), "s--")):
            s = res[kind]["trained"]["staircase"]
            ax2.plot(scaled(res[kind]["trained"]["staircase"]), style,
                     color=study.SEED_COLORS[k % len(study.SEED_COLORS)],
                     label=f"{LABELS[kind]}, seed {seed}" if k == 0 else None)
    ax2.set_xlabel("bracket depth (test text)")
    ax2.set_ylabel("the counter's mean, scaled", fontsize=9)
    ax2.set_title("circles: LSTM c, squares: GRU h", fontsize=9)
    ax2.axhline(0, color="0.8", linewidth=0.8)
    ax2.plot([0, len(s) - 1], [0, 1], ":", color="0.5", linewidth=1, label="even steps")
    ax2.legend(fontsize=7, loc="upper left")
    return fig


def plot_gru_step(h_prev: Tensor, n: Tensor, z: Tensor, h: Tensor, unit: int, text: str = ""):
    """One unit over time: h_{t-1}, the candidate n_t and h_t above, the update gate z_t below.

    h_t = (1 - z_t) n_t + z_t h_{t-1} lies between h_{t-1} and n_t, nearer h_{t-1} where z_t is
    near 1. h_prev, n, z, h: (T,) of one unit; ``text``: the characters, as x tick labels.
    """
    h_prev, n, z, h = (v.detach().float().numpy() for v in (h_prev, n, z, h))
    fig, (top, bottom) = study._figure(2, 1, figsize=(9, 3.6), sharex=True,
                                       height_ratios=[2, 1])
    x = list(range(len(h)))
    top.plot(x, h_prev, "o-", color="0.6", markersize=3, label="$h_{t-1}$")
    top.plot(x, n, "^", color="C2", markersize=4, label="$n_t$ (candidate)")
    top.plot(x, h, "s-", color="C6", markersize=3, label="$h_t = (1 - z_t) n_t + z_t h_{t-1}$")
    top.set_ylabel(f"unit {unit}")
    top.legend(fontsize=7, ncol=3, loc="upper left")
    bottom.bar(x, z, color="C0", width=0.8)
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("$z_t$", fontsize=9)
    if text:
        bottom.set_xticks(x, [repr(ch)[1:-1] for ch in text], fontsize=7, family="monospace")
    bottom.set_xlabel("character read at step t")
    return fig
