"""The study of chapter 05: do the character model's units count brackets, on every seed, by a test?

Tutorial code beside :mod:`charlm` (``from study import ...`` in a notebook). What a reviewer of
a unit-level finding asks for, each as one function the chapter calls:

- several models: the same recipe (``python notebooks/charlm.py --seed K``) with :data:`SEEDS`,
  and the untrained model of each seed (its weights before the first step);
- selection apart from evaluation: units and ablation values are chosen on the *selection*
  text and measured on the *test* text, two texts of the grammar with generator seeds no
  training corpus used (:func:`texts`), and on the hand-written text, a second test out of the
  training distribution;
- a null: the maximum |r| over a layer's units when the quantity is circularly shifted along
  the text (:func:`shift_null`), a p-value and a Bonferroni correction over the
  quantities x layers (:data:`TESTS`);
- the cause split into *when* to close a bracket and *which* closer (:func:`closer_losses`),
  every unit ranked on each by a batched ablation;
- two ablation methods, mean and resample, holding c alone or c and h (:func:`ablation_table`).

:func:`measure` runs all of it for one seed; ``python tools/study_seeds.py`` runs it for every
seed and stores the results in ``notebooks/data/study_seeds.pt``, which the chapter loads (and
checks against seed 0, computed live).

Shape legend: T time steps, B batch (rows of a batched ablation), H hidden size, V vocabulary,
S shifts.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from lstm_states import Edit, capture

try:  # from the repository root: notebooks.study
    from .charlm import (
        CHECKPOINT,
        DATA,
        VOCAB,
        CharLM,
        correlations,
        encode,
        generated_code,
        held_out_text,
        load_checkpoint,
        python_structure,
    )
except ImportError:  # beside the notebooks: study
    from charlm import (
        CHECKPOINT,
        DATA,
        VOCAB,
        CharLM,
        correlations,
        encode,
        generated_code,
        held_out_text,
        load_checkpoint,
        python_structure,
    )

__all__ = ["SEEDS", "SELECT_SEED", "TEST_SEED", "TEXT_CHARS", "ABLATION_CHARS", "SHIFTS",
           "MIN_SHIFT", "QUANTITIES", "TESTS", "ALPHA", "GROUP_SIZE", "RESULTS", "checkpoint",
           "trained_seeds", "load_seed", "untrained", "texts", "states", "in_code", "depth_coverage", "staircase_depths",
           "layer_values", "shift_null", "null_test", "best_units", "bracket_moves",
           "counts_quoted", "typical_opener", "units_stepping", "keeps", "closer_losses",
           "unit_effects", "hold_each_unit", "ablation_table", "measure", "load_results",
           "same_numbers", "plot_nulls", "plot_seed_nulls", "plot_seed_dots", "plot_counter_r",
           "plot_moves", "plot_staircases", "plot_when_which", "plot_when_which_seeds",
           "plot_ablations"]

SEEDS = (0, 1, 2, 3, 4)
"""Training seeds of the same recipe; the training corpus of seed k is ``generated_code(.., k)``."""
SELECT_SEED, TEST_SEED = 1000, 1003
"""Generator seeds of the selection and the test text (no training corpus uses them). The test
seed is the first after 1000 whose TEXT_CHARS characters have at least 200 characters from at
least 10 lines at every depth 0-6 (``depth_coverage``; 1001 and 1002 stop at depth 5)."""
TEXT_CHARS = 5_000
"""Length of the selection and the test text."""
ABLATION_CHARS = 1_500
"""Ablations are measured on the test text's first characters (77 closers in code); the top
units for *when* and *which* are chosen on the selection text's first characters."""
SHIFTS, MIN_SHIFT = 1000, 500
"""The null: SHIFTS circular shifts of the quantity, evenly spread over [MIN_SHIFT, T - MIN_SHIFT]."""
QUANTITIES = ("bracket depth", "inside a string", "inside a comment", "position in line")
TESTS = len(QUANTITIES) * 2
"""Comparisons per model: every quantity in each of the 2 layers."""
ALPHA = 0.05
"""Family-wise error rate: a test says "above chance" when p < ALPHA / TESTS (Bonferroni)."""
GROUP_SIZE = 5
"""The counter group: the layer-0 cell states with the largest |r| with the depth."""
RESAMPLE_DRAWS = 3
"""Resample ablation: independent draws (batch rows) averaged."""
CLOSERS = ")]}"
RESULTS = DATA / "study_seeds.pt"


