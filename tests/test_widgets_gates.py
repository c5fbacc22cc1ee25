"""widgets.GateStepViewer (notebook 04): it follows its slider and blits, refuses what it cannot
show, and works on ipympl."""

import numpy as np
import pytest

from lstm_states.style import MAX_WIDTH_PX
from tests.figtools import (  # noqa: F401
    close_figures,
    full_redraw_pixels,
    ipympl_backend,
    pixels,
    states,
)

pytest.importorskip("ipywidgets")


def small_states(proj_size=0):
    """As tests/test_gateplots.py's: a seeded 2-layer nn.LSTM(3, 5) on (6, 2, 3)."""
    return states(2, proj_size=proj_size, T=6, B=2, I=3, H=5, seed=0)


def test_viewer_follows_its_slider_and_blits():
    from lstm_states.widgets import GateStepViewer

    st = small_states(proj_size=2)
    viewer = GateStepViewer(st, layer=1, batch=1, history=4)
    assert viewer.fig.get_size_inches()[0] * viewer.fig.dpi <= MAX_WIDTH_PX
    viewer.fig.canvas.draw()
    draws = viewer.blitter.full_draws
    for t in (3, 5, 0):
        viewer.slider.value = t
        assert viewer.step == t and viewer.blitter.full_draws == draws
        assert not viewer.fig.stale  # (a stale figure is redrawn in full by pyplot's ion mode)
        np.testing.assert_array_equal(np.asarray(viewer.axes[0].collections[0].get_array()),
                                      st.gates[1, 0, :, t, 1].detach().numpy())
        np.testing.assert_array_equal(viewer.axes[1].lines[0].get_ydata(),
                                      st.c[1, 0, t, 1].detach().numpy())
        np.testing.assert_array_equal(viewer.axes[1].lines[1].get_ydata(),
                                      st.h[1, 0, t, 1].detach().numpy())
        np.testing.assert_array_equal(np.asarray(viewer.axes[2].collections[0].get_array())[0],
                                      st.c[1, 0, t, 1].detach().numpy())
        blitted = pixels(viewer.fig)
        np.testing.assert_array_equal(blitted, full_redraw_pixels(viewer.fig))
        draws = viewer.blitter.full_draws
    assert viewer.fig.get_suptitle() == "layer 1, batch item 1"


def test_viewer_says_no_clearly():
    from lstm_states.widgets import GateStepViewer

    st = small_states()
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.1, got 2"):
        GateStepViewer(st, layer=2)
    with pytest.raises(ValueError, match=r"batch must be in 0\.\.1, got 5"):
        GateStepViewer(st, batch=5)
    no_gates = type("S", (), {"gates": None, "c": st.c, "h": st.h})()
    with pytest.raises(ValueError, match="needs states.gates"):
        GateStepViewer(no_gates)


# ipympl's toolbar, made outside a kernel, trips a traitlets deprecation warning
@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
@pytest.mark.usefixtures("ipympl_backend")
def test_viewer_on_ipympl():
    from lstm_states.widgets import GateStepViewer

    st = small_states(proj_size=2)
    viewer = GateStepViewer(st, layer=1, batch=1)
    assert viewer.slider.description == "time step"
    assert (viewer.slider.min, viewer.slider.max) == (0, 5)
    assert viewer.widget.children[1] is viewer.fig.canvas
    viewer.slider.value = 3
    np.testing.assert_array_equal(viewer.axes[1].lines[0].get_ydata(),
                                  st.c[1, 0, 3, 1].detach().numpy())
