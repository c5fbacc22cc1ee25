"""Chapters 01 and 02 beyond what their cells show: the checks of their figures and widgets, and
the checks the chapters made before they were cut to what a learner types.

Each chapter's code cells (hidden solutions included) run here in one namespace, in order, as
the kernel runs them, so the tests inspect the very objects the chapter made (its ``lstm``, its
``explorer``, ...). Figures draw on Agg; ``%`` magics are skipped.
"""

import inspect
import json
import pickle
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

from lstm_states import capture  # noqa: E402
from lstm_states.diagrams import inputs_seen, return_cells, run_cell_graph  # noqa: E402

pytest.importorskip("ipywidgets")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_chapter(name):
    """Runs every code cell of notebooks/<name> in one namespace; returns the namespace."""
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    scope = {"__name__": "__chapter__"}
    # the chapter's own settings (grad mode, warning filters) stay inside this run
    with torch.enable_grad(), warnings.catch_warnings():
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                code = "\n".join(line for line in source.splitlines() if not line.startswith("%"))
                exec(compile(code, name, "exec"), scope)
    return scope


@pytest.fixture(scope="module")
def ch01():
    scope = run_chapter("01_what_nn_lstm_returns.ipynb")
    yield scope
    plt.close("all")


@pytest.fixture(scope="module")
def ch02():
    scope = run_chapter("02_every_layer_every_step.ipynb")
    yield scope
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# chapter 01: the pictures


def test_01_the_cell_picture_computes_what_nn_lstm_computes(ch01):
    # the cell diagram is drawn from a graph of operations: one step of it is lstm's first step
    lstm, x, B, H = ch01["lstm"], ch01["x"], ch01["B"], ch01["H"]
    with torch.no_grad():
        _, (h_one, c_one) = lstm(x[:1])
    zeros = torch.zeros(B, H)
    drawn = run_cell_graph(x[0], zeros, zeros, lstm.weight_ih_l0, lstm.weight_hh_l0,
                           lstm.bias_ih_l0, lstm.bias_hh_l0)
    torch.testing.assert_close(drawn["h_t"], h_one[0])
    torch.testing.assert_close(drawn["c_t"], c_one[0])


def test_01_the_grid_picture_marks_exactly_what_lstm_returns(ch01):
    # every cell the picture marks is the returned vector it names, and every returned row is
    # marked (checked against the grid computed by hand in the chapter)
    L, T = ch01["L"], ch01["T"]
    output, h_n, c_n = ch01["output"], ch01["h_n"], ch01["c_n"]
    grid = {"h": ch01["h_all"], "c": ch01["c_all"]}  # (L, T, B, H) each
    cells = return_cells(num_layers=L, bidirectional=False, steps=T)
    for layer, _d, state, t, index in cells["output"]:
        torch.testing.assert_close(output[index], grid[state][layer, t])
    for name, returned in (("h_n", h_n), ("c_n", c_n)):
        for layer, _d, state, t, k in cells[name]:
            torch.testing.assert_close(returned[k], grid[state][layer, t])
        assert sorted(k for *_, k in cells[name]) == list(range(len(returned)))
    assert sorted(index for *_, index in cells["output"]) == list(range(len(output)))


def test_01_the_hatching_is_what_each_state_has_read(ch01):
    # the bidirectional picture hatches the states that have read x_0: exactly those that
    # change when x_0 changes
    lstm_bi, x, x_changed, L, T = (ch01[k] for k in ("lstm_bi", "x", "x_changed", "L", "T"))
    seen = inputs_seen(num_layers=L, bidirectional=True, steps=T)  # what the arrows say
    with torch.no_grad():
        change = (capture(lstm_bi, x_changed).h - capture(lstm_bi, x).h).abs().amax(dim=(-2, -1))
    for (layer, d, t), inputs in seen.items():  # change: (L, D, T)
        assert bool(change[layer, d, t] > 0) == (0 in inputs), (layer, d, t)
    assert 0 in seen[L - 1, 1, T - 1] and 0 not in seen[0, 1, T - 1]  # as the chapter says


# ---------------------------------------------------------------------------------------------
# chapter 01: the ReturnsExplorer, as the chapter made it


