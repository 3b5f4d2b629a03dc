"""The Linear Recurrent Unit and its block (Orvieto et al. 2023, "Resurrecting
Recurrent Neural Networks for Long Sequences", arXiv 2303.06349): `LRU`, `LRUBlock`."""

import math

import keras
from keras import ops

from glu_zoo.layers.checks import check_bool, check_dropout, check_number, check_positive_int, fresh
from glu_zoo.layers.recurrent_base import RecurrentLayer
from glu_zoo.ops.scan import linear_recurrence

__all__ = ["LRU", "LRUBlock"]


class _LRUInit:
    """The paper's ring initialisation, as callables for `add_weight`."""

    @staticmethod
    def nu_log(r_min, r_max):
        uniform = keras.initializers.RandomUniform(0.0, 1.0)

        def init(shape, dtype=None):
            u = uniform(shape, dtype="float32")
            radius_sq = ops.clip(u * (r_max**2 - r_min**2) + r_min**2, 1e-30, 1.0)
            # ν = −log|λ| = −½·log(r²); clipped so r = 1 (the default r_max) stays finite.
            return ops.log(ops.maximum(-0.5 * ops.log(radius_sq), 1e-8))

        return init

    @staticmethod
    def theta_log(max_phase):
        uniform = keras.initializers.RandomUniform(0.0, 1.0)

        def init(shape, dtype=None):
            return ops.log(ops.maximum(max_phase * uniform(shape, dtype="float32"), 1e-8))

        return init


@keras.saving.register_keras_serializable(package="glu_zoo")
class LRU(RecurrentLayer):
    """Linear Recurrent Unit (Orvieto et al. 2023, arXiv 2303.06349).

    h_t = λ ⊗ h_{t−1} + γ ⊗ (x_t·B),  y_t = Re(h_t·C) + D ⊗ x_t, with the
    complex diagonal λ = exp(−exp(ν_log) + i·exp(θ_log)), γ = exp(γ_log),
    B = B_re + i·B_im, C = C_re + i·C_im. Output width = input width d.
    Weights: `nu_log`, `theta_log`, `gamma_log` (N,), `B_re`, `B_im` (d, N),
    `C_re`, `C_im` (N, d), `D` (d,). Init as the paper: |λ| uniform on the
    ring [r_min, r_max] (by area), arg λ uniform in [0, max_phase],
    γ = √(1 − |λ|²), B ~ N(0, 1/(2d)), C ~ N(0, 1/N), D ~ N(0, 1).

    The complex recurrence runs in real arithmetic (re, im) through
    `glu_zoo.ops.scan.linear_recurrence`, in float32 whatever the input
    dtype; the weights stay float32 (not autocast under a mixed precision
    policy) and the outputs take the dtype of the inputs.

    Args:
        state_dim: N, the number of complex state units.
        r_min, r_max: ring radii, 0 ≤ r_min < r_max ≤ 1.
        max_phase: largest initial phase, > 0 (default 2π).
        mode: the scan, "auto", "sequential", "parallel" or "chunked"
            (`glu_zoo.ops.scan.linear_recurrence`). "auto" picks per backend,
            device kind, sequence length and Keras's `training` flag:
            `training=True` (fit) takes the train-step choice; False or None
            (predict, a plain `layer(x)`, on every backend) the forward one.
            All modes give the same outputs to float32 rounding.
        return_sequences: all steps (batch, T, d), or the last valid step (batch, d).
        return_state: also return the final state, (outputs, state).

    `call(inputs, initial_state=None, mask=None, training=None)`: the state
    is one real float32 tensor (batch, 2N), [Re h | Im h]; a sequence run in
    chunks, carrying the state, equals the whole run. Where `mask` is False
    the state is carried unchanged and the output is 0.

        lru = LRU(64)
        y = lru(np.ones((2, 100, 16), "float32"))
        y.shape  # (2, 100, 16)
    """

    def __init__(self, state_dim, r_min=0.0, r_max=1.0, max_phase=2 * math.pi, mode="auto",
                 return_sequences=True, return_state=False, **kwargs):
        kwargs.setdefault("autocast", False)  # float32 inside; outputs in the inputs' dtype
        super().__init__(mode=mode, return_sequences=return_sequences, return_state=return_state, **kwargs)
        self.state_dim = check_positive_int("state_dim", state_dim, "LRU")
        self.r_min = check_number("r_min", r_min, "LRU", 0.0, 1.0, low_open=False)
        self.r_max = check_number("r_max", r_max, "LRU", 0.0, 1.0, high_open=False)
        if r_min >= r_max:
            raise ValueError(f"LRU: `r_min` must be smaller than `r_max`; got r_min={r_min!r}, "
                             f"r_max={r_max!r} (allowed: 0 ≤ r_min < r_max ≤ 1).")
        self.max_phase = check_number("max_phase", max_phase, "LRU", 0.0, math.inf)

    def state_spec(self, batch_size):
        return [("initial_state", (batch_size, 2 * self.state_dim), "float32")]

    def build(self, input_shape):
        self._build_input_dim(input_shape)
        d, n = self.input_dim, self.state_dim

        def weight(name, shape, initializer):
            return self.add_weight(name=name, shape=shape, initializer=initializer, autocast=False)

        self.nu_log = weight("nu_log", (n,), _LRUInit.nu_log(self.r_min, self.r_max))
        self.theta_log = weight("theta_log", (n,), _LRUInit.theta_log(self.max_phase))
        # γ = √(1 − |λ|²) = √(−expm1(−2·exp(ν_log))), finite even for |λ| → 1.
        gamma_log = 0.5 * ops.log(-ops.expm1(-2.0 * ops.exp(self.nu_log.value)))
        self.gamma_log = weight("gamma_log", (n,), lambda shape, dtype=None: gamma_log)
        b_init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(2 * d))
        c_init = keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(n))
        self.B_re = weight("B_re", (d, n), fresh(b_init))
        self.B_im = weight("B_im", (d, n), fresh(b_init))
        self.C_re = weight("C_re", (n, d), fresh(c_init))
        self.C_im = weight("C_im", (n, d), fresh(c_init))
        self.D = weight("D", (d,), keras.initializers.RandomNormal(stddev=1.0))

    def call(self, inputs, initial_state=None, mask=None, training=None):
        self._check_inputs(inputs)
        dtype = inputs.dtype
        h0 = self._check_state(initial_state, inputs)
        x = ops.cast(inputs, "float32")
        modulus = ops.exp(-ops.exp(self.nu_log))
        phase = ops.exp(self.theta_log)
        gamma = ops.exp(self.gamma_log)
        b = (ops.matmul(x, self.B_re) * gamma, ops.matmul(x, self.B_im) * gamma)
        a = (ops.reshape(modulus * ops.cos(phase), (1, 1, -1)), ops.reshape(modulus * ops.sin(phase), (1, 1, -1)))
        m = self._mask(mask)
        if m is not None:  # padded steps: a = 1, b = 0 (state carried unchanged)
            a = (ops.where(m, a[0], 1.0), ops.where(m, a[1], 0.0))
            b = (ops.where(m, b[0], 0.0), ops.where(m, b[1], 0.0))
        if h0 is not None:
            h0 = tuple(ops.split(ops.cast(h0[0], "float32"), 2, axis=-1))
        h_re, h_im = linear_recurrence(a, b, h0, kind="complex_diagonal", mode=self.mode, training=training)
        y = ops.matmul(h_re, self.C_re) - ops.matmul(h_im, self.C_im) + x * self.D
        if m is not None:
            y = ops.where(m, y, 0.0)
        state = ops.concatenate([h_re[:, -1], h_im[:, -1]], axis=-1)
        return self._outputs(ops.cast(y, dtype), state, mask)

    def get_config(self):
        return {
            **super().get_config(),
            "state_dim": self.state_dim,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "return_sequences": self.return_sequences,
        }


