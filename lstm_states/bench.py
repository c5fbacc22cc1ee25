"""Benchmark: capture() and an nn.LSTMCell loop against a plain nn.LSTM forward, same run.

    python -m lstm_states.bench                 # CPU
    python -m lstm_states.bench --device cuda   # GPU (TF32 switched off)

For each configuration (T, B, I, H, L) it prints the best-of-N time (the three taking turns) of
a plain nn.LSTM forward, of ``capture`` (every layer's h, c and gates) and of a straightforward
nn.LSTMCell loop that also collects every h and c, with the ratios to nn.LSTM and their
geometric means. Inference mode (no autograd), eval mode, float32.
"""

import argparse
import math
import time

import torch
from torch import nn
from tqdm import tqdm

from . import _triton
from .core import capture

CONFIGS = [(100, 32, 32, 64, 2), (200, 32, 64, 128, 2), (500, 64, 128, 256, 2), (200, 16, 64, 128, 4)]


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
        t_lstm, t_capture, t_cell = timeit(
            [lambda: lstm(x), lambda: capture(lstm, x), lambda: cell_loop(cells, x)], device, repeat)
    return t_lstm, t_capture, t_cell


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (each times all three)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda given but torch.cuda.is_available() is False")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}, {torch.get_num_threads()} threads, float32, inference")
    if device.type == "cuda":
        route = ("one Triton kernel per layer and direction" if _triton.triton is not None
                 else "a loop of T launches per layer (Triton not installed)")
        print(f"capture's gates and c_t: {route}; CUDA graphs: on (route cuda_graph)")
    rows = [(cfg, bench(*cfg, device, args.repeat)) for cfg in tqdm(CONFIGS, desc="configs")]
    print(f"{'(T, B, I, H, L)':<24}{'nn.LSTM ms':>12}{'capture ms':>12}{'LSTMCell ms':>13}"
          f"{'capture x':>11}{'LSTMCell x':>12}")
    for cfg, (a, b, c) in rows:
        print(f"{str(cfg):<24}{a * 1e3:>12.2f}{b * 1e3:>12.2f}{c * 1e3:>13.2f}{b / a:>11.2f}{c / a:>12.2f}")
    gm = [math.exp(sum(math.log(r[1][k] / r[1][0]) for r in rows) / len(rows)) for k in (1, 2)]
    print(f"{'geometric mean':<24}{'':>37}{gm[0]:>11.2f}{gm[1]:>12.2f}")


if __name__ == "__main__":
    main()
