"""Checks moved out of chapters 03, 04 and 06: what their figures and widgets show, and the
details a chapter states once and no longer re-checks in a learner's cell.

Each chapter's code cells run here, in order, in one namespace, as a kernel runs them (IPython
magics skipped, the Agg backend instead of ipympl, the solutions included); the tests then
inspect the objects the chapter built, so they test the very data a reader sees.
"""

import copy
import json
import traceback
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstm_states import capture, record
from tests.figtools import close_figures  # noqa: F401  (an autouse fixture)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_chapter(name: str) -> dict:
    """The namespace after running every code cell of ``notebooks/<name>`` in order."""
    cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
    namespace = {"__name__": "__chapter__"}
    grad = torch.is_grad_enabled()
    try:
        with warnings.catch_warnings():  # a chapter's filters stay in the chapter
            for cell in cells:
                if cell["cell_type"] == "code":
                    source = "".join(line for line in cell["source"] if not line.startswith("%"))
                    exec(compile(source, name, "exec"), namespace)
    finally:
        torch.set_grad_enabled(grad)  # chapter 04 turns autograd off for its kernel
    return namespace


@pytest.fixture(scope="module")
def ch03():
    return run_chapter("03_your_own_model.ipynb")


@pytest.fixture(scope="module")
def ch04():
    return run_chapter("04_cell_state_and_gates.ipynb")


@pytest.fixture(scope="module")
def ch06():
    return run_chapter("06_flatten_parameters.ipynb")


def ydata(line) -> torch.Tensor:
    return torch.as_tensor(np.asarray(line.get_ydata()))


def array(artist) -> torch.Tensor:
    return torch.as_tensor(np.asarray(artist.get_array()))


# ---- chapter 03 -----------------------------------------------------------------------------

def test_03_explorer_slider_shows_the_step(ch03):
    explorer, states = ch03["explorer"], ch03["states"]
    explorer.slider.value = 5
    try:
        for layer in range(2):
            assert list(explorer.cursors[2 * layer].get_xdata()) == [5, 5]
            torch.testing.assert_close(ydata(explorer.h_lines[layer]), states.h[layer, 0, 5, 2])
            torch.testing.assert_close(ydata(explorer.c_lines[layer]), states.c[layer, 0, 5, 2])
        assert explorer.step_text.get_text() == "t = 5"
    finally:
        explorer.slider.value = 0


def hatched_from(ax):
    # the left edge of the hatching over the steps past the sequence's end
    return [p.get_x() for p in ax.patches if p.get_hatch() == "//"]


def test_03_explorer_pickers_direction_and_batch(ch03):
    explorer, states = ch03["explorer"], ch03["states"]
    labels = [label for label, _ in explorer.batch.options]
    assert labels == [f"{b} (length {n})" for b, n in enumerate(states.lengths.tolist())]
    explorer.slider.value = 5
    try:
        assert hatched_from(explorer.heatmap_axes[0][0]) == [7 - 0.5]  # sequence 2: steps 7, 8
        explorer.direction.value = 1  # reverse, still sequence 2 at step 5
        assert "reverse direction" in explorer.fig.get_suptitle()
        for layer in range(2):
            torch.testing.assert_close(ydata(explorer.h_lines[layer]), states.h[layer, 1, 5, 2])
            torch.testing.assert_close(array(explorer.images[layer][1]),
                                       states.c[layer, 1, :, 2].T)  # (units, T)
        explorer.batch.value = 3
        assert hatched_from(explorer.heatmap_axes[1][1]) == [3 - 0.5]  # sequence 3: steps 3-8
    finally:  # as the chapter left it (the browser test clicks "reverse" from there)
        explorer.batch.value, explorer.direction.value, explorer.slider.value = 2, 0, 0


def test_03_explorer_of_the_stitched_generator(ch03):
    from lstm_states.widgets import StateExplorer

    steps = ch03["steps"]
    gen_explorer = StateExplorer(steps, batch_index=0, title="Generator.lstm, stitched steps")
    gen_explorer.slider.value = 7
    for layer in range(2):
        torch.testing.assert_close(ydata(gen_explorer.h_lines[layer]), steps.h[layer, 0, 7, 0])
    assert gen_explorer.step_text.get_text() == "t = 7"