def test_01_returns_explorer_shows_what_a_real_lstm_returns(ch01):
    explorer, x, I, H, T, B = (ch01[k] for k in ("explorer", "x", "I", "H", "T", "B"))
    try:
        explorer.num_layers.value = 3
        explorer.bidirectional.value = True
        with torch.no_grad():
            out_check, (h_check, c_check) = nn.LSTM(I, H, num_layers=3, bidirectional=True)(x)
        assert explorer.shapes["output"] == tuple(out_check.shape)
        assert explorer.shapes["h_n"] == tuple(h_check.shape) == (6, B, H)  # L*D = 3*2 rows
        assert explorer.ax.images[0].get_array().shape == (2 * 3 * 2, T)  # layer, dir, state
        assert "bidirectional=True" in explorer.ax.get_title()

        explorer.batch_first.value = True
        explorer.proj_size.value = 2
        check = nn.LSTM(I, H, num_layers=3, bidirectional=True, batch_first=True, proj_size=2)
        with torch.no_grad():
            out_check, (h_check, c_check) = check(x.transpose(0, 1))
        assert explorer.shapes["output"] == tuple(out_check.shape) == (B, T, 2 * 2)
        assert explorer.shapes["h_n"] == tuple(h_check.shape)
        assert explorer.shapes["c_n"] == tuple(c_check.shape)
        assert "<code>(B, T, D*H_out)</code>" in explorer.shapes_text.value
        legend = [t.get_text() for t in explorer.ax.get_legend().get_texts()]
        assert legend[0].startswith("output[:, t]") and "size 2" in legend[1]
        assert "size 4" in legend[2]

        # packed input: lengths 6, 3, 1
        explorer.packed.value = True
        explorer.lengths.value = "6, 3, 1"
        lengths = [6, 3, 1]
        packed = pack_padded_sequence(x.transpose(0, 1), torch.tensor(lengths),
                                      batch_first=True, enforce_sorted=False)  # from (B, T, I)
        with torch.no_grad():
            out_check, (h_check, c_check) = check(packed)
        padded, _ = pad_packed_sequence(out_check, batch_first=True, total_length=T)
        assert explorer.shapes["input"] == tuple(packed.data.shape) == (sum(lengths), I)
        assert explorer.shapes["output"] == tuple(out_check.data.shape)
        assert explorer.shapes["output padded"] == tuple(padded.shape) == (B, T, 2 * 2)
        assert explorer.shapes["h_n"] == tuple(h_check.shape)
        for b, n in enumerate(lengths):  # the top layer's forward h_n: each one's last step
            torch.testing.assert_close(h_check[-2, b], padded[b, n - 1, :2])
        assert explorer.h_n_steps == [n - 1 for n in lengths]  # the explorer's LSTM agrees
        assert "holds step 5 of sequence 0, 2 of sequence 1, 0 of sequence 2" in (
            explorer.shapes_text.value)

        # the grid of sequence 1 (length 3): three columns, steps 3..5 hatched as padding
        explorer.sequence.value = 1
        assert explorer.ax.get_title().endswith("sequence 1 has length 3, so its h_n is step 2")
        assert explorer.ax.images[0].get_array().shape[1] == lengths[1]
        padding = [p for p in explorer.ax.patches if p.get_label() == "padding"]
        assert len(padding) == 1 and padding[0].get_x() == 3 - 0.5
        assert padding[0].get_width() == T - 3
        assert not padded[1, 3:].any()  # what the hatching says: zeros past the end

        # unbatched unticks packed; no batch axis anywhere
        explorer.unbatched.value = True
        assert not explorer.packed.value
        with torch.no_grad():
            out_u, (h_u, c_u) = check(x[:, 0])
        assert explorer.shapes == {"input": (T, I), "output": tuple(out_u.shape),
                                   "h_n": tuple(h_u.shape), "c_n": tuple(c_u.shape)}
        assert explorer.shapes["output"] == (T, 2 * 2) and explorer.shapes["h_n"] == (3 * 2, 2)
        assert "unbatched input (T, I)" in explorer.ax.get_title()
    finally:  # as the chapter left it, for the other tests
        explorer.unbatched.value = explorer.packed.value = False
        explorer.batch_first.value = explorer.bidirectional.value = False
        explorer.proj_size.value, explorer.num_layers.value = 0, 2


# ---------------------------------------------------------------------------------------------
# chapter 01: the checks its cells made before, on its own tensors


