"""Pooling over the steps of a sequence."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="glu_zoo")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over axis 1 of the steps the mask keeps:
    pooled = Σ_t m_t x_t / max(Σ_t m_t, 1).

    A sequence the mask keeps nothing of (all padding) pools to zeros, not
    to 0/0 = NaN as Keras's GlobalAveragePooling1D gives. Without a mask, the
    plain mean. Inputs (batch, steps, features); output (batch, features).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        m = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), ops.cast(1, inputs.dtype))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
