"""The Real-Gated Linear Recurrent Unit and Griffin's recurrent block (De et al.
2024, "Griffin", arXiv 2402.19427), with the layout and semantics of Google's
`recurrentgemma` package; the block is TRecViT's time mixing (arXiv
2412.14294): `RGLRU`, `RecurrentBlock`."""

import math

import keras
from keras import ops

from glu_zoo.layers.checks import check_number, check_positive_int, fresh
from glu_zoo.layers.recurrent_base import RecurrentLayer
from glu_zoo.ops.scan import linear_recurrence

__all__ = ["RGLRU", "RecurrentBlock"]

_MAX_SQRT_GRADIENT = 1000.0  # as recurrentgemma's SqrtBoundDerivative


@ops.custom_gradient
def _sqrt_bound_derivative(x):
    """√x whose derivative 1/(2√x) is bounded by `_MAX_SQRT_GRADIENT` (finite at 0)."""

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        return upstream / ops.sqrt(ops.maximum(4.0 * x, 1.0 / _MAX_SQRT_GRADIENT**2))

    return ops.sqrt(x), grad


def check_gate_stddev(gate_stddev, owner):
    """None or a positive number."""
    return None if gate_stddev is None else check_number("gate_stddev", gate_stddev, owner, 0.0, math.inf)


def check_reset(reset, inputs, owner):
    """`reset` as (batch,) booleans, or a ValueError naming its shape."""
    batch = tuple(inputs.shape)[0]
    shape = tuple(reset.shape) if hasattr(reset, "shape") else None
    if shape is None or len(shape) != 1 or (batch is not None and shape[0] is not None and shape[0] != batch):
        raise ValueError(f"{owner}: `reset` must have shape ({batch},) (one flag per row); got "
                         f"{'shape ' + str(shape) if shape is not None else type(reset).__name__}.")
    return ops.cast(reset, "bool")


def _a_param_init(min_rad, max_rad=0.999, eps=1e-8):
    """recurrentgemma's `rnn_param_init`: a² ~ U[min_rad² + ε, max_rad² + ε],
    a_param = softplus⁻¹(−log a) = log(exp(−log a) − 1)."""
    uniform = keras.initializers.RandomUniform(min_rad**2 + eps, max_rad**2 + eps)

    def init(shape, dtype=None):
        log_a = 0.5 * ops.log(uniform(shape, dtype="float32"))
        return ops.log(ops.exp(-log_a) - 1.0)

    return init


def _block_diagonal(x, kernel, bias):
    """x (batch, time, H·w) → y_h = x_h·W_h + b_h per head h, back to (batch, time, H·w)."""
    heads, block = kernel.shape[0], kernel.shape[1]
    shape = ops.shape(x)
    xh = ops.reshape(x, (shape[0], shape[1], heads, block))
    y = ops.einsum("bthi,hij->bthj", xh, kernel) + bias
    return ops.reshape(y, (shape[0], shape[1], heads * block))


