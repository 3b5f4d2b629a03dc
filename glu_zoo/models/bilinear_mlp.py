"""Bilinear MLP (Pearce et al. 2024, arXiv 2410.08417): an image classifier
with no element-wise nonlinearity, so that its logits are a quadratic form of
the pixels that `glu_zoo.interpret.bilinear` decomposes exactly."""

import keras

from glu_zoo.layers.checks import check_number, check_positive_int
from glu_zoo.layers.embedding import check_image_shape
from glu_zoo.layers.ffn import GatedFFN
from glu_zoo.models.base import ImageClassifier

__all__ = ["BilinearMLP", "ARCHITECTURES"]


@keras.saving.register_keras_serializable(package="glu_zoo")
class BilinearMLP(ImageClassifier):
    """Bilinear MLP classifier, logits out, as the paper's image models.

    x = flatten(image) (plus Gaussian noise of std `input_noise` in training:
    the paper's regulariser), e = x·E (`embed`, no bias), then `num_layers`
    bias-free `GatedFFN(hidden_dim, variant="bilinear")` layers named
    `bilinear_{i}`: g(e) = ((e·W) ⊗ (e·V))·P. With one layer (the paper's
    model) P is the read-out: logits_c = Σ_k P_kc (w_k·e)(v_k·e) = xᵀQ_c x.
    With more, the first L−1 are residual blocks e ← e + g(e) of width
    `embed_dim` and the last one reads out the classes.

    Args:
        image_shape: (H, W, C), channels last.
        num_classes: width of the logits.
        embed_dim: width of the embedding E.
        hidden_dim: bilinear units per layer.
        num_layers: bilinear layers (1: the logits are one quadratic form).
        input_noise: std of the Gaussian noise added to the pixels in training.

        model = BilinearMLP(image_shape=(8, 8, 1), embed_dim=64, hidden_dim=64)
        logits = model(np.ones((2, 8, 8, 1), "float32"))
        logits.shape  # (2, 10)
    """

    def __init__(self, image_shape=(8, 8, 1), num_classes=10, embed_dim=64, hidden_dim=64, num_layers=1,
                 input_noise=0.0, **kwargs):
        owner = "BilinearMLP"
        image_shape = check_image_shape(image_shape, owner)
        for arg, value in [("num_classes", num_classes), ("embed_dim", embed_dim), ("hidden_dim", hidden_dim),
                           ("num_layers", num_layers)]:
            check_positive_int(arg, value, owner)
        input_noise = check_number("input_noise", input_noise, owner, low=0.0, low_open=False)
        kwargs.setdefault("name", "bilinear_mlp")

        # === Layers ===
        flatten = keras.layers.Flatten(name="flatten")
        noise = keras.layers.GaussianNoise(input_noise, name="input_noise") if input_noise else None
        embed = keras.layers.Dense(embed_dim, use_bias=False, name="embed")
        layers = [GatedFFN(hidden_dim, variant="bilinear", output_dim=num_classes if i == num_layers - 1 else None,
                           name=f"bilinear_{i}") for i in range(num_layers)]

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = flatten(images)
        if noise is not None:
            x = noise(x)
        x = embed(x)
        for layer in layers[:-1]:
            x = x + layer(x)
        logits = layers[-1](x)
        super().__init__(inputs=images, outputs=logits, **kwargs)
        self.input_spec = None  # the images are checked by check_images_shape (see ImageClassifier)

        # === Config ===
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.input_noise = input_noise

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "embed_dim": self.embed_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "input_noise": self.input_noise,
        }


ARCHITECTURES = {
    # The digits recipe's size: 64 pixels, embedding 64, 64 bilinear units, one layer.
    "bilinear_mlp_digits": (BilinearMLP, dict(image_shape=(8, 8, 1), num_classes=10, embed_dim=64, hidden_dim=64,
                                              num_layers=1, input_noise=0.4)),
    # The paper's MNIST model: 784 pixels, embedding and hidden width 256.
    "bilinear_mlp_mnist": (BilinearMLP, dict(image_shape=(28, 28, 1), num_classes=10, embed_dim=256,
                                             hidden_dim=256, num_layers=1, input_noise=0.4)),
}
