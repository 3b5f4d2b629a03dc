"""glu_zoo: gated linear units, new activations and linear recurrences for Keras 3.

Runs on JAX, TensorFlow and PyTorch; pick one with `KERAS_BACKEND`. Submodules
load on first use, so that importing `glu_zoo` (for example by the `glu-zoo`
command, which sets the backend from `--backend`) does not import Keras.
"""

import importlib

__version__ = "0.1.0"
_SUBMODULES = ("activations", "layers", "models", "data", "evaluation", "presets", "recipes", "training")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"glu_zoo.{name}")
    raise AttributeError(f"module 'glu_zoo' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
