"""Activation layers: GoLU and the expanded self-gated units XATLU, XGELU, XSiLU."""

import keras

from glu_zoo import activations

__all__ = ["GoLU", "XATLU", "XGELU", "XSiLU"]


@keras.saving.register_keras_serializable(package="glu_zoo")
class GoLU(keras.layers.Layer):
    """Gompertz linear unit, GoLU(x) = x·exp(−exp(−x)) (arXiv 2502.03654).

    No weights. Half-precision inputs are computed in float32 inside.

        layer = GoLU()
        y = layer(np.ones((2, 8), "float32"))
        y.shape  # (2, 8)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return activations.golu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


class _ExpandedSelfGated(keras.layers.Layer):
    """x·(g(x)·(1 + 2α) − α) with one trainable scalar α, initialised to 0.

    Huang 2024 (arXiv 2405.20768); subclasses fix the gate g by `kind`.
    """

    kind = None

    def __init__(self, alpha_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        self.alpha = self.add_weight(
            name="alpha", shape=(), initializer=self.alpha_initializer
        )

    def call(self, inputs):
        return activations.expanded_activation(inputs, self.alpha, self.kind)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class XATLU(_ExpandedSelfGated):
    """xATLU(x) = x·((arctan(x)/π + ½)(1 + 2α) − α), α trainable, init 0.

        layer = XATLU()
        y = layer(np.ones((2, 8), "float32"))
        layer.alpha  # scalar weight, 0.0 at init
    """

    kind = "arctan"


@keras.saving.register_keras_serializable(package="glu_zoo")
class XGELU(_ExpandedSelfGated):
    """xGELU(x) = x·(Φ(x)(1 + 2α) − α), α trainable, init 0 (exact GELU at 0).

        layer = XGELU()
        y = layer(np.ones((2, 8), "float32"))
        layer.alpha  # scalar weight, 0.0 at init
    """

    kind = "gaussian"


@keras.saving.register_keras_serializable(package="glu_zoo")
class XSiLU(_ExpandedSelfGated):
    """xSiLU(x) = x·(σ(x)(1 + 2α) − α), α trainable, init 0 (SiLU at 0).

        layer = XSiLU()
        y = layer(np.ones((2, 8), "float32"))
        layer.alpha  # scalar weight, 0.0 at init
    """

    kind = "sigmoid"