@keras.saving.register_keras_serializable(package="glu_zoo")
class LRUBlock(RecurrentLayer):
    """Orvieto et al.'s LRU block (arXiv 2303.06349): LRU → GELU → GLU → residual → norm.

    u = Dropout(GELU(LRU(x))), g = u·W + b, GLU(g) = g[:d] ⊗ σ(g[d:]),
    output = LayerNorm(x + Dropout(GLU(g))); with `norm_first` the norm moves
    in front: output = x + Dropout(GLU(g)) computed from LRU(LayerNorm(x)).
    GELU is exact (erf). Weights: the `lru` sub-layer's, `glu` (a Dense,
    kernel (d, 2d), [:d] the value, [d:] the gate) and `norm`
    (LayerNormalization, ε = 1e-5).

    Args:
        state_dim, r_min, r_max, max_phase, mode: the LRU's (see `LRU`; the
            same "auto" rule).
        dropout: rate in [0, 1) after the GELU and after the GLU.
        norm_first: pre-norm instead of the post-norm of the paper's block.
        return_state: also return the LRU state, (outputs, state); pass it
            back as `initial_state` to run a sequence in chunks.

    `mask` goes to the LRU (padded steps keep its state).

        block = LRUBlock(128)
        y = block(np.ones((2, 100, 64), "float32"))
        y.shape  # (2, 100, 64)
    """

    def __init__(self, state_dim, r_min=0.0, r_max=1.0, max_phase=2 * math.pi, dropout=0.0,
                 norm_first=False, mode="auto", return_state=False, **kwargs):
        super().__init__(mode=mode, return_state=return_state, **kwargs)
        self.dropout = check_dropout(dropout, "LRUBlock")
        self.norm_first = check_bool("norm_first", norm_first, "LRUBlock")
        self.lru = LRU(state_dim, r_min=r_min, r_max=r_max, max_phase=max_phase, mode=mode,
                       return_state=True, dtype=self.dtype_policy, name="lru")
        self.state_dim, self.r_min, self.r_max = state_dim, float(r_min), float(r_max)
        self.max_phase = float(max_phase)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=self.dtype_policy, name="norm")
        self.drop = keras.layers.Dropout(dropout, dtype=self.dtype_policy, name="dropout")
        self.glu = None

    def state_spec(self, batch_size):
        return self.lru.state_spec(batch_size)

    def build(self, input_shape):
        self._build_input_dim(input_shape)
        self.glu = keras.layers.Dense(2 * self.input_dim, dtype=self.dtype_policy, name="glu")
        self.norm.build(input_shape)
        self.lru.build(input_shape)
        self.glu.build(input_shape)

    def call(self, inputs, initial_state=None, mask=None, training=None):
        self._check_inputs(inputs)
        x = self.norm(inputs) if self.norm_first else inputs
        u, state = self.lru(x, initial_state=initial_state, mask=mask, training=training)
        u = self.drop(ops.gelu(ops.cast(u, self.compute_dtype), approximate=False), training=training)
        out = inputs + self.drop(ops.glu(self.glu(u), axis=-1), training=training)
        if not self.norm_first:
            out = self.norm(out)
        return self._outputs(out, state)

    def _output_dtype(self, inputs):
        return self.compute_dtype

    def get_config(self):
        return {
            **super().get_config(),
            "state_dim": self.state_dim,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_phase": self.max_phase,
            "dropout": self.dropout,
            "norm_first": self.norm_first,
        }
