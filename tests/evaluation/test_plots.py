import numpy as np
import pytest
from matplotlib import image as mpimg

from glu_zoo.evaluation import plot_correlations, plot_marginals
from tests.evaluation.tables import NUMERICAL, SPEC, toy


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def test_marginals_and_correlations_are_written_as_png(rng, tmp_path):
    real, synthetic = toy(rng, 200), toy(rng, 150, shift=0.5)
    for plot, name in ((plot_marginals, "marginals.png"), (plot_correlations, "correlations.png")):
        path = plot(real, synthetic, SPEC, tmp_path / name)
        picture = mpimg.imread(path)
        assert picture.ndim == 3 and min(picture.shape[:2]) > 100
        assert picture[..., :3].std() > 0.05  # something is drawn


def test_bad_tables_and_too_few_columns_are_named(rng, tmp_path):
    real = toy(rng, 50)
    with pytest.raises(ValueError, match=r"plot_marginals: `synthetic` must hold exactly the spec's columns.*"
                                         r"missing: \['colour'\]"):
        plot_marginals(real, real.drop(columns="colour"), SPEC, tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"plot_correlations: correlations need at least two numerical columns"):
        plot_correlations(real[["x", "colour"]], real[["x", "colour"]],
                          type(SPEC)(numerical=["x"], categorical=["colour"]), tmp_path / "c.png")
    assert not (tmp_path / "m.png").exists() and not (tmp_path / "c.png").exists()
    assert plot_correlations(real[["x", "y"]], real[["x", "y"]], NUMERICAL, tmp_path / "n.png").exists()
