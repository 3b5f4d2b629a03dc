"""ListOps from the Long Range Arena grammar (Tay et al. 2020; Nangia & Bowman 2018).

An expression is a digit 0–9 or `[OP a₁ … a_k ]` with OP one of MIN, MAX,
MED (the median, truncated to an integer) and SM (the sum modulo 10) and
2 ≤ k ≤ max_args arguments, each again an expression. As LRA's generator:
at depth < max_depth a node is an operator with probability 0.25, else a
digit; at max_depth it is a digit; trees are drawn from depth 1 and kept if
their token count is within [min_length, max_length]; duplicates are dropped.
The label is the expression's value. Drawn with Python's `random.Random(seed)`:
the same arguments give the same data on every machine.

    splits = load_listops(num_train=2000, num_test=200, min_length=50, max_length=200)
    decode(splits.train[0][0])   # '[MAX 4 [SM 3 9 ] 0 ]' ...
"""

import functools
import random
import statistics

import numpy as np

from glu_zoo.data.digits import Splits

__all__ = ["OPERATORS", "VOCABULARY", "PAD", "generate", "evaluate", "encode", "decode", "load_listops"]

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
VALUE_P = 0.25  # LRA: probability that a node above max_depth is an operator
PAD = 0
VOCABULARY = ("<pad>", *(str(d) for d in range(10)), *OPERATORS, END)
_IDS = {token: i for i, token in enumerate(VOCABULARY)}

# LRA's data: 96,000 / 2,000 / 2,000 expressions of 500–2,000 tokens.
LRA = dict(num_train=96_000, num_validation=2_000, num_test=2_000,
           max_depth=10, max_args=10, min_length=500, max_length=2_000)


class _TooLong(Exception):
    pass


def _tree(rng, depth, max_depth, max_args, budget):
    """(tree, length): a digit, or (op, [subtrees]); raises _TooLong past `budget` tokens."""
    if depth < max_depth and rng.random() <= VALUE_P:
        num_args = rng.randint(2, max_args)
        length, args = 2, []
        for _ in range(num_args):
            sub, sub_length = _tree(rng, depth + 1, max_depth, max_args, budget - length)
            args.append(sub)
            length += sub_length
            if length > budget:
                raise _TooLong
        return (rng.choice(OPERATORS), tuple(args)), length
    return rng.randrange(10), 1


def _longest(max_depth, max_args):
    """The most tokens an expression can have."""
    length = 1
    for _ in range(max_depth - 1):
        length = 2 + max_args * length
    return length


def generate(rng, max_depth=10, max_args=10, min_length=1, max_length=2_000, tries=1_000_000):
    """One expression tree with min_length ≤ tokens ≤ max_length, drawn by
    rejection from LRA's grammar with `rng`, a `random.Random`."""
    for _ in range(tries):
        try:
            tree, length = _tree(rng, 1, max_depth, max_args, max_length)
        except _TooLong:
            continue
        if min_length <= length:
            return tree
    raise ValueError(f"listops.generate: no expression of {min_length}–{max_length} tokens in {tries:,} draws "
                     f"(max_depth {max_depth}, max_args {max_args}); widen the lengths or deepen the trees.")


def evaluate(tree):
    """The value of an expression tree (an int in 0..9)."""
    if isinstance(tree, int):
        return tree
    op, args = tree
    values = [evaluate(a) for a in args]
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return int(statistics.median(values))
    return sum(values) % 10


def tokens(tree):
    """The expression as a list of tokens: `[MAX`, digits, `]`."""
    if isinstance(tree, int):
        return [str(tree)]
    op, args = tree
    out = [op]
    for a in args:
        out += tokens(a)
    return out + [END]


def encode(token_list, length=None):
    """Token ids (int32), padded with PAD = 0 up to `length`."""
    unknown = [t for t in token_list if t not in _IDS or t == VOCABULARY[PAD]]
    if unknown:
        raise ValueError(f"listops.encode: unknown token {unknown[0]!r}; allowed: {', '.join(VOCABULARY[1:])}.")
    ids = [_IDS[t] for t in token_list]
    length = len(ids) if length is None else length
    if len(ids) > length:
        raise ValueError(f"listops.encode: {len(ids)} tokens do not fit `length` {length}.")
    return np.array(ids + [PAD] * (length - len(ids)), dtype="int32")


def decode(ids):
    """The expression text of a row of token ids, padding dropped."""
    return " ".join(VOCABULARY[int(i)] for i in ids if int(i) != PAD)


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"load_listops: `{name}` must be an integer ≥ {low}; got {value!r}.")


@functools.lru_cache(maxsize=4)
def load_listops(num_train=LRA["num_train"], num_validation=LRA["num_validation"], num_test=LRA["num_test"],
                 max_depth=LRA["max_depth"], max_args=LRA["max_args"], min_length=LRA["min_length"],
                 max_length=LRA["max_length"], seed=0):
    """ListOps splits: x int32 (N, max_length) token ids padded with 0, y int32 values 0..9.

    Defaults are LRA's (96k / 2k / 2k, depth 10, up to 10 arguments,
    500–2,000 tokens). The splits hold distinct expressions, none shared.
    Arrays are read-only (the result is cached).
    """
    for name, value, low in (("num_train", num_train, 1), ("num_validation", num_validation, 0),
                             ("num_test", num_test, 1), ("max_depth", max_depth, 1),
                             ("max_args", max_args, 2), ("min_length", min_length, 1),
                             ("max_length", max_length, 1), ("seed", seed, 0)):
        _check_int(name, value, low)
    if min_length > max_length:
        raise ValueError(f"load_listops: `min_length` ({min_length}) must not exceed `max_length` ({max_length}).")
    if min_length > _longest(max_depth, max_args):
        raise ValueError(f"load_listops: `min_length` {min_length} cannot be met: with max_depth {max_depth} "
                         f"and max_args {max_args} an expression has at most "
                         f"{_longest(max_depth, max_args)} tokens.")
    rng = random.Random(seed)
    total = num_train + num_validation + num_test
    seen = {}
    attempts = 0
    while len(seen) < total:
        attempts += 1
        if attempts > 50 * total + 10_000:
            raise ValueError(f"load_listops: only {len(seen)} distinct expressions of {min_length}–{max_length} "
                             f"tokens after {attempts} draws; ask for fewer or widen the lengths.")
        tree = generate(rng, max_depth, max_args, min_length, max_length)
        seq = tuple(tokens(tree))
        if seq not in seen:
            seen[seq] = evaluate(tree)
    # Drawn test first, then validation, then training: the test split does
    # not depend on how much training data is asked for.
    x = np.stack([encode(list(seq), max_length) for seq in seen])
    y = np.array(list(seen.values()), dtype="int32")
    for a in (x, y):
        a.setflags(write=False)
    a, b = num_test, num_test + num_validation
    return Splits(train=(x[b:], y[b:]), validation=(x[a:b], y[a:b]), test=(x[:a], y[:a]), num_classes=10,
                  description=f"listops (LRA grammar, seed {seed}, depth ≤ {max_depth}, ≤ {max_args} arguments, "
                              f"{min_length}–{max_length} tokens): {num_train} / {num_validation} / {num_test} "
                              f"distinct expressions, none shared between splits")