def test_03_recorded_states_are_those_of_capture_by_hand(ch03):
    states, by_hand, T, B = ch03["states"], ch03["by_hand"], ch03["T"], ch03["B"]
    assert by_hand.h.shape == (2, 2, T, B, 8)  # (L, D, T, B, H)
    for field in ("h", "c", "gates", "h_n", "c_n"):
        assert torch.equal(getattr(states, field), getattr(by_hand, field)), field
    assert len(ch03["rec"]["encoder"]) == 1 and ch03["rec"]["encoder"][0] is states
    assert states.lengths.tolist() == [9, 5, 7, 3]
    for b, length in enumerate(states.lengths.tolist()):  # h_n, one sequence at a time
        assert (states.h[:, :, length:, b] == 0).all() and (states.c[:, :, length:, b] == 0).all()
        for layer in range(2):
            assert torch.equal(states.h_n[2 * layer, b], states.h[layer, 0, length - 1, b])
            assert torch.equal(states.h_n[2 * layer + 1, b], states.h[layer, 1, 0, b])


def test_03_model_restored_and_own_hooks_run_inside_record(ch03):
    model, tokens, lengths = ch03["model"], ch03["tokens"], ch03["lengths"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError), record(model):
        model(tokens, lengths)
        raise RuntimeError("fails inside the block")
    assert "forward" not in vars(model.encoder)
    hooked = []
    handle = model.encoder.register_forward_hook(lambda m, args, result: hooked.append(result))
    try:
        with torch.no_grad(), record(model) as rec:
            model(tokens, lengths)
    finally:
        handle.remove()
    assert len(hooked) == 1 and torch.equal(hooked[0][1][0], rec.one("encoder").h_n)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training  # the chapter leaves the model in eval mode


def test_03_generator_stitched_calls(ch03):
    gen_rec, steps, whole, generated = ch03["gen_rec"], ch03["steps"], ch03["whole"], ch03["generated"]
    assert len(gen_rec["lstm"]) == 10 and gen_rec["lstm"][0].h.shape == (2, 1, 1, 2, 8)
    assert steps.h.shape == (2, 1, 10, 2, 8)
    for field in ("h", "c", "gates", "output", "h_n", "c_n"):
        torch.testing.assert_close(getattr(steps, field), getattr(whole, field))
    # untrained, the generator soon repeats one token, while its states still move every step
    assert (generated[-5:] == generated[-1]).all()
    assert ((steps.h[:, 0, 1:] - steps.h[:, 0, :-1]).abs().amax(dim=(0, 2, 3)) > 0).all()


def test_03_memory_options_and_errors(ch03):
    model, tokens, lengths = ch03["model"], ch03["tokens"], ch03["lengths"]
    with record(model, include="encoder", detach=True, to_cpu=True) as light:
        model(tokens, lengths)
    assert light.one().h.device.type == "cpu"
    light.clear()
    assert light["encoder"] == []
    gen = ch03["gen"]
    with torch.no_grad(), record(gen.lstm) as alone:  # an nn.LSTM on its own is named ""
        gen.lstm(torch.randn(3, 1, 5))
    assert alone.names == ("",) and len(alone[""]) == 1
    with pytest.raises(ValueError, match="no nn.LSTM"), record(nn.Sequential(nn.Linear(3, 3))):
        pass
    with pytest.raises(ValueError, match="'encoder'"), record(model, include="embed"):
        pass


# ---- chapter 04 -----------------------------------------------------------------------------

def test_04_cell_diagram_numbers_obey_the_equations(ch04):
    cell_ax, values = ch04["cell_ax"], ch04["unit_values"]
    shown = {t.get_gid()[6:]: float(t.get_text()) for t in cell_ax.texts
             if str(t.get_gid()).startswith("value ")}  # the numbers drawn, to 2 decimals
    assert set(shown) == set(values)
    for name, value in values.items():
        assert abs(shown[name] - value) <= 0.005 + 1e-9, name
    # (5) and (6) with the drawn, rounded numbers
    assert abs(shown["c_t"] - (values["f_t"] * values["c_{t-1}"] + values["i_t"] * values["g_t"])) < 0.006
    assert abs(shown["h_t"] - values["o_t"] * np.tanh(values["c_t"])) < 0.006
    st, u, t = ch04["st"], ch04["u"], ch04["t5"]
    assert values["c_{t-1}"] == st.c[0, 0, t - 1, 0, u].item() and values["h_t"] == st.h[0, 0, t, 0, u].item()


