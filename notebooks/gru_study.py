"""The study of chapter 07: does a GRU grow a bracket-depth counter as the LSTM of chapter 05 does?

Tutorial code beside :mod:`charlm` and :mod:`study`.
"""

from __future__ import annotations

from pathlib import Path

try:  # from the repository root: notebooks.gru_study
    from .charlm import DATA
except ImportError:  # beside the notebooks: gru_study
    from charlm import DATA


def gru_checkpoint(seed: int) -> Path:
    """The GRU of seed k: ``notebooks/data/chargru_seed{k}.pt`` (seed 0 included)."""
    return DATA / f"chargru_seed{seed}.pt"
