"""Zoo models, one file per model, and their named architectures (timm style).

    model = glu_zoo.models.build("activator_vit_digits", num_layers=2)
    glu_zoo.models.list_architectures()
"""

from glu_zoo.models.activator import ARCHITECTURES as _ACTIVATOR, ActivatorViT
from glu_zoo.models.base import ZooModel
from glu_zoo.models.bilinear_mlp import ARCHITECTURES as _BILINEAR, BilinearMLP
from glu_zoo.models.glu_transformer import ARCHITECTURES as _GLU_TRANSFORMER, GLUTransformer
from glu_zoo.models.gru_svm import ARCHITECTURES as _GRU_SVM, GRUSVM
from glu_zoo.models.lru_classifier import ARCHITECTURES as _LRU, LRUClassifier
from glu_zoo.models.mosaic_bert import ARCHITECTURES as _MOSAIC_BERT, MosaicBERT
from glu_zoo.models.rectable import ARCHITECTURES as _RECTABLE, RecTable
from glu_zoo.models.transformer_classifier import ARCHITECTURES as _TRANSFORMER, TransformerClassifier
from glu_zoo.models.trecvit import ARCHITECTURES as _TRECVIT, TRecViT
from glu_zoo.models.vit import ARCHITECTURES as _VIT, ViT
from glu_zoo.models.vivit import ARCHITECTURES as _VIVIT, ViViT

__all__ = ["ActivatorViT", "BilinearMLP", "GLUTransformer", "GRUSVM", "LRUClassifier", "MosaicBERT", "RecTable", "TransformerClassifier", "TRecViT", "ViT", "ViViT",
           "ZooModel", "architecture_class", "build", "list_architectures"]

_ARCHITECTURES = {**_VIT, **_ACTIVATOR, **_LRU, **_TRANSFORMER, **_TRECVIT, **_VIVIT, **_RECTABLE, **_GRU_SVM,
                  **_GLU_TRANSFORMER, **_MOSAIC_BERT, **_BILINEAR}


def list_architectures():
    """Names accepted by `build`, sorted."""
    return sorted(_ARCHITECTURES)


def architecture_class(name):
    """The model class of a named architecture."""
    if name not in _ARCHITECTURES:
        raise ValueError(
            f"build: unknown architecture {name!r}; known: {', '.join(list_architectures())}."
        )
    return _ARCHITECTURES[name][0]


def build(name, **overrides):
    """The model of a named architecture, with any constructor argument overridden."""
    if name not in _ARCHITECTURES:
        raise ValueError(
            f"build: unknown architecture {name!r}; known: {', '.join(list_architectures())}."
        )
    cls, config = _ARCHITECTURES[name]
    return cls(**{**config, **overrides})
