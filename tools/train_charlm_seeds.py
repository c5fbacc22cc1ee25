"""Trains the character model of chapter 05 with every seed of the study, one after the other.

    python tools/train_charlm_seeds.py            # seeds 1-4 (seed 0 is notebooks/data/charlm.pt)
    python tools/train_charlm_seeds.py 0 1 2 3 4  # all five, seed 0 included

Each seed runs ``python notebooks/charlm.py --seed K --out notebooks/data/charlm_seedK.pt`` (seed 0
writes ``charlm.pt``): the same recipe (2400 steps of Adam, 32 streams x 100 characters), only the
seed differs, and with it the initial weights and the generated training corpus
(``generated_code(2_000_000, seed=K)``). About 2 minutes a seed on 2 quiet cores; the committed
seeds 1-4 were trained with one thread each (OMP_NUM_THREADS=1) on a busy machine. Then run
``python tools/study_seeds.py``.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "notebooks"))

from study import checkpoint  # noqa: E402


def main(argv):
    seeds = [int(s) for s in argv] or [1, 2, 3, 4]
    for seed in seeds:
        out = checkpoint(seed)
        print(f"seed {seed} -> {out.relative_to(ROOT)}", flush=True)
        subprocess.run([sys.executable, str(ROOT / "notebooks" / "charlm.py"), "--seed", str(seed),
                        "--out", str(out)], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