def test_01_batch_first_bidirectional_and_projection(ch01):
    L, B, H, I = ch01["L"], ch01["B"], ch01["H"], ch01["I"]
    torch.testing.assert_close(ch01["output_bf"][:, -1], ch01["h_n_bf"][-1])
    h_n_bi, output_bi = ch01["h_n_bi"], ch01["output_bi"]
    top_fwd, top_rev = h_n_bi.view(L, 2, B, H)[-1]  # layer-major: row l*2 + d
    torch.testing.assert_close(top_fwd, h_n_bi[2])
    torch.testing.assert_close(top_rev, h_n_bi[3])
    both = torch.cat([h_n_bi[-2], h_n_bi[-1]], dim=-1)
    torch.testing.assert_close(both, torch.cat([output_bi[-1, :, :H], output_bi[0, :, H:]], -1))
    # layer 1 of lstm_bi on its own, reading layer 0's output, gives lstm_bi's output
    lstm_bi, layer0_bi, x, x_changed = (ch01[k] for k in ("lstm_bi", "layer0_bi", "x",
                                                          "x_changed"))
    layer1_bi = nn.LSTM(2 * H, H, bidirectional=True)
    layer1_bi.load_state_dict({k.replace("_l1", "_l0"): v for k, v in lstm_bi.state_dict().items()
                               if "_l1" in k})
    with torch.no_grad():
        out0, out0_changed = layer0_bi(x)[0], layer0_bi(x_changed)[0]
        torch.testing.assert_close(layer1_bi(out0)[0], output_bi)
    assert not torch.equal(out0_changed[0, :, H:], out0[0, :, H:])  # its final state has read x_0
    shapes = {name: tuple(w.shape) for name, w in ch01["lstm_bp"].named_parameters()}
    P = ch01["P"]
    assert shapes["weight_ih_l0"] == (4 * H, I) and shapes["weight_ih_l1"] == (4 * H, 2 * P)
    assert shapes["weight_hh_l0"] == shapes["weight_hh_l1"] == (4 * H, P)
    assert shapes["weight_hr_l0"] == shapes["weight_hr_l1_reverse"] == (P, H)


def test_01_packed_and_unbatched(ch01):
    lstm, lstm_bi, x, lengths, packed = (ch01[k] for k in ("lstm", "lstm_bi", "x", "lengths",
                                                           "packed"))
    H, T, B = ch01["H"], ch01["T"], ch01["B"]
    assert packed.sorted_indices.tolist() == [1, 0, 2]  # internally, longest first
    padded, lens = pad_packed_sequence(ch01["output_pk"])
    assert padded.shape == (T, B, H) and lens.tolist() == lengths  # back in your order
    assert not padded[4:, 0].any() and not padded[2:, 2].any()  # zero padding
    with torch.no_grad():
        for b, n in enumerate(lengths):
            _, (_, c_alone) = lstm(x[:n, b : b + 1])
            torch.testing.assert_close(ch01["c_n_pk"][:, b], c_alone[:, 0])
        h_n_bpk, padded_bi = ch01["h_n_bpk"], ch01["padded_bi"]
        for b, n in enumerate(lengths):  # bidirectional packed: forward at its own last step
            torch.testing.assert_close(h_n_bpk[-2, b], padded_bi[n - 1, b, :H])
        torch.testing.assert_close(ch01["c_n_u"], ch01["c_n"][:, 0])  # unbatched
        with pytest.raises(RuntimeError, match="2-D"):  # a 3-D hx with 2-D input is refused
            lstm(x[:, 0], (ch01["h_n"][:, :1], ch01["c_n"][:, :1]))
    assert lstm_bi.bidirectional and ch01["output_u"].shape == (T, H)


def test_01_the_grid_by_hand_is_what_capture_returns(ch01):
    with torch.no_grad():
        st = capture(ch01["lstm"], ch01["x"])
    torch.testing.assert_close(st.h[:, 0], ch01["h_all"])
    torch.testing.assert_close(st.c[:, 0], ch01["c_all"])
    torch.testing.assert_close(st.output, ch01["output"])


class Keeps(nn.LSTM):
    """An LSTM that keeps its states, as the answer chapter 01 quotes imagines."""

    def forward(self, input, hx=None):
        result = super().forward(input, hx)
        self.all_hidden = result[0].detach()
        return result


class Bumps(nn.LSTM):
    """An LSTM whose call changes a value it holds, without adding an attribute."""

    def forward(self, input, hx=None):
        with torch.no_grad():
            self.bias_hh_l0[0] += 1e-3
        return super().forward(input, hx)