# ----------------------------------------------------------------------------------------------
# models and texts


def checkpoint(seed: int) -> Path:
    """Seed 0 is the chapter's ``charlm.pt``; seed k the file ``charlm_seed{k}.pt``."""
    return CHECKPOINT if seed == 0 else DATA / f"charlm_seed{seed}.pt"


def trained_seeds() -> List[int]:
    """The seeds of SEEDS whose checkpoint is there."""
    return [s for s in SEEDS if checkpoint(s).exists()]


def load_seed(seed: int) -> CharLM:
    """The trained model of one seed (eval mode)."""
    model, state = load_checkpoint(checkpoint(seed))
    assert state["info"]["seed"] == seed, (seed, state["info"])
    return model


def untrained(seed: int) -> CharLM:
    """The model of ``seed`` before its first training step (``train`` seeds torch the same way
    and draws nothing else before building the model)."""
    torch.manual_seed(seed)
    return CharLM().eval()


def texts() -> Dict[str, str]:
    """The three texts: "selection" and "test" from the grammar, and "hand-written"."""
    return {"selection": generated_code(TEXT_CHARS, SELECT_SEED),
            "test": generated_code(TEXT_CHARS, TEST_SEED),
            "hand-written": held_out_text()}


@torch.no_grad()
def states(model: CharLM, text: str, fields: Sequence[str] = ("h", "c", "gates")):
    """``capture`` of the model's LSTM over the text, a batch of one."""
    return capture(model.lstm, model.embedding(encode(text))[:, None], fields=fields)


def in_code(known: Dict[str, Tensor]) -> Tensor:
    """(T,) bool: the character is outside strings and comments."""
    return (known["inside a string"] == 0) & (known["inside a comment"] == 0)


def depth_coverage(text: str) -> Dict[int, tuple]:
    """{depth: (characters at that depth, lines they come from)}."""
    depth = python_structure(text)["bracket depth"].long()
    line = torch.tensor([0] + [ch == "\n" for ch in text[:-1]]).cumsum(0)  # (T,) line number
    return {d: (int((depth == d).sum()), len(set(line[depth == d].tolist())))
            for d in range(int(depth.max()) + 1)}


def staircase_depths(text: str, min_chars: int = 200, min_lines: int = 10) -> List[int]:
    """The depths 0, 1, ... up to the first with fewer than min_chars or min_lines."""
    out = []
    for d, (chars, lines) in depth_coverage(text).items():
        if chars < min_chars or lines < min_lines:
            break
        out.append(d)
    return out


# ----------------------------------------------------------------------------------------------
# correlations and the null


def layer_values(st, layer: int) -> Tensor:
    """(T, 2H): every unit's c_t, then every unit's h_t, of one layer (batch row 0)."""
    return torch.cat([st.c[layer, 0, :, 0], st.h[layer, 0, :, 0]], 1)


def shifts(T: int) -> Tensor:
    """(S,) the shifts of the null, evenly spread, none closer than MIN_SHIFT to 0 or T."""
    return torch.linspace(MIN_SHIFT, T - MIN_SHIFT, SHIFTS).round().long()


def shift_null(values: Tensor, quantity: Tensor, shift: Tensor) -> Tensor:
    """Max over units of |r| with the quantity shifted circularly by each shift.

    values (T, N), quantity (T,), shift (S,) -> (S,). Shifting keeps both series' own slow
    drift (what makes untrained units correlate by chance) and breaks only their alignment.
    """
    v = values.double() - values.double().mean(0)  # (T, N)
    q = quantity.double() - quantity.double().mean()  # (T,)
    T = q.numel()
    # sum_t v[t] q[t - s] for every s at once: a circular cross-correlation, by FFT
    cross = torch.fft.irfft(torch.fft.rfft(v, dim=0) * torch.fft.rfft(q).conj()[:, None],
                            n=T, dim=0)  # (T, N)
    r = cross / (v.norm(dim=0) * q.norm()).clamp_min(1e-12)  # (T, N): r of every unit, every shift
    return r[shift].abs().max(1).values.float()  # (S,)


