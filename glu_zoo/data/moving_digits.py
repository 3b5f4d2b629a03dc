"""Moving digits: clips of scikit-learn's digits whose label needs time.

Each clip is `frames` grey images of `image_size` (default 16 frames of
32×32, one channel, float32 in [0, 1]); the sprites are the 8×8 digits
(16 grey levels, divided by 16) up-sampled `digit_scale` times by pixel
repetition (default 2: 16×16 sprites). Two tasks:

- ``"direction"`` (4 classes): one digit moves with constant velocity and
  bounces off the borders; the label is the direction of its motion in the
  first frame, ``2·[moving down] + [moving right]`` (`CLASS_NAMES`).
- ``"order"`` (2 classes): two digits of different classes, one in the left
  half and one in the right, each pops in at its own frame, stays for the
  same number of frames and pops out; the label is 0 if the left one
  appears first, 1 if the right one does.

**No single frame carries information about the label**, and neither does
the unordered set of a clip's frames (so a per-frame model, or per-frame
features averaged over time, is at chance):

- direction: with room ``L = size − 8·digit_scale`` along an axis and
  ``δ = 2L/frames``, the position is ``fold(u₀ + k·δ·t)`` with
  ``fold(u) = u`` on [0, L], ``2L − u`` on [L, 2L) (u taken mod 2L), k = 1
  on one axis and 2 on the other (which one is random), so a clip is
  exactly one period of the motion: its set of frames is the same whichever
  of them the clip starts at. The start phase u₀ is ``j·δ`` with j uniform
  in 0 … frames − 1 on each axis, and the moving-right (down) frames are
  those with ``u mod 2L`` in [0, L). Along the k = 1 axis a period is
  frames/2 frames moving one way then frames/2 the other; the k = 2 axis
  completes one whole period inside each of those halves, so each of the 4
  directions holds exactly frames/4 of the period's phases. Given the set
  of frames the start is uniform among them, hence the label is uniform:
  any function of one frame (or of the unordered frames) is independent of
  the label. `frames` must be a multiple of 4.
  **The first two frames determine the label**: the phases lie on the grid
  of multiples of δ, so a phase and its mirror image 2L − u₀ (same first
  frame, opposite label) move apart by at least δ ≥ 1 pixel at the second
  frame (this needs ``L ≥ frames/2`` and frames ≥ 8, which are checked).
  A continuous u₀ would not do: a digit rounded to whole pixels within
  half a pixel of a wall looks the same moving in or out, and then no
  classifier beats 0.939 (measured: 0.969 per axis) on the default clips.
- order: a label-1 clip has exactly the distribution of a label-0 clip
  played backwards (windows of equal length D, gap Δ, the first window's
  start uniform on [0, frames − Δ − D]; reversed, the right digit comes
  first with the same D, Δ and a start uniform on the same range), so both
  labels give the same distribution of the unordered set of frames: a frame
  showing only the left digit is as likely under either label (left first
  and just appeared, or left last and its partner gone).

Splits never share a digit image: the 1,797 digits are split first
(the test digits are `load_digits`'s test split, 360 images; validation 144
carved from the rest with seed 0; train the other 1,293), and each split's
clips draw sprites only from its own digits. Clip i of a split is a function
of (seed, task, split, i) alone, so the first n clips do not depend on how
many are asked for; labels are drawn as a random permutation of the classes
in each block of K consecutive clips (K classes), so every split is balanced
(exactly when its size is a multiple of K).

    splits = load_moving_digits(task="order", train_size=2000)
    x, y = splits.train          # (2000, 16, 32, 32, 1) float32, (2000,) int32

Memory: 16×32×32 float32 is 64 KiB a clip; the defaults (5,000 / 1,000 /
1,000) take 459 MB.
"""

import numpy as np

from glu_zoo.data.digits import Splits, load_digits

__all__ = ["TASKS", "CLASS_NAMES", "SPLITS", "make_clips", "digit_pools", "load_moving_digits"]

TASKS = ("direction", "order")
CLASS_NAMES = {
    "direction": ("up-left", "up-right", "down-left", "down-right"),
    "order": ("left first", "right first"),
}
SPLITS = ("train", "validation", "test")
_CHUNK = 512  # clips rendered at once (bounds the index arrays' memory)


def _owner(owner):
    return owner or "moving_digits"


def _check_int(name, value, low, owner):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}: `{name}` must be an integer ≥ {low}; got {value!r}.")
    return int(value)


def _image_hw(image_size, owner):
    if isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        h, w = image_size
    else:
        h = w = image_size
    for v in (h, w):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{owner}: `image_size` must be a positive integer or a pair (height, width) of "
                             f"them; got {image_size!r}.")
    return int(h), int(w)


