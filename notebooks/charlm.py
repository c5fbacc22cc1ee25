"""A character-level language model of Python code: a plain 2-layer nn.LSTM to look inside.

    python notebooks/charlm.py                 # train, write notebooks/data/charlm.pt
    python notebooks/charlm.py --steps 50 --out /tmp/charlm.pt   # a quick try
    python notebooks/charlm.py --cell gru --out notebooks/data/chargru.pt  # the same with nn.GRU

Tutorial code, not part of the ``lstm_states`` package: it lives beside the notebooks that use it
(``from charlm import ...`` in a notebook; ``from notebooks.charlm import ...`` from the
repository root).

Model: ``Embedding(97, 32) -> torch.nn.LSTM(32, 128, num_layers=2) -> Linear(128, 97)``,
predicting the next character. Training (defaults): 2400 steps of Adam on 32 streams x 100
characters, fixed seed 0, about 1.5-2 minutes on 2 CPU cores; the result is the same on every
run on a given machine. Truncated backpropagation through time: the corpus is cut into
``batch`` contiguous streams and the state is carried from one chunk to the next, so the model
sees long contexts.

Corpus: random, bracket-heavy Python statements from a small grammar (:func:`generated_code`),
the same on every Python version, nothing downloaded. Its structure is known exactly, character
by character (bracket depth, inside a string or a comment, position in the line; see
:func:`python_structure`), so one can ask which LSTM units track it (Karpathy, Johnson and
Fei-Fei 2015, "Visualizing and Understanding Recurrent Networks"; Suzgun et al. 2019, "LSTM
Networks Can Perform Dynamic Counting"). Why not the standard library's own source: in our try
(this model, the same couple of minutes of training) no unit followed bracket depth (best |r|
about 0.6); generated code, dense in nested brackets, gives clear counters.

The checkpoint keeps the LSTM's ``state_dict`` apart from the embedding and the head, so it loads
into a bare ``nn.LSTM`` or an ``lstm_states.LayerwiseLSTM``; the vocabulary is stored with it.

Shape legend: T time steps, B batch, E embedding size, H hidden size, V vocabulary size.
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VOCAB", "CELLS", "CharLM", "encode", "generated_code", "train", "save_checkpoint",
           "load_checkpoint", "held_out_text", "python_structure", "correlations",
           "unit_correlations", "CHECKPOINT", "HELD_OUT"]

DATA = Path(__file__).resolve().parent / "data"
CHECKPOINT = DATA / "charlm.pt"
"""The committed checkpoint (written by ``python notebooks/charlm.py``)."""
HELD_OUT = DATA / "heldout_python.txt"
"""Fixed held-out Python code (written by hand, never trained on) to look inside the model."""

UNKNOWN = "\x00"
VOCAB = UNKNOWN + "\n" + "".join(chr(i) for i in range(32, 127))
"""Id 0 is the fallback for any character outside newline + printable ASCII (tabs included)."""


def encode(text: str, vocab: str = VOCAB) -> Tensor:
    """Character ids of ``text``, (T,) int64; characters not in ``vocab`` map to id 0."""
    index = {ch: i for i, ch in enumerate(vocab)}
    return torch.tensor([index.get(ch, 0) for ch in text], dtype=torch.long)


NAMES = ("x", "y", "n", "data", "items", "value", "key", "total", "node", "row", "size", "name",
         "path", "result", "config", "parts", "count", "line", "cells", "args")
FUNCS = ("f", "g", "len", "max", "min", "sum", "sorted", "parse", "load", "dict", "list", "zip",
         "range", "str", "int", "round", "tuple", "merge", "split", "join")
WORDS = ("a", "b", "the", "key", "name", "size", "x", "y", "ok", "no", "(", ")", "[", "]", "{",
         "}", ":", ",", "=", "#", "it's", 'say "hi"')  # brackets and quotes inside strings too


def generated_code(n_chars: int, seed: int = 0) -> str:
    """``n_chars`` characters of random, bracket-heavy Python statements.

    Lines such as ``data = merge(79, {'a (': [x, f(y)]})  # it's [`` from a small grammar:
    calls (keyword arguments too), method calls, lists, tuples, dicts, comprehensions, indexing
    and operators nested up to 7 deep, strings and comments
    that hold brackets and quotes of their own (which do not count), and long argument lists
    broken over several lines; every complete line is valid Python. Only ``random.Random.random`` is used, so the text is the same
    on every Python version.
    """
    rng = random.Random(seed)

    def pick(seq):
        return seq[int(rng.random() * len(seq))]

    def string():
        q = pick("'\"")
        words = [w for w in (pick(WORDS) for _ in range(int(rng.random() * 4))) if q not in w]
        return q + " ".join(words) + q

    def atom():
        k = rng.random()
        if k < 0.05:
            return pick(("None", "True", "False"))
        return pick(NAMES) if k < 0.4 else str(int(rng.random() * 100)) if k < 0.7 else string()

    def args(depth, lo, hi, item=None):
        out = []
        for i in range(lo + int(rng.random() * (hi - lo + 1))):
            if i:  # sometimes break the line after a comma, indented by the depth
                out.append(",\n" + "    " * depth if rng.random() < 0.3 else ", ")
            out.append(item(depth) if item else expr(depth))
        return "".join(out)

    def call_args(depth, lo, hi):  # keyword arguments after the positional ones, each once
        start, used = int(rng.random() * len(NAMES)), []

        def arg(d):
            if used or rng.random() < 0.15:
                used.append(NAMES[(start + 7 * len(used)) % len(NAMES)])
                return used[-1] + "=" + expr(d)
            return expr(d)

        return args(depth, lo, hi, arg)

    def pair(depth):
        return (string() if rng.random() < 0.7 else pick(NAMES)) + ": " + expr(depth)

    def loop(depth):  # " for x in items if x"
        cond = " if " + expr(depth) if rng.random() < 0.3 else ""
        return " for " + pick(NAMES) + " in " + expr(depth) + cond

    def expr(depth):
        if depth >= 7 or rng.random() >= 0.62 * 0.88**depth:
            return atom()
        k, d = rng.random(), depth + 1
        if k < 0.25:
            return pick(FUNCS) + "(" + call_args(d, 0, 3) + ")"
        if k < 0.32:
            return pick(NAMES) + "." + pick(FUNCS) + "(" + call_args(d, 0, 2) + ")"
        if k < 0.48:
            return "[" + args(d, 0, 3) + "]"
        if k < 0.53:
            return "[" + expr(d) + loop(d) + "]"
        if k < 0.61:
            return "(" + args(d, 2, 3) + ")"
        if k < 0.69:
            return "{" + args(d, 1, 2, pair) + "}"
        if k < 0.72:
            return "{" + pair(d) + loop(d) + "}"
        if k < 0.82:
            return pick(NAMES) + "[" + expr(d) + "]"
        return expr(depth) + pick((" + ", " * ", " - ", " / ", " in ", " < ")) + expr(depth)

    lines, total = [], 0
    while total < n_chars:
        if rng.random() < 0.08:
            line = ""
        elif rng.random() < 0.7:
            line = pick(NAMES) + " = " + expr(0)
        else:
            line = pick(FUNCS) + "(" + call_args(1, 1, 3) + ")"
        if line and rng.random() < 0.15:
            line += "  # " + " ".join(pick(WORDS) for _ in range(1 + int(rng.random() * 4)))
        lines.append(line + "\n")
        total += len(lines[-1])
    return "".join(lines)[:n_chars]


CELLS = ("lstm", "gru")
"""The recurrent cells a :class:`CharLM` can have (``nn.LSTM`` or ``nn.GRU``)."""


class CharLM(nn.Module):
    """Embedding -> plain 2-layer ``nn.LSTM`` (or ``nn.GRU``) -> linear head over the next character.

    ``cell="lstm"`` (the default) keeps the recurrent module as ``model.lstm``; ``cell="gru"``
    as ``model.gru``. ``model.rnn`` is the recurrent module either way.
    """

    def __init__(self, vocab_size: int = len(VOCAB), embedding_dim: int = 32,
                 hidden_size: int = 128, num_layers: int = 2, cell: str = "lstm"):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        module = nn.LSTM if cell == "lstm" else nn.GRU
        # time-first; named lstm or gru, so an LSTM's state_dict keys stay what they were
        setattr(self, cell, module(embedding_dim, hidden_size, num_layers=num_layers))
        self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def rnn(self) -> nn.Module:
        """The recurrent module: ``self.lstm`` or ``self.gru``."""
        return getattr(self, self.cell)

    def forward(self, ids: Tensor, hx=None):
        """ids (T, B) -> logits (T, B, V) and the final state: (h_n, c_n) for an LSTM, h_n for a
        GRU, each (L, B, H)."""
        x = self.embedding(ids)  # (T, B) -> (T, B, E)
        out, hx = self.rnn(x, hx)  # (T, B, E) -> (T, B, H)
        return self.head(out), hx  # (T, B, H) -> (T, B, V)


def _streams(ids: Tensor, batch: int) -> Tensor:
    """Cuts the corpus into ``batch`` contiguous streams: (N,) -> (N // batch, batch)."""
    n = ids.numel() // batch
    return ids[: n * batch].view(batch, n).t().contiguous()  # (n, B)


def train(steps: int = 2400, seq_len: int = 100, batch: int = 32, lr: float = 6e-3,
          embedding_dim: int = 32, hidden_size: int = 128, seed: int = 0,
          corpus: Optional[str] = None, corpus_chars: int = 2_000_000, progress: bool = True,
          cell: str = "lstm") -> Tuple[CharLM, List[float]]:
    """Trains a :class:`CharLM` on ``corpus`` (default: ``corpus_chars`` of :func:`generated_code`).

    Truncated backpropagation through time: the corpus is cut into ``batch`` contiguous streams
    read ``seq_len`` characters at a time, the LSTM state carried (detached) between chunks and
    the streams wrapping around at the end. Adam with a cosine-decayed learning rate and
    gradient clipping at norm 1. ``cell="gru"`` trains the same model with an ``nn.GRU``: the
    same recipe, seed and corpus.

    Returns:
        the model (in eval mode) and the training loss (cross-entropy, nats/char) of every step.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    ids = encode(generated_code(corpus_chars, seed) if corpus is None else corpus)
    data = _streams(ids, batch)  # (N, B)
    if data.shape[0] <= seq_len:
        raise ValueError(f"corpus too short: {ids.numel()} characters for batch={batch} and"
                         f" seq_len={seq_len}; give a longer corpus or a smaller batch")
    model = CharLM(len(VOCAB), embedding_dim, hidden_size, cell=cell)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    hx = None
    pos = 0
    losses: List[float] = []
    bar = tqdm(range(steps), desc="training", disable=not progress)
    for _ in bar:
        if pos + seq_len + 1 > data.shape[0]:
            pos, hx = 0, None  # wrap around: the streams start over, from a zero state
        chunk = data[pos: pos + seq_len + 1]  # (T+1, B)
        pos += seq_len
        logits, hx = model(chunk[:-1], hx)  # (T, B, V)
        hx = (hx[0].detach(), hx[1].detach()) if cell == "lstm" else hx.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if len(losses) % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / 20:.3f}")
    return model.eval(), losses


def save_checkpoint(model: CharLM, path: Path = CHECKPOINT, **info) -> None:
    """Saves the LSTM's state_dict apart from the embedding and head, with the vocabulary.

    A GRU model's checkpoint keeps its ``nn.GRU`` state_dict under ``"gru"`` and says
    ``config["cell"] = "gru"``; an LSTM's has the format it always had (no ``"cell"`` key).
    """
    config = {"embedding_dim": model.embedding.embedding_dim,
              "hidden_size": model.rnn.hidden_size, "num_layers": model.rnn.num_layers}
    if model.cell != "lstm":
        config["cell"] = model.cell
    state = {
        "vocab": VOCAB,
        "config": config,
        model.cell: model.rnn.state_dict(),  # an LSTM's loads into nn.LSTM and LayerwiseLSTM
        "embedding": model.embedding.state_dict(),
        "head": model.head.state_dict(),
        "info": info,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def load_checkpoint(path: Path = CHECKPOINT) -> Tuple[CharLM, Dict]:
    """The model (eval mode) and the raw checkpoint dict (``vocab``, ``config``, ``info``, ...)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CharLM(len(state["vocab"]), **state["config"])
    model.embedding.load_state_dict(state["embedding"])
    model.rnn.load_state_dict(state[model.cell])
    model.head.load_state_dict(state["head"])
    return model.eval(), state


def held_out_text() -> str:
    """The fixed held-out Python code kept in ``notebooks/data``."""
    return HELD_OUT.read_text(encoding="utf-8")


def python_structure(text: str) -> Dict[str, Tensor]:
    """What is known about each character of Python source, after reading it.

    A small scanner (no f-strings; escapes inside strings; ``#`` comments): for each position t,
    the state after reading ``text[t]``.

    Returns:
        dict of (T,) float tensors: ``"bracket depth"`` (open ( [ { outside strings and
        comments), ``"inside a string"`` (1 from an opening quote up to, not including, the
        closing one), ``"inside a comment"`` and ``"position in line"`` (characters since the
        last newline; 0 right after one).
    """
    T = len(text)
    depth, in_str, in_com, col = ([0.0] * T for _ in range(4))
    d, c = 0, 0
    quote = ""  # the open string's delimiter: ' " ''' or """, or "" outside strings
    comment = False
    t = 0
    while t < T:
        ch = text[t]
        n = 1  # characters consumed this round
        if quote:
            if ch == "\\":
                n = 2
            elif text.startswith(quote, t):
                n, quote = len(quote), ""
                for k in range(t, min(t + n, T)):
                    in_str[k] = 0.0  # the closing quote ends the string
                    depth[k], col[k] = d, c + (k - t) + 1
                t, c = t + n, c + n
                continue
            elif ch == "\n" and len(quote) == 1:
                quote = ""  # unterminated one-line string: ends at the line's end
        elif comment:
            comment = ch != "\n"
        elif ch == "#":
            comment = True
        elif ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, t) else ch
            n = len(quote)
        elif ch in "([{":
            d += 1
        elif ch in ")]}":
            d = max(d - 1, 0)
        for k in range(t, min(t + n, T)):
            c = 0 if text[k] == "\n" else c + 1
            depth[k], in_str[k], in_com[k], col[k] = d, float(bool(quote)), float(comment), c
        t += n
    names = ("bracket depth", "inside a string", "inside a comment", "position in line")
    return {n: torch.tensor(v, dtype=torch.float32)
            for n, v in zip(names, (depth, in_str, in_com, col), strict=True)}


