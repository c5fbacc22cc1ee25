"""The character-level LSTM of notebook 05: its training script, checkpoint and known quantities."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lstm_states import LayerwiseLSTM, capture
from notebooks.charlm import (
    CHECKPOINT,
    VOCAB,
    CharLM,
    correlations,
    encode,
    generated_code,
    held_out_text,
    load_checkpoint,
    python_structure,
    save_checkpoint,
    train,
    unit_correlations,
)

SCRIPT = Path(__file__).resolve().parent.parent / "notebooks" / "charlm.py"


def test_a_short_training_run_lowers_the_loss():
    model, losses = train(steps=60, seq_len=40, batch=8, hidden_size=32, seed=0,
                          corpus=generated_code(30_000, seed=1), progress=False)
    assert isinstance(model.lstm, nn.LSTM) and model.lstm.num_layers == 2
    assert len(losses) == 60 and all(np.isfinite(losses))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert losses[0] > np.log(len(VOCAB)) - 0.3  # starts near uniform guessing
    assert last < first - 0.5, (first, last)


def test_the_training_script_runs(tmp_path):
    out = tmp_path / "tiny.pt"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "20", "--batch", "8",
         "--seq-len", "30", "--hidden-size", "16", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "final training loss" in result.stdout and "bracket depth" in result.stdout
    model, state = load_checkpoint(out)
    assert model.lstm.hidden_size == 16 and state["info"]["steps"] == 20


def test_the_shipped_checkpoint_is_small_and_complete():
    assert CHECKPOINT.stat().st_size < 2_000_000
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(state) >= {"vocab", "config", "lstm", "embedding", "head", "info"}
    assert state["vocab"] == VOCAB
    assert state["config"]["num_layers"] == 2


def test_the_shipped_checkpoint_loads_into_nn_lstm_and_layerwise_lstm():
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    cfg = state["config"]
    args = (cfg["embedding_dim"], cfg["hidden_size"])
    plain = nn.LSTM(*args, num_layers=cfg["num_layers"])
    plain.load_state_dict(state["lstm"])  # strict: every key, every shape
    layerwise = LayerwiseLSTM(*args, num_layers=cfg["num_layers"])
    layerwise.load_state_dict(state["lstm"])

    model, _ = load_checkpoint()
    x = model.embedding(encode(held_out_text()[:200]))[:, None]  # (T, 1, E)
    with torch.no_grad():
        out, (h_n, c_n) = plain(x)
        states = layerwise(x)
    torch.testing.assert_close(states.output, out)
    torch.testing.assert_close(states.c_n, c_n)
    torch.testing.assert_close(states.h[-1, 0], out)  # top layer's h is the output


def test_the_model_predicts_the_held_out_text_well():
    model, _ = load_checkpoint()
    ids = encode(held_out_text())
    with torch.no_grad():
        logits, _ = model(ids[:-1, None])  # (T-1, 1, V)
    loss = nn.functional.cross_entropy(logits[:, 0], ids[1:]).item()
    # well below uniform guessing, log(97) = 4.57 (training reaches ~1.0 on generated lines;
    # the hand-written held-out text has words the generator never writes)
    assert loss < 3.0, loss


def test_unknown_characters_map_to_the_fallback_id():
    ids = encode("a\u00e9\t(\n")
    assert ids.tolist() == [VOCAB.index("a"), 0, 0, VOCAB.index("("), VOCAB.index("\n")]
    model = CharLM()
    assert model(ids[:, None])[0].shape == (5, 1, len(VOCAB))


def test_python_structure_by_hand():
    text = 'f(a, "x (y")  # b)\n[1,\n  {2}]'
    s = python_structure(text)
    depth = "".join(str(int(v)) for v in s["bracket depth"])
    # text:   f(a, "x (y")  # b)\n[1,\n  {2}]
    assert depth == "0" + "1" * 10 + "0" * 8 + "1" * 6 + "22" + "10"
    in_str = "".join(str(int(v)) for v in s["inside a string"])
    assert in_str == "0" * 5 + "1" * 5 + "0" * 19  # from the opening quote to the closing one
    in_com = "".join(str(int(v)) for v in s["inside a comment"])
    assert in_com == "0" * 14 + "1" * 4 + "0" * 11
    assert s["position in line"][:3].tolist() == [1, 2, 3]
    assert s["position in line"][text.index("\n")] == 0
    assert all(v.shape == (len(text),) and v.dtype == torch.float32 for v in s.values())


def test_python_structure_triple_quotes_and_escapes():
    text = '"""a (\n"b"""(\'\\\'(\')'
    s = python_structure(text)
    assert s["inside a string"].tolist() == [1] * 9 + [0] * 4 + [1] * 4 + [0, 0]
    assert s["bracket depth"].tolist() == [0] * 12 + [1] * 6 + [0]


def test_generated_code_is_reproducible_python():
    text = generated_code(20_000, seed=3)
    assert len(text) == 20_000 and text == generated_code(20_000, seed=3)
    assert text != generated_code(20_000, seed=4)
    depth = python_structure(text)["bracket depth"]
    ends = [t for t, ch in enumerate(text) if ch == "\n" and depth[t] == 0]
    compile(text[: ends[-1] + 1], "<generated>", "exec")  # every complete line is Python
    assert depth.max() >= 5  # it nests deeply
    assert set(text) <= set(VOCAB[1:])


def test_held_out_text_is_fixed_python():
    text = held_out_text()
    assert 500 <= len(text) <= 2000
    compile(text, "<held out>", "exec")
    assert set(text) <= set(VOCAB[1:])


def test_correlations_match_numpy():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(50, generator=g)
    values = torch.stack([2 * q + 1, -q, torch.randn(50, generator=g), torch.ones(50)], 1)
    r = correlations(values, q)
    assert r[:2].tolist() == pytest.approx([1.0, -1.0], abs=1e-6)
    assert float(r[2]) == pytest.approx(np.corrcoef(values[:, 2], q)[0, 1], abs=1e-5)
    assert float(r[3]) == 0.0  # a constant unit


def test_unit_correlations_cover_every_quantity_layer_and_state():
    text = "x = f([1, (2, 3)],\n    'a (')\n" * 3
    st = _small_states(text)
    known = python_structure(text)
    r = unit_correlations(st, known)
    assert set(r) == {(name, layer, kind) for name in known for layer in range(2)
                      for kind in "ch"}
    depth = known["bracket depth"].numpy()
    for layer, kind, states in ((1, "c", st.c), (0, "h", st.h)):
        unit = states[layer, 0, :, 0, 4].numpy()
        assert float(r["bracket depth", layer, kind][4]) == pytest.approx(
            np.corrcoef(unit, depth)[0, 1], abs=1e-5)


def _small_states(text, hidden=6):
    torch.manual_seed(0)
    model = CharLM(hidden_size=hidden).eval()
    with torch.no_grad():
        return capture(model.lstm, model.embedding(encode(text))[:, None])


# lstm_states.textviz and widgets.TextExplorer are tested in tests/test_textviz.py and
# tests/test_widgets_text.py


# ---- the GRU option (chapter 07)


def test_the_gru_option_trains_the_same_recipe_with_nn_gru(tmp_path):
    model, losses = train(steps=40, seq_len=40, batch=8, hidden_size=32, seed=0,
                          corpus=generated_code(30_000, seed=1), progress=False, cell="gru")
    assert isinstance(model.gru, nn.GRU) and model.rnn is model.gru and not hasattr(model, "lstm")
    assert model.gru.num_layers == 2 and model.gru.hidden_size == 32
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    # the checkpoint round trip: the GRU's weights under "gru", the cell in the config
    save_checkpoint(model, tmp_path / "gru.pt", seed=0)
    again, state = load_checkpoint(tmp_path / "gru.pt")
    assert state["config"]["cell"] == "gru" and "gru" in state and "lstm" not in state
    plain = nn.GRU(32, 32, num_layers=2)
    plain.load_state_dict(state["gru"])  # strict: loads into a bare nn.GRU
    ids = encode(held_out_text()[:100])[:, None]
    with torch.no_grad():
        torch.testing.assert_close(again(ids)[0], model(ids)[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="cell"):
        CharLM(cell="rnn")


def test_an_lstm_checkpoint_keeps_its_format():
    model = CharLM(hidden_size=8)
    assert model.cell == "lstm" and model.rnn is model.lstm
    assert list(model.state_dict())[:3] == ["embedding.weight", "lstm.weight_ih_l0",
                                            "lstm.weight_hh_l0"]
    state = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert "cell" not in state["config"]  # the shipped LSTM checkpoint loads as it always did
    assert load_checkpoint()[0].cell == "lstm"


def test_unit_correlations_of_a_gru_have_h_alone():
    torch.manual_seed(0)
    gru = nn.GRU(3, 4, num_layers=2)
    text = "f(a, [b])\n"
    with torch.no_grad():
        st = capture(gru, torch.randn(len(text), 1, 3))
    r = unit_correlations(st, python_structure(text))
    assert {kind for _, _, kind in r} == {"h"} and len(r) == 4 * 2
    torch.testing.assert_close(r["bracket depth", 1, "h"],
                               correlations(st.h[1, 0, :, 0], python_structure(text)["bracket depth"]))
