"""Time a step of each widget at the notebooks' sizes, in the kernel's part of the work.

    python tools/time_widgets.py            # every widget, 20 steps each
    python tools/time_widgets.py --steps 50

For each widget: the figure's size in pixels, one full draw, and per time step the kernel's
whole work on ipympl's backend (the slider callback, the blit, and the PNG of the changed pixels
that ipympl sends to the browser), as the median and the worst of the steps, and the median
part of it spent making that PNG (``get_diff_image``, which the widgets' ``Blitter`` replaces
with ``lstm_states.display.diff_frame_png``: no row filter, zlib level 1, cropped to the changed
rows and columns; matplotlib's own, PIL's adaptive row filters, took 25-35 ms). No browser: the time from
a key press to the changed canvas in Chromium is measured by tests/test_browser.py
(``redraw_time``); it adds the messages, JupyterLab's server and the browser's own decoding and
drawing to what is timed here.
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "notebooks")]


def _widgets():
    """The widgets as the notebooks build them (sizes of notebooks 02, 04 and 05)."""
    import torch
    from torch import nn

    from lstm_states import capture
    from lstm_states.widgets import GateStepViewer, StateExplorer, TextExplorer

    torch.manual_seed(0)
    with torch.no_grad():
        st02 = capture(nn.LSTM(4, 8, num_layers=3).eval(), torch.randn(20, 2, 4))
        st04 = capture(nn.LSTM(3, 8, num_layers=2), torch.randn(20, 2, 3))
    yield "StateExplorer (02: T=20, H=8, L=3)", lambda: StateExplorer(st02)
    yield "GateStepViewer (04: T=20, H=8)", lambda: GateStepViewer(st04, layer=1)
    try:
        from charlm import encode, held_out_text, load_checkpoint, python_structure
    except ImportError as err:  # the tutorial's model lives beside the notebooks
        print(f"TextExplorer skipped: {err}")
        return
    model, _ = load_checkpoint()
    text = held_out_text()
    with torch.no_grad():
        st05 = capture(model.lstm, model.embedding(encode(text))[:, None])
    depth = python_structure(text)["bracket depth"]
    yield (f"TextExplorer (05: T={len(text)}, H=128, L=2)",
           lambda: TextExplorer(text, st05, layer=0, unit=33, quantity=("bracket depth", depth)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import matplotlib.pyplot as plt

    plt.switch_backend("module://ipympl.backend_nbagg")
    for name, make in _widgets():
        explorer = make()
        canvas = explorer.fig.canvas
        sent, png_s = [], []
        canvas.send_binary = sent.append  # what would go to the browser
        diff_image = canvas.get_diff_image

        def timed_diff_image(diff_image=diff_image, png_s=png_s):
            start = time.perf_counter()
            try:
                return diff_image()
            finally:
                png_s.append(time.perf_counter() - start)
        canvas.get_diff_image = timed_diff_image  # this instance only, to time the PNG
        start = time.perf_counter()
        canvas.draw()  # the first frame the browser asks for
        full = time.perf_counter() - start
        steps = []
        png_s.clear()
        for t in range(1, args.steps + 1):
            start = time.perf_counter()
            explorer.slider.value = t % (explorer.slider.max + 1)
            steps.append(time.perf_counter() - start)
        w, h = (round(v) for v in explorer.fig.get_size_inches() * explorer.fig.dpi)
        print(f"{name}: {w}x{h} px; full draw {1000 * full:.0f} ms; step median "
              f"{1000 * statistics.median(steps):.0f} ms (PNG {1000 * statistics.median(png_s):.0f}"
              f" ms), worst {1000 * max(steps):.0f} ms; "
              f"{explorer.blitter.blits} blits, {len(sent) - 1} images of "
              f"{statistics.median(len(s) for s in sent[1:]) / 1000:.1f} kB sent")
        plt.close(explorer.fig)


if __name__ == "__main__":
    main()
