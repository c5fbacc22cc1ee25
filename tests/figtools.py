"""Helpers for the figure and widget tests: where things are drawn, what pixels show, small states.

Import the fixtures a test module needs (``from tests.figtools import close_figures``): pytest
then uses them in that module.
"""

import base64
import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lstm_states import capture  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def quiet_projection_notice():
    # torch's one-time notice that oneDNN has no projection kernel; results are unaffected
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        yield


@pytest.fixture
def ipympl_backend():
    """pyplot on ipympl's backend (as ``%matplotlib widget``), outside a kernel; Agg after."""
    old = matplotlib.get_backend()  # before importing ipympl: that alone switches to ipympl
    pytest.importorskip("ipywidgets")
    pytest.importorskip("ipympl")
    plt.switch_backend("module://ipympl.backend_nbagg")
    yield
    plt.close("all")
    plt.switch_backend(old)


def states(num_layers=3, bidirectional=False, proj_size=0, T=9, B=2, I=3, H=5, seed=0):
    """capture of a seeded random nn.LSTM on seeded random input (T, B, I)."""
    torch.manual_seed(seed)
    lstm = nn.LSTM(I, H, num_layers=num_layers, bidirectional=bidirectional, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(T, B, I))


def widget_makers():
    """The four explorers, small and seeded: {name: () -> a new explorer}. Imports ipywidgets."""
    from lstm_states.widgets import GateStepViewer, ReturnsExplorer, StateExplorer, TextExplorer

    text = "f(a, [b])\n  g(c)\n"
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 6, num_layers=2)
    with torch.no_grad():
        st_text = capture(lstm, torch.randn(len(text), 1, 3))
    depth = np.cumsum([{"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0) for ch in text])
    return {
        "StateExplorer": lambda: StateExplorer(states(3, T=20, B=2, H=8)),
        "ReturnsExplorer": lambda: ReturnsExplorer(),
        "GateStepViewer": lambda: GateStepViewer(states(2, T=20, H=8), layer=1),
        "TextExplorer": lambda: TextExplorer(text, st_text, unit=2,
                                             quantity=("bracket depth", depth)),
    }


def bounds_px(artist_or_ax):
    """(x0, y0, x1, y1) in figure pixels of an Axes (its box) after a draw."""
    bb = artist_or_ax.get_position() if hasattr(artist_or_ax, "get_position") else None
    fig = artist_or_ax.figure
    w, h = fig.get_size_inches() * fig.dpi
    return bb.x0 * w, bb.y0 * h, bb.x1 * w, bb.y1 * h


def overlaps_vertically(a, b) -> bool:
    _, ay0, _, ay1 = bounds_px(a)
    _, by0, _, by1 = bounds_px(b)
    return min(ay1, by1) - max(ay0, by0) > 0.5 * min(ay1 - ay0, by1 - by0)


def pixels(fig) -> np.ndarray:
    """The canvas's current RGBA buffer (what the last draw or blit left), copied."""
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def full_redraw_pixels(fig) -> np.ndarray:
    """The pixels of a full draw of the figure as it is now."""
    fig.canvas.draw()
    return pixels(fig)


def decode_png(data) -> np.ndarray:
    """PNG bytes (or their base64 text, as in a mime bundle) -> (H, W, 4) uint8 array."""
    from PIL import Image

    if isinstance(data, str):
        data = base64.b64decode(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def png_chunks(data: bytes):
    """The chunk types of a PNG file, in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kinds.append(data[pos + 4:pos + 8].decode("ascii"))
        pos += 12 + n
    return kinds


def cursor_inside(ax, x, margin_px=2.0) -> bool:
    """Whether a vertical line at data x is drawn inside the Axes, clear of its frame."""
    x0_px = ax.transData.transform((ax.get_xlim()[0], 0))[0]
    x1_px = ax.transData.transform((ax.get_xlim()[1], 0))[0]
    px = ax.transData.transform((x, 0))[0]
    return min(x0_px, x1_px) + margin_px <= px <= max(x0_px, x1_px) - margin_px
