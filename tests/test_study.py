"""Chapter 05's study (notebooks/study.py): the null, the when/which split, the batched and the
resample ablations, the check for quoted brackets, the texts, the seeds and their training."""

import numpy as np
import pytest
import torch

from lstm_states import Edit, capture
from notebooks import study
from notebooks.charlm import (
    VOCAB,
    CharLM,
    correlations,
    encode,
    generated_code,
    load_checkpoint,
    python_structure,
    train,
)

SMALL_TEXT = "x = f([1, (2, 3)],\n    'a (')  # )\ny = [[0], {'k': (1)}]\n" * 4


def _small_model(seed=0, hidden=8):
    torch.manual_seed(seed)
    return CharLM(hidden_size=hidden).eval()


# ---- the null


def test_the_fft_null_is_the_max_r_over_units_of_each_circular_shift():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(300, 5, generator=g).cumsum(0)  # (T, N) slowly drifting units
    q = torch.randn(300, generator=g).cumsum(0)
    shifts = torch.tensor([0, 1, 37, 150, 299])
    expected = torch.stack([correlations(values, torch.roll(q, int(s))).abs().max() for s in shifts])
    torch.testing.assert_close(study.shift_null(values, q, shifts), expected, atol=1e-5, rtol=0)


def _random_walk_states(T, unit, seed):
    """An LSTMStates-like object with layer-0 c = [unit, 7 random walks] and h = random walks."""
    g = torch.Generator().manual_seed(seed)
    walks = torch.randn(T, 15, generator=g).cumsum(0)
    c = torch.cat([unit[:, None], walks[:, :7]], 1)  # (T, 8)

    class St:
        pass
    st = St()
    st.c = c[None, None, :, None]  # (1, 1, T, 1, 8)
    st.h = walks[None, None, :, None, 7:]
    return st


def test_the_null_test_finds_a_unit_that_follows_the_quantity():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4000, generator=g).cumsum(0)
    st = _random_walk_states(4000, q + 5 * torch.randn(4000, generator=g), seed=2)
    test = study.null_test(st, {"q": q}, 0, "q")
    assert test["above"] and test["p"] == 1 / (1 + study.SHIFTS) and test["observed"] > test["p95"]


def test_the_null_test_does_not_call_slowly_drifting_noise_a_finding():
    # independent random walks correlate strongly by chance: a plain r would call them related,
    # the shift null does not
    g = torch.Generator().manual_seed(3)
    q = torch.randn(4000, generator=g).cumsum(0)
    st = _random_walk_states(4000, torch.randn(4000, generator=g).cumsum(0), seed=4)
    test = study.null_test(st, {"q": q}, 0, "q")
    assert test["observed"] > 0.3  # a large |r|, by chance
    assert not test["above"] and test["p"] > 0.05


# ---- when and which


def test_when_and_which_add_up_to_the_loss_and_match_a_direct_computation():
    model = _small_model()
    got = study.closer_losses(model, SMALL_TEXT, rows=2)
    ids = encode(SMALL_TEXT)
    with torch.no_grad():
        probs = model(ids[:-1, None])[0][:, 0].softmax(-1)  # (T-1, V)
    known = python_structure(SMALL_TEXT)
    is_closer = torch.tensor([ch in ")]}" for ch in SMALL_TEXT[1:]])
    before = is_closer & study.in_code(known)[1:]
    assert (is_closer & ~before).any()  # closers in strings and comments: elsewhere
    p_closer = probs[:, [VOCAB.index(ch) for ch in ")]}"]].sum(1)  # (T-1,)
    p_next = probs[torch.arange(len(ids) - 1), ids[1:]]
    when = -p_closer[before].log().mean()
    which = -(p_next / p_closer)[before].log().mean()
    for row in range(2):
        torch.testing.assert_close(got["when"][row], when)
        torch.testing.assert_close(got["which"][row], which)
        torch.testing.assert_close(got["loss"][row], -p_next[before].log().mean())
        # elsewhere: -log P(the class of the next character): a quoted closer is still a closer
        p_class = torch.where(is_closer, p_closer, 1 - p_closer)
        torch.testing.assert_close(got["when elsewhere"][row], -p_class[~before].log().mean())