@keras.saving.register_keras_serializable(package="glu_zoo")
class RGLRU(RecurrentLayer):
    """Real-Gated Linear Recurrent Unit (Griffin, De et al. 2024, arXiv 2402.19427).

    gate_x = σ(BlockDiag_x(x)), gate_a = σ(BlockDiag_a(x)),
    log a_t = −c·gate_a·softplus(a_param),
    h_t = a_t ⊗ h_{t−1} + √(1 − a_t²) ⊗ (gate_x ⊗ x_t),  y_t = h_t.
    The layout and semantics of `recurrentgemma`'s RGLRU: weights `a_param`
    (width,), `input_gate_kernel`, `a_gate_kernel` (num_heads, width/num_heads,
    width/num_heads), `input_gate_bias`, `a_gate_bias` (num_heads,
    width/num_heads); the gates are block-diagonal over heads. At the first
    (valid) step, when no state is carried in, the state resets: a = 0 and
    the multiplier is 1, so h_0 = gate_x ⊗ x_0; with `initial_state` there is
    no reset, except in the rows that `reset` marks. √ has a derivative
    bounded by 1000 (finite at 0). Init: a² uniform in [min_rad², 0.999²],
    a_param = softplus⁻¹(−log a); gate kernels ~ N(0, gate_stddev²)
    (default 1/(width/num_heads)), biases 0. Computes in float32 (weights
    not autocast under a mixed precision policy); outputs take the input
    dtype.

    Args:
        width: input and output width.
        num_heads: number of gate blocks; must divide `width`.
        c: the scale of log a (8 in Griffin), > 0.
        min_rad: smallest initial |a|, in (0, 1) (0.9 in Griffin, 0.5 in TRecViT).
        gate_stddev: of the gate kernels' normal init; None: √(num_heads/width)
            (TRecViT's official init: √(1/width), the fan-in over all heads).
        mode: the scan, "auto", "sequential", "parallel" or "chunked"; "auto"
            follows Keras's `training` flag as in `LRU` (True: the train-step
            choice; False or None: the forward one, on every backend).
        return_state: also return the final state, (outputs, state (batch, width)).

    `call(inputs, initial_state=None, mask=None, training=None, reset=None)`:
    `initial_state` is the float32 state (batch, width). Where `mask` is
    False the state is carried unchanged and the output is 0. `reset`
    (batch,) booleans: the rows where it is True ignore `initial_state` and
    reset at their first valid step, as if no state had been given (a
    stream's first chunk, batched with streams already under way).

        rglru = RGLRU(64, num_heads=4)
        y = rglru(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, width, num_heads=1, c=8.0, min_rad=0.9, mode="auto", return_state=False,
                 gate_stddev=None, **kwargs):
        kwargs.setdefault("autocast", False)  # float32 inside; outputs in the inputs' dtype
        super().__init__(mode=mode, return_state=return_state, **kwargs)
        self.width = check_positive_int("width", width, "RGLRU")
        self.num_heads = check_positive_int("num_heads", num_heads, "RGLRU")
        if width % num_heads:
            raise ValueError(f"RGLRU: `width` must be divisible by `num_heads`; got "
                             f"width={width!r}, num_heads={num_heads!r}.")
        self.c = check_number("c", c, "RGLRU", 0.0, math.inf)
        self.min_rad = check_number("min_rad", min_rad, "RGLRU", 0.0, 1.0)
        self.gate_stddev = check_gate_stddev(gate_stddev, "RGLRU")

    def state_spec(self, batch_size):
        return [("initial_state", (batch_size, self.width), "float32")]

    def build(self, input_shape):
        self._build_input_dim(input_shape, self.width)
        h, w = self.num_heads, self.width // self.num_heads
        stddev = math.sqrt(1.0 / w) if self.gate_stddev is None else self.gate_stddev
        kernel = keras.initializers.RandomNormal(stddev=stddev)

        def weight(name, shape, initializer):
            return self.add_weight(name=name, shape=shape, initializer=initializer, autocast=False)

        self.a_param = weight("a_param", (self.width,), _a_param_init(self.min_rad))
        self.input_gate_kernel = weight("input_gate_kernel", (h, w, w), fresh(kernel))
        self.input_gate_bias = weight("input_gate_bias", (h, w), "zeros")
        self.a_gate_kernel = weight("a_gate_kernel", (h, w, w), fresh(kernel))
        self.a_gate_bias = weight("a_gate_bias", (h, w), "zeros")

    def call(self, inputs, initial_state=None, mask=None, training=None, reset=None):
        self._check_inputs(inputs, self.width)
        dtype = inputs.dtype
        h0 = self._check_state(initial_state, inputs)
        rows = None  # with a state: the rows that reset anyway, (batch, 1, 1)
        if h0 is not None and reset is not None:
            rows = ops.reshape(check_reset(reset, inputs, self._owner), (-1, 1, 1))
            h0 = (ops.where(rows[:, 0], 0.0, ops.cast(h0[0], "float32")),)
        x = ops.cast(inputs, "float32")
        gate_x = ops.sigmoid(_block_diagonal(x, self.input_gate_kernel, self.input_gate_bias))
        gate_a = ops.sigmoid(_block_diagonal(x, self.a_gate_kernel, self.a_gate_bias))
        log_a = -self.c * gate_a * ops.softplus(self.a_param)
        a = ops.exp(log_a)
        multiplier = _sqrt_bound_derivative(1.0 - ops.exp(2.0 * log_a))
        m = self._mask(mask)
        if h0 is None or rows is not None:  # reset at the first valid step: a = 0, multiplier = 1
            if m is None:
                first = ops.equal(ops.arange(ops.shape(x)[1]), 0)[None, :, None]
            else:
                first = ops.logical_and(m, ops.equal(ops.cumsum(ops.cast(m, "int32"), axis=1), 1))
            if rows is not None:
                first = ops.logical_and(first, rows)
            a = ops.where(first, 0.0, a)
            multiplier = ops.where(first, 1.0, multiplier)
        b = x * gate_x * multiplier
        if m is not None:
            a, b = ops.where(m, a, 1.0), ops.where(m, b, 0.0)
        h = linear_recurrence(a, b, None if h0 is None else h0[0], mode=self.mode, training=training)
        y = h if m is None else ops.where(m, h, 0.0)
        return self._outputs(ops.cast(y, dtype), h[:, -1], mask)

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "num_heads": self.num_heads,
            "c": self.c,
            "min_rad": self.min_rad,
            "gate_stddev": self.gate_stddev,
        }

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None, reset=None):
        return super().compute_output_spec(inputs, initial_state, mask, training)


@keras.saving.register_keras_serializable(package="glu_zoo")
class RecurrentBlock(RecurrentLayer):
    """Griffin's recurrent block with pre-norm and residual, as TRecViT's time
    mixing (De et al. 2024, arXiv 2402.19427; TRecViT, arXiv 2412.14294).

    n = RMSNorm(x) = x/√(mean(x²) + 1e-6)·(1 + scale) (in float32),
    y = GELU(n·Wy + by), u = CausalConv1D(n·Wx + bx), x' = RG-LRU(u),
    output = x + (x' ⊗ y)·Wout + bout.
    GELU is the tanh approximation, as `recurrentgemma`; the causal conv is
    depthwise (one filter of `conv_width` taps per channel, with bias; tap
    conv_width−1 multiplies the current step), as `recurrentgemma`'s Conv1D.
    Weights: `norm_scale` (width,), `linear_y_kernel`, `linear_x_kernel`
    (width, lru_width) with `linear_y_bias`, `linear_x_bias`, `conv_kernel`
    (conv_width, lru_width), `conv_bias`, `linear_out_kernel` (lru_width,
    width), `linear_out_bias`, and the `rg_lru` sub-layer's. Init as
    `recurrentgemma`: projections ~ N(0, 1/fan_in) (`linear_out`:
    N(0, out_init_scale/lru_width); TRecViT: out_init_scale = 2/depth),
    conv ~ N(0, 0.01/conv_width), biases and the norm scale 0.

    Args:
        width: input and output width.
        lru_width: width of the RG-LRU branch (default `width`).
        num_heads: RG-LRU gate blocks; must divide `lru_width`.
        conv_width: taps of the causal temporal convolution (4).
        mode: the RG-LRU scan mode (see `RGLRU`; the same "auto" rule).
        min_rad: RG-LRU initial smallest |a| (0.9 Griffin; TRecViT uses 0.5).
        gate_stddev: of the RG-LRU gate kernels' init (see `RGLRU`).
        out_init_scale: variance scale of `linear_out_kernel`'s init, > 0.
        return_state: also return the state (conv_state (batch, conv_width−1,
            lru_width), lru_state (batch, lru_width)); pass it back as
            `initial_state` so that a sequence run in chunks equals one run.

    `mask` goes to the RG-LRU (padded steps keep its state; the block's output
    there equals its input). The conv state is exact for unpadded inputs only.
    `reset` (batch,) booleans: those rows ignore `initial_state` (zero conv
    state, RG-LRU reset at the first step), as if none had been given.

        block = RecurrentBlock(64, lru_width=128, num_heads=4)
        y = block(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, width, lru_width=None, num_heads=1, conv_width=4, mode="auto",
                 min_rad=0.9, return_state=False, gate_stddev=None, out_init_scale=1.0, **kwargs):
        super().__init__(mode=mode, return_state=return_state, **kwargs)
        self.width = check_positive_int("width", width, "RecurrentBlock")
        self.lru_width = None if lru_width is None else check_positive_int("lru_width", lru_width, "RecurrentBlock")
        self.num_heads = check_positive_int("num_heads", num_heads, "RecurrentBlock")
        self.conv_width = check_positive_int("conv_width", conv_width, "RecurrentBlock")
        if (lru_width or width) % num_heads:
            raise ValueError(f"RecurrentBlock: `lru_width` (default `width`) must be divisible by "
                             f"`num_heads`; got lru_width={lru_width or width!r}, num_heads={num_heads!r}.")
        self.min_rad = float(min_rad)
        self.gate_stddev = check_gate_stddev(gate_stddev, "RecurrentBlock")
        self.out_init_scale = check_number("out_init_scale", out_init_scale, "RecurrentBlock", 0.0, math.inf)
        self.rg_lru = RGLRU(self._lru_width, num_heads=num_heads, min_rad=min_rad, mode=mode,
                            return_state=True, gate_stddev=gate_stddev, dtype=self.dtype_policy, name="rg_lru")

    @property
    def _lru_width(self):
        return self.lru_width or self.width

    def state_spec(self, batch_size):
        return [("conv_state", (batch_size, self.conv_width - 1, self._lru_width), self.compute_dtype),
                ("lru_state", (batch_size, self._lru_width), "float32")]

    def build(self, input_shape):
        self._build_input_dim(input_shape, self.width)
        d, lw, k = self.width, self._lru_width, self.conv_width

        def normal(fan_in, scale=1.0):
            return keras.initializers.RandomNormal(stddev=math.sqrt(scale / fan_in))

        self.norm_scale = self.add_weight(name="norm_scale", shape=(d,), initializer="zeros", autocast=False)
        self.linear_y_kernel = self.add_weight(name="linear_y_kernel", shape=(d, lw), initializer=normal(d))
        self.linear_y_bias = self.add_weight(name="linear_y_bias", shape=(lw,), initializer="zeros")
        self.linear_x_kernel = self.add_weight(name="linear_x_kernel", shape=(d, lw), initializer=normal(d))
        self.linear_x_bias = self.add_weight(name="linear_x_bias", shape=(lw,), initializer="zeros")
        self.conv_kernel = self.add_weight(name="conv_kernel", shape=(k, lw), initializer=normal(k, 0.01))
        self.conv_bias = self.add_weight(name="conv_bias", shape=(lw,), initializer="zeros")
        self.linear_out_kernel = self.add_weight(name="linear_out_kernel", shape=(lw, d),
                                                 initializer=normal(lw, self.out_init_scale))
        self.linear_out_bias = self.add_weight(name="linear_out_bias", shape=(d,), initializer="zeros")
        self.rg_lru.build((input_shape[0], input_shape[1], lw))

    def _conv(self, u, conv_state):
        """Causal depthwise conv of u (batch, T, lru_width), with the previous
        conv_width − 1 inputs in `conv_state` (zeros when None)."""
        k = self.conv_width
        if k == 1:
            return u * self.conv_kernel[0] + self.conv_bias, conv_state
        if conv_state is None:
            conv_state = ops.zeros_like(u[:, :1]) * ops.zeros((1, k - 1, 1), dtype=u.dtype)
        padded = ops.concatenate([ops.cast(conv_state, u.dtype), u], axis=1)
        t = ops.shape(u)[1]
        out = self.conv_bias
        for tap in range(k):
            out = out + padded[:, tap:tap + t] * self.conv_kernel[tap]
        return out, padded[:, -(k - 1):]

    def call(self, inputs, initial_state=None, mask=None, training=None, reset=None):
        self._check_inputs(inputs, self.width)
        conv_state, lru_state = self._check_state(initial_state, inputs) or (None, None)
        if conv_state is not None and reset is not None:
            rows = check_reset(reset, inputs, self._owner)
            conv_state = ops.where(ops.reshape(rows, (-1, 1, 1)), 0.0, ops.cast(conv_state, self.compute_dtype))
        x = ops.cast(inputs, "float32")
        normed = ops.rms_normalization(x, scale=1.0 + self.norm_scale, axis=-1, epsilon=1e-6)
        normed = ops.cast(normed, self.compute_dtype)
        y = ops.gelu(ops.matmul(normed, self.linear_y_kernel) + self.linear_y_bias, approximate=True)
        u = ops.matmul(normed, self.linear_x_kernel) + self.linear_x_bias
        u, conv_state = self._conv(u, conv_state)
        h, lru_state = self.rg_lru(u, initial_state=lru_state, mask=mask, training=training,
                                   reset=None if lru_state is None else reset)
        out = ops.matmul(ops.cast(h, y.dtype) * y, self.linear_out_kernel) + self.linear_out_bias
        if mask is not None:
            out = ops.where(self._mask(mask), out, 0.0)
        out = ops.cast(inputs, out.dtype) + out
        return self._outputs(out, (conv_state, lru_state))

    def _output_dtype(self, inputs):
        return self.compute_dtype

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "lru_width": self.lru_width,
            "num_heads": self.num_heads,
            "conv_width": self.conv_width,
            "min_rad": self.min_rad,
            "gate_stddev": self.gate_stddev,
            "out_init_scale": self.out_init_scale,
        }

    def compute_output_spec(self, inputs, initial_state=None, mask=None, training=None, reset=None):
        return super().compute_output_spec(inputs, initial_state, mask, training)