def test_01_the_nothing_kept_check_can_fail():
    # the chapter pickles the module before and after a call: a forward that keeps anything
    # (a new attribute, or a changed value) makes the bytes differ
    x = torch.randn(6, 3, 3)
    for cls, changes in ((nn.LSTM, False), (Keeps, True), (Bumps, True)):
        torch.manual_seed(0)
        module = cls(3, 4, num_layers=2)
        before = pickle.dumps(module)
        module(x)
        assert (pickle.dumps(module) != before) == changes, cls.__name__


# ---------------------------------------------------------------------------------------------
# chapter 02: the StateExplorer, as the chapter made it


def _shown(line):
    return torch.from_numpy(np.asarray(line.get_ydata()))  # the values a line of the figure shows


def _image(image):
    return torch.as_tensor(np.asarray(image.get_array()))  # what a heatmap shows: (units, T)


def test_02_the_slider_shows_every_layer_at_the_step(ch02):
    explorer, st, h_n, c_n, L, T = (ch02[k] for k in ("explorer", "st", "h_n", "c_n", "L", "T"))
    try:
        explorer.slider.value = 12
        for cursor in explorer.cursors:
            assert list(cursor.get_xdata()) == [12, 12]
        for layer in range(L):
            torch.testing.assert_close(_shown(explorer.h_lines[layer]), st.h[layer, 0, 12, 0])
            torch.testing.assert_close(_shown(explorer.c_lines[layer]), st.c[layer, 0, 12, 0])
        assert explorer.step_text.get_text() == "t = 12"

        explorer.slider.value = T - 1  # the last step: what h_n and c_n hold
        for layer in range(L):
            torch.testing.assert_close(_shown(explorer.h_lines[layer]), h_n[layer, 0].detach())
            torch.testing.assert_close(_shown(explorer.c_lines[layer]), c_n[layer, 0].detach())
    finally:
        explorer.slider.value = 0


def test_02_the_batch_and_layer_pickers_redraw(ch02):
    explorer, st, L, T = (ch02[k] for k in ("explorer", "st", "L", "T"))
    try:
        explorer.batch.value = 1
        assert "batch element 1" in explorer.fig.get_suptitle()
        for layer in range(L):
            h_image, c_image = explorer.images[layer]
            torch.testing.assert_close(_image(h_image), st.h[layer, 0, :, 1].T)
            torch.testing.assert_close(_image(c_image), st.c[layer, 0, :, 1].T)
            torch.testing.assert_close(_shown(explorer.h_lines[layer]), st.h[layer, 0, 0, 1])
        bottoms = [explorer.heatmap_axes[layer][0].get_position().y0 for layer in range(L)]
        assert bottoms == sorted(bottoms)  # layer 0 lowest

        explorer.layer.value = 2
        assert explorer.shown_layers == [2] and list(explorer.images) == [2]
        torch.testing.assert_close(_image(explorer.images[2][1]), st.c[2, 0, :, 1].T)
        assert explorer.heatmap_axes[2][1].get_title() == "layer 2: c_t"

        explorer.layer.value = "all"
        explorer.batch.value = 0
        assert explorer.shown_layers == [0, 1, 2]
        torch.testing.assert_close(_image(explorer.images[0][0]), st.h[0, 0, :, 0].T)
    finally:
        explorer.layer.value, explorer.batch.value = "all", 0


def test_02_the_reverse_explorer_of_exercise_2(ch02):
    explorer_bi, st_bi, h_n_bi = ch02["explorer_bi"], ch02["st_bi"], ch02["h_n_bi"]
    assert explorer_bi.direction.value == 1 and explorer_bi.slider.value == 0
    for layer in range(ch02["L"]):  # at step 0 the reverse panel shows its h_n row
        torch.testing.assert_close(_shown(explorer_bi.h_lines[layer]), h_n_bi[2 * layer + 1, 0])
    explorer_bi.direction.value = 0
    try:
        torch.testing.assert_close(_image(explorer_bi.images[0][0]), st_bi.h[0, 0, :, 0].T)
    finally:
        explorer_bi.direction.value = 1


# ---------------------------------------------------------------------------------------------
# chapter 02: the checks its cells made before, on its own tensors


