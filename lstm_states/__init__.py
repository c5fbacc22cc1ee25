"""lstm_states: every layer's hidden state, cell state and gates at every step of an nn.LSTM
(and every layer's h and gates of an nn.GRU, h of an nn.RNN).

Plotting helpers live in ``lstm_states.plots`` / ``gateplots`` / ``textviz`` (matplotlib) and
the JupyterLab widgets in ``lstm_states.widgets`` (ipywidgets); they are not imported here, so
the core runs without Jupyter.
"""

from .core import (
    Edit,
    GRUStates,
    InputError,
    InputTypeError,
    LayerwiseLSTM,
    LSTMStates,
    NotATensorError,
    RNNStates,
    capture,
    memory_bytes,
)
from .record import Recording, record

__all__ = ["Edit", "LSTMStates", "GRUStates", "RNNStates", "capture", "LayerwiseLSTM", "memory_bytes", "record", "Recording",
           "InputError", "InputTypeError", "NotATensorError"]
__version__ = "0.1.0"