def null_test(st, known: Dict[str, Tensor], layer: int, name: str) -> Dict:
    """The observed max |r| over the layer's units (c and h) and its circular-shift null.

    Returns: dict with ``observed``, ``null`` (S,), ``p95`` and ``p``
    (= (1 + #null >= observed) / (1 + S)), and ``above`` (p < ALPHA / TESTS).
    """
    values, q = layer_values(st, layer), known[name]
    null = shift_null(values, q, shifts(q.numel()))
    observed = float(shift_null(values, q, torch.tensor([0]))[0])
    p = (1 + int((null >= observed).sum())) / (1 + null.numel())
    return {"observed": observed, "null": null, "p95": float(null.quantile(0.95)), "p": p,
            "above": p < ALPHA / TESTS}


def best_units(st, known: Dict[str, Tensor], name: str = "bracket depth", layer: int = 0):
    """(r of every unit's c_t (H,), units sorted by |r|, largest first)."""
    r = correlations(st.c[layer, 0, :, 0], known[name])  # (H,)
    return r, r.abs().argsort(descending=True)


# ----------------------------------------------------------------------------------------------
# how the counter moves


def around(c: Tensor) -> Tensor:
    """(T,) -> (T,): c_{t+1} - c_{t-1}, the change across a character and the one after it."""
    return torch.cat([c[1:], c[-1:]]) - torch.cat([c[:1], c[:-1]])


def bracket_moves(c: Tensor, text: str, known: Dict[str, Tensor], sign: float) -> Dict[str, Dict]:
    """How a unit's c_t moves across openers and closers, in code and quoted, apart.

    c (T,), sign: + if the unit counts up with the depth. Returns {kind: {"mean": signed mean
    of c_{t+1} - c_{t-1}, "up": fraction moving up by more than 0.5, "down": ... down, "n"}}
    for "( [ { in code", ") ] } in code", "( [ { quoted", ") ] } quoted" (quoted: in a string
    or a comment).
    """
    move = sign * around(c)
    code = in_code(known)
    out = {}
    for chars, what in (("([{", "( [ {"), (")]}", ") ] }")):
        is_char = torch.tensor([ch in chars for ch in text])
        for where, mask in (("in code", code), ("quoted", ~code)):
            m = move[is_char & mask]
            out[f"{what} {where}"] = {"mean": float(m.mean()), "up": float((m > 0.5).float().mean()),
                                      "down": float((m < -0.5).float().mean()), "n": int(m.numel())}
    return out


def counts_quoted(moves: Dict[str, Dict], ratio: float = 0.5) -> bool:
    """True if quoted openers or quoted closers move the unit at least ``ratio`` as much as
    those in code do (each kind apart: a pooled mean would let the two cancel)."""
    return (moves["( [ { quoted"]["mean"] >= ratio * moves["( [ { in code"]["mean"]
            or moves[") ] } quoted"]["mean"] <= ratio * moves[") ] } in code"]["mean"])


def typical_opener(c: Tensor, text: str, known: Dict[str, Tensor], sign: float) -> int:
    """The opener in code whose move c_{t+1} - c_{t-1} is the median of all of them."""
    code = in_code(known)
    ts = [t for t, ch in enumerate(text[:-1]) if ch in "([{" and code[t]]
    move = sign * around(c)[ts]
    return ts[int((move - move.median()).abs().argmin())]


def units_stepping(c: Tensor, r: Tensor, text: str, known: Dict[str, Tensor]) -> Tensor:
    """For every unit of c (T, H): the fraction of openers in code across which it moves the way
    its r says by more than 0.5, and of closers in code across which it moves the other way.

    c (T, H), r (H,) -> (H, 2): [openers, closers]."""
    move = torch.sign(r) * around(c)  # (T, H)
    code = in_code(known)
    up = move[torch.tensor([ch in "([{" for ch in text]) & code] > 0.5  # (openers, H)
    down = move[torch.tensor([ch in ")]}" for ch in text]) & code] < -0.5  # (closers, H)
    return torch.stack([up.float().mean(0), down.float().mean(0)], 1)


def keeps(f: Tensor, span: int = 50) -> Tensor:
    """What a cell keeps of its value over ``span`` characters from the forget gate alone:
    f (T,) -> (T - span + 1,) products f_{t+1} * ... * f_{t+span}."""
    return f.double().log().unfold(0, span, 1).sum(1).exp().float()


# ----------------------------------------------------------------------------------------------
# when to close, and which closer


