"""Runs chapter 05's study (notebooks/study.py, ``measure``) for every seed and stores the results.

    python tools/study_seeds.py         # writes notebooks/data/study_seeds.pt
    python tools/study_seeds.py 3       # seed 3 only, into the results already there

For each seed of ``study.SEEDS``: the circular-shift null of every quantity and layer for the
trained and the untrained model, the counter chosen on the selection text and measured on the
test and hand-written texts, how it moves at brackets, every layer-0 unit's effect on *when* and
*which* closer, and the mean / resample ablations. A few minutes for five seeds on 2 cores.
Chapter 05 loads the file, recomputes seed 0 and checks that it matches.
"""

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))

import study  # noqa: E402


def main(argv):
    seeds = [int(s) for s in argv] or list(study.SEEDS)
    results = study.load_results() if argv and study.RESULTS.exists() else {}
    for seed in seeds:
        start = time.perf_counter()
        results[seed] = study.measure(seed)
        r = results[seed]
        print(f"seed {seed} ({time.perf_counter() - start:.0f} s): counter {r['counter']},"
              f" r on the test text {r['r']['test']:+.2f}", flush=True)
    torch.save(dict(sorted(results.items())), study.RESULTS)
    print(f"wrote {study.RESULTS.relative_to(ROOT)} ({study.RESULTS.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1:])
