"""Shared test helpers: an independent reference built only from nn.LSTM's own parameters."""

import torch
import torch.utils._pytree as pytree
from torch import nn
from torch.nn.utils.rnn import PackedSequence


class RefEdit:
    """An edit for ``cell_reference``, written independently of lstm_states.Edit: at input
    positions ``positions`` of (layer, direction), ``field`` ("h", "c", "i", "f", "g", "o")
    units ``units`` (None: all) become ``op(old)``, op one of ("set", v), ("add", v),
    ("scale", v) with v a number or a tensor broadcastable to (B, units), or ("fn", callable)."""

    def __init__(self, field, layer, direction, positions, units, op, value):
        self.field, self.layer, self.direction = field, layer, direction
        self.positions, self.units, self.op, self.value = set(positions), units, op, value

    def apply(self, state, row):
        """state (1, n_all) of batch row ``row``: the edited state (out of place)."""
        cols = list(range(state.shape[1])) if self.units is None else list(self.units)
        old = state[:, cols]  # (1, n)
        if self.op == "fn":
            new = self.value(old)
        else:
            v = self.value
            if isinstance(v, torch.Tensor):
                v = torch.broadcast_to(v, (self.batch, len(cols)))[row:row + 1]
            new = {"set": lambda: old * 0 + v, "add": lambda: old + v,
                   "scale": lambda: old * v}[self.op]()
        state = state.clone()
        state[:, cols] = new
        return state


def _edited(state, edits, field, layer, d, t, row):
    for e in edits:
        if (e.field, e.layer, e.direction) == (field, layer, d) and t in e.positions:
            state = e.apply(state, row)
    return state


def cell_reference(lstm: nn.LSTM, x: torch.Tensor, hx=None, lengths=None, edits=(), row=None):
    """Every layer's h, c and gates by a plain per-step loop over the module's weights.

    Independent of lstm_states: written from the equations in nn.LSTM's documentation.
    x: (T, B, I), time-major, padded; eval mode. hx: optional (h_0, c_0) shaped
    (L*D, B, H_out), (L*D, B, H). lengths: optional per-sequence lengths (B,); each sequence is
    then run on its own first lengths[b] steps and its states are zero past its end.
    edits: RefEdits applied as each state is computed (one sequence at a time, batch row by
    batch row, so that an edit of position t never reaches a sequence shorter than t + 1).
    Returns h (L, D, T, B, H_out), c (L, D, T, B, H), gates (L, D, 4, T, B, H).
    """
    if row is None and edits:  # the caller's call: run row by row, values broadcast to (B, n)
        for e in edits:
            e.batch = x.shape[1]
        if lengths is None:
            lengths = torch.full((x.shape[1],), x.shape[0])
    if lengths is not None:  # one sequence at a time, on its own steps only
        T = x.shape[0]
        per_b = []
        for b, n in enumerate(int(v) for v in lengths):
            hx_b = None if hx is None else (hx[0][:, b:b + 1], hx[1][:, b:b + 1])
            states = cell_reference(lstm, x[:n, b:b + 1], hx_b, edits=edits, row=b)
            per_b.append([torch.cat([s, s.new_zeros(*s.shape[:-3], T - n, *s.shape[-2:])], -3)
                          for s in states])  # zeros past the end along T
        return tuple(torch.cat([p[k] for p in per_b], dim=-2) for k in range(3))  # along B
    T, B, _ = x.shape
    D = 2 if lstm.bidirectional else 1
    H = lstm.hidden_size
    H_out = lstm.proj_size or H
    hs, cs, gs = [], [], []
    inp = x
    for layer in range(lstm.num_layers):
        h_d, c_d, g_d = [], [], []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(lstm, "weight_ih" + sfx), getattr(lstm, "weight_hh" + sfx)
            b = (getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx)) if lstm.bias else 0
            if hx is None:
                h_t, c_t = x.new_zeros(B, H_out), x.new_zeros(B, H)
            else:
                h_t, c_t = hx[0][layer * D + d], hx[1][layer * D + d]
            steps = range(T) if d == 0 else range(T - 1, -1, -1)
            h_seq, c_seq, g_seq = [None] * T, [None] * T, [None] * T
            for t in steps:
                z = inp[t] @ w_ih.T + h_t @ w_hh.T + b
                i, f, g, o = z.chunk(4, -1)
                i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
                i, f, g, o = (_edited(s, edits, n, layer, d, t, row)
                              for n, s in zip("ifgo", (i, f, g, o), strict=True))
                c_t = _edited(f * c_t + i * g, edits, "c", layer, d, t, row)
                h_t = o * c_t.tanh()
                if lstm.proj_size:
                    h_t = h_t @ getattr(lstm, "weight_hr" + sfx).T
                h_t = _edited(h_t, edits, "h", layer, d, t, row)
                h_seq[t], c_seq[t], g_seq[t] = h_t, c_t, torch.stack([i, f, g, o])
            h_d.append(torch.stack(h_seq))
            c_d.append(torch.stack(c_seq))
            g_d.append(torch.stack(g_seq, dim=1))
        hs.append(torch.stack(h_d))
        cs.append(torch.stack(c_d))
        gs.append(torch.stack(g_d))
        inp = torch.cat(h_d, -1)
    return torch.stack(hs), torch.stack(cs), torch.stack(gs)


def tree_leaves(tree):
    """The pytree leaves of ``tree``, each PackedSequence among them opened into its four fields
    (data, batch_sizes, sorted_indices, unsorted_indices) as newer torch's pytree opens it
    itself; older releases keep it as one leaf (torch 2.1 also lacks pytree.tree_leaves). The
    same list on every torch release tested (tools/torch_versions.sh)."""
    leaves = []
    for leaf in pytree.tree_flatten(tree)[0]:
        leaves.extend(leaf if isinstance(leaf, PackedSequence) else [leaf])
    return leaves
