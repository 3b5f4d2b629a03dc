"""The argument and input checks that every layer and model shares.

Each raises a `ValueError` that names the owner, the argument, the value and
what is allowed, as Keras's own layers do.
"""

import math

import keras

__all__ = [
    "check_bool",
    "check_choice",
    "check_dropout",
    "check_floating",
    "check_number",
    "check_positive_int",
    "fresh",
]


def check_positive_int(name, value, owner):
    """`value` an int > 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive integer; got {value!r}.")
    return value


def check_bool(name, value, owner):
    """`value` True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: `{name}` must be True or False; got {value!r}.")
    return value


def check_number(name, value, owner, low=-math.inf, high=math.inf, low_open=True, high_open=True):
    """`value` a finite real number in the interval (low, high); `*_open=False` closes an end.
    Returns it as a float."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: `{name}` must be a number in {interval}; got {value!r}.")
    return float(value)


def check_dropout(value, owner, name="dropout"):
    """A dropout rate in [0, 1), returned as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{owner}: `{name}` must be a number in [0, 1); got {value!r}.")
    return float(value)


def check_choice(name, value, allowed, owner):
    """`value` one of `allowed` (an unknown name lists the allowed ones)."""
    if value not in allowed:
        raise ValueError(f"{owner}: unknown `{name}` {value!r}; allowed: {', '.join(map(str, allowed))}.")
    return value


def check_floating(dtype, owner, name="inputs"):
    """A ValueError unless `dtype` is a floating dtype."""
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(
            f"{owner}: `{name}` must be floating point; got dtype {keras.backend.standardize_dtype(dtype)}."
        )


def fresh(initializer):
    """A new instance of `initializer` per weight: an unseeded Keras initializer
    fixes its seed when it is created, so one instance used for two weights of
    the same shape would give them the same values."""
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())