def closer_losses(model: CharLM, text: str, edits: Optional[List[Edit]] = None,
                  rows: int = 1) -> Dict[str, Tensor]:
    """The next-character loss split into *when* and *which*, before closers and elsewhere.

    The loss -log P(next) = -log P(next's class) - log P(next | its class), where the class is
    "a closer ) ] }" or "not a closer": the first term is **when** (is a closer due now?), the
    second **which** (given a closer, the right one). ``rows`` copies of the text run in one
    batch through the model with ``edits`` (each row may be edited differently, e.g. by an
    ``Edit(fn=...)``).

    Returns: dict of (rows,) means: "loss", "when", "which" before a closer in code, and
    "loss elsewhere", "when elsewhere".
    """
    ids = encode(text)
    known = python_structure(text)
    x = model.embedding(ids[:-1])[:, None].expand(-1, rows, -1)  # (T-1, B, E)
    with torch.no_grad():
        out = capture(model.lstm, x, fields=("h",), layers=[1], edits=edits).output  # (T-1, B, H)
        logp = model.head(out).log_softmax(-1)  # (T-1, B, V)
    nxt = ids[1:]  # (T-1,) the character each step predicts
    loss = -logp.gather(2, nxt[:, None, None].expand(-1, rows, 1))[..., 0]  # (T-1, B)
    log_closer = logp[..., [VOCAB.index(ch) for ch in CLOSERS]].logsumexp(-1)  # log P(any closer)
    is_closer = torch.tensor([ch in CLOSERS for ch in text[1:]])  # (T-1,)
    # when = -log P(a closer) before a closer, -log P(not a closer) = -log(1 - P) elsewhere
    when = torch.where(is_closer[:, None], -log_closer,
                       -torch.log(-torch.expm1(log_closer.clamp_max(-1e-7))))
    which = loss - when  # -log P(next | its class)
    before = is_closer & in_code(known)[1:]  # before a closer in code
    return {"loss": loss[before].mean(0), "when": when[before].mean(0),
            "which": which[before].mean(0), "loss elsewhere": loss[~before].mean(0),
            "when elsewhere": when[~before].mean(0)}


def hold_each_unit(values: Tensor):
    """fn for ``Edit("c", 0, ..., fn=)``: row u of a (H + 1)-row batch holds unit u at
    values[u]; the last row runs untouched. values (H,)."""
    H = values.numel()
    rows = torch.arange(H)

    def hold(c_t):  # c_t (H + 1, H): every row's c at one step
        c_t = c_t.clone()
        c_t[rows, rows] = values
        return c_t
    return hold


def unit_effects(model: CharLM, text: str, values: Tensor) -> Dict[str, Tensor]:
    """Every layer-0 unit's c held at values[u] at every step, all in one batched run:
    {measure: (H,) change of the mean from the unedited run} (keys of ``closer_losses``)."""
    H = values.numel()
    edit = Edit("c", 0, slice(None), fn=hold_each_unit(values))
    got = closer_losses(model, text, [edit], rows=H + 1)
    return {k: v[:H] - v[H] for k, v in got.items()}


def _where(mask: Tensor, values: Tensor, selected: Tensor) -> Tensor:
    return torch.where(mask, values, selected)


def ablation_table(model: CharLM, text: str, select_states, targets: Dict[str, List[int]],
                   seed: int = 0) -> Dict[tuple, Dict[str, float]]:
    """Mean vs resample ablation, holding c alone or c and h, of each target's layer-0 units.

    The values come from ``select_states`` (a capture on another text): *mean* holds each unit
    at its mean there; *resample* replaces the target's units, at every step, by their values at
    one random position there (the same position for all of a target's units, so their joint
    distribution is kept), RESAMPLE_DRAWS draws averaged. Everything runs in one batch.

    Returns: {(target, method, held): {measure: change of the mean}}, methods "mean" and
    "resample", held "c" or "c and h".
    """
    c_sel, h_sel = select_states.c[0, 0, :, 0], select_states.h[0, 0, :, 0]  # (T_sel, H)
    T = len(text) - 1
    H = c_sel.shape[1]
    g = torch.Generator().manual_seed(seed)
    plan = [(name, method, held) for name in targets for method in ("mean", "resample")
            for held in ("c", "c and h")]
    draws = [RESAMPLE_DRAWS if method == "resample" else 1 for _, method, _ in plan]
    B = sum(draws) + 1  # the last row runs unedited
    c_val, h_val = torch.zeros(T, B, H), torch.zeros(T, B, H)
    c_mask, h_mask = torch.zeros(B, H, dtype=torch.bool), torch.zeros(B, H, dtype=torch.bool)
    row = 0
    for (name, method, held), n in zip(plan, draws, strict=True):
        units = targets[name]
        for k in range(row, row + n):
            if method == "mean":
                c_val[:, k], h_val[:, k] = c_sel.mean(0), h_sel.mean(0)
            else:
                pos = torch.randint(0, c_sel.shape[0], (T,), generator=g)  # (T,)
                c_val[:, k], h_val[:, k] = c_sel[pos], h_sel[pos]
            c_mask[k, units] = True
            h_mask[k, units] = held == "c and h"
        row += n
    edits = [Edit("c", 0, t, fn=functools.partial(_where, c_mask, c_val[t])) for t in range(T)]
    edits += [Edit("h", 0, t, fn=functools.partial(_where, h_mask, h_val[t])) for t in range(T)]
    got = closer_losses(model, text, edits, rows=B)
    table, row = {}, 0
    for key, n in zip(plan, draws, strict=True):
        table[key] = {m: float((v[row:row + n] - v[-1]).mean()) for m, v in got.items()}
        row += n
    return table


