"""GRU-SVM (Agarap 2017, arXiv 1709.03082): a GRU over the sequence, its last
output into a linear L2-SVM head; the GRU-Softmax baseline beside it."""

import keras
import numpy as np
from keras import ops

from glu_zoo.layers.checks import check_choice, check_dropout, check_floating, check_number, check_positive_int
from glu_zoo.layers.svm import L2SVM, SquaredHinge, check_labels
from glu_zoo.models.base import ZooModel, check_sequence_length

__all__ = ["GRUSVM", "ARCHITECTURES", "RECURRENT", "HEADS"]

RECURRENT = ("keras", "parallel")
HEADS = ("svm", "softmax")


@keras.saving.register_keras_serializable(package="glu_zoo")
class GRUSVM(ZooModel):
    """GRU → last output → L2-SVM (or softmax) head, for sequences of feature vectors.

    h_T = GRU(Dropout(x))_T;  o = h_T W + b (decision values, head "svm",
    trained with ½‖W‖² + C·Σ_k max(0, 1 − y_k·o_k)², y in one-vs-rest ±1
    coding) or logits (head "softmax", cross-entropy). The class predicted is
    argmax o. The dropout is on the GRU's inputs, as the official code's
    `DropoutWrapper(input_keep_prob)`. `classification_loss()` is the loss to
    compile with (glu_zoo.training uses it); the ½‖W‖² is in `model.losses`.
    `fit` and `evaluate` check array labels before they start (out of
    range, or not in the head's codings: a ValueError naming them), and the
    inputs (shape, finite floats), as `model(x)` does for concrete inputs.

    Args:
        sequence_length: T, the steps of each input (a table's features).
        input_dim: features per step (1 for one value per step; 10 for the
            paper's deciles one-hot).
        num_classes: K ≥ 2 (the paper has two outputs for two classes).
        units: the GRU's width (the paper: 256 on Kyoto 2013).
        recurrent: "keras" (`keras.layers.GRU(reset_after=True)`) or
            "parallel" (`glu_zoo.layers.ParallelGRU`, the same weights).
        method: ParallelGRU's method ("auto", "deer", "quasi_deer",
            "sequential"); "auto" only with recurrent="keras".
        head: "svm" (the L2-SVM) or "softmax" (the baseline).
        C: the SVM's penalty parameter, > 0 (the paper: 0.5).
        dropout: rate in [0, 1) on the GRU's inputs.

        model = GRUSVM(sequence_length=30, input_dim=1, units=16)
        o = model(np.zeros((2, 30, 1), "float32"))   # decision values, (2, 2)
        model.compile("adam", loss=model.classification_loss(), metrics=["accuracy"])
    """

    def __init__(self, sequence_length=30, input_dim=1, num_classes=2, units=256, recurrent="keras", method="auto",
                 head="svm", C=0.5, dropout=0.0, **kwargs):
        owner = "GRUSVM"
        check_sequence_length(sequence_length, owner, required=True)
        for arg, value in [("input_dim", input_dim), ("num_classes", num_classes), ("units", units)]:
            check_positive_int(arg, value, owner)
        if num_classes < 2:
            raise ValueError(f"{owner}: `num_classes` must be at least 2 (one output per class); got {num_classes!r}.")
        check_choice("recurrent", recurrent, RECURRENT, owner)
        check_choice("head", head, HEADS, owner)
        C = check_number("C", C, owner, low=0.0)
        dropout = check_dropout(dropout, owner)
        if recurrent == "keras" and method != "auto":
            raise ValueError(f"{owner}: `method` {method!r} is ParallelGRU's; with recurrent='keras' it must be "
                             f"'auto'.")
        kwargs.setdefault("name", "gru_svm" if head == "svm" else "gru_softmax")

        # === Layers ===
        drop = keras.layers.Dropout(dropout, name="input_dropout") if dropout else None
        if recurrent == "keras":
            gru = keras.layers.GRU(units, reset_after=True, name="gru")
        else:
            from glu_zoo.layers import ParallelGRU  # lazily: the keras path needs none of it

            gru = ParallelGRU(units, method=method, name="gru")
        if head == "svm":
            classifier = L2SVM(num_classes, C=C, name="head")
        else:
            classifier = keras.layers.Dense(num_classes, name="head")

        # === Functional Model ===
        inputs = keras.Input(shape=(sequence_length, input_dim), name="sequence")
        x = drop(inputs) if drop is not None else inputs
        outputs = classifier(gru(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.sequence_length = sequence_length
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.units = units
        self.recurrent = recurrent
        self.method = method
        self.head = head
        self.C = C
        self.dropout = dropout

    def classification_loss(self):
        """The loss to train with: `SquaredHinge(C)` (head "svm"; with the ½‖W‖²
        in `model.losses`, the L2-SVM objective) or sparse cross-entropy from
        logits (head "softmax"). Labels: class ids."""
        if self.head == "svm":
            return SquaredHinge(C=self.C)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def check_labels(self, y, name="labels"):
        """A ValueError unless `y` (an array; data sets are left to the loss) holds labels the head's loss
        takes: class ids in [0, K) (both heads), or one-hot or ±1 labels (batch, K) (head "svm")."""
        if y is None or isinstance(y, dict) or not hasattr(y, "shape") and not isinstance(y, (list, tuple)):
            return
        check_labels(y, (None, self.num_classes), self._owner(name), name="y", ids_only=self.head != "svm")

    def fit(self, x=None, y=None, *args, **kwargs):
        self.check_labels(y, "training labels")
        validation = kwargs.get("validation_data")
        if isinstance(validation, (tuple, list)) and len(validation) >= 2:
            self.check_labels(validation[1], "validation labels")
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if not self._inside_own_loop:  # fit's validation: checked before fit began
            self.check_labels(y)
        return super().evaluate(x, y, *args, **kwargs)

    def predict_classes(self, x, **kwargs):
        """argmax of the decision values (or logits), int, shape (batch,)."""
        return np.argmax(self.predict(x, verbose=0, **kwargs), axis=-1)

    def check_inputs(self, x, name=None):
        """The base checks (rank, T, features), then floating values with no NaN or infinity."""
        super().check_inputs(x, name)
        shape = getattr(x, "shape", None)
        if shape is None or isinstance(x, dict) or not np.prod(shape):
            return
        owner = self._owner(name)
        if ops.is_tensor(x):
            dtype = keras.backend.standardize_dtype(x.dtype)
        else:
            x = np.asarray(x)
            dtype = str(x.dtype)
        check_floating(dtype, owner)
        finite = ops.convert_to_numpy(ops.isfinite(x)) if ops.is_tensor(x) else np.isfinite(x)
        if not finite.all():
            where = np.unravel_index(int(np.argmin(finite)), finite.shape)
            raise ValueError(f"{owner}: the inputs must be finite; got NaN or infinity at index "
                             f"{tuple(map(int, where))} (example {int(where[0])}, step {int(where[1])}, "
                             f"feature {int(where[2])}).")

    def get_config(self):
        return {
            **super().get_config(),
            "sequence_length": self.sequence_length,
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "units": self.units,
            "recurrent": self.recurrent,
            "method": self.method,
            "head": self.head,
            "C": self.C,
            "dropout": self.dropout,
        }


ARCHITECTURES = {
    # The paper's size on Kyoto 2013: 21 features, each deciles one-hot (10), GRU(256), C = 0.5, keep 0.85.
    "gru_svm": (GRUSVM, dict(sequence_length=21, input_dim=10, num_classes=2, units=256, head="svm", C=0.5,
                             dropout=0.15)),
    "gru_softmax": (GRUSVM, dict(sequence_length=21, input_dim=10, num_classes=2, units=256, head="softmax",
                                 dropout=0.15)),
    # The WDBC recipes' size: the 30 standardised features, one per step.
    "gru_svm_wdbc": (GRUSVM, dict(sequence_length=30, input_dim=1, num_classes=2, units=64, head="svm", C=0.5)),
    "gru_softmax_wdbc": (GRUSVM, dict(sequence_length=30, input_dim=1, num_classes=2, units=64, head="softmax")),
}
