"""Bit identity with nn.LSTM on the CPU: a seeded sweep of every input form, for capture's
kernel routes and for record.

The sweep is seeded (the same 1,440 configurations on every run), so it can fail only when the
code changes; the property tests in test_properties.py search further at random. Each case is
tiny: the sweep costs about a minute on the 2-core CI machine.

Why packed input with hx once differed (measured, docs/DEVELOPING.md): nn.LSTM permutes all
layers' hx into one fresh tensor, and the packed CPU kernel's first W_hh h_0 product rounds
differently with h_0's address; capture now puts each layer's permuted hx at nn.LSTM's offset
(routes.permute_as_nn_lstm). test_the_cause_is_h0s_address shows the cause on its own.
"""

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from lstm_states import capture, record
from lstm_states.routes import layer_params

FORMS = ("time_major", "batch_first", "unbatched", "packed_sorted", "packed_unsorted")
# every combination of these knobs, ROUNDS times, with the sizes, lengths and values random
KNOBS = dict(form=FORMS, dtype=(torch.float32, torch.float64), num_layers=(1, 2, 3),
             bidirectional=(False, True), projected=(False, True), bias=(False, True),
             hx=(False, True))
ROUNDS = 3
SWEEP = ROUNDS * 5 * 2 * 3 * 2 * 2 * 2 * 2  # 1,440 configurations


def configs(seed: int = 2026, rounds: int = ROUNDS) -> list:
    """The sweep's configurations: every combination of KNOBS in each round, in random order,
    with random sizes (a projection is 1..H-1 wide, so H >= 2 with one)."""
    rng = random.Random(seed)
    out = []
    for _ in range(rounds):
        combos = list(itertools.product(*KNOBS.values()))
        rng.shuffle(combos)
        for combo in combos:
            knobs = dict(zip(KNOBS, combo, strict=True))
            hidden = rng.randint(2 if knobs["projected"] else 1, 9)
            out.append(dict(
                knobs, input_size=rng.randint(1, 7), hidden_size=hidden,
                proj_size=rng.randint(1, hidden - 1) if knobs.pop("projected") else 0,
                T=rng.randint(1, 9), B=rng.randint(1, 6), seed=rng.randrange(2**31)))
    return out


def build(cfg: dict):
    """The nn.LSTM, its input and hx for a configuration."""
    g = torch.Generator().manual_seed(cfg["seed"])
    form, dtype = cfg["form"], cfg["dtype"]
    lstm = nn.LSTM(cfg["input_size"], cfg["hidden_size"], num_layers=cfg["num_layers"],
                   bias=cfg["bias"], batch_first=form == "batch_first",
                   bidirectional=cfg["bidirectional"], proj_size=cfg["proj_size"])
    lstm = lstm.to(dtype).eval()
    with torch.no_grad():
        for p in lstm.parameters():  # weights of every size, as a trained model has
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype))
    T, B, I = cfg["T"], cfg["B"], cfg["input_size"]
    D = 2 if cfg["bidirectional"] else 1
    H_out = cfg["proj_size"] or cfg["hidden_size"]
    rows = cfg["num_layers"] * D
    if form == "unbatched":
        x = torch.randn(T, I, generator=g, dtype=dtype)
        shapes = [(rows, H_out), (rows, cfg["hidden_size"])]
    else:
        x = torch.randn((B, T, I) if form == "batch_first" else (T, B, I), generator=g,
                        dtype=dtype)
        shapes = [(rows, B, H_out), (rows, B, cfg["hidden_size"])]
    if form.startswith("packed"):
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        if form == "packed_sorted":
            lengths = lengths.sort(descending=True).values
        x = pack_padded_sequence(x, lengths, enforce_sorted=form == "packed_sorted")
    hx = tuple(torch.randn(s, generator=g, dtype=dtype) for s in shapes) if cfg["hx"] else None
    return lstm, x, hx


def leaves(result):
    output, (h_n, c_n) = result
    return [output.data if isinstance(output, PackedSequence) else output, h_n, c_n]


def differences(cfg: dict) -> list:
    """Where capture and record differ from nn.LSTM, bit for bit, each computed in the same
    mode as nn.LSTM: without autograd (the kernel route) and with it (the autograd route;
    nn.LSTM itself takes another CPU path when autograd records it)."""
    lstm, x, hx = build(cfg)
    bad = []
    for grad in (False, True):
        for p in lstm.parameters():
            p.requires_grad_(grad)
        with torch.set_grad_enabled(grad):
            want = leaves(lstm(x, hx))
            got = {"capture": capture(lstm, x, hx, route="autograd" if grad else "kernel")}
            with record(lstm) as rec:
                got["record (model's result)"] = lstm(x, hx)
            got["record (recorded)"] = rec.one()
        for name, result in got.items():
            for what, a, b in zip(("output", "h_n", "c_n"), leaves(result), want, strict=True):
                if not torch.equal(a, b):
                    diff = (a - b).abs().max().item()
                    bad.append(f"{name}{' with autograd' if grad else ''} {what}: {diff:.2e}")
    return bad


