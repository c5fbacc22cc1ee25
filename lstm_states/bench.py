"""Benchmark: capture() and an nn.LSTMCell loop against a plain nn.LSTM forward, same run.

    python -m lstm_states.bench                 # CPU
    python -m lstm_states.bench --device cuda   # GPU (TF32 switched off)
    python -m lstm_states.bench --memory        # peak memory of fields=("h",) vs nn.LSTM (CPU)
    python -m lstm_states.bench --edits         # the cost of edits (capture(..., edits=))

For each configuration (T, B, I, H, L) it prints the best-of-N time (all taking turns within
each round) of a plain nn.LSTM forward, of ``capture`` keeping everything (every layer's h, c
and gates), of ``capture(..., fields=("h",))`` and of a straightforward nn.LSTMCell loop that
collects every h and c; then the ratios to nn.LSTM with their geometric means, and capture's
time over the LSTMCell loop's. Inference mode (no autograd), eval mode, float32.
"""

import argparse
import json
import math
import subprocess
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

from . import _triton
from .core import capture
from .edits import Edit

CONFIGS = [(100, 32, 32, 64, 2), (200, 32, 64, 128, 2), (500, 64, 128, 256, 2), (200, 16, 64, 128, 4)]
"""(T, B, I, H, L): the configurations timed."""


def cell_loop(cells, x):
    """Every layer's h and c with one nn.LSTMCell per layer, step by step: (L, T, B, H) each."""
    T, B, _ = x.shape
    hs, cs = [], []
    inp = x
    for cell in cells:
        h = x.new_zeros(B, cell.hidden_size)
        c = x.new_zeros(B, cell.hidden_size)
        h_t, c_t = [], []
        for t in range(T):
            h, c = cell(inp[t], (h, c))
            h_t.append(h)
            c_t.append(c)
        inp = torch.stack(h_t)
        hs.append(inp)
        cs.append(torch.stack(c_t))
    return torch.stack(hs), torch.stack(cs)


def timeit(fns, device, repeat):
    """Best wall time of each of ``fns`` over ``repeat`` rounds, in seconds, after one warm-up
    call each. The functions take turns within each round, so that a slow spell of the machine
    hits all of them alike rather than whichever ran during it."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[k] = min(best[k], time.perf_counter() - start)
    return best


def bench(T, B, I, H, L, device, repeat):
    torch.manual_seed(0)
    lstm = nn.LSTM(I, H, num_layers=L).to(device).eval()
    cells = [nn.LSTMCell(I if k == 0 else H, H).to(device) for k in range(L)]
    for k, cell in enumerate(cells):  # same weights as the LSTM
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(lstm, f"{name}_l{k}"))
    x = torch.randn(T, B, I, device=device)
    with torch.inference_mode():
        # the three agree before any of them is timed
        st = capture(lstm, x)
        h, c = cell_loop(cells, x)
        torch.testing.assert_close(st.output, lstm(x)[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(st.h[:, 0], h, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(st.c[:, 0], c, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(capture(lstm, x, fields=("h",)).h, st.h, atol=1e-4, rtol=1e-4)
        return timeit([lambda: lstm(x), lambda: capture(lstm, x),
                       lambda: capture(lstm, x, fields=("h",)), lambda: cell_loop(cells, x)],
                      device, repeat)


EDITS_CONFIG = (500, 64, 128, 256, 2)


def bench_edits(T, B, I, H, L, device, repeat):
    """Times of nn.LSTM, capture, capture with one edit at T/2 of layer 0, capture with an edit
    at every step of layer 0, and the LSTMCell loop (all taking turns), in seconds."""
    torch.manual_seed(0)
    lstm = nn.LSTM(I, H, num_layers=L).to(device).eval()
    cells = [nn.LSTMCell(I if k == 0 else H, H).to(device) for k in range(L)]
    for k, cell in enumerate(cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(lstm, f"{name}_l{k}"))
    x = torch.randn(T, B, I, device=device)
    one = [Edit("c", 0, T // 2, unit=0, set=0.0)]
    every = [Edit("c", 0, slice(None), unit=0, set=0.0)]
    with torch.inference_mode():
        assert (capture(lstm, x, edits=every).c[0, 0, :, :, 0] == 0).all()
        return timeit([lambda: lstm(x), lambda: capture(lstm, x),
                       lambda: capture(lstm, x, edits=one), lambda: capture(lstm, x, edits=every),
                       lambda: cell_loop(cells, x)], device, repeat)


MEMORY_CONFIG = (2000, 64, 128, 256, 2)


def _peak_rss_of(what: str, T: int, B: int, I: int, H: int, L: int) -> dict:
    """In this (fresh) process: peak resident memory while ``what`` runs once, above the
    process's peak after building the model and its input (Linux: /proc/self/status VmHWM)."""
    def peak() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

    torch.manual_seed(0)
    lstm = nn.LSTM(I, H, num_layers=L).eval()
    x = torch.randn(T, B, I)
    with torch.inference_mode():
        lstm(x[:2])  # load the kernels, warm the allocator on a tiny call
        capture(lstm, x[:2], fields=("h",))
        before = peak()
        if what == "lstm":
            result = lstm(x)
            kept = 0
        else:
            result = capture(lstm, x, fields=("h",))
            kept = result.h.numel() * result.h.element_size()
        after = peak()
    del result
    return {"peak_above_setup": after - before, "h_bytes": kept}


