"""ONNX models, scored with onnxruntime on whole batches."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa

from byom import config
from byom.errors import InvalidModelError, ScoringError, UnsafeModelError
from byom.scorers.base import ModelInput, Prediction, Scorer, ValueType
from byom.scorers.onnx_linear import LinearFamily, LinearGraph
from byom.scorers.onnx_linear import lower as lower_linear
from byom.scorers.onnx_linear import scores as linear_scores

_ORT_TYPES: dict[str, ValueType] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int64",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
}
_LABEL_ATTRS = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")
log = logging.getLogger(__name__)


def _strip_zipmap(model: Any) -> dict[str, tuple[str, ...]]:
    """Expose ZipMap's input tensor instead of its list-of-dicts output.

    ZipMap turns a probability matrix into one Python dict per row, which would put a per-row
    loop on the hot path. Returns {new output name: class labels} for each ZipMap removed.
    """
    from onnx import helper

    removed: dict[str, tuple[str, ...]] = {}
    graph = model.graph
    for node in list(graph.node):
        if node.op_type != "ZipMap":
            continue
        labels: tuple[str, ...] = ()
        for attr in node.attribute:
            if attr.name == "classlabels_strings":
                labels = tuple(s.decode() for s in attr.strings)
            elif attr.name == "classlabels_int64s":
                labels = tuple(str(i) for i in attr.ints)
        for i, out in enumerate(graph.output):
            if out.name == node.output[0]:
                graph.output.remove(out)
                graph.output.insert(
                    i, helper.make_tensor_value_info(node.input[0], 1, [None, len(labels)])
                )
                removed[node.input[0]] = labels
        graph.node.remove(node)
    return removed


def _external_data_refs(model: Any) -> list[str]:
    """Names of every tensor whose data lives outside the model bytes, anywhere in the model.

    onnxruntime refuses absolute and `../` locations but reads a plain relative one from the
    scoring process's working directory, which would let a model stored in a table read (and
    return through SQL) files beside a DuckDB process, a Spark executor or a Teradata AMP.
    """
    found: list[str] = []

    def tensor(t: Any, where: str) -> None:
        if t.data_location == 1 or len(t.external_data):  # TensorProto.EXTERNAL
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            found.append(f"{where} {t.name or '(unnamed)'!r} -> {location!r}")

    def sparse(t: Any, where: str) -> None:
        tensor(t.values, where)
        tensor(t.indices, where)

    def graph(g: Any) -> None:
        for t in g.initializer:
            tensor(t, "initializer")
        for t in g.sparse_initializer:
            sparse(t, "sparse initializer")
        nodes(g.node)

    def nodes(node_list: Any) -> None:
        for node in node_list:
            for attr in node.attribute:
                where = f"attribute {attr.name!r} of node {node.name or node.op_type!r}:"
                if attr.HasField("t"):
                    tensor(attr.t, where)
                for t in attr.tensors:
                    tensor(t, where)
                if attr.HasField("sparse_tensor"):
                    sparse(attr.sparse_tensor, where)
                for t in attr.sparse_tensors:
                    sparse(t, where)
                if attr.HasField("g"):
                    graph(attr.g)
                for g in attr.graphs:
                    graph(g)

    graph(model.graph)
    for function in model.functions:
        nodes(function.node)
    return found


def _class_labels(model: Any) -> tuple[str, ...]:
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "classlabels_strings" and attr.strings:
                return tuple(s.decode() for s in attr.strings)
            if attr.name in _LABEL_ATTRS and attr.ints:
                return tuple(str(i) for i in attr.ints)
    return ()


def _categories(model: Any, input_name: str) -> tuple[str, ...]:
    """Categories of the first encoder downstream of a string input (for sample rows)."""
    frontier, seen = [input_name], set()
    while frontier:
        name = frontier.pop(0)
        for node in model.graph.node:
            if name not in node.input or node.name in seen:
                continue
            seen.add(node.name)
            for attr in node.attribute:
                if (
                    attr.name in ("cats_strings", "keys_strings", "classes_strings")
                    and attr.strings
                ):
                    return tuple(v.decode() for v in attr.strings)
            frontier.extend(node.output)
    return ()


class OnnxScorer(Scorer):
    format = "onnx"
    missing_string = ""  # onnxruntime string tensors cannot hold a NULL

    def __init__(self, blob: bytes, model_id: str = "", threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        who = f"model {model_id!r}" if model_id else "the ONNX model"
        try:
            proto = onnx.load_model_from_string(blob)
        except Exception as exc:  # the protobuf parser raises several unrelated types
            raise InvalidModelError(f"{who} cannot be loaded by onnxruntime: {exc}") from exc
        external = _external_data_refs(proto)
        if external:
            raise UnsafeModelError(
                f"{who} refers to external data ({'; '.join(external[:3])}), which byom refuses: "
                "a model must carry all its tensors inside its own bytes; re-save it with "
                "onnx.save_model(model, path, save_as_external_data=False)"
            )
        try:
            zipmaps = _strip_zipmap(proto)
            classes = _class_labels(proto)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads or config.ONNX_THREADS
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(
                proto.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnx and onnxruntime raise many unrelated types
            raise InvalidModelError(f"{who} cannot be loaded by onnxruntime: {exc}") from exc

        #: (ensemble, how to score it) when the graph is a tree ensemble byom's kernel scores
        one_thread = self._session if (threads or config.ONNX_THREADS) == 1 else None
        self._trees = _lower_trees(proto, who, one_thread)
        self.tree_kernel = self._trees is not None
        #: The graph as x @ W + b (and a logistic), scored by numpy: see onnx_linear.
        self._linear = None if self._trees is not None else _lower_linear(proto, who, one_thread)
        self.inputs = tuple(self._describe_input(i, who, proto) for i in self._session.get_inputs())
        self._ranks = {i.name: len(i.shape) for i in self._session.get_inputs()}
        outputs = self._session.get_outputs()
        self._output_names = [o.name for o in outputs]
        self._label_out = next(
            (o.name for o in outputs if o.type in ("tensor(int64)", "tensor(string)")), None
        )
        self._proba_out = next(
            (
                o.name
                for o in outputs
                if o.name in zipmaps
                or (o.type in ("tensor(float)", "tensor(double)") and self._label_out is not None)
            ),
            None,
        )
        self._score_outputs = [self._proba_out or self._label_out or self._output_names[0]]
        if self._label_out is not None:
            self.task = "classification"
            self.classes = classes or (zipmaps.get(self._proba_out or "", ()))
            self.target = self._label_out
        else:
            self.task = "regression"
            self.classes = ()
            self.target = self._output_names[0]
        if self._linear is not None:  # numpy scores it: the session's memory is not needed
            self._session = None

    def memory_bytes(self, blob_size: int) -> int:
        """An onnxruntime session holds about 170 KiB even for a tiny graph (measured on a
        20-input logistic regression); a linear graph scored by numpy drops its session."""
        return 2 * blob_size + (8 * 1024 if self._linear is not None else 192 * 1024)

    @staticmethod
    def _describe_input(node: Any, who: str, proto: Any) -> ModelInput:
        if node.type not in _ORT_TYPES:
            raise InvalidModelError(
                f"{who} has input {node.name!r} of type {node.type}, which byom cannot feed "
                "from table columns (supported: float, double, int32, int64, string, bool tensors)"
            )
        shape = node.shape
        width = 1
        if len(shape) >= 2:
            if len(shape) > 2 or not isinstance(shape[1], int):
                raise InvalidModelError(
                    f"{who} has input {node.name!r} of shape {shape}; byom feeds tensors of shape "
                    "[batch] or [batch, k] with a fixed k"
                )
            width = shape[1]
        kind = _ORT_TYPES[node.type]
        cats = _categories(proto, node.name) if kind == "string" else ()
        return ModelInput(node.name, kind, width, cats)

    def output_names(self) -> list[str]:
        return list(self._output_names)

    def family(self) -> tuple[object, ...] | None:
        return None if self._linear is None else self._linear.family

    def make_family(self) -> LinearFamily:
        assert self._linear is not None, "only a lowered linear graph has a family"
        return LinearFamily(self._linear)

    def regression(self, values: np.ndarray) -> Prediction:
        """The Prediction of this regression graph's output values."""
        pred = Prediction(task=self.task, n=len(values), classes=self.classes)
        pred.value = values.astype(np.float64)
        pred.outputs[self._output_names[0]] = pa.array(pred.value)
        return pred

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        if self._linear is not None:
            graph = self._linear
            return self.regression(
                linear_scores(features[graph.input_name], graph.weights, graph.bias, graph.link)
            )
        feed = {}
        for inp in self.inputs:
            arr = features[inp.name]
            feed[inp.name] = (
                arr.reshape(n, 1) if arr.ndim == 1 and self._ranks[inp.name] >= 2 else arr
            )
        wanted = self._output_names if full else self._score_outputs
        try:
            if self._trees is not None:
                ensemble, lowered = self._trees
                results = lowered.run(ensemble, wanted, feed[lowered.input_name])
            else:
                results = self._session.run(wanted, feed)
        except Exception as exc:
            raise ScoringError(f"onnxruntime failed on a batch of {n} rows: {exc}") from exc
        named = dict(zip(wanted, results, strict=True))
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.task == "regression":
            out = np.asarray(named[self._output_names[0]])
            pred.value = out.reshape(n, -1)[:, 0].astype(np.float64)
            pred.outputs[self._output_names[0]] = pa.array(pred.value)
            return pred
        assert self._label_out is not None
        if self._label_out in named:
            labels = np.asarray(named[self._label_out]).reshape(n)
            pred.labels = pa.array(labels.astype(str) if labels.dtype.kind != "U" else labels)
            pred.outputs[self._label_out] = pred.labels
        if self._proba_out is not None:
            proba = np.asarray(named[self._proba_out], dtype=np.float64).reshape(n, -1)
            if not pred.classes:
                pred.classes = tuple(str(i) for i in range(proba.shape[1]))
            pred.probabilities = proba
            pred.proba_output = self._proba_out
        for name in wanted:
            if name not in (self._label_out, self._proba_out):
                extra = np.asarray(named[name]).reshape(n, -1)
                if extra.shape[1] == 1:
                    pred.outputs[name] = pa.array(extra[:, 0])
        return pred


