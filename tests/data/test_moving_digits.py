import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from glu_zoo import data
from glu_zoo.data import moving_digits as md

# Small clips: 8×8 digits (digit_scale 1) in 16×16 frames, 8 frames.
SMALL = dict(frames=8, image_size=16, digit_scale=1)


@pytest.fixture(scope="module")
def pools():
    return md.digit_pools(1)


def sprite_at(frame, pool_keys, size):
    """[(row, col, key)] of every size×size window of `frame` that is a digit image of the pool.
    The windows are searched exhaustively, independently of how the clip was drawn."""
    found = []
    h, w = frame.shape
    for r in range(h - size + 1):
        for c in range(w - size + 1):
            key = np.ascontiguousarray(frame[r:r + size, c:c + size]).tobytes()
            if key in pool_keys:
                found.append((r, c, key))
    return found


def keys_of(pool):
    return {np.ascontiguousarray(image).tobytes(): int(label) for image, label in zip(*pool)}


@pytest.mark.parametrize("task, classes", [("direction", 4), ("order", 2)])
def test_shapes_dtypes_range_and_registration(task, classes):
    s = data.load("moving_digits", task=task, train_size=12, validation_size=4, test_size=8, **SMALL)
    assert "moving_digits" in data.list_datasets()
    for (x, y), n in zip((s.train, s.validation, s.test), (12, 4, 8)):
        assert x.shape == (n, 8, 16, 16, 1) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert x.min() == 0.0 and x.max() <= 1.0 and x.max() > 0.5
        assert set(np.unique(y)) <= set(range(classes))
    assert s.num_classes == classes and s.image_shape == (8, 16, 16, 1)
    assert f"task={task!r}" in s.description and "16×16" in s.description
    default = md.make_clips(task, "train", 0, 2)[0]
    assert default.shape == (2, 16, 32, 32, 1)  # 16 frames of 32×32 with 16×16 digits


