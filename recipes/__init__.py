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
    `data` one from `glu_zoo.data.list_datasets()`; `target` is the least
    value of `metric` on the test split that the trained model must reach.
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

    def __post_init__(self):
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"Recipe {self.name}: `optimizer` must be 'adam' or 'adamw'; got {self.optimizer!r}.")
        object.__setattr__(self, "no_weight_decay", tuple(self.no_weight_decay))  # from JSON: a list
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Recipe {self.name}: `schedule` must be 'constant' or 'cosine'; got {self.schedule!r}.")
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
