"""Figures in notebooks: a static PNG that shows without a kernel, and redraws of only what moves.

``png_bytes(fig)`` renders a figure as PNG bytes that are the same on every run (no software
or time stamp in the file). ``Picture(fig)`` shows a plain matplotlib figure as that PNG, with
nothing live in the notebook; ``lstm_states.widgets`` adds the same PNG beside each live widget.
``Blitter`` redraws a few artists over a saved background instead of the whole figure, which is
what makes a time-step slider fast with ipympl; on ipympl's canvas it also sends each changed
frame as a smaller PNG made four times faster (``diff_frame_png``).

No module here imports ipywidgets; matplotlib is imported when needed.
"""

from __future__ import annotations

import base64
import io
import struct
import sys
import zlib
from typing import Iterable, Optional

__all__ = ["png_bytes", "png_bundle", "Picture", "Blitter", "rgba_png", "diff_frame_png"]


def png_bytes(fig, dpi: Optional[float] = None) -> bytes:
    """The figure as PNG bytes, identical on every run for the same figure.

    Args:
        fig: a matplotlib Figure (any canvas based on Agg: Agg itself, ipympl, inline).
        dpi: pixels per inch; default the figure's own dpi before any HiDPI scaling, so that
            the picture has the size of the live canvas.

    Returns:
        The PNG file's bytes, without the "Software" text chunk (the only varying metadata).
    """
    if dpi is None:
        ratio = getattr(fig.canvas, "device_pixel_ratio", 1) or 1
        dpi = fig.get_dpi() / ratio
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def png_bundle(fig, text: str) -> dict:
    """A mime bundle with the figure's PNG (base64, as Jupyter stores it) and a text/plain line.

    Nothing goes into text/html: strict nbval compares text/html but not image/png."""
    return {"image/png": base64.b64encode(png_bytes(fig)).decode("ascii"), "text/plain": text}


class Picture:
    """Shows a matplotlib figure as a static PNG in a notebook (no live canvas, no kernel needed
    to see it).

    ``Picture(fig)`` as a cell's last expression stores ``image/png`` and a short ``text/plain``
    (``<Figure 800x360 px: title>``). With ``close=True`` (default) the figure is closed once
    drawn, so pyplot does not keep it.

    Args:
        fig: the Figure, e.g. made inside ``with plt.ioff():``.
        close: close the figure after its PNG is made.
    """

    def __init__(self, fig, close: bool = True):
        self.fig = fig
        self.close = close
        self._png: Optional[bytes] = None

    def png(self) -> bytes:
        """The PNG bytes (made once)."""
        if self._png is None:
            self._png = png_bytes(self.fig)
            if self.close:
                import matplotlib.pyplot as plt

                plt.close(self.fig)
        return self._png

    def __repr__(self) -> str:
        w, h = (round(v) for v in self.fig.get_size_inches() * self.fig.get_dpi())
        title = self.fig.get_suptitle() or next(
            (ax.get_title() for ax in self.fig.axes if ax.get_title()), "")
        return f"<Figure {w}x{h} px" + (f": {title}>" if title else ">")

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = repr(self)
        return {"image/png": base64.b64encode(self.png()).decode("ascii"), "text/plain": text}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rgba_png(pixels, level: int = 1) -> bytes:
    """(H, W, 4) uint8 RGBA pixels as PNG bytes: no row filter, zlib at ``level``.

    For a frame of mostly transparent (zero) pixels this is about four times faster than PIL's
    encoder, whose adaptive row filters are most of its time; the file is somewhat larger."""
    import numpy as np

    height, width, _ = pixels.shape
    rows = np.zeros((height, 1 + 4 * width), np.uint8)  # (H, 1 + 4W): filter type 0, then RGBA
    rows[:, 1:] = pixels.reshape(height, 4 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, RGBA, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, level)) + _png_chunk(b"IEND", b""))


_OPAQUE = 0xFF000000  # alpha 255 in an RGBA pixel read as a little-endian uint32


def diff_frame_png(canvas) -> Optional[bytes]:
    """What matplotlib's ``get_diff_image`` gives the browser for a WebAgg/ipympl canvas, faster.

    A frame that has to be sent whole (the first, a resize, any transparency) is left to
    matplotlib. Otherwise, as matplotlib does, the changed pixels are kept and every other pixel
    made transparent, and the browser draws the PNG over its picture at (0, 0); here the PNG
    also stops at the last changed row and column (nothing beyond them changed) and is made by
    ``rgba_png``. Returns None when no new frame was drawn, as matplotlib does.
    """
    import numpy as np

    if not canvas._png_is_old:
        return None
    buff = np.asarray(canvas.get_renderer().buffer_rgba()).view(np.uint32).squeeze(2)  # (H, W)
    last = canvas._last_buff
    if canvas._force_full or buff.shape != last.shape or (buff < _OPAQUE).any():
        return type(canvas).get_diff_image(canvas)  # the whole frame, as matplotlib sends it
    canvas.set_image_mode("diff")
    changed = buff != last  # (H, W)
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    bottom, right = (rows[-1] + 1, cols[-1] + 1) if rows.size else (1, 1)
    # (bottom, right): the new pixel where it changed, transparent (0) where it did not
    frame = np.where(changed[:bottom, :right], buff[:bottom, :right], np.uint32(0))
    canvas._last_buff = buff.copy()
    canvas._force_full = False
    canvas._png_is_old = False
    return rgba_png(frame.view(np.uint8).reshape(bottom, right, 4))


