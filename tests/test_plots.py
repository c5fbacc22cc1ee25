"""Plotting functions and widget callbacks, on matplotlib's Agg backend (no browser, no kernel)."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from lstm_states import capture  # noqa: E402
from lstm_states.plots import plot_state_heatmaps, plot_states_at_step  # noqa: E402

widgets = pytest.importorskip("ipywidgets")
from lstm_states.widgets import ReturnsExplorer, StateExplorer, lstm_return_shapes  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _quiet_projection_notice():
    # torch's one-time notice that oneDNN has no projection kernel; results are unaffected
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported")
        yield


def _states(num_layers=3, bidirectional=False, proj_size=0, T=9, B=2, seed=0):
    torch.manual_seed(seed)
    lstm = nn.LSTM(3, 5, num_layers=num_layers, bidirectional=bidirectional, proj_size=proj_size)
    with torch.no_grad():
        return capture(lstm, torch.randn(T, B, 3))


# ---------------------------------------------------------------------------------------------
# heatmaps and values at a step


@pytest.mark.parametrize("bidirectional,direction,batch_index", [(False, 0, 1), (True, 1, 0)])
def test_state_heatmaps_show_the_states(bidirectional, direction, batch_index):
    st = _states(2, bidirectional, proj_size=3)
    axes = plot_state_heatmaps(st, batch_index=batch_index, direction=direction, t=4)
    assert axes.shape == (2, 2)
    for layer in range(2):
        for col, full in enumerate((st.h, st.c)):
            ax = axes[layer, col]
            want = full[layer, direction, :, batch_index].T.numpy()  # (units, T)
            np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), want)
            assert ax.get_ylabel() == "unit"
            assert ax.get_title() == f"layer {layer}: {'hc'[col]}_t"
            assert list(ax.lines[-1].get_xdata()) == [4, 4]  # cursor
            lo, hi = ax.images[0].get_clim()
            assert lo == -hi  # symmetric about 0
    assert axes[1, 0].get_xlabel() == "time step t"
    # one colorbar per column, labelled
    cbar_labels = sorted(a.get_ylabel() for a in axes[0, 0].figure.axes if a not in axes.ravel())
    assert cbar_labels == ["c_t", "h_t"]


def test_states_at_step_lines():
    st = _states(3, proj_size=2)
    axes = plot_states_at_step(st, 6, batch_index=1)
    for layer, ax in enumerate(axes):
        np.testing.assert_allclose(ax.lines[0].get_ydata(), st.c[layer, 0, 6, 1].numpy())
        np.testing.assert_allclose(ax.lines[1].get_ydata(), st.h[layer, 0, 6, 1].numpy())
        assert len(ax.lines[0].get_xdata()) == 5 and len(ax.lines[1].get_xdata()) == 2
        assert ax.get_title() == f"layer {layer} at t = 6"
        lo, hi = ax.get_ylim()
        assert lo <= float(min(st.h.min(), st.c.min())) and hi >= float(max(st.h.max(),
                                                                            st.c.max()))
    assert axes[-1].get_xlabel() == "hidden unit"
    assert axes[0].get_ylabel() == "value"
    assert axes[0].get_legend() is not None and axes[1].get_legend() is None  # one legend


def test_bad_selection_is_refused():
    st = _states(1)
    with pytest.raises(ValueError, match="direction"):
        plot_state_heatmaps(st, direction=1)
    with pytest.raises(ValueError, match="batch_index"):
        plot_states_at_step(st, 0, batch_index=2)
    with pytest.raises(ValueError, match="t must be"):
        plot_states_at_step(st, 9)


# ---------------------------------------------------------------------------------------------
# StateExplorer: the slider callback


def test_state_explorer_slider_moves_cursor_and_values():
    st = _states(3, T=12)
    ex = StateExplorer(st, batch_index=1)
    assert ex.slider.description == "time step"
    assert (ex.slider.min, ex.slider.max) == (0, 11) and (ex.play.min, ex.play.max) == (0, 11)
    assert isinstance(ex.widget, widgets.VBox)
    assert len(ex.cursors) == 6 and len(ex.h_lines) == len(ex.c_lines) == 3
    ex.fig.canvas.draw()
    positions = [ax.get_position().bounds for ax in ex.fig.axes]
    for k in (7, 0, 11):
        ex.slider.value = k
        assert ex.step == k
        for cursor in ex.cursors:
            assert list(cursor.get_xdata()) == [k, k]
        for layer in range(3):
            np.testing.assert_allclose(ex.h_lines[layer].get_ydata(), st.h[layer, 0, k, 1])
            np.testing.assert_allclose(ex.c_lines[layer].get_ydata(), st.c[layer, 0, k, 1])
            assert ex.value_axes[layer].get_title() == f"layer {layer} at t = {k}"
        ex.fig.canvas.draw()
    # the heatmaps never change, and the layout is fixed
    np.testing.assert_allclose(np.asarray(ex.images[2][1].get_array()), st.c[2, 0, :, 1].T)
    assert [ax.get_position().bounds for ax in ex.fig.axes] == positions
    assert "batch element 1" in ex.fig._suptitle.get_text()


def test_state_explorer_reverse_direction_and_title():
    st = _states(2, bidirectional=True, T=7)
    ex = StateExplorer(st, direction=1, title="reverse")
    assert ex.fig._suptitle.get_text() == "reverse"
    ex.slider.value = 0
    ex.slider.value = 3
    np.testing.assert_allclose(ex.h_lines[1].get_ydata(), st.h[1, 1, 3, 0])
    # the reverse direction's final state is at step 0
    np.testing.assert_allclose(ex.h[1, 0], st.h_n[3, 0].numpy())


def test_state_explorer_packed_input_shows_zeros_past_end():
    torch.manual_seed(1)
    lstm = nn.LSTM(3, 4, num_layers=2)
    x = torch.randn(6, 2, 3)
    st = capture(lstm, pack_padded_sequence(x, torch.tensor([6, 3]), enforce_sorted=False))
    ex = StateExplorer(st, batch_index=1)
    ex.slider.value = 4
    assert not ex.h_lines[0].get_ydata().any() and not ex.c_lines[1].get_ydata().any()


def test_state_explorer_refuses_bad_direction_before_making_a_figure():
    st = _states(1)
    before = plt.get_fignums()
    with pytest.raises(ValueError, match="direction"):
        StateExplorer(st, direction=1)
    assert plt.get_fignums() == before


# ---------------------------------------------------------------------------------------------
# ReturnsExplorer: the notebook-01 configuration widget


def test_lstm_return_shapes_are_the_real_ones():
    shapes = lstm_return_shapes(2, True, True, 2, input_size=3, hidden_size=4, steps=6, batch=5)
    assert shapes == {"input": (5, 6, 3), "output": (5, 6, 4), "h_n": (4, 5, 2),
                      "c_n": (4, 5, 4)}


def test_returns_explorer_redraws_on_every_control():
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=5)
    assert ex.shapes["h_n"] == (2, 5, 4)
    assert np.asarray(ex.ax.images[0].get_array()).shape == (4, 6)
    ex.num_layers.value = 3
    assert ex.shapes["h_n"] == (3, 5, 4)
    assert np.asarray(ex.ax.images[0].get_array()).shape == (6, 6)
    assert len(ex.ax.images) == 1  # redrawn, not drawn on top
    ex.bidirectional.value = True
    assert ex.shapes["output"] == (6, 5, 8) and ex.shapes["h_n"] == (6, 5, 4)
    assert np.asarray(ex.ax.images[0].get_array()).shape == (12, 6)
    assert "bidirectional=True" in ex.ax.get_title()
    ex.batch_first.value = True
    assert ex.shapes["output"] == (5, 6, 8) and ex.shapes["h_n"] == (6, 5, 4)
    assert "(B, T, D*H_out)" in ex.shapes_text.value
    assert ex.ax.get_legend().get_texts()[0].get_text().startswith("output[:, t]")
    ex.proj_size.value = 2
    assert ex.shapes == {"input": (5, 6, 3), "output": (5, 6, 4), "h_n": (6, 5, 2),
                         "c_n": (6, 5, 4)}
    assert "<code>(6, 5, 2)</code>" in ex.shapes_text.value
    assert "H_out=2" in ex.shapes_text.value


@pytest.mark.parametrize("bf", [False, True])
def test_returns_explorer_symbols_agree_with_numbers(bf):
    ex = ReturnsExplorer(input_size=3, hidden_size=4, steps=6, batch=5, num_layers=3,
                         bidirectional=True, batch_first=bf, proj_size=1)
    sizes = {"T": 6, "B": 5, "I": 3, "H": 4, "H_out": 1, "L*D": 6, "D*H_out": 2}
    from lstm_states.widgets import _LAYOUTS

    for name, shape in ex.shapes.items():
        symbols = _LAYOUTS[name][int(bf)].strip("()").split(", ")
        assert tuple(sizes[s] for s in symbols) == shape


def test_only_the_widgets_module_imports_ipywidgets():
    # the core, record and the plotting functions work without Jupyter; a fresh interpreter
    # shows what each import pulls in
    import subprocess
    import sys

    code = ("import sys, lstm_states, lstm_states.plots, lstm_states.gateplots, "
            "lstm_states.textviz, lstm_states.bench; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'; "
            "import lstm_states.widgets; assert 'ipywidgets' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