def correlations(values: Tensor, quantity: Tensor) -> Tensor:
    """Pearson r of every unit with a quantity: values (T, H), quantity (T,) -> (H,).

    A unit that never changes gets r = 0.
    """
    v = values - values.mean(0)  # (T, H)
    q = quantity - quantity.mean()  # (T,)
    num = (v * q[:, None]).sum(0)  # (H,)
    den = v.norm(dim=0) * q.norm()  # (H,)
    return torch.where(den > 0, num / den.clamp_min(1e-12), torch.zeros_like(num))


def unit_correlations(states, known: Dict[str, Tensor],
                      batch: int = 0) -> Dict[Tuple[str, int, str], Tensor]:
    """Pearson r of every unit's c_t and h_t, in every layer, with every known quantity.

    For a GRU's (or RNN's) states, which have no c, only h_t.

    Args:
        states: ``lstm_states.capture``'s result for a one-directional LSTM over T characters.
        known: quantities of the text, each (T,) (e.g. :func:`python_structure`).
        batch: which sequence of the batch.

    Returns:
        ``{(quantity, layer, "c" or "h"): (H,) r of every unit}``.
    """
    r = {}
    kinds = (("c", states.c), ("h", states.h)) if hasattr(states, "c") else (("h", states.h),)
    for name, q in known.items():
        for layer in range(states.h.shape[0]):
            for kind, values in kinds:
                r[name, layer, kind] = correlations(values[layer, 0, :, batch], q)  # (T, H) -> (H,)
    return r