@pytest.mark.parametrize("task, classes", [("direction", 4), ("order", 2)])
def test_labels_are_balanced_in_every_split(task, classes):
    s = md.load_moving_digits(task, train_size=40, validation_size=12, test_size=8, **SMALL)
    for _, y in (s.train, s.validation, s.test):
        assert np.bincount(y, minlength=classes).tolist() == [len(y) // classes] * classes
    y = md.make_clips(task, "train", 3, 23, **SMALL)[1]  # not block-aligned: off by at most one
    counts = np.bincount(y, minlength=classes)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 23


@pytest.mark.parametrize("task", md.TASKS)
def test_deterministic_and_independent_of_the_split_sizes(task):
    a = md.load_moving_digits(task, train_size=8, validation_size=4, test_size=4, seed=5, **SMALL)
    b = md.load_moving_digits(task, train_size=20, validation_size=0, test_size=12, seed=5, **SMALL)
    np.testing.assert_array_equal(a.train[0], b.train[0][:8])
    np.testing.assert_array_equal(a.train[1], b.train[1][:8])
    np.testing.assert_array_equal(a.test[0], b.test[0][:4])
    assert b.validation[0].shape == (0, 8, 16, 16, 1)
    x, y = md.make_clips(task, "train", 5, 7, seed=5, **SMALL)  # clip i alone, whatever the batch
    np.testing.assert_array_equal(x, b.train[0][5:12])
    np.testing.assert_array_equal(y, b.train[1][5:12])
    c = md.load_moving_digits(task, train_size=8, validation_size=4, test_size=4, seed=6, **SMALL)
    assert not np.array_equal(a.train[0], c.train[0])
    assert not np.array_equal(a.train[0][:4], a.test[0])


def test_the_digit_images_of_the_splits_are_disjoint(pools):
    keys = [keys_of(pools[name]) for name in md.SPLITS]
    assert [len(k) for k in keys] == [1293, 144, 360]
    assert not (keys[0].keys() & keys[1].keys() or keys[0].keys() & keys[2].keys() or keys[1].keys() & keys[2].keys())


@pytest.mark.parametrize("task", md.TASKS)
def test_clips_show_only_their_own_splits_digits(task, pools):
    keys = {name: keys_of(pools[name]) for name in md.SPLITS}
    everything = {k: v for name in md.SPLITS for k, v in keys[name].items()}
    for split in md.SPLITS:
        x, _ = md.make_clips(task, split, 0, 6, **SMALL)
        for clip in x[..., 0]:
            shown = set()
            for frame in clip:
                shown |= {key for _, _, key in sprite_at(frame, everything, 8)}
            assert len(shown) == (1 if task == "direction" else 2)
            assert shown <= keys[split].keys(), f"a {split} clip shows a digit image of another split"
            if task == "order":
                assert len({keys[split][k] for k in shown}) == 2  # two different digits


def positions(clip, pool_keys, size=8):
    """(frames, 2) top-left corners of the one digit of a 'direction' clip, found by search."""
    out = []
    for frame in clip:
        found = sprite_at(frame, pool_keys, size)
        assert len(found) == 1, "the whole digit must be in the frame"
        assert np.isclose(frame.sum(), np.frombuffer(found[0][2], np.float32).sum())  # and nothing else
        out.append(found[0][:2])
    return np.array(out)


def test_direction_bounces_inside_the_frame_at_constant_speed(pools):
    keys = keys_of(pools["train"])
    x, y = md.make_clips("direction", "train", 0, 40, frames=16, image_size=24, digit_scale=1)
    room = 24 - 8  # one axis makes one round trip in the clip, 2·16/16 = 2 pixels a frame, the other two
    checked_first_steps = 0
    for clip, label in zip(x[..., 0], y):
        p = positions(clip, keys)  # every frame holds the whole digit: it never leaves the frame
        assert p.min() >= 0 and p.max() <= room
        steps = np.diff(p, axis=0)
        assert np.abs(steps).max() <= 4
        speeds = []
        for axis in range(2):
            # at least 5 pixels from the walls a step cannot bounce: it is exactly the axis' speed
            free = (p[:-1, axis] >= 5) & (p[:-1, axis] <= room - 5)
            speeds.append(set(np.abs(steps[free, axis]).tolist()))
            turns = np.nonzero(np.sign(steps[1:, axis]) * np.sign(steps[:-1, axis]) < 0)[0] + 1
            for t in turns:  # it turns back only at a wall
                assert min(p[t, axis], room - p[t, axis]) <= 4, (p[:, axis], t)
            assert p[:, axis].min() <= 2 and p[:, axis].max() >= room - 2  # from wall to wall
        assert sorted(speeds, key=sorted) == [{2}, {4}] or sorted(speeds, key=sorted) == [{4}, {2}]
        # The first two frames tell the label, for every clip: moving down (right) means a positive
        # first step, or no step at all next to the bottom (right) wall, off which it has just bounced.
        first = steps[0]
        down, right = (first > 0) | ((first == 0) & (p[0] > room / 2))
        assert label == 2 * down + right, (md.CLASS_NAMES["direction"][label], p[:2])
        checked_first_steps += bool((first == 0).any())
    assert checked_first_steps >= 1  # a bounce in the first step was among the clips checked


def test_direction_label_is_a_function_of_the_first_two_frames():
    """No two clips with the same first two frames have different labels (the Bayes accuracy of the
    first two frames is 1). With a start phase drawn from a continuum and positions rounded to pixels,
    a digit within half a pixel of a wall looks the same moving in or out: 3 % of the clips per axis."""
    x, y = md.make_clips("direction", "validation", 0, 4000)
    seen = {}
    for i, (clip, label) in enumerate(zip(x[:, :2, :, :, 0], y)):
        first = seen.setdefault(clip.tobytes(), (i, label))
        assert first[1] == label, f"clips {first[0]} and {i} start alike but have labels {first[1]}, {label}"
    assert len(seen) > 3000  # and the clips differ

def test_order_label_is_the_side_that_appears_first():
    x, y = md.make_clips("order", "validation", 0, 40, **SMALL)
    ink = x[..., 0]
    left, right = ink[:, :, :, :8].sum((2, 3)) > 0, ink[:, :, :, 8:].sum((2, 3)) > 0
    for l_on, r_on, label in zip(left, right, y):
        onset = [np.argmax(l_on), np.argmax(r_on)]
        assert l_on.any() and r_on.any() and onset[0] != onset[1]
        assert label == (0 if onset[0] < onset[1] else 1)
        assert l_on.sum() == r_on.sum()  # the same number of frames each: one window, then gone
        for on in (l_on, r_on):
            assert np.count_nonzero(np.diff(on.astype(int))) <= 2  # one contiguous window


def fit_and_score(task, features, seed, n_train=1000, n_test=2000):
    opts = dict(SMALL, seed=seed)
    x_train, y_train = md.make_clips(task, "train", 0, n_train, **opts)
    x_test, y_test = md.make_clips(task, "test", 0, n_test, **opts)
    rng = np.random.default_rng(seed)
    clf = LogisticRegression(C=0.01, max_iter=100).fit(features(x_train[..., 0], rng), y_train)
    return clf.score(features(x_test[..., 0], rng), y_test)


def one_random_frame(x, rng):
    return x[np.arange(len(x)), rng.integers(x.shape[1], size=len(x))].reshape(len(x), -1)


def mean_frame(x, rng):
    return x.mean(1).reshape(len(x), -1)


def first_step(x, rng):
    return (x[:, 1] - x[:, 0]).reshape(len(x), -1)


def whole_clip(x, rng):
    return x.reshape(len(x), -1)


@pytest.mark.parametrize("task, classes, informative", [("direction", 4, first_step), ("order", 2, whole_clip)])
def test_the_label_needs_time(task, classes, informative):
    """A logistic regression on one random frame of each clip (or on the clip's mean frame, a bag of
    frames) is at chance on the test split (2,000 clips: chance ± 0.05 is ≥ 3.9 standard errors);
    the same classifier on two frames (direction: the first two; order: the clip) is far above it."""
    for features in (one_random_frame, mean_frame):
        accuracy = fit_and_score(task, features, seed=1)
        assert abs(accuracy - 1 / classes) < 0.05, (features.__name__, accuracy)
    accuracy = fit_and_score(task, informative, seed=1)
    assert accuracy > 1 / classes + 0.3, (informative.__name__, accuracy)


@pytest.mark.parametrize("kwargs, message", [
    (dict(task="speed"), r"unknown `task` 'speed'; allowed: direction, order"),
    (dict(frames=1), r"`frames` must be an integer ≥ 2; got 1"),
    (dict(frames=2.0), r"`frames` must be an integer ≥ 2; got 2.0"),
    (dict(frames=6), r"`frames` must be a multiple of 4 and at least 8 for task='direction'.*got 6"),
    (dict(frames=4), r"`frames` must be a multiple of 4 and at least 8 for task='direction'.*got 4"),
    (dict(image_size=23), r"`image_size` 23 is too small for task='direction' with 16 frames.*at least 24"),
    (dict(task="order", image_size=(16, 24)), r"`image_size` \(16, 24\) is too small for task='order'.*width ≥ 32"),
    (dict(image_size="big"), r"`image_size` must be a positive integer or a pair.*got 'big'"),
    (dict(digit_scale=0), r"`digit_scale` must be an integer ≥ 1; got 0"),
    (dict(train_size=-5), r"`train_size` must be an integer ≥ 1; got -5"),
    (dict(validation_size=-1), r"`validation_size` must be an integer ≥ 0; got -1"),
    (dict(test_size=0), r"`test_size` must be an integer ≥ 1; got 0"),
    (dict(seed=-1), r"`seed` must be an integer ≥ 0; got -1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="load_moving_digits: " + message):
        data.load("moving_digits", **{"train_size": 4, "validation_size": 0, "test_size": 4, **kwargs})


def test_order_accepts_two_frames_and_make_clips_checks_its_arguments():
    x, y = md.make_clips("order", "test", 0, 4, frames=2, image_size=16, digit_scale=1)
    left, right = x[..., :8, 0].sum((2, 3)) > 0, x[..., 8:, 0].sum((2, 3)) > 0
    np.testing.assert_array_equal(left[:, 0], y == 0)  # one digit a frame: the first, then the other
    np.testing.assert_array_equal(right[:, 1], y == 0)
    with pytest.raises(ValueError, match=r"make_clips: unknown `split` 'dev'; allowed: train, validation, test"):
        md.make_clips("order", "dev", **SMALL)
    with pytest.raises(ValueError, match=r"make_clips: `start` must be an integer ≥ 0; got -1"):
        md.make_clips("order", "test", -1, **SMALL)
