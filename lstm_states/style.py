"""One look for every figure of the package: gate colours, state colours, the diverging colormap,
the time cursor, layer order and the largest figure width.

Conventions (every plotting function and widget follows them):

- gates in PyTorch's order i, f, g, o, each always in its colour of ``GATE_COLORS``;
- c_t drawn in ``STATE_COLORS["c"]``, h_t in ``STATE_COLORS["h"]``;
- layer 0 at the **bottom** when layers are stacked (the input enters at the bottom, as in
  ``lstm_states.diagrams``), the top layer (whose h_t is ``output``) at the top;
- time runs left to right along x, labelled ``TIME_LABEL``, with limits ``time_limits(T)`` (a
  little beyond -0.5 .. T-0.5) so that the cursor (``CURSOR``) is visible at t = 0 and t = T-1;
- values that can be negative use ``CMAP`` symmetric about 0 (blue negative, red positive);
- figures are at most ``MAX_WIDTH_IN`` inches wide at ``DPI``: JupyterLab at 1280x900 with the
  file browser open gives an output area of about 848 px, and ipympl draws the canvas at the
  figure's dpi.

Nothing here changes rcParams.
"""

from __future__ import annotations

__all__ = ["GATE_COLORS", "STATE_COLORS", "CMAP", "CURSOR", "TIME_LABEL", "DPI", "MAX_WIDTH_IN",
           "MAX_WIDTH_PX", "time_limits"]

GATE_COLORS = {"i": "#2ca02c", "f": "#ff7f0e", "g": "#9467bd", "o": "#d62728"}  # i, f, g, o
STATE_COLORS = {"c": "#1f77b4", "h": "#e377c2"}
CMAP = "RdBu_r"
CURSOR = {"color": "black", "linewidth": 1.5}  # the vertical line at the step shown
TIME_LABEL = "time step t"
DPI = 100
MAX_WIDTH_IN = 8.2  # 820 px at DPI: fits the ~848 px output area with ipympl's frame
MAX_WIDTH_PX = round(MAX_WIDTH_IN * DPI)


def time_limits(num_steps: int):
    """x limits of a time axis of num_steps steps: half a step and 1 % of T beyond each end,
    so that a cursor at t = 0 or t = T-1 stays inside, clear of the frame, even for T = 1000+."""
    pad = 0.5 + 0.01 * num_steps
    return -pad, num_steps - 1 + pad
