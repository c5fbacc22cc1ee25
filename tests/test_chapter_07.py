"""Chapter 07 (a GRU): the study functions of notebooks/gru_study.py, its pictures and the
chapter's StateExplorer over a trained GRU, checked here rather than in a learner's cells."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from lstm_states import capture
from notebooks import gru_study, study
from notebooks.charlm import CharLM, correlations, encode, train

# ---- the measurement


def _series(T=3000, seed=0):
    """A depth-like staircase (T,) and a random walk, both slow, as in a text."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randint(-1, 2, (T,), generator=g).float()
    depth = steps.cumsum(0).remainder(7)  # 0..6, slow
    walk = torch.randn(T, generator=g).cumsum(0)
    return depth, walk, g


def test_depth_test_chooses_on_the_selection_text_and_measures_on_the_test_text():
    depth_sel, _, g = _series(seed=1)
    depth_test, _, _ = _series(seed=2)
    H = 6
    sel = torch.randn(3000, H, generator=g)
    test = torch.randn(3000, H, generator=g)
    sel[:, 2] += 2 * depth_sel  # unit 2 counts on the selection text ...
    test[:, 2] -= 0.5 * depth_test  # ... and weakly (sign flipped) on the test text,
    test[:, 5] += 3 * depth_test  # where unit 5 counts better
    res = gru_study.depth_test(sel, test, depth_sel, depth_test)
    assert res["unit"] == 2 and res["r selection"] > 0.9
    assert res["r test"] == pytest.approx(float(correlations(test[:, 2:3], depth_test)[0]))
    assert res["r test"] < 0  # its own r on the test text, not the selection's
    assert res["observed"] == pytest.approx(float(correlations(test, depth_test).abs().max()),
                                            abs=1e-6)  # the best unit on the test text: unit 5
    assert res["p"] == 1 / (1 + study.SHIFTS) and res["above"]
    assert len(res["staircase"]) == 7
    # the staircase: the unit's mean at each depth, times the sign of its selection r
    for d in (0, 3, 6):
        assert res["staircase"][d] == pytest.approx(float(test[depth_test == d, 2].mean()), abs=1e-6)


def test_depth_test_null_is_the_max_over_units_of_the_shifted_depth():
    depth, _, g = _series(T=1500, seed=3)
    values = torch.randn(1500, 4, generator=g).cumsum(0)  # slow drifts, no relation to depth
    res = gru_study.depth_test(values, values, depth, depth)
    shifts = study.shifts(1500)
    assert res["null"].shape == (study.SHIFTS,)
    for k in (0, 417, 999):
        rolled = torch.roll(depth, int(shifts[k]))  # depth[t - s]
        direct = correlations(values.double(), rolled.double()).abs().max()
        assert float(res["null"][k]) == pytest.approx(float(direct), abs=1e-5)
    assert res["p95"] == pytest.approx(float(res["null"].quantile(0.95)))
    expected_p = (1 + int((res["null"] >= res["observed"]).sum())) / (1 + study.SHIFTS)
    assert res["p"] == expected_p and res["p"] > study.ALPHA / study.TESTS  # drift alone: not above


def test_the_untrained_gru_is_the_training_runs_first_weights():
    model, _ = train(steps=1, seq_len=20, batch=4, lr=0.0, seed=2, corpus_chars=5_000,
                     progress=False, cell="gru")
    fresh = gru_study.untrained_model("gru", 2)
    assert isinstance(fresh.gru, nn.GRU)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_layer0_is_capture_of_the_recurrent_module():
    model = CharLM(cell="gru", hidden_size=8).eval()
    text = "f(a, [b])\n"
    with torch.no_grad():
        out, h_n = model.gru(model.embedding(encode(text))[:, None])
        h = gru_study.layer0(model, text, "h")
    assert h.shape == (len(text), 8)
    torch.testing.assert_close(h[-1], h_n[0, 0])  # layer 0's last step is h_n[0]


# ---- the stored results


def test_the_stored_results_cover_every_seed_with_both_models():
    results = gru_study.load_results()
    assert sorted(results) == gru_study.seeds() and 0 in results
    for res in results.values():
        assert set(res) == set(gru_study.KINDS)
        for kind in gru_study.KINDS:
            for which in ("trained", "untrained"):
                r = res[kind][which]
                assert r["null"].shape == (study.SHIFTS,) and 0 < r["p"] <= 1
                assert abs(r["r test"]) <= r["observed"] + 1e-6  # the best unit's |r| bounds it
                assert len(r["staircase"]) == len(study.staircase_depths(study.texts()["test"]))


def test_the_stored_lstm_numbers_agree_with_chapter_05():
    # the LSTM's counter (layer-0 c, chosen on the selection text) is chapter 05's counter
    ours, theirs = gru_study.load_results(), study.load_results()
    for seed in ours:
        if seed in theirs:
            assert ours[seed]["lstm", "c"]["trained"]["unit"] == theirs[seed]["counter"]
            assert ours[seed]["lstm", "c"]["trained"]["r test"] == pytest.approx(
                theirs[seed]["r"]["test"], abs=1e-4)