# ----------------------------------------------------------------------------------------------
# one seed, all of it


def measure(seed: int) -> Dict:
    """Everything the chapter reports for one seed (a dict of numbers and small tensors)."""
    t = texts()
    known = {name: python_structure(s) for name, s in t.items()}
    model = load_seed(seed)
    st = {name: states(model, s, ("h", "c") if name == "selection" else ("h", "c", "gates"))
          for name, s in t.items()}
    fresh = states(untrained(seed), t["test"], fields=("h", "c"))
    out: Dict = {"seed": seed, "null": {}, "untrained": {}, "r": {}}
    for name in QUANTITIES:
        for layer in range(2):
            test = null_test(st["test"], known["test"], layer, name)
            out["null"][name, layer] = test
            out["untrained"][name, layer] = null_test(fresh, known["test"], layer, name)
    # the counter: chosen on the selection text, measured on the test and hand-written texts
    r_sel, ranked = best_units(st["selection"], known["selection"])
    counter = int(ranked[0])
    sign = float(torch.sign(r_sel[counter]))
    out["counter"], out["sign"], out["group"] = counter, sign, ranked[:GROUP_SIZE].tolist()
    out["r units"] = r_sel  # (H,) every layer-0 c_t's r with the depth on the selection text
    for name in t:
        out["r"][name] = float(best_units(st[name], known[name])[0][counter])
    c = st["test"].c[0, 0, :, 0]  # (T, H) layer 0 on the test text
    out["moves"] = bracket_moves(c[:, counter], t["test"], known["test"], sign)
    out["stepping"] = units_stepping(c, r_sel, t["test"], known["test"])  # (H, 2)
    depth = known["test"]["bracket depth"]
    out["staircase"] = [float(sign * c[depth == d, counter].mean())
                        for d in staircase_depths(t["test"])]
    f = st["test"].gates[0, 0, 1, :, 0, counter]  # (T,) the counter's forget gate
    out["f median"], out["keeps 50"] = float(f.median()), float(keeps(f).median())
    # cause: every unit held at its selection-text mean, measured on the test text's start
    ablation_text = t["test"][:ABLATION_CHARS]
    means = st["selection"].c[0, 0, :, 0].mean(0)  # (H,)
    effects = unit_effects(model, ablation_text, means)
    out["effects"] = {k: v.clone() for k, v in effects.items()}
    # the top units for when and which: chosen on the selection text, measured on the test text
    chosen = unit_effects(model, t["selection"][:ABLATION_CHARS], means)
    out["effects (selection)"] = {k: v.clone() for k, v in chosen.items()}
    when_top, which_top = int(chosen["when"].argmax()), int(chosen["which"].argmax())
    out["when top"], out["which top"] = when_top, which_top
    targets = {"counter": [counter], "group": out["group"], "which top": [which_top]}
    out["ablation"] = ablation_table(model, ablation_text, st["selection"], targets, seed)
    return out


def load_results(path: Path = RESULTS) -> Dict[int, Dict]:
    """The stored results of ``tools/study_seeds.py``: {seed: measure(seed)}."""
    return torch.load(path, map_location="cpu", weights_only=True)


