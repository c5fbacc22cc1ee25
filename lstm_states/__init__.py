"""lstm_states: every layer's hidden state, cell state and gates at every step of an nn.LSTM.

Plotting helpers live in ``lstm_states.plots`` / ``gateplots`` / ``textviz`` (matplotlib) and
the JupyterLab widgets in ``lstm_states.widgets`` (ipywidgets); they are not imported here, so
the core runs without Jupyter.
"""

from .core import (
    Edit,
    InputError,
    InputTypeError,
    LayerwiseLSTM,
    LSTMStates,
    NotATensorError,
    capture,
    memory_bytes,
)
from .record import Recording, record

__all__ = ["Edit", "LSTMStates", "capture", "LayerwiseLSTM", "memory_bytes", "record", "Recording",
           "InputError", "InputTypeError", "NotATensorError"]
__version__ = "0.1.0"
