"""RecTable (Ishikawa et al. 2025, arXiv 2503.20731): a rectified flow that
generates mixed-type tables, its GLU velocity network trained with plain
`model.fit`, and Euler / Dormand–Prince samplers."""

import math

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_choice, check_dropout, check_number, check_positive_int, fresh
from glu_zoo.models.base import ZooModel
from glu_zoo.ops.ode import compile_function, dopri5, euler

__all__ = ["ARCHITECTURES", "METHODS", "FlowPairs", "GLUBlock", "RecTable", "RecTableNet", "T_MIN",
           "EMAWarmupAdam", "timestep_embedding"]

T_MIN = 1e-3  # t = T_MIN is the noise end of the flow, t = 1 the data
TIME_SCALE = 999.0  # the network sees t·999, as the official code
METHODS = ("euler", "rk45")


def _torch_linear_init():
    """PyTorch's nn.Linear kernel init, U(±1/√fan_in) (the official model's)."""
    return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")


def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding [cos(t·f), sin(t·f)], f_i = max_period^(−i/(dim/2)), i < dim/2
    (the official code's `timestep_embedding`), computed in float32."""
    half = dim // 2
    freqs = ops.exp(-math.log(max_period) * ops.arange(half, dtype="float32") / half)
    args = ops.cast(t, "float32")[:, None] * freqs[None, :]
    return ops.concatenate([ops.cos(args), ops.sin(args)], axis=-1)


@keras.saving.register_keras_serializable(package="glu_zoo")
class GLUBlock(keras.layers.Layer):
    """One RecTable block, y = Dropout(σ(x·W + b_W) ⊗ (x·V + b_V)), no residual, no norm.

    One fused `kernel` (d, 2·units): columns [:units] are W (the gate),
    [units:] V (the linear branch), as `GatedFFN`'s `kernel_in`; `bias` (2·units).

        block = GLUBlock(1024)
        y = block(np.ones((2, 128), "float32"))
        y.shape  # (2, 1024)
    """

    def __init__(self, units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units, "GLUBlock")
        self.dropout = check_dropout(dropout, "GLUBlock")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), 2 * self.units),
                                      initializer=fresh(_torch_linear_init()))
        self.bias = self.add_weight(name="bias", shape=(2 * self.units,), initializer="zeros")

    def call(self, inputs, training=None):
        gate, linear = ops.split(ops.matmul(inputs, self.kernel) + self.bias, 2, axis=-1)
        return self.dropout_layer(ops.sigmoid(gate) * linear, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="glu_zoo")