def sweep(seed: int = 2026, rounds: int = ROUNDS) -> list:
    """(configuration, differences) for every configuration of the sweep that differs."""
    return [(cfg, bad) for cfg in configs(seed, rounds) if (bad := differences(cfg))]


def test_the_counterexample_ci_drew():
    # nn.LSTM(1, 5, num_layers=2, bias=False), packed lengths [1, 2] unsorted, hx given:
    # capture differed by 3.7e-8 on AVX2 CPUs (issue 17)
    cfg = dict(input_size=1, hidden_size=5, num_layers=2, bias=False, bidirectional=False,
               proj_size=0, form="packed_unsorted", dtype=torch.float32, T=2, B=2, hx=True)
    for seed in range(50):
        lstm, _, hx = build({**cfg, "seed": seed})
        x = pack_padded_sequence(torch.randn(2, 2, 1), torch.tensor([1, 2]), enforce_sorted=False)
        with torch.no_grad():
            want = leaves(lstm(x, hx))
            for route in ("kernel", "stepwise"):
                if route == "stepwise":
                    continue  # (equal within tolerance only, by design)
                got = leaves(capture(lstm, x, hx, route=route))
                assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True)), seed
        for p in lstm.parameters():
            p.requires_grad_(True)
        got = leaves(capture(lstm, x, hx, route="autograd"))
        assert all(torch.equal(a.detach(), b) for a, b in zip(got, want, strict=True)), seed


def test_a_seeded_sweep_of_every_input_form_is_bit_identical():
    failures = sweep()
    assert not failures, f"{len(failures)} of {SWEEP} differ; first: {failures[:3]}"


def test_the_sweep_covers_every_combination_of_knobs():
    cfgs = configs()
    assert len(cfgs) == SWEEP >= 1000
    seen = {(c["form"], c["dtype"], c["num_layers"], c["bidirectional"], c["proj_size"] > 0,
             c["bias"], c["hx"]) for c in cfgs}
    assert len(seen) == SWEEP // ROUNDS


def test_the_cause_is_h0s_address():
    # The measurement behind the fix, kept as a test: layer 1 of a 2-layer nn.LSTM on packed,
    # unsorted input reads its h_0 at 40 bytes into nn.LSTM's permuted hx (2 * 5 float32s).
    # The same values at another address (0 mod 16 bytes) round differently in most cases;
    # at an address 8 mod 16 they never do. If a release stops depending on the address, the
    # first assert fails, and permute_as_nn_lstm can go.
    same_at = {0: 0, 8: 0}
    trials = 60
    for seed in range(trials):
        torch.manual_seed(seed)
        lstm = nn.LSTM(1, 5, num_layers=2, bias=False).eval()
        x = pack_padded_sequence(torch.randn(2, 2, 1), torch.tensor([1, 2]), enforce_sorted=False)
        hx = (torch.randn(2, 2, 5), torch.randn(2, 2, 5))
        with torch.no_grad():
            want = lstm(x, hx)[0].data
            h, c = (s.index_select(1, x.sorted_indices) for s in hx)
            below, _, _ = torch.lstm(x.data, x.batch_sizes, (h[:1], c[:1]),
                                     layer_params(lstm, 0, 0), False, 1, 0.0, False, False)
            for offset in same_at:
                buf = torch.empty(64)
                h1 = buf[offset // 4:offset // 4 + 10].view(1, 2, 5)
                h1.copy_(h[1:])
                out, _, _ = torch.lstm(below, x.batch_sizes, (h1, c[1:]),
                                       layer_params(lstm, 1, 0), False, 1, 0.0, False, False)
                same_at[offset] += torch.equal(out, want)
    if same_at[0] == trials:
        pytest.skip("this CPU/BLAS rounds the same at every address: nothing to show here")
    assert same_at[8] == trials, same_at


# The same sweep with the CPU's vector paths narrowed: what an older or smaller CPU computes.
# (This machine has AVX2 and no AVX-512; on an AVX-512 machine the native run is the third.)
NARROWED = {
    "sse4.2 (no AVX)": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                        "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


@pytest.mark.parametrize("name", NARROWED)
def test_the_sweep_holds_with_narrower_vector_instructions(name):
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from tests.test_bit_identity import sweep; f = sweep(seed=7, rounds=1);"
            " print(len(f), f[:2]); sys.exit(bool(f))")
    env = {**os.environ, **NARROWED[name], "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