def test_02_the_hook_and_a_wrapper_see_only_what_lstm_returns(ch02):
    assert "_VF.lstm(" in inspect.getsource(nn.LSTM.forward)  # every layer in one call

    class Wrapper(nn.Module):  # the widely shared answer
        def __init__(self, lstm):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            output, (h_n, c_n) = self.lstm(x)
            return output, h_n

    lstm, x, h_n = ch02["lstm"], ch02["x"], ch02["h_n"]
    out_w, h_n_w = Wrapper(lstm)(x)
    assert h_n_w.shape == (ch02["L"], ch02["B"], ch02["H"])  # no time axis
    torch.testing.assert_close(h_n_w, h_n)
    target = ch02["st"].h[0, 0, 5]
    for b in range(ch02["B"]):
        returned = torch.cat([out_w[:, b], h_n_w[:, b]]).detach()
        assert (returned - target[b]).abs().amax(dim=-1).min() > 1e-3


def test_02_copy_into_a_parameter_needs_autograd_off(ch02):
    lstm = ch02["lstm"]
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        nn.LSTM(ch02["I"], ch02["H"]).weight_ih_l0.copy_(lstm.weight_ih_l0)
    with torch.no_grad():
        nn.LSTM(ch02["I"], ch02["H"]).weight_ih_l0.copy_(lstm.weight_ih_l0)


def test_02_way_1_shares_the_parameters_and_its_c_follows_from_the_gates(ch02):
    lstm, one = ch02["lstm"], ch02["one"]
    assert one.weight_ih_l0 is lstm.weight_ih_l2  # assign=True: the very parameter, no copy
    torch.testing.assert_close(torch.stack(ch02["c_from_gates"])[:, -1], ch02["c_n"])  # exercise 1


def test_02_the_module_list_is_nn_lstm(ch02):
    lstm_d, x, L = ch02["lstm_d"], ch02["x"], ch02["L"]
    stacked = ch02["load_layers"](ch02["StackedLSTM"](ch02["I"], ch02["H"], L, dropout=0.3),
                                  lstm_d)
    for mode in ("eval", "train"):
        lstm_d.train(mode == "train")
        stacked.train(mode == "train")
        lstm_d.zero_grad()
        stacked.zero_grad()
        torch.manual_seed(1)
        out_ref, (h_n_ref, c_n_ref) = lstm_d(x)
        torch.manual_seed(1)
        out_s, (h_n_s, c_n_s), every_h = stacked(x)
        torch.testing.assert_close((out_s, h_n_s, c_n_s), (out_ref, h_n_ref, c_n_ref))
        (out_ref ** 2).sum().backward()
        (out_s ** 2).sum().backward()
        for k in range(L):  # every weight gets the same gradient
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                torch.testing.assert_close(getattr(stacked.layers[k], f"{name}_l0").grad,
                                           getattr(lstm_d, f"{name}_l{k}").grad)
    with torch.no_grad():  # and every layer's h equals capture's, in eval mode
        torch.testing.assert_close(stacked.eval()(x)[2], capture(lstm_d.eval(), x).h[:, 0])
    stacked.train()
    lstm_d.train()
    torch.manual_seed(2)
    train_out, _ = lstm_d(x)
    torch.manual_seed(2)
    torch.testing.assert_close(stacked(x)[0], train_out)  # no dropout on the last layer either


def test_02_the_claims_about_the_picture(ch02):
    # "layer 0 changes much more from step to step than the layers above": over 20 seeds of the
    # chapter's configuration, not only its own
    T, B, I, H, L = (ch02[k] for k in ("T", "B", "I", "H", "L"))
    for seed in range(20):
        torch.manual_seed(seed)
        lstm = nn.LSTM(I, H, num_layers=L)
        with torch.no_grad():
            st = capture(lstm, torch.randn(T, B, I))
        step_change = (st.h[:, 0, 1:] - st.h[:, 0, :-1]).abs().mean(dim=(1, 2, 3))
        assert step_change[0] > 3 * step_change[1] and step_change[1] > step_change[2], seed
    # the condition the chapter names is what makes c_t leave [-1, 1]: without the forget-gate
    # bias (the same input, the same seeds) it does not, for most seeds
    outside = 0
    for seed in range(20):
        torch.manual_seed(seed)
        one_layer = nn.LSTM(I, H)
        with torch.no_grad():
            outside += bool(one_layer(torch.ones(50, 1, I))[1][1].abs().max() > 1)
    assert outside < 10
    assert min(ch02["largest_c"]) > 1
