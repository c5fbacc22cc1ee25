"""The gate/cell-state plots show exactly the data they are given, and the viewer follows its slider."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn

from lstm_states import capture
from lstm_states.gateplots import gate_heatmap, plot_histograms, plot_step, set_step, state_lines


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def small_states(proj_size=0):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, num_layers=2, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(6, 2, 3))


def test_gate_heatmap_shows_the_gates_in_order():
    gates = small_states().gates[0, 0, :, 2, 1]  # (4, H)
    ax = gate_heatmap(gates)
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), gates.detach().numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["i_t", "f_t", "g_t", "o_t"]
    assert ax.images[0].get_clim() == (-1, 1)
    assert ax.get_xlabel() == "hidden unit"


def test_gate_heatmap_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(4, H\)"):
        gate_heatmap(np.zeros((3, 5)))


def test_state_lines_with_projection_have_their_own_lengths():
    st = small_states(proj_size=2)
    c, h = st.c[1, 0, 3, 0], st.h[1, 0, 3, 0]  # (H,), (P,)
    ax = state_lines(c, h, ylim=(-2, 2))
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), c.detach().numpy())
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), h.detach().numpy())
    assert len(ax.lines[0].get_xdata()) == 5 and len(ax.lines[1].get_xdata()) == 2
    assert ax.get_ylim() == (-2, 2)


@pytest.mark.parametrize("proj_size", [0, 2])
def test_set_step_shows_step_t(proj_size):
    st = small_states(proj_size)
    gates, c, h = st.gates[1, 0, :, :, 0], st.c[1, 0, :, 0], st.h[1, 0, :, 0]
    axes = plot_step(gates, c, h, 0)
    np.testing.assert_array_equal(np.asarray(axes[0].images[0].get_array()),
                                  gates[:, 0].detach().numpy())
    for t in (4, 5, 0):
        set_step(axes, gates, c, h, t)
        np.testing.assert_array_equal(np.asarray(axes[0].images[0].get_array()),
                                      gates[:, t].detach().numpy())
        np.testing.assert_array_equal(axes[1].lines[0].get_ydata(), c[t].detach().numpy())
        np.testing.assert_array_equal(axes[1].lines[1].get_ydata(), h[t].detach().numpy())
        assert axes[0].get_title() == f"gates at step t = {t}"
    lo, hi = axes[1].get_ylim()  # fixed range covering every step
    assert lo <= min(float(c.min()), float(h.min())) and hi >= max(float(c.max()), float(h.max()))


def test_plot_histograms_one_outline_per_name():
    st = small_states()
    ax = plot_histograms({name: st.gate(name) for name in "ifgo"}, bins=10, title="gates")
    assert [p.get_label() for p in ax.patches] == ["i", "f", "g", "o"]
    assert ax.get_xlim()[0] <= -1 and ax.get_xlim()[1] >= 1
    assert ax.get_title() == "gates"


def test_plots_do_not_touch_rcparams():
    before = dict(matplotlib.rcParams)
    st = small_states()
    plot_step(st.gates[0, 0, :, :, 0], st.c[0, 0, :, 0], st.h[0, 0, :, 0], 1)
    assert dict(matplotlib.rcParams) == before


@pytest.fixture
def ipympl_backend():
    pytest.importorskip("ipywidgets")
    pytest.importorskip("ipympl")
    old = matplotlib.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    yield
    plt.close("all")
    plt.switch_backend(old)


# ipympl's toolbar, made outside a kernel, trips a traitlets deprecation warning
@pytest.mark.filterwarnings("ignore:Passing unrecognized arguments:DeprecationWarning")
def test_viewer_follows_its_slider(ipympl_backend):
    from lstm_states.widgets import GateStepViewer

    st = small_states(proj_size=2)
    viewer = GateStepViewer(st, layer=1, batch=1)
    assert viewer.slider.description == "time step"
    assert (viewer.slider.min, viewer.slider.max) == (0, 5)
    assert viewer.widget.children[1] is viewer.fig.canvas
    for t in (3, 5):
        viewer.slider.value = t
        np.testing.assert_array_equal(np.asarray(viewer.axes[0].images[0].get_array()),
                                      st.gates[1, 0, :, t, 1].detach().numpy())
        np.testing.assert_array_equal(viewer.axes[1].lines[0].get_ydata(),
                                      st.c[1, 0, t, 1].detach().numpy())
        np.testing.assert_array_equal(viewer.axes[1].lines[1].get_ydata(),
                                      st.h[1, 0, t, 1].detach().numpy())
