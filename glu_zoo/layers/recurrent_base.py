"""What the recurrent layers and blocks share: `RecurrentLayer`.

LRU, RGLRU, LRUBlock and RecurrentBlock take (batch, time, features)
inputs, an optional `initial_state` and `mask`, and return
`(outputs, state)` with `return_state=True`, so that a sequence run in
chunks, carrying the state, equals one run. This base holds that plumbing:
the `mode` and `return_state` arguments, the input and state checks, the
mask helpers, the output specs and the config.
"""

import keras
from keras import ops

from glu_zoo.layers.checks import check_bool, check_choice, check_floating
from glu_zoo.ops.scan import SCAN_MODES

__all__ = ["RecurrentLayer"]


class RecurrentLayer(keras.layers.Layer):
    """Base of the recurrent layers: subclasses define `state_spec(batch_size)`.

    `state_spec` returns the state's parts as a list of (name, shape, dtype);
    a one-part state is passed and returned as one tensor, a state of several
    parts as a tuple in that order.

    Args:
        mode: the scan mode, one of `glu_zoo.ops.scan.SCAN_MODES`.
        return_sequences: all steps, or the last valid step only.
        return_state: also return the final state, `(outputs, state)`.
    """

    def __init__(self, mode="auto", return_sequences=True, return_state=False, **kwargs):
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.mode = check_choice("mode", mode, SCAN_MODES, owner)
        self.return_sequences = check_bool("return_sequences", return_sequences, owner)
        self.return_state = check_bool("return_state", return_state, owner)
        self.supports_masking = True
        self.input_dim = None

    # --- what subclasses define --------------------------------------------------

    def state_spec(self, batch_size):
        """The state's parts: a list of (name, shape, dtype)."""
        raise NotImplementedError

    # --- checks ------------------------------------------------------------------

    @property
    def _owner(self):
        return f"{type(self).__name__} '{self.name}'"

    def _check_inputs(self, inputs, width=None):
        """(batch, time, features) of a floating dtype, with the width that the
        layer was built for (or `width`)."""
        shape = tuple(inputs.shape)
        width = width if width is not None else self.input_dim
        if len(shape) != 3 or (width is not None and shape[-1] is not None and shape[-1] != width):
            features = "features" if width is None else str(width)
            raise ValueError(f"{self._owner}: `inputs` must have shape (batch, time, {features}); "
                             f"got shape {shape}.")
        if shape[1] == 0:
            raise ValueError(f"{self._owner}: `inputs` must have at least one time step; got shape {shape}.")
        if hasattr(inputs, "dtype") and inputs.dtype is not None:
            check_floating(inputs.dtype, self._owner)

    def _build_input_dim(self, input_shape, width=None):
        """Checks the input shape at build time and records its last dimension."""
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] is None or (width is not None and shape[-1] != width):
            features = "features" if width is None else str(width)
            raise ValueError(f"{self._owner}: `inputs` must have shape (batch, time, {features}) with a "
                             f"known last dimension; got shape {shape}.")
        self.input_dim = int(shape[-1])

    def _check_state(self, state, inputs):
        """The parts of `initial_state` (None: None), checked against `state_spec`."""
        if state is None:
            return None
        spec = self.state_spec(tuple(inputs.shape)[0])
        if len(spec) > 1:
            names = ", ".join(name for name, _, _ in spec)
            if not isinstance(state, (list, tuple)) or len(state) != len(spec):
                raise ValueError(f"{self._owner}: `initial_state` must be a tuple ({names}); "
                                 f"got {type(state).__name__}.")
            parts = tuple(state)
        else:
            parts = (state,)
        for part, (name, expected, _) in zip(parts, spec):
            shape = tuple(part.shape)
            if len(shape) != len(expected) or any(
                    n is not None and m is not None and n != m for n, m in zip(shape, expected)):
                raise ValueError(f"{self._owner}: `{name}` must have shape {expected}; got shape {shape}.")
        return parts

    # --- masks and outputs -------------------------------------------------------

    @staticmethod
    def _mask(mask):
        """The mask as (batch, time, 1) booleans (None stays None)."""
        return None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), -1)

    @staticmethod
    def _last_valid(y, mask):
        """y (batch, time, features) at each row's last step where `mask` is
        True (step 0 where none is)."""
        if mask is None:
            return y[:, -1]
        steps = ops.arange(ops.shape(y)[1], dtype="int32")
        last = ops.max(ops.where(ops.cast(mask, "bool"), steps[None, :], 0), axis=1)
        return ops.take_along_axis(y, ops.reshape(last, (-1, 1, 1)), axis=1)[:, 0]

    def _outputs(self, y, state, mask=None):
        """`y` reduced to its last valid step unless `return_sequences`, with
        the state when `return_state`."""
        if not self.return_sequences:
            y = self._last_valid(y, mask)
        return (y, state) if self.return_state else y

    def _state_specs(self, batch_size):
        spec = [keras.KerasTensor(shape, dtype=dtype) for _, shape, dtype in self.state_spec(batch_size)]
        return spec[0] if len(spec) == 1 else tuple(spec)

    def _output_dtype(self, inputs):
        return inputs.dtype

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None):
        shape = tuple(inputs.shape)
        out = shape if self.return_sequences else (shape[0], shape[-1])
        y = keras.KerasTensor(out, dtype=self._output_dtype(inputs))
        return (y, self._state_specs(shape[0])) if self.return_state else y

    def compute_output_shape(self, input_shape):
        spec = self.compute_output_spec(keras.KerasTensor(tuple(input_shape), dtype=self.compute_dtype))
        return keras.tree.map_structure(lambda t: tuple(t.shape), spec)

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return (out, None) if self.return_state else out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "return_state": self.return_state}
