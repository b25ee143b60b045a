"""ONNX adapter: an ONNX Runtime session (CPU) behind the ModelAdapter protocol.

Two input layouts are fed, chosen from the graph's inputs when the model loads:

* one 2-D input (``[batch, n_features]``): every instance becomes a row in the schema's
  column order, in the input's element type (what ``skl2onnx.to_onnx(model, X)`` makes for
  an all-numeric model);
* one input per feature (``[batch, 1]`` each, named after the columns): what skl2onnx's
  converters make for a ColumnTransformer pipeline with mixed types.  skl2onnx turns a
  column's name into an identifier (``"sepal length (cm)"`` -> ``sepal_length__cm_``),
  so an input matches a feature by its name or by that identifier.

Outputs: the label (or, for a regressor, the value) and, when the graph has one, the
probabilities, either as skl2onnx's default ``seq(map(label, float))`` (ZipMap) or as a
2-D tensor (``zipmap=False``).  Class names come from the model's metadata
(``classes``, a JSON list or comma-separated), else from the classifier node's
``classlabels_*`` attribute in the graph (read with the ``onnx`` package), else from the
probability map's keys as predictions arrive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from inferwatch.errors import ModelError
from inferwatch.models._base import ModelPrediction, to_python

__all__ = ["OnnxAdapter", "load_onnx"]

#: ONNX tensor element types inferwatch can feed, and the numpy dtype each is fed as
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}

#: (input name, the features it is fed, numpy dtype, rank: 2 for [batch, n], 1 for [batch])
_Feed = tuple[str, tuple[str, ...], Any, int]

#: classifier attributes that list the class labels, in the order of the probabilities
_CLASS_LABEL_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


def load_onnx(path: Path, feature_names: Sequence[str] | None, *, threads: int = 1) -> OnnxAdapter:
    """An :class:`OnnxAdapter` for the ONNX file ``path`` (raises ModelError if it cannot).

    ``threads`` is the session's intra-op thread count (one by default: the server runs
    many calls at once, and one thread per call keeps them from fighting over cores).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError(
            f"cannot load {path}: the onnx flavor needs onnxruntime "
            "(pip install 'inferwatch[onnx]')"
        ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's own InvalidProtobuf, Fail, ...
        text = " ".join(str(exc).split())[:300]
        raise ModelError(f"cannot load ONNX model {path}: {type(exc).__name__}: {text}") from exc
    meta = session.get_modelmeta().custom_metadata_map
    classes = _classes_from_metadata(meta) or _classes_from_graph(path)
    return OnnxAdapter(session, feature_names, classes=classes, source=str(path))


class OnnxAdapter:
    """Predict with an ONNX Runtime session; see the module docstring for the layouts.

    The value is the label output's value (a plain Python value: a float for a regressor);
    ``probabilities`` maps ``str(class)`` to its probability and ``score`` is the
    probability of the predicted class (the top one if the label is not among them).
    """

    flavor = "onnx"

    def __init__(
        self,
        session: Any,
        feature_names: Sequence[str] | None,
        *,
        classes: Sequence[str] | None = None,
        source: str = "the ONNX model",
    ) -> None:
        self.session = session
        self._source = source
        inputs = list(session.get_inputs())
        if not inputs:
            raise ModelError(f"{source} has no inputs")
        for i in inputs:
            if i.type not in _DTYPES:
                raise ModelError(
                    f"{source}: input {i.name!r} is a {i.type}; inferwatch feeds tensors of "
                    f"{', '.join(t[7:-1] for t in _DTYPES)}"
                )
        self._feeds: list[_Feed]
        if len(inputs) == 1 and (
            feature_names is None or _column_of(inputs[0], feature_names) is None
        ):
            self._feeds = [self._table_input(inputs[0], feature_names)]
        else:
            self._feeds = self._column_inputs(inputs, feature_names)
        #: the features each input is fed, by input name (what the model's graph declares)
        self.inputs: dict[str, tuple[str, ...]] = {name: cols for name, cols, _, _ in self._feeds}
        self.feature_names: tuple[str, ...] = tuple(
            dict.fromkeys(c for _, cols, _, _ in self._feeds for c in cols)
        )
        self._label, self._proba, self._zipmap = self._outputs(list(session.get_outputs()))
        self._keys: tuple[str, ...] | None = None if classes is None else tuple(classes)

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The class labels as strings (classifiers whose graph or metadata name them)."""
        return self._keys

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> list[ModelPrediction]:
        """One prediction per instance, in order."""
        feed = {
            name: _tensor(instances, cols, dtype, rank) for name, cols, dtype, rank in self._feeds
        }
        names = [self._label] if self._proba is None else [self._label, self._proba]
        out = self.session.run(names, feed)
        labels = np.asarray(out[0])
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        values = to_python(labels)
        if self._proba is None:
            return [ModelPrediction(v) for v in values]
        probabilities = self._probabilities(out[1])
        return [
            ModelPrediction(v, p, p.get(str(v), max(p.values(), default=0.0)))
            for v, p in zip(values, probabilities, strict=True)
        ]

    def _probabilities(self, raw: Any) -> list[dict[str, float]]:
        if self._zipmap:  # a list of {label: probability}, in class order
            rows = [{str(k): float(v) for k, v in row.items()} for row in raw]
            if self._keys is None and rows:
                self._keys = tuple(rows[0])
            return rows
        proba = np.asarray(raw, dtype=np.float64)
        if proba.ndim == 1:
            proba = proba[:, None]
        keys = self._keys or tuple(str(j) for j in range(proba.shape[1]))
        if len(keys) != proba.shape[1]:
            raise ModelError(
                f"{self._source} returned {proba.shape[1]} probabilities for {len(keys)} classes"
            )
        return [dict(zip(keys, row, strict=True)) for row in proba.tolist()]

    def _table_input(self, node: Any, feature_names: Sequence[str] | None) -> _Feed:
        """One 2-D input fed every feature in the schema's order."""
        if feature_names is None:
            raise ModelError(
                f"{self._source} takes one table {node.name!r} and does not record its "
                "columns' names; pass feature_names (the schema's)"
            )
        shape = list(node.shape)
        if len(shape) != 2:
            raise ModelError(
                f"{self._source}: input {node.name!r} has shape {shape}; inferwatch feeds "
                "one 2-D table [batch, features] or one [batch, 1] input per feature"
            )
        width = shape[1]
        if isinstance(width, int) and width != len(feature_names):
            raise ModelError(
                f"{self._source}: input {node.name!r} takes {width} features and the "
                f"schema has {len(feature_names)} ({', '.join(feature_names[:10])})"
            )
        return node.name, tuple(feature_names), _DTYPES[node.type], 2

    def _column_inputs(self, inputs: list[Any], feature_names: Sequence[str] | None) -> list[_Feed]:
        """One input per feature, matched by name."""
        feeds: list[_Feed] = []
        unmatched = []
        for node in inputs:
            column = node.name if feature_names is None else _column_of(node, feature_names)
            if column is None:
                unmatched.append(node.name)
                continue
            rank = len(node.shape)
            if rank not in (1, 2) or (rank == 2 and node.shape[1] not in (1, None)
                                      and isinstance(node.shape[1], int)):  # fmt: skip
                raise ModelError(
                    f"{self._source}: input {node.name!r} has shape {list(node.shape)}; "
                    "an input per feature must be [batch] or [batch, 1]"
                )
            feeds.append((node.name, (column,), _DTYPES[node.type], rank))
        if unmatched:
            known = ", ".join(map(repr, list(feature_names or ())[:20]))
            raise ModelError(
                f"{self._source} takes input(s) {', '.join(map(repr, unmatched))} that match "
                f"no feature of the schema ({known})"
            )
        return feeds

    def _outputs(self, outputs: list[Any]) -> tuple[str, str | None, bool]:
        """(label output, probabilities output or None, whether those are ZipMap dicts)."""
        if not outputs:
            raise ModelError(f"{self._source} has no outputs")
        proba = next((o for o in outputs if o.type.startswith("seq(map(")), None)
        zipmap = proba is not None
        if proba is None:
            proba = next(
                (o for o in outputs if o.type.startswith("tensor(") and "prob" in o.name.lower()),
                None,
            )
        label = next((o for o in outputs if o is not proba and o.type.startswith("tensor(")), None)
        if label is None:
            raise ModelError(
                f"{self._source} has no label or value output (outputs: "
                f"{', '.join(f'{o.name} {o.type}' for o in outputs)})"
            )
        return label.name, None if proba is None else proba.name, zipmap


def _column_of(node: Any, feature_names: Sequence[str]) -> str | None:
    """The feature an input is named after: by its name, or skl2onnx's identifier of it."""
    if node.name in feature_names:
        return str(node.name)
    for name in feature_names:
        if _identifier(name) == node.name:
            return name
    return None


def _identifier(name: str) -> str:
    """skl2onnx's input name for a column name (non-identifier characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _tensor(
    instances: Sequence[Mapping[str, Any]], columns: tuple[str, ...], dtype: Any, rank: int
) -> Any:
    """The instances' ``columns`` as a [batch, len(columns)] (or [batch]) array of ``dtype``.

    A missing value is NaN in a float tensor and "" in a string tensor; an integer tensor
    cannot hold one, and the call fails for that request.
    """
    if dtype is np.object_:
        data = [
            ["" if inst.get(c) is None else str(inst.get(c)) for c in columns] for inst in instances
        ]
        array = np.array(data, dtype=object).reshape(len(instances), len(columns))
    else:
        array = np.array([[inst.get(c) for c in columns] for inst in instances], dtype=dtype)
        array = array.reshape(len(instances), len(columns))
    return array[:, 0] if rank == 1 else array


def _classes_from_metadata(meta: Mapping[str, str]) -> tuple[str, ...] | None:
    """The ``classes`` metadata entry: a JSON list, or names separated by commas."""
    raw = meta.get("classes")
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        return tuple(str(c) for c in parsed)
    return tuple(c.strip() for c in raw.split(",") if c.strip())


def _classes_from_graph(path: Path) -> tuple[str, ...] | None:
    """The last classifier node's ``classlabels_*`` (None without the onnx package)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnxruntime read it; a reader mismatch only loses the names
        return None
    for node in reversed(model.graph.node):
        for attribute in node.attribute:
            if attribute.name in _CLASS_LABEL_ATTRIBUTES:
                values = onnx.helper.get_attribute_value(attribute)
                return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)
    return None
