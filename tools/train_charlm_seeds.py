"""Trains the character model of chapter 05 with every seed of the study, one after the other.

    python tools/train_charlm_seeds.py            # seeds 1-4 (seed 0 is notebooks/data/charlm.pt)
    python tools/train_charlm_seeds.py 0 1 2 3 4  # all five, seed 0 included
    python tools/train_charlm_seeds.py --cell gru 0 1 2 3 4  # the GRU of chapter 07

Each seed runs ``python notebooks/charlm.py --seed K --out notebooks/data/charlm_seedK.pt`` (seed 0
writes ``charlm.pt``): the same recipe (2400 steps of Adam, 32 streams x 100 characters), only the
seed differs, and with it the initial weights and the generated training corpus
(``generated_code(2_000_000, seed=K)``). About 2 minutes a seed on 2 quiet cores; the committed
seeds 1-4 were trained with one thread each (OMP_NUM_THREADS=1) on a busy machine. Then run
``python tools/study_seeds.py``.

``--cell gru`` trains the same recipe with an ``nn.GRU`` in place of the LSTM (same seeds, same
corpora) and writes ``notebooks/data/chargru_seedK.pt`` for every seed, 0 included; then run
``python tools/gru_study.py``.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))

from gru_study import gru_checkpoint  # noqa: E402
from study import checkpoint  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    p.add_argument("seeds", type=int, nargs="*")
    a = p.parse_args(argv)
    seeds = a.seeds or ([1, 2, 3, 4] if a.cell == "lstm" else [0, 1, 2, 3, 4])
    for seed in seeds:
        out = checkpoint(seed) if a.cell == "lstm" else gru_checkpoint(seed)
        print(f"seed {seed} -> {out.relative_to(ROOT)}", flush=True)
        subprocess.run([sys.executable, str(ROOT / "notebooks" / "charlm.py"), "--seed", str(seed),
                        "--cell", a.cell, "--out", str(out)], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