def test_04_gate_viewer_shows_the_step(ch04):
    viewer, st_shaped, H = ch04["viewer"], ch04["st_shaped"], ch04["H"]
    start = viewer.slider.value  # the chapter shows step 12
    assert start == 12
    t = 11
    viewer.slider.value = t
    try:
        assert torch.equal(array(viewer.axes[0].collections[0]), st_shaped.gates[0, 0, :, t, 0])
        c_seq = st_shaped.c[0, 0, :, 0]  # (T, H): layer 0, sequence 0
        assert torch.equal(ydata(viewer.axes[1].lines[0]), c_seq[t])
        assert torch.equal(ydata(viewer.axes[1].lines[1]), st_shaped.h[0, 0, t, 0])
        assert torch.equal(ydata(viewer.axes[1].lines[3]), c_seq[t - 1])  # c_{t-1}
        segments = viewer.axes[1].collections[0].get_segments()  # one per unit: c_{t-1} -> c_t
        assert len(segments) == H
        for u, seg in enumerate(segments):
            assert seg[0, 0] == seg[1, 0] == u
            assert seg[0, 1] == float(c_seq[t - 1, u]) and seg[1, 1] == float(c_seq[t, u])
        history = array(viewer.axes[2].collections[0]).float()  # (K, H), newest first
        assert history.shape == (viewer.history, H) == (8, H)
        for k in range(viewer.history):
            assert torch.equal(history[k], c_seq[t - k])
        assert (history[:, 0] - 2).abs().max() < 1e-3  # unit 0 keeps its 2
        assert (history[:-1, 2] > history[1:, 2]).all()  # unit 2 grows at every step
    finally:
        viewer.slider.value = start


def test_04_package_returns_and_shaped_gates(ch04):
    st, h_n, c_n = ch04["st"], ch04["h_n"], ch04["c_n"]
    torch.testing.assert_close(st.h_n, h_n)
    torch.testing.assert_close(st.c_n, c_n)
    i_s, f_s, g_s, o_s = ch04["st_shaped"].gates[0, 0, :, :, 0]  # each (T, H)
    assert f_s[:, 0].min() > 0.9999 and i_s[:, 0].max() < 1e-4  # unit 0: f ~ 1, i ~ 0
    assert o_s[:, 1].max() < 1e-4  # unit 1: o ~ 0
    assert (o_s[:, 2] == 1).all() and ch04["st_shaped"].h.abs().max() == 1  # reached in float32


def test_04_untrained_gates_hover_around_the_middle(ch04):
    st = ch04["st"]  # "i, f and o hover around 0.5 (and g around 0)"; "forget gates about 0.5"
    for name in "ifo":
        assert 0.45 < st.gate(name).mean() < 0.55, name
    assert st.gate("g").mean().abs() < 0.1


def test_04_saturation_details(ch04):
    st, st_big, big, x, H = ch04["st"], ch04["st_big"], ch04["big"], ch04["x"], ch04["H"]

    def frac(mask):
        return mask.float().mean().item()
    g_norm, g_big = frac(st.gate("g").abs() > 0.95), frac(st_big.gate("g").abs() > 0.95)
    assert g_norm == 0 and g_big > 0.3  # g near ±1 once saturated
    pinned = {name: frac(s.c.tanh().abs() > 0.95) for name, s in (("st", st), ("big", st_big))}
    assert pinned["big"] > pinned["st"]
    assert pinned["big"] < ch04["near_ends"](st_big)  # tanh(c) saturates less than the gates
    open_forget = copy.deepcopy(big)  # open the forget gates: the cells accumulate
    with torch.no_grad():
        for layer in range(2):
            getattr(open_forget, f"bias_hh_l{layer}")[H:2 * H] += 20.0
        st_open = capture(open_forget, x)
    assert st_open.gate("f").mean() > st_big.gate("f").mean()
    assert frac(st_open.c.tanh().abs() > 0.95) > 2 * pinned["big"]