def _report(model: CharLM) -> None:
    """Prints the best unit of each layer (h and c) for each quantity on the held-out text."""
    from lstm_states import capture

    text = held_out_text()
    with torch.no_grad():
        st = capture(model.rnn, model.embedding(encode(text))[:, None])  # (T, 1, E)
    known = python_structure(text)
    r_all = unit_correlations(st, known)
    for name in known:
        cells = []
        for layer in range(model.rnn.num_layers):
            for kind in ("h", "c") if model.cell == "lstm" else ("h",):
                r = r_all[name, layer, kind]  # (H,)
                u = int(r.abs().argmax())
                cells.append(f"layer {layer} {kind}[{u}] r={r[u]:+.2f}")
        print(f"{name:>17}: " + ", ".join(cells))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(prog="python notebooks/charlm.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2400)
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=6e-3)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cell", choices=CELLS, default="lstm")
    p.add_argument("--out", type=Path, default=CHECKPOINT)
    a = p.parse_args(argv)
    model, losses = train(a.steps, a.seq_len, a.batch, a.lr, hidden_size=a.hidden_size,
                          seed=a.seed, cell=a.cell)
    final = sum(losses[-50:]) / len(losses[-50:])
    print(f"final training loss (mean of the last 50 steps): {final:.3f} nats/char")
    save_checkpoint(model, a.out, steps=a.steps, seq_len=a.seq_len, batch=a.batch, lr=a.lr,
                    seed=a.seed, final_loss=round(final, 4))
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")
    _report(model)


if __name__ == "__main__":
    main()
