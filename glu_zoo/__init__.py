"""glu_zoo: gated linear units, new activations and linear recurrences for Keras 3.

Runs on JAX, TensorFlow and PyTorch; pick one with `KERAS_BACKEND`.
"""

__version__ = "0.1.0"

from glu_zoo import activations, layers  # noqa: E402,F401