def test_unit_effects_row_u_is_unit_u_held_alone():
    model = _small_model(hidden=8)
    values = torch.linspace(-1, 1, 8)
    effects = study.unit_effects(model, SMALL_TEXT, values)
    plain = study.closer_losses(model, SMALL_TEXT)
    for u in (0, 5):
        one = study.closer_losses(model, SMALL_TEXT, [Edit("c", 0, slice(None), unit=u,
                                                           set=float(values[u]))])
        for k in plain:
            torch.testing.assert_close(effects[k][u], (one[k] - plain[k])[0], atol=1e-5, rtol=0)


def test_ablation_table_mean_rows_are_plain_edits_and_resample_rows_differ():
    model = _small_model(hidden=8)
    select = capture(model.lstm, model.embedding(encode(SMALL_TEXT[::-1]))[:, None])
    table = study.ablation_table(model, SMALL_TEXT, select, {"pair": [1, 4]})
    plain = study.closer_losses(model, SMALL_TEXT)
    means_c, means_h = select.c[0, 0, :, 0].mean(0), select.h[0, 0, :, 0].mean(0)
    for held, edits in (("c", [Edit("c", 0, slice(None), unit=[1, 4], set=means_c[[1, 4]])]),
                        ("c and h", [Edit("c", 0, slice(None), unit=[1, 4], set=means_c[[1, 4]]),
                                     Edit("h", 0, slice(None), unit=[1, 4], set=means_h[[1, 4]])])):
        one = study.closer_losses(model, SMALL_TEXT, edits)
        for k in plain:
            assert table["pair", "mean", held][k] == pytest.approx(float(one[k][0] - plain[k][0]),
                                                                   abs=1e-5)
    assert table["pair", "resample", "c"]["loss"] != pytest.approx(table["pair", "mean", "c"]["loss"])


# ---- how the counter moves


def _quoted_counter(text):
    """A unit that counts every bracket, those in strings and comments too."""
    return torch.tensor(np.cumsum([(ch in "([{") - (ch in ")]}") for ch in text]), dtype=torch.float)


def test_counts_quoted_tells_a_true_counter_from_one_that_counts_quoted_brackets():
    text = study.texts()["test"][:3000]
    known = python_structure(text)
    true = study.bracket_moves(known["bracket depth"], text, known, sign=1.0)
    fooled = study.bracket_moves(_quoted_counter(text), text, known, sign=1.0)
    assert not study.counts_quoted(true) and study.counts_quoted(fooled)
    # (c_{t+1} - c_{t-1} is 0 across an empty pair "()": the true depth moves at 84-90%)
    assert true["( [ { in code"]["up"] > 0.8 and true[") ] } in code"]["down"] > 0.8
    assert true["( [ { quoted"]["up"] == 0 and fooled["( [ { quoted"]["up"] > 0.85
    # a unit counting quoted openers but not quoted closers: each kind apart catches it
    half = known["bracket depth"] + torch.tensor(np.cumsum(
        [ch in "([{" and not study.in_code(known)[t] for t, ch in enumerate(text)]), dtype=torch.float)
    assert study.counts_quoted(study.bracket_moves(half, text, known, sign=1.0))


def test_units_stepping_and_typical_opener():
    text = study.texts()["test"][:2000]
    known = python_structure(text)
    depth = known["bracket depth"]
    c = torch.stack([depth, -depth, torch.zeros_like(depth)], 1)  # (T, 3)
    frac = study.units_stepping(c, torch.tensor([1.0, -1.0, 0.0]), text, known)
    m = study.bracket_moves(depth, text, known, 1.0)  # the same fractions, one unit at a time
    assert frac[0].tolist() == pytest.approx([m["( [ { in code"]["up"], m[") ] } in code"]["down"]])
    assert frac[1].tolist() == frac[0].tolist() and frac[2].tolist() == [0.0, 0.0]
    t = study.typical_opener(depth, text, known, 1.0)
    assert text[t] in "([{" and study.in_code(known)[t]