def test_04_frozen_cell_and_projection(ch04):
    lstm, x, T, B, H = ch04["lstm"], ch04["x"], ch04["T"], ch04["B"], ch04["H"]
    frozen = copy.deepcopy(lstm)  # f = 1 and i = 0: the cell state never changes
    with torch.no_grad():
        for layer in range(2):
            bias = getattr(frozen, f"bias_hh_l{layer}")
            bias[:H] -= 100.0
            bias[H:2 * H] += 100.0
        c0 = torch.randn(2, B, H)
        _, (_, c_n_frozen) = frozen(x, (torch.zeros(2, B, H), c0))
        st_frozen = capture(frozen, x, (torch.zeros(2, B, H), c0))
    torch.testing.assert_close(c_n_frozen, c0)  # nn.LSTM itself
    torch.testing.assert_close(st_frozen.c[:, 0], c0[:, None].expand(2, T, B, H))
    st_p, lstm_p = ch04["st_p"], ch04["lstm_p"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        _, (_, c_n_p) = lstm_p(x)
    assert st_p.gates.shape[-1] == st_p.c.shape[-1] == c_n_p.shape[-1] == H
    torch.testing.assert_close(st_p.c_n, c_n_p)


# ---- chapter 06 -----------------------------------------------------------------------------

def stack_of_calls(module, action):
    """For each flatten_parameters() call action(module) makes: the functions on the stack."""
    calls, original = [], module.flatten_parameters

    def recording_flatten():
        calls.append([frame.name for frame in traceback.extract_stack()[:-1]])
        return original()
    module.flatten_parameters = recording_flatten
    try:
        action(module)
    finally:
        del module.flatten_parameters
    return calls


def test_06_who_calls_flatten_parameters(ch06):
    lstm, x = ch06["lstm"], ch06["x"]
    for action in (lambda m: m.to(torch.float64), lambda m: m.to("cpu"), lambda m: m.float()):
        calls = stack_of_calls(copy.deepcopy(lstm), action)
        assert len(calls) == 1 and calls[0][-2:] == ["_apply", "_init_flat_weights"]
    replaced = copy.deepcopy(lstm)
    ch06["new_parameter"](replaced)
    calls = stack_of_calls(replaced, lambda m: m(x))
    assert len(calls) == 1 and calls[0][-3:] == ["forward", "_update_flat_weights", "_init_flat_weights"]
    new_params = {name: p.clone() for name, p in lstm.named_parameters()}
    functional = stack_of_calls(copy.deepcopy(lstm),
                                lambda m: torch.func.functional_call(m, new_params, (x,)))
    assert len(functional) == 1 and functional[0][-2:] == ["_update_flat_weights", "_init_flat_weights"]
    for name in ("probe", "replaced", "moved"):  # the chapter's mock left nothing behind
        assert "flatten_parameters" not in vars(ch06[name]), name


def test_06_cpu_facts(ch06):
    lstm, storages = ch06["lstm"], ch06["storages"]
    assert not torch.backends.cudnn.is_acceptable(lstm.weight_ih_l0)  # a CPU tensor: cuDNN says no
    no_bias = nn.LSTM(8, 16, num_layers=2, bidirectional=True, bias=False)
    projected = nn.LSTM(8, 16, num_layers=2, bidirectional=True, proj_size=4)
    assert len(no_bias._flat_weights) == 2 * 2 * 2 and len(projected._flat_weights) == 5 * 2 * 2
    assert storages(lstm) == storages(ch06["other"]) == len(ch06["params"])
    seen = ch06["seen"]
    assert ch06["examine"](ch06["copy_into"]) == (0, False)  # load_state_dict's in-place copy
    new_values = {name: torch.randn_like(v) for name, v in lstm.state_dict().items()}
    assigned = copy.deepcopy(lstm)
    assigned.load_state_dict(new_values, assign=True)  # new parameter objects: forward notices
    assert ch06["flatten_calls"](assigned, lambda m: m(ch06["x"])) == 1
    assert seen["weight-drop, training"] == (1, True)


def test_06_storage_picture(ch06):
    moments, storage_ax, params = ch06["moments"], ch06["storage_ax"], ch06["params"]
    hatched = [p.get_gid() for p in storage_ax.patches if p.get_hatch()]
    assert hatched == ["param:2:weight_hh_l0"]  # moved by the swap, and by nothing else
    assert all(len({b.storage for b in blocks}) == len(params) for blocks in moments.values())
    frames = {p.get_gid().rsplit(":", 1)[0] for p in storage_ax.patches
              if str(p.get_gid()).startswith("storage:")}
    assert len(frames) == len(moments)  # one row per moment
