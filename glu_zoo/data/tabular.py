"""Mixed-type tables: the declared column types, their encoding, and loaders.

`TableSpec` declares which columns are numerical and which categorical, the
target column (it joins the categorical block for classification, the
numerical block for regression) and which columns may hold missing values.
"""

import dataclasses

__all__ = ["TASKS", "TableSpec"]

TASKS = ("classification", "regression")


def _names(field, value, owner):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{owner}: `{field}` must be a list of column names; got {value!r}.")
    for name in value:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{owner}: `{field}` must hold non-empty strings (column names); got {name!r}.")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """The column types of a table.

    Args:
        numerical: names of the numerical feature columns.
        categorical: names of the categorical feature columns.
        target: the target column's name, or None (a table with no target).
        task: "classification" (the target is categorical) or "regression"
            (numerical); required with a target, None without one.
        missing: the columns that may hold missing values (NaN / None); a
            missing value anywhere else is an error.

    `columns` is the table's column order: numerical, categorical, then the
    target. Every name appears once.
    """

    numerical: tuple = ()
    categorical: tuple = ()
    target: str = None
    task: str = None
    missing: tuple = ()

    def __post_init__(self):
        owner = "TableSpec"
        for field in ("numerical", "categorical", "missing"):
            object.__setattr__(self, field, _names(field, getattr(self, field), owner))
        if self.target is not None and (not isinstance(self.target, str) or not self.target):
            raise ValueError(f"{owner}: `target` must be a column name or None; got {self.target!r}.")
        if self.target is None and self.task is not None:
            raise ValueError(f"{owner}: `task` {self.task!r} needs a `target` column; got target=None.")
        if self.target is not None and self.task not in TASKS:
            raise ValueError(f"{owner}: `task` must be one of {', '.join(TASKS)} for target {self.target!r}; "
                             f"got {self.task!r}.")
        seen = set()
        for name in self.columns:
            if name in seen:
                raise ValueError(f"{owner}: column {name!r} is declared twice; each column has one type.")
            seen.add(name)
        if not self.columns:
            raise ValueError(f"{owner}: no columns declared; give `numerical`, `categorical` or `target`.")
        unknown = [name for name in self.missing if name not in seen]
        if unknown:
            raise ValueError(f"{owner}: `missing` names {unknown!r}, which are not declared columns; declared: "
                             f"{', '.join(self.columns)}.")

    @property
    def columns(self):
        """All columns in order: numerical, categorical, target."""
        return self.numerical + self.categorical + ((self.target,) if self.target is not None else ())

    @property
    def numerical_columns(self):
        """The columns encoded as numbers: the numerical features, then a regression target."""
        return self.numerical + ((self.target,) if self.task == "regression" else ())

    @property
    def categorical_columns(self):
        """The columns encoded one-hot: the categorical features, then a classification target."""
        return self.categorical + ((self.target,) if self.task == "classification" else ())

    def get_config(self):
        """Plain lists and strings (JSON), for a model's config and a preset."""
        return {"numerical": list(self.numerical), "categorical": list(self.categorical), "target": self.target,
                "task": self.task, "missing": list(self.missing)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