def test_keeps_is_the_product_of_the_forget_gate_over_the_span():
    f = torch.rand(80, generator=torch.Generator().manual_seed(0)) * 0.1 + 0.9
    got = study.keeps(f, span=50)
    assert got.shape == (31,)
    torch.testing.assert_close(got[3], f[3:53].prod(), rtol=1e-5, atol=0)


# ---- texts, seeds, training


def test_the_test_text_shows_every_depth_of_the_staircase_with_enough_characters():
    t = study.texts()
    assert study.SELECT_SEED not in study.SEEDS and study.TEST_SEED not in study.SEEDS
    assert t["selection"] != t["test"] and len(t["test"]) == study.TEXT_CHARS
    shown = study.staircase_depths(t["test"])
    assert shown == list(range(7))  # depths 0-6
    coverage = study.depth_coverage(t["test"])
    assert all(coverage[d][0] >= 200 and coverage[d][1] >= 10 for d in shown)
    assert coverage[7][0] < 200  # depth 7: too few characters, left out
    assert t["test"][:300] not in generated_code(200_000, seed=0)  # not in training text


def test_only_short_lines_of_the_new_texts_occur_in_a_training_text():
    # the chapter: new text, not unseen line by line: only short lines such as `path = node`
    # recur in seed 0's training corpus (train's default: 2,000,000 characters)
    training = set(generated_code(2_000_000, seed=0).split("\n"))
    for name in ("selection", "test"):
        text = study.texts()[name]
        seen = [line for line in text.split("\n")[:-1] if line in training]
        assert 0 < len(seen) and max(len(line) for line in seen) <= 16, name
        assert sum(len(line) + 1 for line in seen) < 0.1 * len(text), name


def test_every_seed_has_a_checkpoint_of_the_same_recipe():
    recipe = None
    assert 0 in study.trained_seeds()
    for seed in study.trained_seeds():
        model, state = load_checkpoint(study.checkpoint(seed))
        info = state["info"]
        assert info["seed"] == seed and study.checkpoint(seed).stat().st_size < 2_000_000
        same = {k: info[k] for k in ("steps", "seq_len", "batch", "lr")}
        assert recipe is None or same == recipe, (seed, same, recipe)
        recipe = same
        assert info["final_loss"] < 1.2  # every seed learned the grammar


def test_the_untrained_model_is_the_training_runs_first_weights():
    # one step with lr = 0: Adam leaves the weights as they started
    model, losses = train(steps=1, seq_len=20, batch=4, lr=0.0, seed=2, corpus_chars=5_000,
                          progress=False)
    fresh = study.untrained(2)
    assert len(losses) == 1
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


# a 30-step run of seed 3 (small sizes) on this CPU: the loss of its last step
FINGERPRINT = 3.3168  # the same with 1 and 2 threads (checked)


def test_a_short_training_run_reproduces():
    runs = [train(steps=30, seq_len=40, batch=8, hidden_size=32, seed=3, corpus_chars=20_000,
                  progress=False) for _ in range(2)]
    (a, loss_a), (b, loss_b) = runs
    assert loss_a == loss_b
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert loss_a[-1] == pytest.approx(FINGERPRINT, abs=1e-3)


# ---- the stored results


def test_the_stored_results_cover_every_seed_and_every_test():
    results = study.load_results()
    assert sorted(results) == study.trained_seeds()  # every seed trained so far
    for seed, r in results.items():
        assert r["seed"] == seed and len(r["null"]) == study.TESTS == len(r["untrained"])
        for test in r["null"].values():
            assert test["null"].shape == (study.SHIFTS,) and 0 < test["p"] <= 1
        assert r["effects"]["when"].shape == (128,) and len(r["group"]) == study.GROUP_SIZE
        assert r["counter"] == r["group"][0]
        # the top units for when and which are chosen on the selection text, not the test text
        for job in ("when", "which"):
            assert r[f"{job} top"] == int(r["effects (selection)"][job].argmax())


def test_same_numbers():
    a = {"x": [1.0, torch.ones(3)], "n": 3}
    assert study.same_numbers(a, {"x": [1.0004, torch.ones(3)], "n": 3})
    assert not study.same_numbers(a, {"x": [1.01, torch.ones(3)], "n": 3})
    assert not study.same_numbers(a, {"x": [1.0, torch.ones(3)], "n": 4})
