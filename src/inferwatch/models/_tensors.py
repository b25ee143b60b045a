"""What the tensor flavors (keras, torchscript) share: the input table and reading the output.

A tensor model takes one 2-D table ``[batch, n_features]`` of the schema's features in
the schema's order and answers one array per call.  How that array becomes predictions:

* ``(n,)`` or ``(n, 1)``: a regression value (a float), unless the model is known to be a
  binary classifier -- its output layer is a sigmoid (Keras), or exactly two class names
  are given (``models[].classes``, a TorchScript file's ``classes`` extra file).  Then the
  number is the probability of the *second* class (scikit-learn's and Keras'
  ``binary_crossentropy`` convention: label 1 is the positive one), the first gets
  ``1 - p``, and the value is the second class when ``p > 0.5`` (as
  ``LogisticRegression.predict`` decides: a tie goes to the first).
* ``(n, k)`` with ``k >= 2``: one score per class; the value is the class with the top
  score and ``probabilities`` maps every class to its probability.

Probabilities or logits: a Keras model says which through its output layer's activation
(softmax or sigmoid: probabilities; linear: logits).  When nothing says (TorchScript,
another activation), the call's whole output decides: every score in ``[0, 1]`` and, for
``k >= 2``, every row summing to 1 (within 1e-3) -> probabilities as they are; otherwise
logits, turned into probabilities with a softmax (``k >= 2``) or a sigmoid (binary).
Real logits are almost never all in [0, 1] with rows summing to 1, so the rule only errs
on contrived outputs; a model that must be read one way can end in a softmax/sigmoid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction

__all__ = ["OutputKind", "decode_output", "table"]

#: how a model's scores read: probabilities, logits, or decided from each call's output
OutputKind = Literal["probabilities", "logits", "auto"]

#: row sums further than this from 1 are not a probability distribution
_SUM_TOLERANCE = 1e-3


def table(
    instances: Sequence[Mapping[str, Any]], columns: Sequence[str], dtype: Any, source: str
) -> np.ndarray[Any, Any]:
    """The instances as a ``[batch, len(columns)]`` array of ``dtype`` (None is NaN).

    A value that is not a number (a string feature) cannot go in a numeric tensor: a
    ModelError naming the feature and the model, not numpy's bare ValueError.
    """
    rows = [[inst.get(c) for c in columns] for inst in instances]
    try:
        array = np.array(rows, dtype=np.float64 if np.dtype(dtype).kind == "f" else dtype)
    except (TypeError, ValueError):
        for row in rows:
            for name, value in zip(columns, row, strict=True):
                try:
                    float(value if value is not None else "nan")
                except (TypeError, ValueError):
                    raise ModelError(
                        f"{source} takes one numeric table of the schema's features; "
                        f"feature {name!r} has the value {value!r}, which is not a number"
                    ) from None
        raise
    return array.reshape(len(instances), len(columns)).astype(dtype, copy=False)


def decode_output(
    raw: Any,
    n: int,
    *,
    classes: Sequence[str] | None,
    kind: OutputKind,
    binary: bool,
    source: str,
) -> list[ModelPrediction]:
    """Predictions from a tensor model's output for ``n`` instances (module docstring).

    ``classes`` names the columns of a ``(n, k)`` output (``0 .. k-1`` when None; the
    value is then the integer index, as a scikit-learn classifier fitted on integer labels
    answers); ``binary`` says a one-number output is a binary classifier's score.
    """
    out = np.asarray(raw, dtype=np.float64)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim not in (1, 2) or out.shape[0] != n:
        raise ModelError(
            f"{source} answered an array of shape {list(np.shape(raw))} for {n} instance(s); "
            f"expected [{n}], [{n}, 1] or [{n}, classes]"
        )
    if out.ndim == 1:
        if classes is not None and len(classes) != 2:
            raise ModelError(
                f"{source} answered one score a row for {len(classes)} classes "
                "(one score is a regression value, or a binary classifier's with two classes)"
            )
        if not binary:
            return [ModelPrediction(v) for v in out.tolist()]
        positive = out if _reads_as_probabilities(out, kind, rows=False) else _sigmoid(out)
        out = np.stack([1.0 - positive, positive], axis=1)
        labels = _labels(classes, 2, source)
        return _classified(out, labels, ties_to_first=True)
    k = out.shape[1]
    labels = _labels(classes, k, source)
    if not _reads_as_probabilities(out, kind, rows=True):
        out = _softmax(out)
    return _classified(out, labels, ties_to_first=False)


def _labels(classes: Sequence[str] | None, k: int, source: str) -> list[Any]:
    if classes is None:
        return list(range(k))
    if len(classes) != k:
        raise ModelError(f"{source} answered {k} scores a row for {len(classes)} classes")
    return list(classes)


def _classified(
    proba: np.ndarray[Any, Any], labels: list[Any], *, ties_to_first: bool
) -> list[ModelPrediction]:
    keys = [str(c) for c in labels]
    rows: list[list[float]] = proba.tolist()
    if ties_to_first:  # binary: the second class only when its probability is above 0.5
        top: list[int] = (proba[:, 1] > 0.5).astype(int).tolist()
    else:
        top = proba.argmax(axis=1).tolist()
    return [
        ModelPrediction(labels[j], dict(zip(keys, row, strict=True)), row[j])
        for j, row in zip(top, rows, strict=True)
    ]


def _reads_as_probabilities(out: np.ndarray[Any, Any], kind: OutputKind, *, rows: bool) -> bool:
    if kind != "auto":
        return kind == "probabilities"
    if out.size == 0 or not np.all((out >= 0.0) & (out <= 1.0)):
        return False
    return not rows or bool(np.all(np.abs(out.sum(axis=1) - 1.0) <= _SUM_TOLERANCE))


def _softmax(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    result: np.ndarray[Any, Any] = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _sigmoid(logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    result: np.ndarray[Any, Any] = 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow warning
    return result