def _check(task, frames, image_size, digit_scale, owner):
    """Validated (frames, height, width, sprite size)."""
    if task not in TASKS:
        raise ValueError(f"{owner}: unknown `task` {task!r}; allowed: {', '.join(TASKS)}.")
    frames = _check_int("frames", frames, 2, owner)
    scale = _check_int("digit_scale", digit_scale, 1, owner)
    h, w = _image_hw(image_size, owner)
    size = 8 * scale
    if task == "direction":
        if frames % 4 or frames < 8:
            raise ValueError(f"{owner}: `frames` must be a multiple of 4 and at least 8 for task='direction' (a "
                             f"clip is one whole period of the motion, in which each direction holds a quarter "
                             f"of the frames); got {frames}.")
        if min(h, w) < size + frames // 2:
            raise ValueError(f"{owner}: `image_size` {image_size!r} is too small for task='direction' with "
                             f"{frames} frames: a {size}×{size} digit (8×8 × digit_scale {scale}) must move at "
                             f"least a pixel a frame for its first two frames to tell the label, so height and "
                             f"width must be at least {size + frames // 2} ({size} + frames/2).")
    elif h < size or w < 2 * size:
        raise ValueError(f"{owner}: `image_size` {image_size!r} is too small for task='order': two {size}×{size} "
                         f"digits (8×8 × digit_scale {scale}) side by side need height ≥ {size} and "
                         f"width ≥ {2 * size}.")
    return frames, h, w, size


def digit_pools(digit_scale=2):
    """{split: (sprites float32 (n, 8·s, 8·s) in [0, 1], digit classes int32 (n,))}.

    The digits are split once and for all: test = `load_digits`'s test split
    (360 images), validation = 144 images carved from the rest with seed 0,
    train = the other 1,293; no image is in two splits.
    """
    digits = load_digits(upsample=digit_scale, normalize="unit", validation_size=0.1, seed=0)
    return {name: (split[0][..., 0], split[1]) for name, split in zip(SPLITS, (digits.train, digits.validation,
                                                                              digits.test))}


def _rng(seed, task, split, stream, i):
    return np.random.default_rng([seed, TASKS.index(task), SPLITS.index(split), stream, i])


def _labels(task, split, start, count, seed):
    """Labels of clips start … start+count−1: a permutation of the K classes per block of K clips."""
    k = len(CLASS_NAMES[task])
    first, last = start // k, (start + count + k - 1) // k
    blocks = [_rng(seed, task, split, 0, b).permutation(k) for b in range(first, last)]
    labels = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
    return labels[start - first * k: start - first * k + count].astype("int32")


def _fold(u, room):
    """Position in [0, room] of the unfolded coordinate u (period 2·room): bouncing off 0 and room."""
    u = np.mod(u, 2 * room)
    return np.where(u <= room, u, 2 * room - u)


