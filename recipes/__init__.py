"""Recipes: a model, its data, optimiser, schedule, epochs and the test metric it must reach.

One module per recipe, each defining `RECIPE`. Installed as `glu_zoo.recipes`.

    glu_zoo.recipes.list_recipes()      # ["activator_vit_digits", ...]
    recipe = glu_zoo.recipes.get("activator_vit_digits")
"""

import dataclasses
import importlib
import pkgutil

AUGMENTATIONS = ("shift",)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What `glu_zoo.training.train` needs to reproduce a preset.

    `architecture` is a name from `glu_zoo.models.list_architectures()`,
    `data` one from `glu_zoo.data.list_datasets()` or, for a table generator
    (RecTable), one from `glu_zoo.data.tabular.list_tables()`; `target` is the
    least value of `metric` on the test split that the trained model must
    reach (the greatest, with `metric_mode="min"`), and `limits` the greatest
    values allowed of other test metrics (a generator's C2ST AUC, its share
    of copied rows).
    """

    name: str
    description: str
    architecture: str
    data: str
    metric: str
    target: float
    epochs: int
    batch_size: int
    optimizer: str = "adam"  # adam or adamw
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    # Variables whose name contains one of these are not decayed (AdamW).
    no_weight_decay: tuple = ()
    schedule: str = "constant"  # constant or cosine
    warmup_epochs: int = 0
    model_overrides: dict = dataclasses.field(default_factory=dict)
    data_options: dict = dataclasses.field(default_factory=dict)
    # Training-batch augmentation: {"shift": k} moves each image by a random
    # whole-pixel offset in [-k, k] along each axis (data.random_shift).
    augment: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    limits: dict = dataclasses.field(default_factory=dict)
    # An epoch is this many passes over the training data, each in its own
    # order (tiny tables: an epoch of one batch would be all overhead).
    passes_per_epoch: int = 1
    clipnorm: float = 0.0  # > 0: the global gradient norm is clipped to it
    # > 0: the weights' exponential moving average with this momentum (and
    # torch_ema's warm-up), written into the weights when training ends.
    ema_momentum: float = 0.0
    # Table generators: the arguments of `model.sample` for the test metrics.
    sample_options: dict = dataclasses.field(default_factory=dict)
    # "max": `target` is the least value of `metric` (accuracy); "min": the
    # greatest (a loss, such as a language model's log-perplexity). The best
    # validation epoch is chosen the same way.
    metric_mode: str = "max"

    def __post_init__(self):
        if self.metric_mode not in ("max", "min"):
            raise ValueError(f"Recipe {self.name}: `metric_mode` must be 'max' or 'min'; got {self.metric_mode!r}.")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"Recipe {self.name}: `optimizer` must be 'adam' or 'adamw'; got {self.optimizer!r}.")
        object.__setattr__(self, "no_weight_decay", tuple(self.no_weight_decay))  # from JSON: a list
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Recipe {self.name}: `schedule` must be 'constant' or 'cosine'; got {self.schedule!r}.")
        if isinstance(self.passes_per_epoch, bool) or not isinstance(self.passes_per_epoch, int) \
                or self.passes_per_epoch < 1:
            raise ValueError(f"Recipe {self.name}: `passes_per_epoch` must be a positive integer; got "
                             f"{self.passes_per_epoch!r}.")
        if not 0.0 <= self.ema_momentum < 1.0 or not self.clipnorm >= 0.0:
            raise ValueError(f"Recipe {self.name}: `ema_momentum` must be in [0, 1) and `clipnorm` ≥ 0; got "
                             f"{self.ema_momentum!r}, {self.clipnorm!r}.")
        unknown = sorted(set(self.augment) - set(AUGMENTATIONS))
        if unknown:
            raise ValueError(f"Recipe {self.name}: unknown `augment` {unknown}; allowed: {', '.join(AUGMENTATIONS)}.")

    def to_dict(self):
        return {**dataclasses.asdict(self), "no_weight_decay": list(self.no_weight_decay)}


def list_recipes():
    """Names of the recipes, sorted."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name):
    """The `Recipe` of that name."""
    known = list_recipes()
    if name not in known:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(known)}.")
    return importlib.import_module(f"{__name__}.{name}").RECIPE