def memory(config=MEMORY_CONFIG) -> dict:
    """Peak RSS of nn.LSTM and of capture(fields=("h",)), each in a fresh subprocess."""
    runs = {}
    for what in ("lstm", "capture_h"):
        code = ("import json, sys; from lstm_states.bench import _peak_rss_of; "
                f"print(json.dumps(_peak_rss_of({what!r}, *{tuple(config)!r})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        runs[what] = json.loads(out.strip().splitlines()[-1])
    extra = runs["capture_h"]["peak_above_setup"] - runs["lstm"]["peak_above_setup"]
    h_bytes = runs["capture_h"]["h_bytes"]
    return {"config": config, "lstm_peak": runs["lstm"]["peak_above_setup"],
            "capture_h_peak": runs["capture_h"]["peak_above_setup"], "h_bytes": h_bytes,
            "extra": extra, "extra_over_h": extra / h_bytes}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (each times all four)")
    parser.add_argument("--memory", action="store_true",
                        help=f"measure peak memory on {MEMORY_CONFIG} instead (CPU, Linux)")
    parser.add_argument("--edits", action="store_true",
                        help=f"time capture with edits on {EDITS_CONFIG} instead")
    args = parser.parse_args(argv)
    if args.memory:
        m = memory()
        mb = 2 ** 20
        print(f"(T, B, I, H, L) = {m['config']}, float32, inference; peak RSS above setup:")
        print(f"  nn.LSTM forward:             {m['lstm_peak'] / mb:8.1f} MiB")
        print(f"  capture(fields=('h',)):      {m['capture_h_peak'] / mb:8.1f} MiB")
        print(f"  the h it returns:            {m['h_bytes'] / mb:8.1f} MiB")
        print(f"  capture's extra / h's bytes: {m['extra_over_h']:8.2f}")
        return
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda given but torch.cuda.is_available() is False")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}, {torch.get_num_threads()} threads, float32, inference")
    if args.edits:
        times = bench_edits(*EDITS_CONFIG, device, args.repeat)
        names = ["nn.LSTM", "capture", "capture, one edit at T/2 of layer 0",
                 "capture, an edit at every step of layer 0", "LSTMCell loop"]
        print(f"(T, B, I, H, L) = {EDITS_CONFIG}, every field kept, best of {args.repeat}")
        for name, t in zip(names, times, strict=True):
            print(f"  {name:<44}{t * 1e3:>10.2f} ms{t / times[0]:>8.2f}x nn.LSTM")
        print(f"  one edit / capture without edits:          {times[2] / times[1]:>6.2f}")
        print(f"  edit at every step / LSTMCell loop:         {times[3] / times[4]:>6.2f}")
        return
    if device.type == "cuda":
        route = ("one Triton kernel per layer and direction" if _triton.triton is not None
                 else "a loop of T launches per layer (Triton not installed)")
        print(f"capture's gates and c_t: {route}; CUDA graphs: on (route cuda_graph)")
    rows = [(cfg, bench(*cfg, device, args.repeat)) for cfg in tqdm(CONFIGS, desc="configs")]
    print(f"{'(T, B, I, H, L)':<24}{'nn.LSTM ms':>11}{'capture ms':>11}{'h only ms':>10}"
          f"{'LSTMCell ms':>12}{'capture x':>10}{'h only x':>9}{'LSTMCell x':>11}"
          f"{'capture/LSTMCell':>17}")
    for cfg, (a, b, h, c) in rows:
        print(f"{str(cfg):<24}{a * 1e3:>11.2f}{b * 1e3:>11.2f}{h * 1e3:>10.2f}{c * 1e3:>12.2f}"
              f"{b / a:>10.2f}{h / a:>9.2f}{c / a:>11.2f}{b / c:>17.2f}")

    def gmean(k, base=0):
        return math.exp(sum(math.log(r[1][k] / r[1][base]) for r in rows) / len(rows))
    print(f"{'geometric mean':<24}{'':>44}{gmean(1):>10.2f}{gmean(2):>9.2f}{gmean(3):>11.2f}"
          f"{gmean(1, 3):>17.2f}")


if __name__ == "__main__":
    main()