def _one_thread_session(proto: Any) -> Any:
    """An onnxruntime session at one thread: the reference a lowering is checked against."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _lower_linear(proto: Any, who: str, session: Any = None) -> LinearGraph | None:
    """A linear graph (onnx_linear) kept only if it scores probe rows as onnxruntime does,
    within 1e-5 of the value (NaN where onnxruntime gives NaN); otherwise None (onnxruntime
    scores it)."""
    graph = lower_linear(proto)
    if graph is None:
        return None
    try:
        session = session or _one_thread_session(proto)
        rng = np.random.default_rng(0)
        x = (rng.normal(size=(256, len(graph.weights))) * 3).astype(np.float32)
        x[rng.random(x.shape) < 0.05] = 0.0
        x[rng.random(x.shape) < 0.02] = np.nan
        want = np.asarray(session.run([graph.output_name], {graph.input_name: x})[0])
        got = linear_scores(x, graph.weights, graph.bias, graph.link)
        want = want.reshape(len(x), -1)[:, 0].astype(np.float64)
        got = got.astype(np.float64)
        # float32 sums in another order than onnxruntime's: a few units in the last place of
        # the margin, so 1e-5 of the value (at least of 1).
        with np.errstate(invalid="ignore"):
            close = np.abs(want - got) <= 1e-5 * np.maximum(1.0, np.abs(want))
            same = close | (np.isnan(want) & np.isnan(got))
        if not same.all():
            log.warning("byom: %s: linear lowering differs from onnxruntime", who)
            return None
    except Exception as exc:  # any failure keeps onnxruntime, which already loaded the model
        log.warning("byom: %s: linear lowering not used (%s); onnxruntime scores it", who, exc)
        return None
    return graph


def _lower_trees(proto: Any, who: str, session: Any = None) -> Any:
    """A tree-ensemble graph lowered to byom's kernel, kept only if it scores a generated batch
    (values on each side of every threshold, and NaN) as a one-thread onnxruntime session does:
    labels identical, scores within 1e-6. Otherwise None (onnxruntime scores it). `session`,
    when given, is such a session already loaded (the scorer's own, at one thread)."""
    from byom.trees import kernel_compiles
    from byom.trees.onnx_trees import lower

    try:
        lowered = lower(proto)
        if lowered is None:
            return None
        ensemble, meta = lowered
        if not kernel_compiles(ensemble):  # the numpy path would be slower than onnxruntime
            return None
        x = _probe_rows(ensemble, meta.width)
        # onnxruntime's tree sums depend on its thread count: the reference runs on one.
        session = session or _one_thread_session(proto)
        inp = session.get_inputs()[0]
        feed = x.astype(np.float64 if inp.type == "tensor(double)" else np.float32)
        names = [o.name for o in session.get_outputs()]
        want = session.run(names, {meta.input_name: feed})
        got = meta.run(ensemble, names, feed)
        for name, w, g in zip(names, want, got, strict=True):
            w, g = np.asarray(w).reshape(len(x), -1), np.asarray(g).reshape(len(x), -1)
            if meta.outputs[name] == "label":
                same = np.array_equal(w.astype(str), g.astype(str))
            else:  # a trailing Div may make inf: equal values and NaN in the same places pass
                w, g = w.astype(np.float64), g.astype(np.float64)
                with np.errstate(invalid="ignore"):
                    close = (np.abs(w - g) <= 1e-6) | (w == g) | (np.isnan(w) & np.isnan(g))
                same = w.shape == g.shape and bool(np.all(close))
            if not same:
                log.warning("byom: %s: tree kernel differs from onnxruntime on %r", who, name)
                return None
    except Exception as exc:  # any failure keeps onnxruntime, which already loaded the model
        log.warning("byom: %s: tree kernel not used (%s); onnxruntime scores it", who, exc)
        return None
    return lowered


def _probe_rows(ensemble: Any, width: int, n: int = 256) -> np.ndarray:
    """Rows whose values sit on, just below and just above the model's thresholds, some NaN."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, width))
    split = ensemble.feature >= 0
    for j in range(width):
        t = ensemble.threshold[split & (ensemble.feature == j)]
        if t.size:
            pick = rng.choice(t, n)
            step = np.maximum(np.abs(pick), 1.0) * rng.choice([-1e-3, 0.0, 1e-3], n)
            x[:, j] = pick + step
    x[rng.random(x.shape) < 0.1] = np.nan
    return x
