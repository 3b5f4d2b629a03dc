import random

import numpy as np
import pytest

from glu_zoo import data
from glu_zoo.data import listops

SMALL = dict(num_train=300, num_validation=20, num_test=50, max_depth=6, max_args=5,
             min_length=20, max_length=80, seed=3)


def parse_and_evaluate(text):
    """An independent evaluator: a stack machine over the expression's tokens."""
    stack = [[]]
    ops = []
    for token in text.split():
        if token.startswith("["):
            ops.append(token)
            stack.append([])
        elif token == "]":
            args, op = stack.pop(), ops.pop()
            value = {"[MIN": min, "[MAX": max,
                     "[MED": lambda a: int(np.floor(np.median(a))),
                     "[SM": lambda a: sum(a) % 10}[op](args)
            stack[-1].append(value)
        else:
            stack[-1].append(int(token))
    assert len(stack) == 1 and len(stack[0]) == 1 and not ops, text
    return stack[0][0]


@pytest.mark.parametrize("text, value", [
    ("[MAX 4 3 [MIN 2 3 ] 1 0 ]", 4),
    ("[MIN 4 [MAX 8 9 ] ]", 4),
    ("[MED 1 5 8 9 2 ]", 5),
    ("[MED 1 2 ]", 1),  # the median 1.5, truncated
    ("[SM 7 8 [SM 9 9 ] ]", 3),
    ("7", 7),
])
def test_evaluate_known_expressions(text, value):
    assert parse_and_evaluate(text) == value
    tree = _parse_tree(text.split())
    assert listops.evaluate(tree) == value
    assert " ".join(listops.tokens(tree)) == text


def _parse_tree(tokens):
    def walk(i):
        token = tokens[i]
        if not token.startswith("["):
            return int(token), i + 1
        args, i = [], i + 1
        while tokens[i] != "]":
            arg, i = walk(i)
            args.append(arg)
        return (token, tuple(args)), i + 1

    tree, end = walk(0)
    assert end == len(tokens)
    return tree


def test_labels_are_the_values_of_the_expressions():
    s = data.load("listops", **SMALL)
    for x, y in (s.train, s.validation, s.test):
        for row, label in zip(x, y):
            assert parse_and_evaluate(listops.decode(row)) == label


def test_shapes_lengths_padding_and_vocabulary():
    s = listops.load_listops(**SMALL)
    x, y = s.train
    assert x.shape == (300, 80) and x.dtype == np.int32 and y.dtype == np.int32
    assert (len(s.validation[0]), len(s.test[0])) == (20, 50) and s.num_classes == 10
    lengths = (x != listops.PAD).sum(1)
    assert lengths.min() >= 20 and lengths.max() <= 80
    for row, n in zip(x, lengths):  # padding only at the end
        assert (row[:n] != 0).all() and (row[n:] == 0).all()
    assert x.min() == 0 and x.max() < len(listops.VOCABULARY)
    assert set(y) == set(range(10))
    assert "seed 3" in s.description


def test_deterministic_and_seeded():
    a = listops.load_listops(**SMALL)
    load = listops.load_listops.__wrapped__  # not the cached result
    b = load(**SMALL)
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.test[1], b.test[1])
    c = load(**{**SMALL, "seed": 4})
    assert not np.array_equal(a.train[0], c.train[0])


def test_splits_hold_distinct_expressions():
    s = listops.load_listops(**SMALL)
    rows = [row.tobytes() for split in (s.train, s.validation, s.test) for row in split[0]]
    assert len(set(rows)) == len(rows)


def test_the_grammar_of_lra():
    """Depth-1 nodes are operators with probability 0.25, argument counts in
    [2, max_args], no operator below max_depth."""
    rng = random.Random(0)
    roots = [listops._tree(rng, 1, 10, 10, 10**9)[0] for _ in range(4000)]
    operator_share = np.mean([isinstance(t, tuple) for t in roots])
    assert abs(operator_share - listops.VALUE_P) < 0.03

    def depth_and_args(tree, depth=1):
        if isinstance(tree, int):
            return depth, []
        found = [(depth_and_args(a, depth + 1)) for a in tree[1]]
        return max(d for d, _ in found), [len(tree[1])] + [n for _, ns in found for n in ns]

    for tree in roots:
        depth, counts = depth_and_args(tree)
        assert depth <= 10 and all(2 <= n <= 10 for n in counts)


def test_encode_and_decode():
    ids = listops.encode(["[SM", "3", "9", "]"], length=6)
    assert ids.tolist() == [14, 4, 10, 15, 0, 0]
    assert listops.decode(ids) == "[SM 3 9 ]"
    with pytest.raises(ValueError, match=r"unknown token '\[SUM'; allowed: 0, 1"):
        listops.encode(["[SUM", "1", "]"])
    with pytest.raises(ValueError, match="4 tokens do not fit `length` 3"):
        listops.encode(["[SM", "3", "9", "]"], length=3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_length=90, max_length=80), r"`min_length` \(90\) must not exceed `max_length` \(80\)"),
    (dict(max_depth=2, max_args=3, min_length=10), "at most 5 tokens"),
    (dict(num_train=0), r"`num_train` must be an integer ≥ 1; got 0"),
    (dict(max_args=1), r"`max_args` must be an integer ≥ 2; got 1"),
    (dict(seed=1.5), r"`seed` must be an integer ≥ 0; got 1.5"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        listops.load_listops(**{**SMALL, **kwargs})


def test_too_few_distinct_expressions():
    with pytest.raises(ValueError, match="distinct expressions"):
        listops.load_listops(num_train=200, num_validation=0, num_test=1, max_depth=1, max_args=2,
                             min_length=1, max_length=4)


def test_the_test_split_does_not_depend_on_the_training_size():
    load = listops.load_listops.__wrapped__
    a, b = load(**SMALL), load(**{**SMALL, "num_train": 100, "num_validation": 5})
    np.testing.assert_array_equal(a.test[0], b.test[0])
