"""lstm_states: every layer's hidden state, cell state and gates at every step of an nn.LSTM."""

from .core import LayerwiseLSTM, LSTMStates, capture, memory_bytes
from .record import Recording, record  # noqa: F401  (re-exported; add to __all__ when convenient)

__all__ = ["LSTMStates", "capture", "LayerwiseLSTM", "memory_bytes"]
__version__ = "0.1.0"
