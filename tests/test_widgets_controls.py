"""What every widget shares (lstm_states.widgets.controls): each displays as one bundle (widget
view + PNG + text/plain), the PNG shows the state at display time, on ipympl the canvas sits in
the box and a step is a blit sent at once, and Play and the "time step" slider are linked in the
kernel after the widget's own observer. Only lstm_states.widgets imports ipywidgets."""

import matplotlib.pyplot as plt
import pytest

from lstm_states.style import MAX_WIDTH_PX
from tests.figtools import (  # noqa: F401
    close_figures,
    decode_png,
    ipympl_backend,
    quiet_projection_notice,
    states,
    widget_makers,
)

pytest.importorskip("ipywidgets")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _figure():
    fig, ax = plt.subplots(figsize=(4, 2), dpi=100)
    ax.plot([0, 1, 2], [1, 0, 1])
    ax.set_title("a line")
    return fig


@pytest.mark.parametrize("name", ["StateExplorer", "ReturnsExplorer", "GateStepViewer",
                                  "TextExplorer"])
def test_widget_bundle_holds_view_png_and_text(name):
    make = widget_makers()[name]
    explorer = make()
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {"text/plain", WIDGET_VIEW, "image/png"}
    assert bundle == explorer.widget._repr_mimebundle_()  # `explorer.widget` shows the same
    assert bundle["text/plain"].startswith("VBox(children=")
    image = decode_png(bundle["image/png"])
    width, height = explorer.fig.get_size_inches() * explorer.fig.dpi
    assert image.shape == (round(height), round(width), 4)
    assert image.shape[1] <= MAX_WIDTH_PX  # fits JupyterLab's output area
    again = make()._repr_mimebundle_()
    assert again["image/png"] == bundle["image/png"]  # the same bytes on every run


def test_figure_widget_carries_a_png():
    from lstm_states.widgets import figure_widget

    bundle = figure_widget(_figure())._repr_mimebundle_()
    assert set(bundle) == {"text/plain", WIDGET_VIEW, "image/png"}


def test_the_png_shows_the_state_at_display_time():
    from lstm_states.widgets import StateExplorer

    explorer = StateExplorer(states(2, T=9))
    first = explorer._repr_mimebundle_()["image/png"]
    explorer.slider.value = 5
    assert explorer._repr_mimebundle_()["image/png"] != first


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
@pytest.mark.usefixtures("ipympl_backend")
def test_on_ipympl_a_step_is_a_blit_sent_to_the_browser():
    from lstm_states.widgets import StateExplorer

    explorer = StateExplorer(states(3, T=20, H=8))
    canvas = explorer.fig.canvas
    assert explorer.widget.children[-1] is canvas
    assert canvas.header_visible is False
    sent = []
    canvas.send_binary = lambda data: sent.append(data)  # what goes to the browser
    canvas.draw()  # as when the browser asks for the first frame
    before = explorer.blitter.full_draws
    explorer.slider.value = 7
    assert explorer.blitter.full_draws == before and explorer.blitter.blits == 1
    assert sent and sent[-1][:4] == b"\x89PNG"  # the changed pixels went out at once
    bundle = explorer._repr_mimebundle_()
    assert set(bundle) == {"text/plain", WIDGET_VIEW, "image/png"}
    assert "text/html" not in bundle  # ipympl's own canvas repr would add base64 html


@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
@pytest.mark.usefixtures("ipympl_backend")
@pytest.mark.parametrize("name", ["StateExplorer", "GateStepViewer", "TextExplorer"])
def test_a_step_goes_to_the_browser_before_play_is_told_and_play_moves_the_slider(name):
    """Play and the slider are linked in the kernel, after the widget's own observer: a moved
    slider's frame is sent first; a Play tick (its value set from the browser) moves the
    slider, which redraws."""
    explorer = widget_makers()[name]()
    canvas = explorer.fig.canvas
    events = []
    canvas.send_binary = lambda data: events.append("frame")
    canvas.draw()
    events.clear()
    explorer.play.observe(lambda change: events.append(("play", change["new"])), names="value")
    explorer.slider.value = 3
    assert events == ["frame", ("play", 3)]
    events.clear()
    explorer.play.value = 5
    assert explorer.slider.value == 5 and events == ["frame", ("play", 5)]


def test_only_the_widgets_module_imports_ipywidgets():
    # the core, record and the plotting functions work without Jupyter; a fresh interpreter
    # shows what each import pulls in
    import subprocess
    import sys

    code = ("import sys, lstm_states, lstm_states.plots, lstm_states.gateplots, "
            "lstm_states.textviz, lstm_states.bench, lstm_states.display, lstm_states.style, "
            "lstm_states.weightplots; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'; "
            "import lstm_states.widgets; assert 'ipywidgets' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
