"""Benchmark: capture() and an nn.LSTMCell loop against a plain nn.LSTM forward, same run.

    python -m lstm_states.bench                 # CPU
    python -m lstm_states.bench --device cuda   # GPU (TF32 switched off)
    python -m lstm_states.bench --cell lstm gru rnn   # one table per module kind, in one run
    python -m lstm_states.bench --tiny --threads 1   # tiny sizes: a smoke test, not a measurement
    python -m lstm_states.bench --memory        # peak memory of fields=("h",) vs nn.LSTM (CPU)
    python -m lstm_states.bench --edits         # the cost of edits (capture(..., edits=))

For each configuration (T, B, I, H, L) it prints the best-of-N time (all taking turns within
each round) of a plain nn.LSTM forward, of ``capture`` keeping everything (every layer's h, c
and gates), of ``capture(..., fields=("h",))`` and of a straightforward nn.LSTMCell loop that
collects every h and c; then the ratios to nn.LSTM with their geometric means, and capture's
time over the LSTMCell loop's. Inference mode (no autograd), eval mode, float32.

``--cell gru`` prints the same table for nn.GRU (capture keeps h and the gates r, z, n; the
loop is an nn.GRUCell loop collecting every h), ``--cell rnn`` for a tanh nn.RNN (h is its
only state, so "capture" and "h only" are the same call, timed twice); each kind's table has
its own rows, timed against its own module and its own cell loop.
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

TINY_CONFIGS = [(20, 4, 8, 16, 2), (40, 8, 16, 32, 2)]
"""(T, B, I, H, L) for ``--tiny``: seconds in all, for a smoke test on a busy machine."""

KINDS = {"lstm": (nn.LSTM, nn.LSTMCell), "gru": (nn.GRU, nn.GRUCell), "rnn": (nn.RNN, nn.RNNCell)}
"""``--cell``: the module and its one-step cell (nn.RNN and nn.RNNCell: tanh)."""


def cell_loop(cells, x):
    """Every layer's h (and, for nn.LSTMCell, c) with one cell per layer, step by step:
    (L, T, B, H) each; c is None for an nn.GRUCell or nn.RNNCell."""
    T, B, _ = x.shape
    lstm = isinstance(cells[0], nn.LSTMCell)
    hs, cs = [], []
    inp = x
    for cell in cells:
        h = x.new_zeros(B, cell.hidden_size)
        c = x.new_zeros(B, cell.hidden_size)
        h_t, c_t = [], []
        for t in range(T):
            if lstm:
                h, c = cell(inp[t], (h, c))
                c_t.append(c)
            else:
                h = cell(inp[t], h)
            h_t.append(h)
        inp = torch.stack(h_t)
        hs.append(inp)
        if lstm:
            cs.append(torch.stack(c_t))
    return torch.stack(hs), (torch.stack(cs) if lstm else None)


def module_and_cells(I, H, L, device, kind="lstm"):
    """An eval-mode nn.LSTM/GRU/RNN and one cell per layer holding the same weights."""
    module_type, cell_type = KINDS[kind]
    module = module_type(I, H, num_layers=L).to(device).eval()
    cells = [cell_type(I if k == 0 else H, H).to(device) for k in range(L)]
    for k, cell in enumerate(cells):  # same weights as the module
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(module, f"{name}_l{k}"))
    return module, cells


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


def bench(T, B, I, H, L, device, repeat, kind="lstm"):
    """Times of the module (nn.LSTM, nn.GRU or nn.RNN by ``kind``), capture keeping
    everything, capture(fields=("h",)) and the cell loop (all taking turns), in seconds."""
    torch.manual_seed(0)
    lstm, cells = module_and_cells(I, H, L, device, kind)
    x = torch.randn(T, B, I, device=device)
    with torch.inference_mode():
        # the three agree before any of them is timed
        st = capture(lstm, x)
        h, c = cell_loop(cells, x)
        torch.testing.assert_close(st.output, lstm(x)[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(st.h[:, 0], h, atol=1e-4, rtol=1e-4)
        if c is not None:
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
    lstm, cells = module_and_cells(I, H, L, device)
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
    parser.add_argument("--cell", nargs="+", choices=tuple(KINDS), default=["lstm"],
                        help="the module kinds timed, one table each, in this order (default:"
                             " lstm; e.g. --cell lstm gru rnn)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"time {TINY_CONFIGS} instead: a smoke test, not a measurement")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own; 1 on a busy machine,"
                             " where a second thread waiting for a core slows parallel kernels"
                             " such as nn.GRU's by up to 200x)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if (args.memory or args.edits) and args.cell != ["lstm"]:
        parser.error("--memory and --edits measure nn.LSTM only; leave out --cell")
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
    configs = TINY_CONFIGS if args.tiny else CONFIGS
    for kind in args.cell:
        table(kind, [(cfg, bench(*cfg, device, args.repeat, kind))
                     for cfg in tqdm(configs, desc=f"{kind} configs")])


def table(kind, rows):
    """Prints one kind's table: the times, their ratios to the module, the geometric means."""
    module, cell = (t.__name__ for t in KINDS[kind])
    print(f"{'(T, B, I, H, L)':<24}{f'nn.{module} ms':>11}{'capture ms':>11}{'h only ms':>10}"
          f"{f'{cell} ms':>12}{'capture x':>10}{'h only x':>9}{f'{cell} x':>11}"
          f"{f'capture/{cell}':>17}")
    for cfg, (a, b, h, c) in rows:
        print(f"{str(cfg):<24}{a * 1e3:>11.2f}{b * 1e3:>11.2f}{h * 1e3:>10.2f}{c * 1e3:>12.2f}"
              f"{b / a:>10.2f}{h / a:>9.2f}{c / a:>11.2f}{b / c:>17.2f}")

    def gmean(k, base=0):
        return math.exp(sum(math.log(r[1][k] / r[1][base]) for r in rows) / len(rows))
    print(f"{'geometric mean':<24}{'':>44}{gmean(1):>10.2f}{gmean(2):>9.2f}{gmean(3):>11.2f}"
          f"{gmean(1, 3):>17.2f}")


if __name__ == "__main__":
    main()
