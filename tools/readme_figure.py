"""Writes the README's picture: chapter 01's layers x time grid of a 2-layer bidirectional LSTM.

    python tools/readme_figure.py          # writes docs/images/returns_grid.png

The figure is ``lstm_states.diagrams.plot_output_grid`` with the arguments notebook 01 uses for
its bidirectional picture, rendered by ``lstm_states.display.png_bytes`` (no time stamp in the
file). ``tests/test_readme.py`` draws it again and compares it with the committed image.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "docs" / "images" / "returns_grid.png"
ARGS = dict(num_layers=2, bidirectional=True, steps=6, hidden_size=4, seen_from=0)
"""notebook 01: plot_output_grid(num_layers=L, bidirectional=True, steps=T, hidden_size=H,
seen_from=0) with L, T, H = 2, 6, 4."""


def figure():
    """The README's figure (a new matplotlib Figure on the Agg canvas)."""
    import matplotlib

    matplotlib.use("Agg")
    from lstm_states.diagrams import plot_output_grid

    return plot_output_grid(**ARGS).figure


def png() -> bytes:
    """The figure as PNG bytes, the same on every run with the same matplotlib."""
    from lstm_states.display import png_bytes

    return png_bytes(figure(), dpi=100)


def main() -> None:
    IMAGE.parent.mkdir(parents=True, exist_ok=True)
    IMAGE.write_bytes(png())
    print(f"wrote {IMAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