# ---- the pictures


def test_plot_gru_step_draws_the_mix_and_the_gate():
    T = 7
    g = torch.Generator().manual_seed(0)
    h_prev, n = torch.randn(T, generator=g), torch.randn(T, generator=g)
    z = torch.rand(T, generator=g)
    h = (1 - z) * n + z * h_prev
    fig = gru_study.plot_gru_step(h_prev, n, z, h, unit=3, text="f(a)\n[]")
    top, bottom = fig.axes
    lines = {line.get_label(): line for line in top.lines}
    np.testing.assert_allclose(lines["$h_{t-1}$"].get_ydata(), h_prev)
    np.testing.assert_allclose(lines["$n_t$ (candidate)"].get_ydata(), n)
    np.testing.assert_allclose(next(v for k, v in lines.items() if k.startswith("$h_t")).get_ydata(), h)
    np.testing.assert_allclose([p.get_height() for p in bottom.patches], z)
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["f", "(", "a", ")", "\\n", "[", "]"]
    assert top.get_ylabel() == "unit 3"
    plt.close(fig)


def test_plot_comparison_shows_every_seed_and_kind():
    results = gru_study.load_results()
    fig = gru_study.plot_comparison(results)
    left, right = fig.axes
    n = len(results)
    # per kind and seed: a trained (filled) and an untrained (open) dot, and the null's tick
    dots = [line for line in left.lines if line.get_marker() == "o"]
    ticks = [line for line in left.lines if line.get_marker() == "_"]
    assert len(dots) == 2 * n * len(gru_study.KINDS) and len(ticks) == n * len(gru_study.KINDS)
    ys = sorted(float(d.get_ydata()[0]) for d in dots)
    expected = sorted(abs(res[k][w]["r test"]) for res in results.values()
                      for k in gru_study.KINDS for w in ("trained", "untrained"))
    np.testing.assert_allclose(ys, expected)
    np.testing.assert_allclose(sorted(float(t.get_ydata()[0]) for t in ticks),
                               sorted(res[k]["trained"]["p95"] for res in results.values()
                                      for k in gru_study.KINDS))
    assert [t.get_text() for t in left.get_xticklabels()] == ["LSTM c", "LSTM h", "GRU h"]
    stairs = [line for line in right.lines if len(line.get_ydata()) > 2 and line.get_linestyle() != ":"]
    assert len(stairs) == 2 * n  # LSTM c and GRU h of every seed, scaled from 0 to 1
    for line in stairs:
        y = line.get_ydata()
        assert y[0] == pytest.approx(0) and y[-1] == pytest.approx(1)
    np.testing.assert_allclose(sorted(tuple(line.get_ydata()) for line in stairs),
                               sorted(tuple(gru_study.scaled(res[k]["trained"]["staircase"]))
                                      for res in results.values() for k in (("lstm", "c"), ("gru", "h"))))
    plt.close(fig)


# ---- the chapter's explorer over the trained GRU


def test_the_chapters_explorer_shows_the_grus_h_alone():
    pytest.importorskip("ipywidgets")
    from lstm_states.widgets import StateExplorer

    model = gru_study.load_model("gru", 0)
    snippet = "total = max(data[key], f(x, [1, (2)]))\n"
    with torch.no_grad():
        sg = capture(model.gru, model.embedding(encode(snippet))[:, None])
    ex = StateExplorer(sg, title="chargru seed 0")
    assert not ex.has_c and ex.c_lines == {} and list(ex.value_axes) == [0, 1]
    for k in (20, 0, len(snippet) - 1):
        ex.slider.value = k
        for layer in (0, 1):
            np.testing.assert_allclose(ex.h_lines[layer].get_ydata(), sg.h[layer, 0, k, 0])
            assert list(ex.cursors[layer].get_xdata()) == [k, k]
    np.testing.assert_allclose(np.asarray(ex.images[1][0].get_array()), sg.h[1, 0, :, 0].T)
    assert ex.fig.get_suptitle() == "chargru seed 0"
    plt.close(ex.fig)


def test_bend_is_zero_for_even_steps_and_large_for_a_saturating_staircase():
    assert gru_study.scaled([2.0, 3.0, 5.0]) == [0.0, 1 / 3, 1.0]
    assert gru_study.bend([1.0, 2.0, 3.0, 4.0]) == pytest.approx(0)
    assert gru_study.bend([-1.0, -3.0, -5.0]) == pytest.approx(0)  # falling evenly: scaled 0, .5, 1
    assert gru_study.bend([0.0, 0.9, 1.0, 1.0, 1.0]) == pytest.approx(0.9 - 0.25)  # saturates
    assert gru_study.bend([0.0, 0.0, 0.0, 1.0]) == pytest.approx(2 / 3)  # all at the end