def _direction_params(rng, label, frames, h, w, pool):
    """Sprite index and the (frames, 2) top-left positions (row, column) of one clip."""
    sprite = rng.integers(len(pool[0]))
    fast = rng.integers(2)  # which axis completes two periods (the other one)
    positions = np.empty((frames, 2), np.int64)
    t = np.arange(frames)
    for axis, (room, moving_forward) in enumerate(((h, label // 2), (w, label % 2))):
        room = room - pool[0].shape[1]
        k = 2 if axis == fast else 1
        # Phases j·δ, δ = 2·room/frames: u in [0, room) moves down/right, [room, 2·room) up/left.
        j = rng.integers(frames // 2) + (0 if moving_forward else frames // 2)
        u = _fold((j + k * t) * (2.0 * room / frames), room)
        positions[:, axis] = np.floor(u + 0.5)  # half up: np.rint's half-to-even would merge steps
    return sprite, positions


def _order_params(rng, label, frames, h, w, pool):
    """Sprite indices (left, right), top-left positions (2, 2) and visibility (2, frames) of one clip."""
    images, classes = pool
    size = images.shape[1]
    left = rng.integers(len(images))
    while True:
        right = rng.integers(len(images))
        if classes[right] != classes[left]:
            break
    corners = np.array([[rng.integers(h - size + 1), rng.integers(w // 2 - size + 1)],
                        [rng.integers(h - size + 1), w - w // 2 + rng.integers(w // 2 - size + 1)]])
    duration = rng.integers(max(1, frames // 4), frames // 2 + 1)
    gap = rng.integers(1, min(duration, frames - duration) + 1)
    start = rng.integers(frames - gap - duration + 1)
    t = np.arange(frames)
    first = (t >= start) & (t < start + duration)
    second = (t >= start + gap) & (t < start + gap + duration)
    visible = np.stack([first, second] if label == 0 else [second, first])
    return (left, right), corners, visible


def _paste(flat, shape, first, sprites, corners, weights):
    """Clip n = first + m gets clips[n, t, r + i, c + j] = sprites[m, i, j] · weights[m, t] with
    corners[m, t] = (r, c); `flat` is the C-order buffer of the clips, of `shape` (N, T, H, W)."""
    _, t, h, w = shape
    m, size = len(sprites), sprites.shape[-1]
    frame = (first + np.arange(m))[:, None] * t + np.arange(t)
    base = (frame * h + corners[:, :, 0]) * w + corners[:, :, 1]
    offset = (np.arange(size)[:, None] * w + np.arange(size)).ravel()
    flat[(base[:, :, None] + offset).ravel()] = (sprites[:, None] * weights[:, :, None, None]).ravel()


def make_clips(task, split, start=0, count=1, *, frames=16, image_size=32, digit_scale=2, seed=0, pools=None):
    """Clips start … start+count−1 of a split: x float32 (count, frames, H, W, 1) in [0, 1], y int32 (count,).

    Clip i depends only on (seed, task, split, i) and the shape arguments.
    `pools` (from `digit_pools(digit_scale)`) saves reloading the digits.
    """
    owner = "make_clips"
    frames, h, w, size = _check(task, frames, image_size, digit_scale, owner)
    if split not in SPLITS:
        raise ValueError(f"{owner}: unknown `split` {split!r}; allowed: {', '.join(SPLITS)}.")
    start = _check_int("start", start, 0, owner)
    count = _check_int("count", count, 0, owner)
    seed = _check_int("seed", seed, 0, owner)
    pool = (pools or digit_pools(digit_scale))[split]
    if pool[0].shape[1] != size:
        raise ValueError(f"{owner}: `pools` hold {pool[0].shape[1]}-pixel sprites, not the {size} of "
                         f"digit_scale {digit_scale}.")
    labels = _labels(task, split, start, count, seed)
    x = np.zeros((count, frames, h, w), np.float32)
    flat = x.reshape(-1)  # a view: x is new and C-contiguous
    for lo in range(0, count, _CHUNK):
        hi = min(count, lo + _CHUNK)
        params = [(_direction_params if task == "direction" else _order_params)(
            _rng(seed, task, split, 1, start + i), labels[i], frames, h, w, pool) for i in range(lo, hi)]
        if task == "direction":
            sprites = pool[0][[p[0] for p in params]]
            corners = np.stack([p[1] for p in params])
            _paste(flat, x.shape, lo, sprites, corners, np.ones((hi - lo, frames), np.float32))
        else:
            for side in range(2):  # the halves do not overlap
                sprites = pool[0][[p[0][side] for p in params]]
                corners = np.repeat(np.stack([p[1][side] for p in params])[:, None], frames, axis=1)
                weights = np.stack([p[2][side] for p in params]).astype(np.float32)
                _paste(flat, x.shape, lo, sprites, corners, weights)
    return x[..., None], labels


def load_moving_digits(task="direction", frames=16, image_size=32, digit_scale=2, train_size=5_000,
                       validation_size=1_000, test_size=1_000, seed=0):
    """Moving-digits splits: x float32 (N, frames, H, W, 1) in [0, 1], y int32 in [0, K).

    Args:
        task: "direction" (4 classes: up-left, up-right, down-left,
            down-right at the first frame) or "order" (2 classes: left digit
            first, right digit first).
        frames: frames a clip (≥ 2; for "direction" a multiple of 4, ≥ 8).
        image_size: an int or (height, width); at least 8·digit_scale + frames/2
            ("direction") or height 8·digit_scale, width 16·digit_scale ("order").
        digit_scale: pixel repetition of the 8×8 digits (2: 16×16 sprites).
        train_size, validation_size, test_size: clips a split (validation may be 0).
        seed: the clips' seed; the digits' split into train / validation / test
            does not depend on it.
    """
    owner = "load_moving_digits"
    frames, h, w, size = _check(task, frames, image_size, digit_scale, owner)
    sizes = {"train": _check_int("train_size", train_size, 1, owner),
             "validation": _check_int("validation_size", validation_size, 0, owner),
             "test": _check_int("test_size", test_size, 1, owner)}
    seed = _check_int("seed", seed, 0, owner)
    pools = digit_pools(digit_scale)
    options = dict(frames=frames, image_size=(h, w), digit_scale=digit_scale, seed=seed, pools=pools)
    splits = {name: make_clips(task, name, 0, n, **options) for name, n in sizes.items()}
    names = ", ".join(CLASS_NAMES[task])
    what = ("one digit moving at constant velocity and bouncing off the borders; label = its direction at "
            "the first frame" if task == "direction" else
            "two digits (left and right half) that pop in and out at different frames; label = which "
            "appears first")
    return Splits(
        train=splits["train"], validation=splits["validation"], test=splits["test"],
        num_classes=len(CLASS_NAMES[task]),
        description=f"moving_digits task={task!r} (seed {seed}): clips of {frames} frames of {h}×{w}, "
                    f"{size}×{size} digits; {what} ({names}); no single frame tells the label; "
                    f"{sizes['train']} / {sizes['validation']} / {sizes['test']} clips, the splits drawn "
                    f"from disjoint digit images (1,293 / 144 / 360)",
    )
