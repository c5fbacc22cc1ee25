"""The notebooks' widgets: ipywidgets around the pure plotting functions of ``lstm_states.plots``,
``lstm_states.gateplots``, ``lstm_states.textviz`` and ``lstm_states.diagrams``. The only part
of the package that imports ipywidgets.

Use them with ``%matplotlib widget`` (ipympl): ``.widget`` is a VBox of the controls above the
live figure. With a non-interactive backend (Agg, in tests) ``.widget`` holds the controls only;
the callbacks work the same and update ``.fig``.

Every widget shows in a notebook (as ``explorer`` or ``explorer.widget``) as one output whose
mime bundle holds the live widget view, a PNG of the figure as it is when shown (what JupyterLab
before running, nbconvert's HTML and repository viewers display) and text/plain. Every control
is an attribute, so a notebook cell can set it (``explorer.slider.value = 7``) and check what the
figure then shows. A time step redraws only the artists that move (``display.Blitter``).

Shape legend: L layers, D directions, T steps, B batch, I input, H hidden, H_out = P or H,
N units shown.

One explorer per module: ``states`` (StateExplorer, notebooks 02, 03), ``returns``
(ReturnsExplorer, lstm_return_shapes, notebook 01), ``gates`` (GateStepViewer, notebook 04),
``text`` (TextExplorer, notebook 05); ``controls`` holds what they share (figure_widget,
time_step_controls, the box that carries the PNG).
"""

from .controls import figure_widget, time_step_controls
from .gates import GateStepViewer
from .returns import _LAYOUTS as _LAYOUTS  # the documented layouts, for tests
from .returns import ReturnsExplorer, lstm_return_shapes, parse_lengths
from .states import StateExplorer
from .text import TextExplorer

__all__ = ["StateExplorer", "ReturnsExplorer", "GateStepViewer", "TextExplorer",
           "figure_widget", "time_step_controls", "lstm_return_shapes", "parse_lengths"]
