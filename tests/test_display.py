"""Pictures without a kernel and fast redraws: display.png_bytes / Picture / Blitter, the frames
ipympl sends for every explorer, and what tools/run_notebooks.py stores. What every widget's
display holds is tested in tests/test_widgets_controls.py."""

import hashlib
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lstm_states.display import Blitter, Picture, png_bundle, png_bytes, rgba_png
from lstm_states.style import MAX_WIDTH_PX
from tests.figtools import (  # noqa: F401
    close_figures,
    decode_png,
    full_redraw_pixels,
    ipympl_backend,
    pixels,
    png_chunks,
    quiet_projection_notice,
    states,
    widget_makers,
)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _figure():
    fig, ax = plt.subplots(figsize=(4, 2), dpi=100)
    ax.plot([0, 1, 2], [1, 0, 1])
    ax.set_title("a line")
    return fig


def test_png_bytes_are_the_same_every_time_and_carry_no_software_stamp():
    a, b = png_bytes(_figure()), png_bytes(_figure())
    assert a == b
    assert "tEXt" not in png_chunks(a) and "iTXt" not in png_chunks(a)
    assert decode_png(a).shape == (200, 400, 4)  # the figure's pixels at its dpi


def test_png_bytes_are_the_same_in_another_process():
    code = ("import matplotlib; matplotlib.use('Agg'); import hashlib, torch;"
            "from tests.figtools import states; from lstm_states.display import png_bytes;"
            "from lstm_states.widgets import StateExplorer;"
            "print(hashlib.sha256(png_bytes(StateExplorer(states(2, T=7)).fig)).hexdigest())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    from lstm_states.widgets import StateExplorer

    here = hashlib.sha256(png_bytes(StateExplorer(states(2, T=7)).fig)).hexdigest()
    assert runs[0] == runs[1] == here


def test_picture_is_a_png_and_a_line_of_text_only():
    fig = _figure()
    pic = Picture(fig)
    bundle = pic._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"}  # no text/html: nbval compares that
    assert bundle["text/plain"] == "<Figure 400x200 px: a line>"
    assert decode_png(bundle["image/png"]).shape == (200, 400, 4)
    assert fig.number not in plt.get_fignums()  # closed once drawn
    assert png_bundle(_figure(), "x")["image/png"] == bundle["image/png"]


# ---------------------------------------------------------------------------------------------
# Blitter: a step redraws the moving artists only, and the result is what a full draw shows

def _line_figure():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.imshow(np.arange(12.0).reshape(3, 4), aspect="auto")
    cursor = ax.axvline(0, color="black", linewidth=2)
    ax.set_xlim(-0.5, 3.5)
    return fig, ax, cursor


def test_blitter_falls_back_to_a_full_draw_then_blits():
    fig, ax, cursor = _line_figure()
    blitter = Blitter(fig, [cursor, ax.title])
    assert cursor.get_animated()
    blitter.update()  # no background yet: a full draw (Agg draws at once)
    assert (blitter.full_draws, blitter.blits) == (1, 0)
    for x in (1, 3, 0):
        cursor.set_xdata([x, x])
        ax.set_title(f"x = {x}")
        draws = blitter.full_draws
        blitter.update()
        blitted = pixels(fig)
        assert blitter.full_draws == draws  # no full draw for a step
        np.testing.assert_array_equal(blitted, full_redraw_pixels(fig))  # nothing stale
    assert blitter.blits == 3
    blitter.invalidate()
    draws = blitter.full_draws
    blitter.update()
    assert blitter.full_draws == draws + 1


def test_blitter_background_leaves_the_moving_artists_out():
    fig, ax, cursor = _line_figure()
    blitter = Blitter(fig, [cursor])  # keep it: the canvas holds its callback weakly
    fig.canvas.draw()
    with_cursor = pixels(fig)
    cursor.set_xdata([2, 2])
    fig.canvas.draw()
    moved = pixels(fig)
    column = int(ax.transData.transform((0, 0))[0])  # the cursor's old place, in pixels
    assert (with_cursor[150, column, :3] < 20).all()  # black there before...
    assert (moved[150, column, :3] > 20).any()  # ...and no trace of it after it moved
    assert blitter.full_draws == 2


def test_saving_draws_the_moving_artists_where_they_are():
    fig, ax, cursor = _line_figure()
    blitter = Blitter(fig, [cursor])
    fig.canvas.draw()
    cursor.set_xdata([2, 2])
    blitter.update()
    shown = pixels(fig)
    assert blitter.full_draws == 1
    saved = decode_png(png_bytes(fig)).astype(int)
    assert np.abs(saved - shown).max() <= 2  # the same picture (antialiasing may differ by 1)
    assert blitter.full_draws == 1  # saving is not a draw of the live canvas


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (600, 820)])
def test_rgba_png_holds_exactly_the_pixels_it_was_given(shape):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (*shape, 4), dtype=np.uint8)
    rgba[: shape[0] // 2] = 0  # a transparent band, as in a frame of changed pixels
    np.testing.assert_array_equal(decode_png(rgba_png(rgba)), rgba)


# ---------------------------------------------------------------------------------------------
# on ipympl: the frames each explorer sends rebuild exactly its canvas in the browser

def _browser_picture(shown, png, mode):
    """What ipympl's browser side shows after one frame: a full frame replaces the picture; a
    diff frame is drawn over it at (0, 0), its transparent pixels leaving the picture as is."""
    frame = decode_png(png)
    if mode == "full":
        return frame.copy()
    assert frame.shape[0] <= shown.shape[0] and frame.shape[1] <= shown.shape[1]
    shown = shown.copy()
    h, w = frame.shape[:2]
    assert set(np.unique(frame[..., 3])) <= {0, 255}  # each pixel: changed, or left alone
    changed = frame[..., 3] == 255
    shown[:h, :w][changed] = frame[changed]
    return shown


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
@pytest.mark.usefixtures("ipympl_backend")
@pytest.mark.parametrize("name", ["StateExplorer", "GateStepViewer", "TextExplorer"])
def test_the_browser_rebuilds_every_frame_from_the_fast_frames(name):
    """Each frame a widget sends on ipympl (diff_frame_png), drawn over the picture the browser
    already has, gives exactly the canvas's pixels, step after step and after a full redraw;
    and matplotlib's own frames would give the same pictures."""
    explorer = widget_makers()[name]()
    canvas = explorer.fig.canvas
    assert "get_diff_image" in vars(canvas)  # this canvas sends the fast frames
    sent = []
    canvas.send_binary = lambda data: sent.append((canvas._current_image_mode, data))
    canvas.draw()  # the first frame: whole, made by matplotlib
    assert sent[-1][0] == "full"
    shown = _browser_picture(None, *sent[-1][::-1])
    last_t = explorer.slider.max
    for t in (3, 4, last_t, last_t, 0):
        before = len(sent)
        mine, before_shown = canvas._last_buff.copy(), shown
        explorer.slider.value = t
        if len(sent) == before:  # the same step again: nothing was redrawn
            continue
        mode, png = sent[-1]
        assert mode == "diff" and explorer.blitter.full_draws == 1
        shown = _browser_picture(before_shown, png, mode)
        np.testing.assert_array_equal(shown, np.asarray(canvas.get_renderer().buffer_rgba()))
        # matplotlib's own frame of the same change, over the same picture, shows the same
        canvas._last_buff, canvas._png_is_old = mine, True
        theirs = type(canvas).get_diff_image(canvas)
        np.testing.assert_array_equal(_browser_picture(before_shown, theirs, "diff"), shown)
        assert decode_png(png).size <= decode_png(theirs).size
    canvas.blit()  # nothing changed: a frame that changes nothing
    assert decode_png(sent[-1][1]).shape == (1, 1, 4) and not decode_png(sent[-1][1]).any()


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
@pytest.mark.usefixtures("ipympl_backend")
def test_a_frame_with_transparency_goes_whole_as_matplotlib_sends_it():
    fig, ax, cursor = _line_figure()
    fig.patch.set_alpha(0.5)
    blitter = Blitter(fig, [cursor])  # noqa: F841 (the canvas holds its callback weakly)
    sent = []
    fig.canvas.send_binary = lambda data: sent.append((fig.canvas._current_image_mode, data))
    fig.canvas.draw()
    cursor.set_xdata([2, 2])
    blitter.update()
    assert [mode for mode, _ in sent] == ["full", "full"]
    np.testing.assert_array_equal(decode_png(sent[-1][1]),
                                  np.asarray(fig.canvas.get_renderer().buffer_rgba()))


def test_a_disconnected_blitter_draws_nothing_more():
    fig, ax, cursor = _line_figure()
    blitter = Blitter(fig, [cursor])
    fig.canvas.draw()
    assert blitter.full_draws == 1
    blitter.disconnect()
    fig.canvas.draw()
    assert blitter.full_draws == 1
    column = int(ax.transData.transform((0, 0))[0])
    assert (pixels(fig)[150, column, :3] > 20).any()  # the animated cursor is no longer drawn


def test_run_notebooks_stores_the_same_pictures_every_run(tmp_path):
    """tools/run_notebooks.py in a real kernel (ipympl): each widget output stores its widget
    view, a PNG and text/plain, a Picture stores PNG + text only, and two runs store the same
    bytes."""
    import importlib.util
    from pathlib import Path

    import nbformat

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("run_notebooks", root / "tools/run_notebooks.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%matplotlib widget\nimport sys\n" + f"sys.path.insert(0, {str(root)!r})\n"
        "import matplotlib.pyplot as plt\nimport torch\nfrom torch import nn\n"
        "from lstm_states import capture\nfrom lstm_states.display import Picture\n"
        "from lstm_states.widgets import StateExplorer\ntorch.manual_seed(0)\n"
        "st = capture(nn.LSTM(3, 5, num_layers=2), torch.randn(9, 2, 3))",
        "explorer = StateExplorer(st)\nexplorer",
        "with plt.ioff():\n    fig, ax = plt.subplots(figsize=(4, 2))\nax.plot([1, 3, 2])\n"
        "Picture(fig)")]
    stored = []
    for run in range(2):
        path = tmp_path / f"run{run}.ipynb"
        nbformat.write(nb, path)
        tool.run(path)
        cells = nbformat.read(path, as_version=4).cells
        assert all(not any(o.output_type == "error" for o in c.outputs) for c in cells)
        stored.append([o.get("data", {}) for c in cells[1:] for o in c.outputs])
    first, second = stored
    assert set(first[0]) == {"text/plain", WIDGET_VIEW, "image/png"}
    assert set(first[1]) == {"text/plain", "image/png"}
    assert [d["image/png"] for d in first] == [d["image/png"] for d in second]
    assert decode_png(first[0]["image/png"]).shape[1] <= MAX_WIDTH_PX
