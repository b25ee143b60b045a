"""The Open Inference Protocol (KServe's "V2" REST protocol) beside our V1 routes.

Clients written for KServe, MLServer or Triton (tritonclient's HTTP client in JSON mode)
talk to inferwatch unchanged::

    GET  /v2                                     server metadata
    GET  /v2/health/live                         the process answers
    GET  /v2/health/ready                        the checks of /readyz
    GET  /v2/models/{name}[/versions/{v}]        model metadata (inputs, outputs)
    GET  /v2/models/{name}[/versions/{v}]/ready  the model is served
    POST /v2/models/{name}[/versions/{v}]/infer  predict, validated and logged like V1

A request's tensors become the rows V1 takes, then go through the same path: the schema's
compiled validator, :func:`~inferwatch.server._predict.answer_rows` (the model, the
prediction log, the request metrics) and :func:`~inferwatch.server._predict.count_refusal`
(a refusal counted in ``inferwatch_requests_rejected_total``), so a prediction looks the
same in the store and the metrics whichever protocol asked for it.

Inputs, as MLServer's pandas codec takes them: one tensor per feature, named after it,
shape ``[n]`` or ``[n, 1]`` (``[n, d]`` for an embedding of dimension d); or, when every
feature is numeric, one 2-D tensor ``[n, len(features)]`` of any name, columns in the
schema's order.  ``data`` is row-major, flat or nested to the shape.  Numeric features take
any integer or floating datatype, categorical and text features ``BYTES``, booleans
``BOOL``, datetimes ``BYTES`` (ISO 8601) or a number.  Outputs, named as MLServer's
scikit-learn runtime names them: ``predict`` (``[n, 1]``) and, for a classifier,
``predict_proba`` (``[n, classes]``, the class names in its ``parameters.classes``);
the request's ``outputs`` picks among them.  The prediction ids (for
``/v1/models/{name}/feedback``) are in the answer's ``parameters.prediction_ids`` and, for
at most 100 rows, the ``X-Prediction-Ids`` header.

Only the JSON form is spoken: the binary tensor extension (``Inference-Header-Content-Length``,
``binary_data``, ``binary_data_output``) and shared memory get a 400 saying so.  Errors are
``{"error": "message", "code": ..., "details": [...]}``: the protocol's string ``error``,
which tritonclient shows as its exception's text, with our code and field details beside it.

A body without a Content-Type is read as JSON (tritonclient sends none) unless the request
carries an ``Origin`` header: a browser adds one to every cross-site POST, and a page must
not make a loopback server log predictions with a type-less body that skips CORS'
preflight; any other type than JSON is refused with 415, as on V1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Final

import msgspec
from fastapi import FastAPI, Request, Response

from inferwatch._version import __version__
from inferwatch._wire import json_encoder
from inferwatch.errors import FieldError, ValidationError, echo
from inferwatch.metrics import UNKNOWN_MODEL, Metrics
from inferwatch.models import to_python
from inferwatch.monitor import Monitor
from inferwatch.ports import Prediction, Store
from inferwatch.schema import Feature
from inferwatch.server._errors import ApiError, error_response
from inferwatch.server._predict import (
    MAX_ID_HEADER,
    answer_rows,
    count_refusal,
    decode,
    is_json_media_type,
    read_body,
)
from inferwatch.server._registry import ModelRegistry
from inferwatch.server._routes import StoreProbe
from inferwatch.server._served import ServedModel
from inferwatch.server._versions import Versions

__all__ = ["PREDICT", "PREDICT_PROBA", "add_v2_routes", "decode_inputs", "model_metadata"]

#: the outputs' names, as MLServer's scikit-learn runtime names them
PREDICT: Final = "predict"
PREDICT_PROBA: Final = "predict_proba"

_INTEGER_TYPES = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
)
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64", "BF16"})
_NUMBER_TYPES = _INTEGER_TYPES | _FLOAT_TYPES
_DATATYPES = _NUMBER_TYPES | {"BOOL", "BYTES"}
#: the datatypes each feature kind accepts (the first is the one metadata advertises)
_ACCEPTS: Final[Mapping[str, tuple[str, ...]]] = {
    "numeric": ("FP64", *sorted(_NUMBER_TYPES - {"FP64"})),
    "embedding": ("FP64", *sorted(_NUMBER_TYPES - {"FP64"})),
    "categorical": ("BYTES",),
    "text": ("BYTES",),
    "boolean": ("BOOL",),
    "datetime": ("BYTES", *sorted(_NUMBER_TYPES)),
}
_BODY_KEYS = frozenset({"id", "parameters", "inputs", "outputs"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "parameters", "data"})
_OUTPUT_KEYS = frozenset({"name", "parameters"})
MAX_REQUEST_ID = 256
_USE_JSON = (
    "inferwatch speaks the JSON form of the protocol only: send every tensor as JSON "
    "(tritonclient: set_data_from_numpy(..., binary_data=False) and "
    "InferRequestedOutput(name, binary_data=False) for each output wanted)"
)


def _invalid(field: str, message: str, code: str = "invalid_tensor") -> ApiError:
    return ApiError(400, code, message, (FieldError(code, field, message),))


def _binary(field: str, what: str) -> ApiError:
    return _invalid(field, f"{what}: {_USE_JSON}", "binary_data_unsupported")


def _datatype_of(feature: Feature) -> str:
    return _ACCEPTS[feature.kind][0]


def _tensor_shape(feature: Feature) -> list[int]:
    if feature.kind == "embedding":
        return [-1, feature.dimension if feature.dimension is not None else -1]
    return [-1]


def model_metadata(served: ServedModel, versions: Sequence[str]) -> dict[str, Any]:
    """The protocol's model metadata: inputs one per feature (the pandas-codec convention),
    outputs ``predict`` and, for a classifier, ``predict_proba``."""
    inputs = [
        {"name": f.name, "datatype": _datatype_of(f), "shape": _tensor_shape(f)}
        for f in served.schema.features
    ]
    classes = served.adapter.classes
    if served.task == "regression":
        predict_type = "FP64"
    elif classes and all(_is_int_text(c) for c in classes):
        predict_type = "INT64"
    else:
        predict_type = "BYTES"
    outputs: list[dict[str, Any]] = [{"name": PREDICT, "datatype": predict_type, "shape": [-1, 1]}]
    if classes:
        outputs.append(
            {
                "name": PREDICT_PROBA,
                "datatype": "FP64",
                "shape": [-1, len(classes)],
                "parameters": {"classes": list(classes)},
            }
        )
    return {
        "name": served.name,
        "versions": list(versions),
        "platform": served.adapter.flavor,
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"content_type": "pd", "task": served.task},
    }


def _is_int_text(text: str) -> bool:
    body = text[1:] if text.startswith("-") else text
    return body.isdigit() and body.isascii()


# --- decoding a request -----------------------------------------------------------------


def _element_ok(datatype: str, value: Any) -> bool:
    """Whether one JSON element fits ``datatype`` (null is left to the validator)."""
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if datatype in _INTEGER_TYPES:
        return isinstance(value, int) and (value >= 0 or not datatype.startswith("U"))
    return isinstance(value, int | float)


def _flatten(data: Any, shape: list[int], where: str) -> list[Any]:
    """``data`` as a flat row-major list of ``prod(shape)`` elements: given flat, or nested
    exactly to ``shape``."""
    if not isinstance(data, list):
        raise _invalid(where, f"{where}: 'data' must be a list (JSON tensors only). {_USE_JSON}")
    size = math.prod(shape)
    if list not in set(map(type, data)):  # flat (the type scan runs at C speed)
        if len(data) != size:
            raise _invalid(
                where, f"{where}: shape {shape} holds {size} elements but 'data' has {len(data)}"
            )
        return data
    flat: list[Any] = []
    level: list[Any] = [data]
    for depth, dim in enumerate(shape):
        nxt: list[Any] = []
        for item in level:
            if not isinstance(item, list) or len(item) != dim:
                raise _invalid(
                    where,
                    f"{where}: nested 'data' does not match shape {shape} at depth {depth} "
                    "(send it flat, row-major, or nested exactly to the shape)",
                )
            nxt.extend(item)
        level = nxt
    for value in level:
        if isinstance(value, list):
            raise _invalid(where, f"{where}: 'data' is nested deeper than shape {shape}")
        flat.append(value)
    return flat


def _shape_of(tensor: Mapping[str, Any], where: str) -> list[int]:
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise _invalid(where, f"{where}: 'shape' must be a non-empty list of sizes (>= 0)")
    return shape


def _check_parameters(params: Any, where: str) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _invalid(f"{where}.parameters", f"{where}.parameters must be an object")
    if params.get("binary_data_size") is not None:
        raise _binary(where, f"{where} is sent as binary data")
    if params.get("shared_memory_region") is not None:
        raise _binary(where, f"{where} names a shared-memory region")
    return params


def _unknown_keys(obj: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = [echo(str(k)) for k in obj if k not in allowed]
    if unknown:
        raise _invalid(
            where,
            f"{where}: unknown key(s) {', '.join(map(repr, unknown[:5]))}; "
            f"expected {', '.join(sorted(allowed))}",
            "invalid_body",
        )


def _columns_of_table(
    flat: list[Any], n: int, d: int, features: Sequence[Feature]
) -> dict[str, list[Any]]:
    return {f.name: flat[j::d] if n else [] for j, f in enumerate(features)}


def decode_inputs(served: ServedModel, inputs: Any) -> list[dict[str, Any]]:
    """The rows (one dict per instance, as V1's ``instances``) that ``inputs`` encode.

    Checks the tensors (names, shapes, datatypes, lengths) and raises :class:`ApiError`
    400 naming ``inputs[i]`` and its tensor, or :class:`ValidationError` for a feature's
    tensor that is missing or of the wrong datatype; the values themselves are checked by
    the model's validator afterwards, as V1's are.
    """
    if not isinstance(inputs, list) or not inputs:
        raise _invalid("inputs", "'inputs' must be a non-empty list of tensors", "invalid_body")
    features = served.schema.features
    by_name = {f.name: f for f in features}
    columns: dict[str, list[Any]] = {}
    rows_of: dict[str, tuple[int, str]] = {}  # feature -> (rows, where) for the length check
    for i, tensor in enumerate(inputs):
        at = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise _invalid(at, f"{at} must be a tensor object (name, shape, datatype, data)")
        _unknown_keys(tensor, _TENSOR_KEYS, at)
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{at}.name", f"{at}: 'name' must be a non-empty string")
        where = f"{at} ({echo(name)!r})"
        _check_parameters(tensor.get("parameters"), where)
        datatype = tensor.get("datatype")
        if datatype not in _DATATYPES:
            shown = echo(str(datatype)) if isinstance(datatype, str) else type(datatype).__name__
            raise _invalid(
                f"{at}.datatype",
                f"{where}: unknown datatype {shown!r}; expected one of "
                f"{', '.join(sorted(_DATATYPES))}",
            )
        if "data" not in tensor:
            raise _binary(where, f"{where} has no 'data'")
        shape = _shape_of(tensor, where)
        feature = by_name.get(name)
        if name in columns:
            raise _invalid(f"{at}.name", f"{where}: a second tensor named {echo(name)!r}")
        if feature is None and len(inputs) == 1 and len(shape) == 2:
            _table(served, tensor, shape, datatype, where, columns)
            rows_of[name] = (shape[0], where)
            continue
        if feature is None:
            if served.validator.allow_extra:
                continue
            raise ValidationError(
                "unknown_feature",
                f"{where}: no feature named {echo(name)!r} in model {served.name!r}'s schema "
                f"(features: {', '.join(served.schema.names)})",
                (FieldError("unknown_feature", echo(name), f"{where}: not in the schema"),),
            )
        if datatype not in _ACCEPTS[feature.kind]:
            raise _wrong_datatype(feature, datatype, where)
        columns[name] = _feature_column(feature, tensor["data"], shape, datatype, where)
        rows_of[name] = (len(columns[name]), where)
    lengths = {n for n, _ in rows_of.values()}
    if len(lengths) > 1:
        (first, first_at), *_ = rows_of.values()
        other = next((n, w) for n, w in rows_of.values() if n != first)
        raise _invalid(
            other[1],
            f"{other[1]} holds {other[0]} rows but {first_at} holds {first}: every input "
            "tensor needs one element per instance",
        )
    missing = [f for f in features if f.name not in columns and not f.nullable]
    if missing:
        listed = ", ".join(repr(m.name) for m in missing[:5])
        table = " (or one [n, d] tensor of them all in order)" if _all_numeric(served) else ""
        raise ValidationError(
            "missing_feature",
            f"no input tensor for feature(s) {listed} of model {served.name!r}: send one "
            f"tensor per feature, named after it{table}",
            tuple(
                FieldError("missing_feature", m.name, f"no tensor named {m.name!r}", None, m.kind)
                for m in missing[:20]
            ),
        )
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _all_numeric(served: ServedModel) -> bool:
    return all(f.kind == "numeric" for f in served.schema.features)


def _wrong_datatype(feature: Feature, datatype: str, where: str) -> ValidationError:
    accepts = _ACCEPTS[feature.kind]
    wanted = "BYTES" if accepts == ("BYTES",) else ("BOOL" if accepts == ("BOOL",) else None)
    expected = wanted or (
        "a number type (FP64, INT64, ...)" + (" or BYTES" if "BYTES" in accepts else "")
    )
    message = (
        f"{where}: datatype {datatype} does not fit feature {feature.name!r} "
        f"({feature.kind}); send {expected}"
    )
    return ValidationError(
        "wrong_type",
        message,
        (FieldError("wrong_type", feature.name, message, None, feature.kind),),
    )


#: the JSON element types each datatype takes (null is left to the validator to judge);
#: ``bool`` is its own type here, so a boolean is never taken for a number
_ELEMENT_TYPES: Final[Mapping[str, frozenset[type]]] = {
    **{t: frozenset({int, type(None)}) for t in _INTEGER_TYPES},
    **{t: frozenset({int, float, type(None)}) for t in _FLOAT_TYPES},
    "BOOL": frozenset({bool, type(None)}),
    "BYTES": frozenset({str, type(None)}),
}


def _check_elements(flat: list[Any], datatype: str, where: str) -> None:
    """Refuse an element that does not fit ``datatype``, naming the first.  The common case
    (every element fits) is one scan of the element types at C speed."""
    if set(map(type, flat)) <= _ELEMENT_TYPES[datatype] and (
        not datatype.startswith("UINT") or all(v is None or v >= 0 for v in flat)
    ):
        return
    for k, value in enumerate(flat):
        if not _element_ok(datatype, value):
            shown = echo(repr(value), 40)
            raise _invalid(
                where,
                f"{where}: datatype {datatype} but data[{k}] is {type(value).__name__} {shown}",
                "wrong_type",
            )


def _feature_column(
    feature: Feature, data: Any, shape: list[int], datatype: str, where: str
) -> list[Any]:
    if feature.kind == "embedding":
        if len(shape) != 2 or (feature.dimension is not None and shape[1] != feature.dimension):
            dim = feature.dimension if feature.dimension is not None else "d"
            raise _invalid(
                where, f"{where}: shape must be [n, {dim}] for an embedding, got {shape}"
            )
        flat = _flatten(data, shape, where)
        _check_elements(flat, datatype, where)
        d = shape[1]
        return [flat[i * d : (i + 1) * d] for i in range(shape[0])]
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise _invalid(where, f"{where}: shape must be [n] or [n, 1] for one feature, got {shape}")
    flat = _flatten(data, shape, where)
    _check_elements(flat, datatype, where)
    return flat


def _table(
    served: ServedModel,
    tensor: Mapping[str, Any],
    shape: list[int],
    datatype: str,
    where: str,
    columns: dict[str, list[Any]],
) -> None:
    """One [n, d] tensor of every feature in schema order (all-numeric schemas only)."""
    features = served.schema.features
    if not _all_numeric(served):
        kinds = sorted({f.kind for f in features} - {"numeric"})
        raise _invalid(
            where,
            f"{where}: not a feature of model {served.name!r}, and one [n, d] tensor of all "
            f"features is taken only when every feature is numeric ({', '.join(kinds)} "
            "features here): send one tensor per feature, named after it",
        )
    if shape[1] != len(features):
        raise _invalid(
            where,
            f"{where}: shape {shape} has {shape[1]} columns; model {served.name!r} takes "
            f"{len(features)} features ({', '.join(served.schema.names)}) in that order",
        )
    if datatype not in _NUMBER_TYPES:
        raise _invalid(
            where, f"{where}: datatype {datatype}; the features are numeric", "wrong_type"
        )
    flat = _flatten(tensor["data"], shape, where)
    _check_elements(flat, datatype, where)
    columns.update(_columns_of_table(flat, shape[0], shape[1], features))


def _requested_outputs(served: ServedModel, outputs: Any) -> tuple[str, ...] | None:
    """The outputs the request names (None: every output the model gives)."""
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise _invalid("outputs", "'outputs' must be a list of {\"name\": ...}", "invalid_body")
    known = (PREDICT, PREDICT_PROBA) if served.adapter.classes else (PREDICT,)
    names: list[str] = []
    for i, out in enumerate(outputs):
        at = f"outputs[{i}]"
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise _invalid(at, f"{at} must be an object with a 'name'", "invalid_body")
        _unknown_keys(out, _OUTPUT_KEYS, at)
        name = out["name"]
        where = f"{at} ({echo(name)!r})"
        params = _check_parameters(out.get("parameters"), where)
        if params.get("binary_data"):
            raise _binary(where, f"{where} asks for binary data")
        if params.get("classification"):
            raise _invalid(
                where,
                f"{where}: the classification extension is not supported; ask for "
                f"{PREDICT!r} and {PREDICT_PROBA!r}",
            )
        if name not in known:
            raise _invalid(
                f"{at}.name",
                f"{where}: model {served.name!r} has no output {echo(name)!r}; "
                f"its outputs: {', '.join(known)}",
                "unknown_output",
            )
        if name not in names:
            names.append(name)
    return tuple(names)


# --- encoding an answer -----------------------------------------------------------------


def _predict_output(values: list[Any]) -> dict[str, Any]:
    """``predict`` as a [n, 1] tensor, its datatype from the values (labels or numbers)."""
    if values and all(isinstance(v, bool) for v in values):
        datatype, data = "BOOL", values
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        datatype, data = "INT64", values
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        datatype, data = "FP64", [float(v) for v in values]
    else:
        datatype = "BYTES"
        data = [v if isinstance(v, str) else msgspec.json.encode(v).decode() for v in values]
    return {"name": PREDICT, "datatype": datatype, "shape": [len(values), 1], "data": data}


def _proba_output(served: ServedModel, predictions: Sequence[Prediction]) -> dict[str, Any] | None:
    probabilities = [p.probabilities for p in predictions]
    if not probabilities or any(p is None for p in probabilities):
        return None
    classes = list(served.adapter.classes or next(iter(probabilities)) or ())
    data = [float(p.get(c, 0.0)) for p in probabilities if p is not None for c in classes]
    return {
        "name": PREDICT_PROBA,
        "datatype": "FP64",
        "shape": [len(probabilities), len(classes)],
        "parameters": {"classes": classes},
        "data": data,
    }


def _encoder_for(
    request_id: str | None, wanted: tuple[str, ...] | None
) -> Callable[[ServedModel, list[str], Sequence[Prediction]], bytes]:
    def encode(served: ServedModel, ids: list[str], predictions: Sequence[Prediction]) -> bytes:
        outputs: list[dict[str, Any]] = []
        if wanted is None or PREDICT in wanted:
            outputs.append(_predict_output([to_python(p.value) for p in predictions]))
        if wanted is None or PREDICT_PROBA in wanted:
            proba = _proba_output(served, predictions)
            if proba is None and wanted is not None:
                raise ApiError(
                    400,
                    "unknown_output",
                    f"model {served.name!r} gave no probabilities for this batch: ask for "
                    f"{PREDICT!r} only",
                    (FieldError("unknown_output", PREDICT_PROBA, "no probabilities"),),
                )
            if proba is not None:
                outputs.append(proba)
        if wanted is not None:  # in the order asked
            outputs.sort(key=lambda o: wanted.index(o["name"]))
        body: dict[str, Any] = {"model_name": served.name, "model_version": served.version}
        if request_id is not None:
            body["id"] = request_id
        body["parameters"] = {"prediction_ids": ids}
        body["outputs"] = outputs
        return _encoder.encode(body)

    return encode


_encoder = json_encoder


def _json(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status, media_type="application/json")


# --- the routes -------------------------------------------------------------------------


def _request_id(payload: Mapping[str, Any]) -> str | None:
    rid = payload.get("id")
    if rid is None:
        return None
    if not isinstance(rid, str) or len(rid) > MAX_REQUEST_ID:
        raise _invalid(
            "id", f"'id' must be a string of at most {MAX_REQUEST_ID} characters", "invalid_body"
        )
    return rid


def _check_body(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise _invalid(
            "(body)", 'the body must be a JSON object: {"inputs": [{...}, ...]}', "invalid_body"
        )
    _unknown_keys(payload, _BODY_KEYS, "the body")
    params = payload.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise _invalid("parameters", "'parameters' must be an object", "invalid_body")
    if params and params.get("binary_data_output"):
        raise _binary("parameters", "'parameters.binary_data_output' asks for binary outputs")
    return payload


def _check_media_type(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if not content_type and "origin" not in request.headers:
        return  # tritonclient sends no Content-Type; a browser would send an Origin
    if not is_json_media_type(content_type):
        got = "no Content-Type" if not content_type else f"Content-Type {echo(content_type)!r}"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON sent as Content-Type: application/json (got {got})",
        )


def add_v2_routes(
    app: FastAPI,
    models: Mapping[str, ServedModel],
    *,
    registry: ModelRegistry,
    monitor: Monitor,
    metrics: Metrics,
    store: Store,
    accepting: Callable[[], bool],
    max_body_bytes: int,
    versions: Versions | None = None,
) -> None:
    """Register the Open Inference Protocol routes for ``models`` (the live version of each,
    read on every request) and the A/B groups of ``versions``."""
    splits = versions.splits if versions else {}
    shadows = versions.shadows if versions else {}
    routable = sorted([*models, *splits])
    known = ", ".join(routable) or "(none)"

    def lookup(request: Request) -> tuple[str, ServedModel | None, bool]:
        """(the name asked for, the model that answers, whether an A/B group chose it);
        raises a 404 ApiError for an unknown name or a version not served."""
        name: str = request.path_params["name"]
        version: str | None = request.path_params.get("version")
        served = models.get(name)
        if served is None and name in splits:
            if version is not None:
                raise ApiError(
                    404,
                    "unknown_model",
                    f"{echo(name)!r} is an A/B group: its members' versions are not addressed "
                    f"through it; use /v2/models/{echo(name)}/infer",
                )
            return name, splits[name].choose(), True
        if served is None:
            raise ApiError(404, "unknown_model", f"no model named {echo(name)!r}; serving: {known}")
        if version is not None and version != served.version:
            loaded = [m.version for m in registry.versions(name)] if name in registry else []
            also = (
                f"; version {echo(version)!r} is loaded but not live (activate it first)"
                if version in loaded
                else ""
            )
            raise ApiError(
                404,
                "unknown_version",
                f"model {name!r} serves version {served.version!r}, not {echo(version)!r}{also}",
            )
        return name, served, False

    async def server_metadata() -> Response:
        return _json({"name": "inferwatch", "version": __version__, "extensions": []})

    async def live() -> Response:
        return _json({"live": True})

    probe = StoreProbe(store)  # answers within a second whatever the store does

    async def ready() -> Response:
        ok = accepting() and await probe.ready()
        return _json({"ready": ok}, 200 if ok else 503)

    async def metadata(request: Request) -> Response:
        name: str = request.path_params["name"]
        version: str | None = request.path_params.get("version")
        if name not in models and name in splits and version is None:
            members = splits[name].members
            out = model_metadata(members[0], sorted({m.version for m in members}))
            out["name"] = name
            out["parameters"]["members"] = [m.name for m in members]
            return _json(out)
        if name not in models:
            lookup(request)  # raises the 404 (an A/B group's version too)
        listed = registry.versions(name) if name in registry else [models[name]]
        served = next((m for m in listed if m.version == version), None)
        if version is None:
            served = models[name]
        elif served is None:
            raise ApiError(
                404,
                "unknown_version",
                f"model {name!r} has no version {echo(version)!r} loaded; "
                f"loaded: {', '.join(m.version for m in listed)}",
            )
        return _json(model_metadata(served, [m.version for m in listed]))

    async def model_ready(request: Request) -> Response:
        name, _, _ = lookup(request)
        ok = accepting()
        return _json({"name": name, "ready": ok}, 200 if ok else 503)

    async def infer(request: Request) -> Response:
        start = time.perf_counter()
        try:
            _, served, split = lookup(request)
        except ApiError as exc:  # a served model's name is a bounded label; any other is not
            asked = request.path_params["name"]
            metrics.reject(asked if asked in models else UNKNOWN_MODEL, "unknown_model")
            return error_response(request, exc.status, exc.code, exc.message)
        assert served is not None
        inflight = served.metrics.inflight
        inflight.inc()
        try:
            return await _answer(request, served, start, split)
        finally:
            inflight.dec()

    async def _answer(request: Request, served: ServedModel, start: float, split: bool) -> Response:
        try:
            if request.headers.get("inference-header-content-length") is not None:
                raise _binary("(body)", "the body holds binary tensors")
            _check_media_type(request)
            payload = _check_body(decode(await read_body(request, max_body_bytes)))
            request_id = _request_id(payload)
            wanted = _requested_outputs(served, payload.get("outputs"))
            rows = served.validator.validate(decode_inputs(served, payload.get("inputs")))
        except (ApiError, ValidationError) as exc:
            refused = count_refusal(metrics, served, served.name, exc, start, field_status=400)
            return error_response(
                request, refused.status, refused.code, refused.message, refused.details
            )
        try:
            answered = await answer_rows(
                request,
                served,
                rows,
                monitor,
                start,
                _encoder_for(request_id, wanted),
                shadows.get(served.name, ()),  # an A/B member's own shadows
            )
        except ApiError as exc:  # already counted in requests_total
            if exc.status < 500:
                metrics.reject(served.name, exc.code)
            return error_response(
                request, exc.status, exc.code, exc.message, exc.details, exc.headers
            )
        except Exception:  # answered as a 500 by the catch-all handler; count it here
            served.metrics.request(500, time.perf_counter() - start)
            raise
        ids = answered.ids
        headers = {"x-prediction-ids": ",".join(ids)} if len(ids) <= MAX_ID_HEADER else None
        if split:
            headers = {**(headers or {}), "x-model-name": served.name}
            headers["x-model-version"] = served.version
        return Response(
            answered.body,
            headers=headers,
            media_type="application/json",
            background=answered.background,
        )

    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The served model's (or A/B group's) name.",
        "schema": {"type": "string", "enum": routable},
    }
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "The model's version (infer: the live one only).",
        "schema": {"type": "string"},
    }
    tags: list[str | Enum] = ["open inference protocol (v2)"]
    app.add_api_route(
        "/v2",
        server_metadata,
        methods=["GET"],
        name="v2_server_metadata",
        summary="Server metadata (name, version, extensions)",
        tags=tags,
    )
    app.add_api_route(
        "/v2/health/live",
        live,
        methods=["GET"],
        name="v2_live",
        summary="Liveness: the process answers",
        tags=tags,
    )
    app.add_api_route(
        "/v2/health/ready",
        ready,
        methods=["GET"],
        name="v2_ready",
        summary="Readiness: the checks of /readyz (models loaded, store reachable)",
        tags=tags,
    )
    for suffix, params in (
        ("", [name_param]),
        ("/versions/{version}", [name_param, version_param]),
    ):
        base = "/v2/models/{name}" + suffix
        label = suffix.replace("/versions/{version}", "_version")
        app.add_api_route(
            base,
            metadata,
            methods=["GET"],
            name=f"v2_metadata{label}",
            summary="Model metadata: inputs (one tensor per feature) and outputs",
            tags=tags,
            openapi_extra={"parameters": params},
        )
        app.add_api_route(
            base + "/ready",
            model_ready,
            methods=["GET"],
            name=f"v2_model_ready{label}",
            summary="The model is served and the server accepts requests",
            tags=tags,
            openapi_extra={"parameters": params},
        )
        app.add_api_route(
            base + "/infer",
            infer,
            methods=["POST"],
            name=f"v2_infer{label}",
            summary="Predict JSON tensors (validated, monitored and logged like V1)",
            tags=tags,
            openapi_extra={
                "parameters": params,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _INFER_REQUEST_SCHEMA}},
                },
            },
        )


_TENSOR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string", "description": "A feature's name, or any for one [n, d] table"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted(_DATATYPES)},
        "parameters": {"type": "object"},
        "data": {"type": "array", "description": "Row-major, flat or nested to the shape"},
    },
}
_INFER_REQUEST_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string", "maxLength": MAX_REQUEST_ID},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR_SCHEMA},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": [PREDICT, PREDICT_PROBA]},
                    "parameters": {"type": "object"},
                },
            },
        },
    },
}