class RecTableNet(keras.layers.Layer):
    """The velocity field v(x, t) of RecTable.

    e = W₂·SiLU(W₁·emb(999·t) + b₁) + b₂ (emb: `timestep_embedding` of
    `time_dim`), h = W_in·x + b_in + e, then `GLUBlock`s of widths
    `hidden_dims` (no residuals, no normalisation) and a linear head back to
    the data width: v = W_out·h + b_out.

    Args:
        width: the data width (columns of the encoded table).
        hidden_dims: the GLU block widths (the paper: [1024, 2048, 1024, 1024]).
        time_dim: width of the time embedding and the input projection (even).
        dropout: rate in [0, 1) after every GLU block.

        net = RecTableNet(14, hidden_dims=[64, 64])
        v = net(np.zeros((2, 14), "float32"), np.full((2,), 0.5, "float32"))
        v.shape  # (2, 14)
    """

    def __init__(self, width, hidden_dims=(1024, 2048, 1024, 1024), time_dim=128, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        owner = "RecTableNet"
        self.width = check_positive_int("width", width, owner)
        self.hidden_dims = _check_hidden_dims(hidden_dims, owner)
        self.time_dim = _check_time_dim(time_dim, owner)
        self.dropout = check_dropout(dropout, owner)
        dense = dict(kernel_initializer=_torch_linear_init(), dtype=self.dtype_policy)
        self.time_dense_in = keras.layers.Dense(self.time_dim, name="time_dense_in", **dense)
        self.time_dense_out = keras.layers.Dense(self.time_dim, name="time_dense_out", **dense)
        self.input_projection = keras.layers.Dense(self.time_dim, name="input_projection", **dense)
        self.blocks = [GLUBlock(units, dropout=self.dropout, name=f"block_{i}", dtype=self.dtype_policy)
                       for i, units in enumerate(self.hidden_dims)]
        self.head = keras.layers.Dense(self.width, name="head", **dense)

    def build(self, x_shape, t_shape=None):
        if x_shape[-1] != self.width:
            raise ValueError(f"RecTableNet '{self.name}': `x` must have shape (batch, {self.width}); "
                             f"got {tuple(x_shape)}.")
        self.time_dense_in.build((None, self.time_dim))
        self.time_dense_out.build((None, self.time_dim))
        self.input_projection.build((None, self.width))
        width = self.time_dim
        for block in self.blocks:
            block.build((None, width))
            width = block.units
        self.head.build((None, width))

    def call(self, x, t, training=None):
        e = timestep_embedding(ops.reshape(t, (-1,)) * TIME_SCALE, self.time_dim)
        e = self.time_dense_out(ops.silu(self.time_dense_in(ops.cast(e, self.compute_dtype))))
        h = self.input_projection(x) + e
        for block in self.blocks:
            h = block(h, training=training)
        return self.head(h)

    def compute_output_shape(self, x_shape, t_shape=None):
        return (*x_shape[:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "hidden_dims": list(self.hidden_dims),
                "time_dim": self.time_dim, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="glu_zoo")
class FlowPairs(keras.layers.Layer):
    """The rectified-flow training pair of data x₁ (Liu et al. 2022, arXiv 2209.03003),
    drawn with the layer's own `SeedGenerator`:

    t = σ(u)·(1 − 10⁻³) + 10⁻³, u ~ N(0, 1) (logit-normal, one per row);
    z₀: N(0, 1) on the numerical block (the first `numerical_width` columns),
    Uniform(−1, 1) on the one-hot blocks (scaled to {−1, 1});
    returns (x_t, t, target) with x_t = t·x₁ + (1 − t)·z₀, target = x₁ − z₀.
    Always float32.
    """

    def __init__(self, numerical_width, seed=None, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.numerical_width = numerical_width
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")

    def draw_time(self, n):
        u = keras.random.normal((n,), seed=self.seed_generator, dtype="float32")
        return ops.sigmoid(u) * (1.0 - T_MIN) + T_MIN

    def draw_noise(self, n, width):
        parts = []
        if self.numerical_width:
            parts.append(keras.random.normal((n, self.numerical_width), seed=self.seed_generator, dtype="float32"))
        if width > self.numerical_width:
            parts.append(keras.random.uniform((n, width - self.numerical_width), minval=-1.0, maxval=1.0,
                                              seed=self.seed_generator, dtype="float32"))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def call(self, x1):
        x1 = ops.cast(x1, "float32")
        n = ops.shape(x1)[0]
        t = self.draw_time(n)
        z0 = self.draw_noise(n, x1.shape[-1])
        x_t = t[:, None] * x1 + (1.0 - t[:, None]) * z0
        return x_t, t, x1 - z0

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape[:1], input_shape

    def get_config(self):
        return {**super().get_config(), "numerical_width": self.numerical_width, "seed": self.seed}


def _check_hidden_dims(hidden_dims, owner):
    if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, (list, tuple)):
        raise ValueError(f"{owner}: `hidden_dims` must be a list of positive integers; got {hidden_dims!r}.")
    for value in hidden_dims:
        check_positive_int("hidden_dims", value, owner)
    return tuple(hidden_dims)


def _check_time_dim(time_dim, owner):
    check_positive_int("time_dim", time_dim, owner)
    if time_dim % 2:
        raise ValueError(f"{owner}: `time_dim` must be an even positive integer (cos and sin halves); "
                         f"got {time_dim!r}.")
    return time_dim


def _encoder(encoder, owner):
    """A fitted `TableEncoder` from an encoder or its config."""
    from glu_zoo.data.tabular import TableEncoder

    if isinstance(encoder, dict):
        encoder = TableEncoder.from_config(encoder)
    if not isinstance(encoder, TableEncoder):
        raise ValueError(f"{owner}: `encoder` must be a fitted TableEncoder or its config; "
                         f"got {type(encoder).__name__}.")
    if not encoder.fitted:
        raise ValueError(f"{owner}: `encoder` must be fitted (call encoder.fit(train) first).")
    return encoder


@keras.saving.register_keras_serializable(package="glu_zoo")
class RecTable(ZooModel):
    """RecTable: rectified flow over an encoded mixed-type table (arXiv 2503.20731).

    Inputs: the encoded table x₁ (batch, width) of a fitted `TableEncoder`
    (numerical block quantile-normal, one-hot blocks in {−1, 1}). The model
    draws (x_t, t, target) with `FlowPairs` (its own `SeedGenerator`) and
    returns {"velocity": v_θ(x_t, t), "target": x₁ − z₀}; `compute_loss` is
    the velocity MSE, mean over rows and columns. So training is plain

        model = RecTable(encoder, hidden_dims=[1024, 2048, 1024, 1024])
        model.compile(optimizer=RecTable.default_optimizer())
        model.fit(encoder.transform(train), batch_size=4096, epochs=...)
        synthetic = model.sample(1000, seed=0, method="rk45")  # a DataFrame

    on every backend. `evaluate(x)` is the same loss on held-out rows (fresh
    noise). `sample` integrates dx/dt = v_θ(x, t) from t = 10⁻³ (the same
    mixed noise, drawn with NumPy from `seed`, so a seed gives the same table
    on every backend) to t = 1, decodes with the encoder (categories by
    arg-max), and can keep only rows of one class (`label=`).

    EMA, warm-up and clipping come from the optimizer: `default_optimizer`
    is the paper's (Adam 2·10⁻⁴, linear warm-up, global clip-norm 1, EMA
    0.9999 with torch_ema's warm-up); Keras writes the EMA into the weights
    when `fit` ends, so the model samples with, and saves, the EMA weights.

    Args:
        encoder: a fitted `TableEncoder` or its config (kept, as plain JSON, in
            the model's config).
        hidden_dims: GLU block widths.
        time_dim: time embedding / input projection width (even).
        dropout: rate in [0, 1) after every GLU block.
        seed: seed of the training noise (None: a random one).
    """

    def __init__(self, encoder, hidden_dims=(1024, 2048, 1024, 1024), time_dim=128, dropout=0.0, seed=None,
                 **kwargs):
        owner = "RecTable"
        encoder = _encoder(encoder, owner)
        hidden_dims = _check_hidden_dims(hidden_dims, owner)
        time_dim = _check_time_dim(time_dim, owner)
        dropout = check_dropout(dropout, owner)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"{owner}: `seed` must be None or a non-negative integer; got {seed!r}.")
        kwargs.setdefault("name", "rectable")
        width = encoder.width

        # === Layers ===
        flow = FlowPairs(encoder.numerical_width, seed=seed, name="flow")
        network = self.velocity_network(width, hidden_dims, time_dim, dropout)

        # === Functional Model ===
        data = keras.Input(shape=(width,), name="data")
        x_t, t, target = flow(data)
        velocity = network(x_t, t)
        super().__init__(inputs=data, outputs={"velocity": velocity, "target": target}, **kwargs)

        # === Config ===
        self.encoder = encoder
        self.hidden_dims = hidden_dims
        self.time_dim = time_dim
        self.dropout = dropout
        self.seed = seed
        self.last_sample_nfe = None
        self._samplers = {}

    def velocity_network(self, width, hidden_dims, time_dim, dropout):
        """The layer v_θ(x, t) that the constructor wires in (named "network"): a `RecTableNet`.
        A subclass may return another network of the same call signature (a baseline)."""
        return RecTableNet(width, hidden_dims, time_dim, dropout, name="network")

    @property
    def network(self):
        """The velocity network v_θ(x, t) (a `RecTableNet`)."""
        return self.get_layer("network")

    @property
    def flow(self):
        """The `FlowPairs` layer that draws the training noise and times."""
        return self.get_layer("flow")

    # The config's `encoder` is JSON data that TableEncoder.from_config reads (a preset may hold it).
    DATA_CONFIG = ("encoder",)

    def preset_outputs(self, x):
        """What a preset records for its fixed input x (rows, width): the velocity at
        t = 10⁻³ + (1 − 10⁻³)·i/(rows − 1) of row i, deterministic (the model's call draws noise)."""
        x = ops.convert_to_tensor(x, "float32")
        # The times from NumPy: ops.linspace in float32 differs by an ulp between backends, and 999·t
        # makes that visible (7e-4 on torch against JAX, on random weights).
        t = ops.convert_to_tensor(np.linspace(T_MIN, 1.0, int(x.shape[0])).astype(np.float32))
        return self.network(x, t, training=False)

    def get_config(self):
        return {**super().get_config(), "encoder": self.encoder.get_config(), "hidden_dims": list(self.hidden_dims),
                "time_dim": self.time_dim, "dropout": self.dropout, "seed": self.seed}

    # --- training ------------------------------------------------------------------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Velocity MSE: mean over rows (weighted by `sample_weight`) of the mean over columns of (v − target)²."""
        error = ops.cast(y_pred["velocity"], "float32") - ops.cast(y_pred["target"], "float32")
        per_row = ops.mean(ops.square(error), axis=-1)
        if sample_weight is not None:
            per_row = per_row * ops.cast(ops.reshape(sample_weight, (-1,)), "float32")
        loss = ops.mean(per_row)
        for extra in self.losses:
            loss = loss + ops.cast(extra, "float32")
        return loss

    def check_inputs(self, x, name=None):
        super().check_inputs(x, name)
        if isinstance(x, np.ndarray) and x.size:
            if not np.issubdtype(x.dtype, np.floating):
                raise ValueError(f"{self._owner(name)}: the encoded table must be floating point; got dtype "
                                 f"{x.dtype}.")
            if not np.isfinite(x).all():
                row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
                raise ValueError(f"{self._owner(name)}: the encoded table must be finite; row {row} is not.")

    def draw_time(self, n):
        """n training times t from the model's own generator (logit-normal on [10⁻³, 1])."""
        return self.flow.draw_time(check_positive_int("n", n, "RecTable.draw_time"))

    def draw_noise(self, n):
        """n rows of training noise z₀ from the model's own generator (N(0, 1) | Uniform(−1, 1))."""
        return self.flow.draw_noise(check_positive_int("n", n, "RecTable.draw_noise"), self.encoder.width)

    @staticmethod
    def default_optimizer(learning_rate=2e-4, warmup_steps=5000, ema_momentum=0.9999, clipnorm=1.0):
        """The paper's optimizer: Adam(`learning_rate`) reached linearly over `warmup_steps`
        (lr·min(step/warmup, 1)), global gradient norm clipped to `clipnorm`, and an EMA of the
        weights with momentum min(`ema_momentum`, (1 + n)/(10 + n)) at update n (torch_ema's
        warm-up, which the official code uses), written into the weights when `fit` ends."""
        owner = "RecTable.default_optimizer"
        learning_rate = check_number("learning_rate", learning_rate, owner, low=0.0)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"{owner}: `warmup_steps` must be a non-negative integer; got {warmup_steps!r}.")
        ema_momentum = check_number("ema_momentum", ema_momentum, owner, low=0.0, high=1.0, low_open=False)
        clipnorm = check_number("clipnorm", clipnorm, owner, low=0.0)
        schedule = learning_rate if warmup_steps == 0 else keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=learning_rate, warmup_steps=warmup_steps)
        return EMAWarmupAdam(learning_rate=schedule, global_clipnorm=clipnorm, use_ema=True,
                             ema_momentum=ema_momentum)

    # --- sampling ------------------------------------------------------------------------------------------------

    def noise(self, n, seed=0):
        """n rows of the mixed noise (N(0, 1) numerical block, Uniform(−1, 1) one-hot blocks),
        float32, drawn with NumPy from `seed` (the same on every backend)."""
        rng = np.random.default_rng(seed)
        numerical = self.encoder.numerical_width
        z = np.empty((n, self.encoder.width), np.float32)
        z[:, :numerical] = rng.standard_normal((n, numerical), dtype=np.float32)
        z[:, numerical:] = rng.uniform(-1.0, 1.0, (n, self.encoder.width - numerical)).astype(np.float32)
        return z

    def _sampler(self, method, steps, rtol, atol, max_steps):
        key = (method, steps, rtol, atol, max_steps)
        if key not in self._samplers:
            network = self.network

            def solve(trainable, non_trainable, z):
                def velocity(x, t):
                    times = ops.ones((ops.shape(x)[0],), "float32") * ops.cast(t, "float32")
                    v, _ = network.stateless_call(trainable, non_trainable, x, times, training=False)
                    return ops.cast(v, "float32")

                if method == "euler":
                    return euler(velocity, z, T_MIN, 1.0, steps), ops.convert_to_tensor(steps, "int32"), \
                        ops.convert_to_tensor(True)
                return dopri5(velocity, z, T_MIN, 1.0, rtol=rtol, atol=atol, max_steps=max_steps,
                              return_success=True)

            self._samplers[key] = compile_function(solve)
        return self._samplers[key]

    def generate(self, z, method="euler", steps=50, rtol=1e-5, atol=1e-5, max_steps=10_000):
        """The flow's end point x(1) from the noise rows `z` (encoded table, NumPy float32) and
        the number of velocity evaluations; one compiled solve."""
        owner = "RecTable.generate"
        check_choice("method", method, METHODS, owner)
        steps = check_positive_int("steps", steps, owner)
        rtol = check_number("rtol", rtol, owner, low=0.0)
        atol = check_number("atol", atol, owner, low=0.0)
        max_steps = check_positive_int("max_steps", max_steps, owner)
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.encoder.width:
            raise ValueError(f"{owner}: `z` must have shape (rows, {self.encoder.width}); got {z.shape}.")
        solve = self._sampler(method, steps if method == "euler" else None, rtol, atol, max_steps)
        trainable = [v.value for v in self.network.trainable_variables]
        non_trainable = [v.value for v in self.network.non_trainable_variables]
        x1, nfe, success = solve(trainable, non_trainable, ops.convert_to_tensor(z))
        if not bool(ops.convert_to_numpy(success)):
            raise RuntimeError(f"{owner}: RK45 did not reach t = 1 within max_steps={max_steps} step attempts "
                               f"(rtol={rtol}, atol={atol}); raise `max_steps` or loosen the tolerances.")
        return np.asarray(ops.convert_to_numpy(x1)), int(ops.convert_to_numpy(nfe))

    def sample(self, n, seed=0, steps=50, method="euler", rtol=1e-5, atol=1e-5, batch_size=None, label=None,
               max_steps=10_000, max_rounds=100, verbose=0):
        """n synthetic rows as a DataFrame with the training table's columns, order and dtypes.

        Batches of `batch_size` rows (default min(n, 4096)) of fresh noise are
        integrated from t = 10⁻³ to 1, each in one compiled solve of a fixed
        shape (the last batch is a full batch of noise, the surplus rows
        dropped): "euler" with `steps` equal steps, or "rk45" (Dormand–Prince
        5(4), `rtol`, `atol`; the error norm over the whole batch, as scipy's
        solve_ivp on the flattened array). `label` (a class of a
        classification target) keeps only rows decoded to that class and
        draws more batches until n are kept — exact sampling of the model's
        conditional — giving up after `max_rounds` times the batches an
        unconditional call needs. `last_sample_nfe` is the number of velocity
        evaluations of this call, summed over batches. Same `seed`, same rows.

        The network sees 999·t through sinusoids, so v_θ may oscillate in t
        with a period down to 2π/999 ≈ 0.0063: a step longer than that
        (Euler with fewer than ~160 steps, RK45 at loose tolerances) does not
        resolve it, and its error estimate may miss it (measured on a tiny,
        briefly trained model: RK45 at 1e-5 was 0.008–0.02 from RK45 at 1e-7).
        """
        owner = "RecTable.sample"
        n = check_positive_int("n", n, owner)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"{owner}: `seed` must be a non-negative integer; got {seed!r}.")
        check_choice("method", method, METHODS, owner)
        batch_size = min(n, 4096) if batch_size is None else check_positive_int("batch_size", batch_size, owner)
        max_rounds = check_positive_int("max_rounds", max_rounds, owner)
        target = None
        if label is not None:
            classes = self.encoder.classes
            if classes is None:
                raise ValueError(f"{owner}: `label` needs a classification target; this table has "
                                 f"{'no target' if self.encoder.spec.target is None else 'a regression target'}.")
            matches = [i for i, c in enumerate(classes) if _same(c, label)]
            if not matches:
                raise ValueError(f"{owner}: `label` {label!r} is not a class seen in training; known classes: "
                                 f"{', '.join(map(repr, classes))}.")
            target = (self.encoder.target_slice, matches[0])
        needed = -(-n // batch_size)
        rounds = needed if target is None else needed * max_rounds
        seeds = np.random.SeedSequence(int(seed)).spawn(rounds)
        progress = keras.utils.Progbar(n, verbose=verbose) if verbose else None
        kept, total, nfe, drawn = [], 0, 0, 0
        for i in range(rounds):
            x1, evaluations = self.generate(self.noise(batch_size, seeds[i]), method=method, steps=steps, rtol=rtol,
                                            atol=atol, max_steps=max_steps)
            nfe += evaluations
            drawn += batch_size
            if target is not None:
                (start, stop), index = target
                x1 = x1[np.argmax(x1[:, start:stop], axis=1) == index]
            kept.append(x1[: n - total])
            total += len(kept[-1])
            if progress is not None:
                progress.update(total)
            if total >= n:
                break
        self.last_sample_nfe = nfe
        if total < n:
            raise ValueError(f"{owner}: class {label!r} appeared in {total} of {drawn} generated rows "
                             f"({total / drawn:.2%}); too rare to sample {n} rows within max_rounds={max_rounds} "
                             f"(raise `max_rounds`, or train longer).")
        return self.encoder.inverse_transform(np.concatenate(kept, axis=0))


def _same(a, b):
    """Class values equal as Python values (np.int64(1) == 1; the string "1" is not 1)."""
    a, b = (x.item() if isinstance(x, np.generic) else x for x in (a, b))
    return isinstance(a, str) == isinstance(b, str) and a == b


@keras.saving.register_keras_serializable(package="glu_zoo")
class EMAWarmupAdam(keras.optimizers.Adam):
    """Adam whose weight EMA (`use_ema=True`) uses momentum min(ema_momentum, (2 + i)/(11 + i))
    at iteration i (torch_ema's (1 + n)/(10 + n) at update n = i + 1), so the average of a
    short run is not dominated by the initial weights (with a constant 0.9999, 2,000 steps
    leave 0.9999²⁰⁰⁰ ≈ 82% of the initial weights in it).

    At the end of `fit` the weights take a copy of the averages: Keras 3.15 assigns the
    average itself, so on JAX a weight and its average share one buffer and the next `fit`
    fails ("Attempt to donate the same buffer twice") and leaves the model without weights."""

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        i = ops.cast(self.iterations, "float32")
        # The averages start at zero: the first update copies the weights (as Keras's own EMA).
        momentum = ops.where(i > 0, ops.minimum(self.ema_momentum, (2.0 + i) / (11.0 + i)), 0.0)
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1.0 - m) * var)

    def _overwrite_model_variables_with_average_value(self, trainable_variables):
        if len(trainable_variables) != len(self._model_variables_moving_average):
            raise ValueError(f"EMAWarmupAdam: {len(trainable_variables)} model variables to overwrite, but "
                             f"{len(self._model_variables_moving_average)} averages; was the optimizer used on "
                             f"this model?")
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                var.assign(ops.copy(average))


ARCHITECTURES = {
    # The paper's network (widths of the official config).
    "rectable": (RecTable, dict(hidden_dims=(1024, 2048, 1024, 1024), time_dim=128, dropout=0.0)),
    # A small one for tests and quick recipes.
    "rectable_tiny": (RecTable, dict(hidden_dims=(64, 128, 64), time_dim=32, dropout=0.0)),
}
