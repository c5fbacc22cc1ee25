"""Runs chapter 07's comparison (LSTM vs GRU, does a layer-0 unit count the brackets?) for every
seed with both checkpoints and stores ``notebooks/data/gru_study.pt``.

    python tools/gru_study.py          # every seed with both checkpoints
    python tools/gru_study.py 2 3      # only these seeds, merged into the stored results

Train the GRU seeds first: ``python tools/train_charlm_seeds.py --cell gru``. Each seed captures
layer 0 of six models (trained and untrained LSTM c, LSTM h, GRU h) on both texts and runs six
nulls of 1,000 shifts: some minutes for all seeds on 2 cores.
"""

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))

import gru_study  # noqa: E402


def main(argv):
    seeds = [int(s) for s in argv] or gru_study.seeds()
    results = gru_study.load_results() if argv and gru_study.RESULTS.exists() else {}
    for seed in seeds:
        start = time.perf_counter()
        results[seed] = gru_study.compare(seed)
        line = ", ".join(f"{gru_study.LABELS[k]} |r| {abs(v['trained']['r test']):.2f}"
                         f" (untrained {abs(v['untrained']['r test']):.2f})"
                         for k, v in results[seed].items())
        print(f"seed {seed} ({time.perf_counter() - start:.0f} s): {line}", flush=True)
    results = dict(sorted(results.items()))
    torch.save(results, gru_study.RESULTS)
    print(f"wrote {gru_study.RESULTS.relative_to(ROOT)} (seeds {sorted(results)})")


if __name__ == "__main__":
    main(sys.argv[1:])