def _send_fast_frames(canvas) -> None:
    """Makes a WebAgg/ipympl canvas send its changed frames with ``diff_frame_png`` (this canvas
    only). Left alone where the canvas is not one, or its frame bookkeeping is not the one
    ``diff_frame_png`` was written for, or the machine is big-endian."""
    if ("get_diff_image" in vars(canvas) or sys.byteorder != "little"
            or not all(hasattr(canvas, name) for name in (
                "_png_is_old", "_force_full", "_last_buff", "set_image_mode", "get_renderer"))):
        return
    canvas.get_diff_image = lambda: diff_frame_png(canvas)


class Blitter:
    """Redraws only the artists that move: the rest of the figure is kept as a background.

    The artists are marked animated, so a full draw leaves them out; after each full draw the
    background is saved and the artists are drawn on top. ``update()`` then restores the
    background, draws the artists in their new state and pushes the pixels to the canvas
    (``canvas.blit``; with ipympl that sends the changed pixels to the browser at once, with
    no round trip and no full redraw). Where blitting cannot work (no background yet, a canvas
    without ``copy_from_bbox``, the canvas resized) it asks for a full redraw instead. Saving
    the figure (``savefig``, ``png_bytes``) draws every artist, animated or not. On ipympl's
    canvas the changed pixels go out as ``diff_frame_png`` makes them.

    Keep a reference to the Blitter (widgets keep it as ``.blitter``): the canvas holds its draw
    callback weakly, so a Blitter nobody refers to stops drawing its artists (at some garbage
    collection); call ``disconnect()`` before replacing one.

    Args:
        fig: the Figure.
        artists: the artists whose data change between updates (lines, patches, texts, images).

    Attributes:
        artists: the list of animated artists; ``add(artist)`` appends one.
        full_draws, blits: how many full draws and fast updates happened (for tests and
            timing).
    """

    def __init__(self, fig, artists: Iterable = ()):
        self.fig = fig
        self.artists = []
        self.full_draws = 0
        self.blits = 0
        self._background = None
        self._size = None
        for artist in artists:
            self.add(artist)
        self._cid = fig.canvas.mpl_connect("draw_event", self._on_draw)
        self._canvas = fig.canvas
        _send_fast_frames(fig.canvas)

    def add(self, artist) -> None:
        """Marks one more artist as moving."""
        artist.set_animated(True)
        self.artists.append(artist)

    def _can_blit(self) -> bool:
        return hasattr(self.fig.canvas, "copy_from_bbox") and hasattr(self.fig.canvas,
                                                                       "restore_region")

    def _on_draw(self, event) -> None:
        canvas = self.fig.canvas
        if canvas.is_saving():  # savefig draws the animated artists itself
            return
        self.full_draws += 1
        if self._can_blit():
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._size = canvas.get_width_height(physical=True)
        self._draw_artists()

    def _draw_artists(self) -> None:
        for artist in self.artists:
            if artist.get_visible():
                self.fig.draw_artist(artist)

    def disconnect(self) -> None:
        """Stops drawing on full draws (call it before replacing the artists or the Blitter)."""
        self._canvas.mpl_disconnect(self._cid)
        self._background = None

    def invalidate(self) -> None:
        """Forgets the background (e.g. after a change outside the animated artists): the next
        ``update`` redraws everything."""
        self._background = None

    def update(self) -> None:
        """Shows the artists' new state: a blit if possible, else a full redraw."""
        canvas = self.fig.canvas
        if canvas is not self._canvas:  # the figure got a new canvas: listen there
            self._canvas.mpl_disconnect(self._cid)
            self._cid = canvas.mpl_connect("draw_event", self._on_draw)
            self._canvas, self._background = canvas, None
            _send_fast_frames(canvas)
        if (self._background is None or not self._can_blit()
                or canvas.get_width_height(physical=True) != self._size):
            self._background = None
            canvas.draw_idle()
            return
        canvas.restore_region(self._background)
        self._draw_artists()
        canvas.blit(self.fig.bbox)
        self.blits += 1