def same_numbers(a, b, atol: float = 1e-3) -> bool:
    """a and b (nested dicts, lists, tensors, numbers) hold the same numbers within atol."""
    if isinstance(a, dict):
        return set(a) == set(b) and all(same_numbers(a[k], b[k], atol) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_numbers(x, y, atol) for x, y in zip(a, b, strict=True))
    if isinstance(a, Tensor):
        return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol, rtol=0)
    if isinstance(a, float):
        return abs(a - b) <= atol
    return a == b


# ----------------------------------------------------------------------------------------------
# pictures (each returns a matplotlib Figure made with plt.ioff(); show it with Picture(fig))

SEED_COLORS = ("C0", "C1", "C2", "C4", "C5")


def _figure(*args, **kwargs):
    import matplotlib.pyplot as plt

    with plt.ioff():
        return plt.subplots(*args, layout="constrained", **kwargs)


def plot_nulls(tests: Dict[tuple, Dict], untrained_tests: Dict[tuple, Dict], title: str = ""):
    """One panel per (quantity, layer): the null's histogram, the trained model's max |r| (red)
    and the untrained model's (grey)."""
    fig, axes = _figure(2, len(QUANTITIES), figsize=(10, 4.2), sharex=True)
    for (name, layer), test in tests.items():
        ax = axes[layer, QUANTITIES.index(name)]
        ax.hist(test["null"].numpy(), bins=30, range=(0, 1), color="0.7")
        ax.axvline(test["observed"], color="C3", linewidth=2, label="trained")
        ax.axvline(untrained_tests[name, layer]["observed"], color="0.3", linestyle="--",
                   label="untrained")
        ax.set_title(f"{name}, layer {layer}\np = {test['p']:.3f}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes[1, 0].set_xlabel("max |r| over the layer's units", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_seed_nulls(results: Dict[int, Dict]):
    """Per layer, per quantity, per seed: the null's 5-95% range (grey bar), its maximum (grey
    tick), the trained model's max |r| (coloured dot) and the untrained model's (open circle)."""
    fig, axes = _figure(1, 2, figsize=(10, 3.4), sharey=True)
    n = len(results)
    for layer, ax in enumerate(axes):
        for q, name in enumerate(QUANTITIES):
            for k, (seed, res) in enumerate(results.items()):
                x = q + (k - (n - 1) / 2) * 0.14
                test, fresh = res["null"][name, layer], res["untrained"][name, layer]
                low, high = test["null"].quantile(0.05), test["null"].quantile(0.95)
                ax.plot([x, x], [low, high], color="0.6", linewidth=4, solid_capstyle="butt")
                ax.plot(x, test["null"].max(), "_", color="0.3", markersize=7)
                ax.plot(x, fresh["observed"], "o", mfc="none", color="0.3", markersize=5)
                ax.plot(x, test["observed"], "o", color=SEED_COLORS[k % len(SEED_COLORS)],
                        markersize=6, label=f"seed {seed}" if q == 0 else None)
        ax.set_xticks(range(len(QUANTITIES)), [q.replace(" ", "\n", 1) for q in QUANTITIES],
                      fontsize=8)
        ax.set_title(f"layer {layer}", fontsize=10)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("max |r| over the layer's units")
    axes[1].legend(fontsize=7, ncol=1, loc="upper right")
    fig.suptitle("dots: trained; circles: untrained; grey bar: null 5-95%, tick: null max",
                 fontsize=9)
    return fig


def plot_seed_dots(ax, values: Dict[str, Sequence[float]], seeds: Sequence[int], ylabel: str):
    """One column per key, one dot per seed (coloured by seed)."""
    for q, vals in enumerate(values.values()):
        for k, v in enumerate(vals):
            ax.plot(q + (k - (len(vals) - 1) / 2) * 0.08, v, "o",
                    color=SEED_COLORS[k % len(SEED_COLORS)],
                    label=f"seed {seeds[k]}" if q == 0 else None)
    ax.set_xticks(range(len(values)), list(values), fontsize=8)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.axhline(0, color="0.8", linewidth=0.8)
    return ax


def plot_staircases(results: Dict[int, Dict]):
    """Per seed: the counter's mean c_t (times the sign of its r) at each depth of the test text."""
    fig, ax = _figure(figsize=(6.5, 3.2))
    for k, (seed, res) in enumerate(results.items()):
        ax.plot(res["staircase"], "o-", color=SEED_COLORS[k % len(SEED_COLORS)],
                label=f"seed {seed}: unit {res['counter']}")
    ax.set_xlabel("bracket depth after the character (test text)")
    ax.set_ylabel("sign(r) * c_t of the counter, mean")
    ax.legend(fontsize=7)
    return fig


def plot_when_which(effects: Dict[str, Tensor], units: Sequence[int], title: str = "",
                    r: Optional[Tensor] = None):
    """Two bars per unit: the rise of -log P(any closer) (when) and of -log P(right closer |
    closer) (which) before closers in code, when the unit is held still; r (H,) in the labels."""
    fig, ax = _figure(figsize=(9, 3.2))
    x = torch.arange(len(units))
    ax.bar(x - 0.2, effects["when"][list(units)], 0.4, color="C0", label="when: -log P(a closer)")
    ax.bar(x + 0.2, effects["which"][list(units)], 0.4, color="C1",
           label="which: -log P(right closer | a closer)")
    labels = [f"{u}" + ("" if r is None else f"\nr = {float(r[u]):+.2f}") for u in units]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel("layer-0 unit (r: with the depth, selection text)", fontsize=8)
    ax.set_ylabel("rise before closers (nats)", fontsize=9)
    ax.axhline(0, color="0.6", linewidth=0.8)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return fig


def plot_counter_r(results: Dict[int, Dict]):
    """Per seed: the counter's |r| with the depth on the selection, test and hand-written text,
    beside the best |r| of the untrained model's layer 0 on the test text."""
    fig, ax = _figure(figsize=(6.5, 3))
    seeds = list(results)
    values = {name: [abs(results[s]["r"][name]) for s in seeds]
              for name in ("selection", "test", "hand-written")}
    values["untrained\n(best unit, test)"] = [results[s]["untrained"]["bracket depth", 0]["observed"]
                                              for s in seeds]
    plot_seed_dots(ax, values, seeds, "|r| with the depth")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("the counter, chosen on the selection text", fontsize=10)
    return fig


def plot_moves(results: Dict[int, Dict]):
    """Per seed: the counter's mean signed move c_{t+1} - c_{t-1} across each kind of bracket."""
    fig, ax = _figure(figsize=(6.5, 3))
    seeds = list(results)
    kinds = list(results[seeds[0]]["moves"])
    plot_seed_dots(ax, {k: [results[s]["moves"][k]["mean"] for s in seeds] for k in kinds}, seeds,
                   "sign(r) * (c_{t+1} - c_{t-1}), mean")
    ax.legend(fontsize=7)
    ax.set_title("the counter across brackets, test text", fontsize=10)
    return fig


def plot_when_which_seeds(results: Dict[int, Dict]):
    """Per seed, every layer-0 unit: its effect on *when* (x) and on *which* (y), coloured by
    |r| with the depth; the counter group ringed."""
    fig, axes = _figure(1, len(results), figsize=(10, 2.6), sharex=True, sharey=True,
                        squeeze=False)
    axes = axes[0]
    for ax, (seed, res) in zip(axes, results.items(), strict=True):
        e = res["effects"]
        art = ax.scatter(e["when"], e["which"], c=res["r units"].abs(), cmap="viridis", s=9,
                         vmin=0, vmax=1)
        g = res["group"]
        ax.scatter(e["when"][g], e["which"][g], s=40, facecolors="none", edgecolors="C3")
        ax.set_title(f"seed {seed}", fontsize=9)
        ax.set_xlabel("when (nats)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("which (nats)", fontsize=8)
    fig.colorbar(art, ax=axes, label="|r| with depth", shrink=0.9)
    return fig


def plot_ablations(results: Dict[int, Dict], target: str = "group"):
    """For one target, per measure (when, which, elsewhere): mean and resample ablation, c alone
    and c and h held, one dot per seed."""
    fig, axes = _figure(1, 3, figsize=(10, 2.8), sharey=True)
    seeds = list(results)
    for ax, measure_ in zip(axes, ("when", "which", "loss elsewhere"), strict=True):
        values = {f"{m}\n{h}": [results[s]["ablation"][target, m, h][measure_] for s in seeds]
                  for m in ("mean", "resample") for h in ("c", "c and h")}
        plot_seed_dots(ax, values, seeds, "rise (nats)" if measure_ == "when" else "")
        ax.set_title(measure_ if measure_ != "loss elsewhere" else "loss elsewhere", fontsize=9)
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"the {target} held still, four ways", fontsize=10)
    return fig
