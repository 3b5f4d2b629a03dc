import numpy as np
import pytest

from glu_zoo.models import ViViT, build
from glu_zoo.models.trecvit import ARCHITECTURES as TRECVIT
from glu_zoo.models.vivit import ARCHITECTURES as VIVIT
from tests import reference as ref
from tests.conftest import to_numpy
from tests.models import check_config_round_trip, check_fit_step, check_keras_round_trip, randomise, weights_of

SMALL = dict(frames=3, image_size=8, num_channels=2, patch_size=4, num_classes=3, hidden_dim=8, num_layers=2,
             num_heads=2, mlp_dim=12, mlp="gelu_tanh")


@pytest.fixture
def clips():
    return np.random.default_rng(5).normal(size=(2, 3, 8, 8, 2)).astype("float32")


@pytest.mark.parametrize("attention", ["joint", "frame"])
def test_matches_numpy_reference(attention, clips):
    model = ViViT(**SMALL, attention=attention)
    randomise(model, np.random.default_rng(3))
    expected = ref.vivit(clips.astype(np.float64), weights_of(model), 4, 2, "gelu_tanh", attention)
    np.testing.assert_allclose(to_numpy(model(clips)), expected, rtol=1e-5, atol=1e-5)
    table = model.get_layer("position_embedding").embeddings
    assert tuple(table.shape) == ((1 + 3 * 4) if attention == "joint" else (1 + 4), 8)


def test_joint_attention_mixes_time_and_the_per_frame_model_is_blind_to_order(clips):
    """The baseline's property: the per-frame model gives the same logits for
    the frames in any order, and equals the mean of its logits on each frame
    alone; the joint model sees the order."""
    reversed_clips = clips[:, ::-1].copy()
    frame = ViViT(**SMALL, attention="frame")
    randomise(frame, np.random.default_rng(1))
    np.testing.assert_allclose(to_numpy(frame(reversed_clips)), to_numpy(frame(clips)), rtol=1e-5, atol=1e-5)
    alone = np.mean([to_numpy(frame(clips[:, t:t + 1])) for t in range(3)], axis=0)
    np.testing.assert_allclose(to_numpy(frame(clips)), alone, rtol=1e-5, atol=1e-5)
    joint = ViViT(**SMALL, attention="joint")
    randomise(joint, np.random.default_rng(1))
    assert np.max(np.abs(to_numpy(joint(reversed_clips)) - to_numpy(joint(clips)))) > 1e-3


@pytest.mark.parametrize("attention", ["joint", "frame"])
def test_round_trips_and_a_fit_step(attention, clips, tmp_path):
    model = ViViT(**SMALL, attention=attention)
    check_keras_round_trip(model, clips, tmp_path)
    check_config_round_trip(model, clips)
    check_fit_step(model, clips, np.array([0, 2]), frozen=("attention/key/bias",))


@pytest.mark.parametrize("attention, shape, match", [
    ("joint", (2, 4, 8, 8, 2), r"exactly 3 frames \(its position table\); got shape \(2, 4, 8, 8, 2\)"),
    ("joint", (2, 8, 8, 2), r"expected frames of shape .* = \(None, None, 8, 8, 2\); got shape \(2, 8, 8, 2\)"),
    ("frame", (2, 3, 8, 4, 2), r"\(None, None, 8, 8, 2\); got shape \(2, 3, 8, 4, 2\)"),
    ("frame", (2, 3, 8, 8, 1), r"\(None, None, 8, 8, 2\); got shape \(2, 3, 8, 8, 1\)"),
])
def test_bad_clips_name_the_shapes(attention, shape, match):
    model = ViViT(**SMALL, attention=attention)
    with pytest.raises(ValueError, match=match):
        model.predict(np.zeros(shape, "float32"), verbose=0)
    with pytest.raises(ValueError, match=match.split("; got")[0]):
        model(np.zeros(shape, "float32"))


def test_per_frame_model_takes_any_number_of_frames_and_named_sizes():
    frame = ViViT(**SMALL, attention="frame")
    assert to_numpy(frame(np.zeros((1, 5, 8, 8, 2), "float32"))).shape == (1, 3)
    tiny, trecvit = VIVIT["vivit_tiny"][1], TRECVIT["trecvit_tiny"][1]
    for key in ("hidden_dim", "num_layers", "num_heads", "mlp_dim", "patch_size", "image_size", "mlp"):
        assert tiny[key] == trecvit[key], key
    assert VIVIT["frame_vit_tiny"][1] == dict(tiny, attention="frame")
    assert build("vivit_tiny", num_layers=1).num_layers == 1
    with pytest.raises(ValueError, match=r"ViViT: unknown `attention` 'space'; allowed: joint, frame"):
        ViViT(**SMALL, attention="space")
