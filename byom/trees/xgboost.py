"""XGBoost models saved as JSON or UBJSON (`booster.save_model("m.json" / "m.ubj")`), read
by byom itself (xgboost is never imported) and lowered to a `TreeEnsemble` whose numbers are
bit for bit xgboost's float32 predictions.

What xgboost computes, and so what the ensemble records (verified against xgboost 3.2):

- A split sends x to its left child when `x < split_condition` in float32; a missing value
  (NaN) to its default child (`default_left`). A categorical split (`split_type` 1) sends a
  value whose category (the float32 truncated to an integer) is in the node's set to the
  RIGHT child, anything else (unknown, negative) to the left (`common::Decision`).
- A leaf's value is its `split_conditions` entry (already scaled by the learning rate); a
  dart model multiplies it by the tree's `weight_drop`, in float32.
- Each output starts at the base score in margin space (`-logf(1/p - 1)` for the logistic
  objectives, `logf(p)` for the exp ones, both in float32), then adds the trees in tree order
  in float32; `output_margin=True` is that sum.
- The transform is float32 with the C library's `expf` (`byom.trees.expf`): sigmoid, softmax,
  exp.

Categorical features take integer codes (as xgboost's DMatrix does); when the model records
its categories (xgboost >= 3.1 saves them for a pandas `category` column), they take the
category text too, and the code is its position in the recorded list.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from byom.errors import InvalidModelError
from byom.trees.ensemble import IN, LT, MISSING_NAN, Node, TreeEnsemble, TreeEnsembleError
from byom.trees.ubjson import UbjsonError
from byom.trees.ubjson import loads as ubjson_loads

if TYPE_CHECKING:
    from byom.trees.scorer import TreeScorer

#: More trees than this are refused before any is read (a 10k-round, 10-class model has 100k).
MAX_TREES = 500_000

#: objective -> (task, post transform, how the base score becomes a margin).
OBJECTIVES: dict[str, tuple[str, str, str]] = {
    "binary:logistic": ("classification", "logistic", "logit"),
    "binary:logitraw": ("regression", "none", "identity"),
    "multi:softprob": ("classification", "softmax", "identity"),
    "multi:softmax": ("classification", "softmax", "identity"),
    "reg:squarederror": ("regression", "none", "identity"),
    "reg:squaredlogerror": ("regression", "none", "identity"),
    "reg:absoluteerror": ("regression", "none", "identity"),
    "reg:pseudohubererror": ("regression", "none", "identity"),
    "reg:quantileerror": ("regression", "none", "identity"),
    "reg:logistic": ("regression", "logistic", "logit"),
    "count:poisson": ("regression", "exp", "log"),
    "reg:gamma": ("regression", "exp", "log"),
    "reg:tweedie": ("regression", "exp", "log"),
}

_JSON_START = re.compile(rb'\A\s*\{\s*"(learner|version)"')
#: UBJSON: an object whose first key is "learner" or "version", its length any int marker.
_UBJ_START = re.compile(rb"\A\{(?:i.|U.|I..|l....|L........)(learner|version)", re.S)


def sniff(head: bytes) -> bool:
    return bool(_JSON_START.match(head) or _UBJ_START.match(head))


@dataclass
class XGBoostModel:
    """What byom keeps of an XGBoost model."""

    ensemble: TreeEnsemble
    feature_names: list[str]
    task: str
    objective: str
    classes: list[str]
    #: Feature index -> its recorded categories (text), for categorical features.
    categories: dict[int, list[str]]


class _Reader:
    def __init__(self, model_id: str) -> None:
        self.who = f"XGBoost model {model_id!r}" if model_id else "the XGBoost model"

    def fail(self, what: str) -> InvalidModelError:
        return InvalidModelError(f"{self.who}: {what}")

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(value, kind):
            raise self.fail(
                f"{where}.{key} is missing or malformed; save it again with "
                "booster.save_model('model.json')"
            )
        return value

    def number(self, obj: dict, key: str, where: str, default: str = "0") -> float:
        text = obj.get(key, default)
        try:
            return float(text)
        except (TypeError, ValueError):
            raise self.fail(f"{where}.{key} is {text!r}, not a number") from None


def decode(blob: bytes, model_id: str = "") -> Any:
    """The document: UBJSON when the blob starts with a binary object, else JSON."""
    r = _Reader(model_id)
    text = blob.removeprefix(b"\xef\xbb\xbf")
    try:
        if _UBJ_START.match(text):
            return ubjson_loads(text)
        return json.loads(text)
    except (UbjsonError, ValueError, RecursionError) as exc:
        raise r.fail(f"is not readable JSON/UBJSON ({str(exc)[:200]})") from None


def read_model(blob: bytes, model_id: str = "") -> XGBoostModel:
    r = _Reader(model_id)
    doc = decode(blob, model_id)
    learner = r.get(doc, "learner", dict, "model")
    params = r.get(learner, "learner_model_param", dict, "learner")
    objective = r.get(r.get(learner, "objective", dict, "learner"), "name", str, "objective")
    if objective not in OBJECTIVES:
        raise r.fail(
            f"objective {objective!r} is not supported by byom (supported: "
            f"{', '.join(OBJECTIVES)}); retrain with one of them or export to ONNX"
        )
    task, post, link = OBJECTIVES[objective]
    booster = r.get(learner, "gradient_booster", dict, "learner")
    trees, info, weights = _booster_trees(r, booster)
    n_features = int(r.number(params, "num_feature", "learner_model_param"))
    num_class = int(r.number(params, "num_class", "learner_model_param"))
    num_target = int(r.number(params, "num_target", "learner_model_param", "1"))
    n_outputs = max(num_class, num_target, 1)
    names, types = _features(r, learner, n_features)
    base = _base_margin(r, params, link, n_outputs)
    nodes = [
        _tree_nodes(r, tree, t, int(out), n_outputs, weights[t] if weights else None)
        for t, (tree, out) in enumerate(zip(trees, info, strict=True))
    ]
    try:
        ensemble = TreeEnsemble.build(
            nodes,
            n_features,
            n_outputs,
            base,
            float32=True,
            sum_float32=True,
            post_transform=post,
        )
    except TreeEnsembleError as exc:
        raise r.fail(str(exc)) from None
    ensemble.transform_float32 = True
    ensemble.negative_not_in_set = True  # common::InvalidCat: x < 0
    if task == "classification":
        classes = [str(i) for i in range(2 if n_outputs == 1 else n_outputs)]
    else:
        classes = []
    cats = _categories(r, booster, types)
    return XGBoostModel(ensemble, names, task, objective, classes, cats)


def _booster_trees(r: _Reader, booster: dict) -> tuple[list, list, list[float] | None]:
    name = booster.get("name")
    weights = None
    if name == "dart":
        weights = [float(w) for w in r.get(booster, "weight_drop", (list, np.ndarray), "dart")]
        booster = r.get(booster, "gbtree", dict, "dart")
    elif name == "gblinear":
        raise r.fail(
            "is a gblinear (linear) booster, which byom does not score; "
            "train with booster='gbtree' or export to ONNX"
        )
    elif name != "gbtree":
        raise r.fail(f"booster {name!r} is unknown (byom reads gbtree and dart)")
    model = r.get(booster, "model", dict, "gradient_booster")
    trees = r.get(model, "trees", list, "model")
    if len(trees) > MAX_TREES:
        raise r.fail(f"has {len(trees):,} trees, over byom's bound of {MAX_TREES:,}")
    info = np.asarray(r.get(model, "tree_info", (list, np.ndarray), "model")).tolist()
    if len(info) != len(trees) or (weights is not None and len(weights) != len(trees)):
        raise r.fail(f"tree_info has {len(info)} entries for {len(trees)} trees")
    if not all(isinstance(c, int) for c in info):
        raise r.fail("tree_info holds something other than output numbers")
    return trees, info, weights


def _features(r: _Reader, learner: dict, n: int) -> tuple[list[str], list[str]]:
    names = list(learner.get("feature_names") or [])
    types = list(learner.get("feature_types") or [])
    if not names:
        names = [f"f{i}" for i in range(n)]
    if len(names) != n or not all(isinstance(x, str) for x in names):
        raise r.fail(f"names {len(names)} features but num_feature is {n}")
    if len(set(map(str.lower, names))) != n:
        raise r.fail("has two features whose names differ only in case")
    if types and (len(types) != n or not set(types) <= {"float", "q", "int", "i", "c"}):
        raise r.fail(f"feature_types {types[:10]!r} are not XGBoost's (float, int, i, q, c)")
    return names, types


def _base_margin(r: _Reader, params: dict, link: str, n_outputs: int) -> np.ndarray:
    """base_score ("0.5", or "[5E-1]" / "[a,b]" in 3.x) in margin space, as xgboost's float32
    ProbToMargin computes it."""
    text = str(params.get("base_score", "0.5")).strip()
    try:
        values = [float(v) for v in text.strip("[]").split(",")]
    except ValueError:
        raise r.fail(f"base_score {text!r} is not a number") from None
    if len(values) not in (1, n_outputs):
        raise r.fail(f"base_score has {len(values)} values for {n_outputs} outputs")
    out = []
    for p in values:
        margin = prob_to_margin(p, link)
        if not np.isfinite(margin):
            raise r.fail(f"base_score {p!r} has no margin under the objective's link ({link})")
        out.append(float(margin))
    return np.array(out * (n_outputs // len(out)), dtype=np.float64)


def prob_to_margin(p: float, link: str) -> np.float32:
    """A base score `p` in margin space under `link` ("logit", "log" or "identity"), in float32
    as XGBoost's ProbToMargin (and the Java predictor's probToMargin) computes it: for logit
    -logf(1.0f / p - 1.0f), the division and subtraction in float32 and the log correctly
    rounded (as glibc's logf is); NaN where the link has no margin."""
    p32 = np.float32(p)
    if link == "logit":
        q = np.float32(np.float32(1.0) / p32) - np.float32(1.0)
        return -np.float32(math.log(q)) if q > 0 else np.float32("nan")
    if link == "log":
        return np.float32(math.log(p32)) if p32 > 0 else np.float32("nan")
    return p32


_TREE_ARRAYS = (
    "left_children",
    "right_children",
    "split_indices",
    "split_conditions",
    "default_left",
)


def _tree_nodes(
    r: _Reader, tree: Any, t: int, out: int, n_outputs: int, weight: float | None
) -> list[Node]:
    where = f"tree {t}"
    if not isinstance(tree, dict):
        raise r.fail(f"{where} is not an object")
    size_leaf = r.number(tree.get("tree_param") or {}, "size_leaf_vector", where, "1")
    if size_leaf > 1:
        raise r.fail(
            f"{where} has vector leaves (multi_strategy='multi_output_tree'), which "
            "byom does not score; train with the default one_output_per_tree"
        )
    if not 0 <= out < n_outputs:
        raise r.fail(f"{where} adds to output {out}, but the model has {n_outputs}")
    cols = {}
    for key in _TREE_ARRAYS:
        cols[key] = np.asarray(r.get(tree, key, (list, np.ndarray), where))
    n = len(cols["left_children"])
    if n == 0 or any(len(v) != n for v in cols.values()):
        raise r.fail(f"{where}: its node arrays differ in length (or are empty)")
    split_type = np.asarray(tree.get("split_type", np.zeros(n, np.int8))).tolist()
    if len(split_type) != n:
        raise r.fail(f"{where}: split_type has {len(split_type)} entries for {n} nodes")
    try:
        left = cols["left_children"].astype(np.int64).tolist()
        right = cols["right_children"].astype(np.int64).tolist()
        feat = cols["split_indices"].astype(np.int64).tolist()
        cond = cols["split_conditions"].astype(np.float32)
        default_left = cols["default_left"].astype(np.int64).tolist()
    except (TypeError, ValueError, OverflowError):
        raise r.fail(f"{where}: a node array holds something other than numbers") from None
    if weight is not None:
        cond = np.where(np.asarray(left) == -1, np.float32(weight) * cond, cond)
    values = cond.astype(np.float64).tolist()
    cats = _node_categories(r, tree, where, n)
    nodes = []
    for i in range(n):
        if left[i] == -1:
            nodes.append(Node(leaf=[(out, values[i])]))
            continue
        missing = left[i] if default_left[i] else right[i]
        if split_type[i] == 1:
            # xgboost: in the set goes right, anything else left
            node = Node(
                feature=feat[i],
                op=IN,
                yes=right[i],
                no=left[i],
                missing=missing,
                missing_kind=MISSING_NAN,
                categories=cats.get(i, ()),
            )
        else:
            node = Node(
                feature=feat[i],
                threshold=values[i],
                op=LT,
                yes=left[i],
                no=right[i],
                missing=missing,
                missing_kind=MISSING_NAN,
            )
        nodes.append(node)
    return nodes


def _node_categories(r: _Reader, tree: dict, where: str, n: int) -> dict[int, tuple[int, ...]]:
    nodes = np.asarray(tree.get("categories_nodes", [])).astype(np.int64)
    if nodes.size == 0:
        return {}
    starts = np.asarray(tree.get("categories_segments", [])).astype(np.int64)
    sizes = np.asarray(tree.get("categories_sizes", [])).astype(np.int64)
    values = np.asarray(tree.get("categories", [])).astype(np.int64)
    if not (len(starts) == len(sizes) == len(nodes)):
        raise r.fail(f"{where}: categories_nodes, _segments and _sizes differ in length")
    if ((starts < 0) | (sizes < 0) | (starts + sizes > len(values))).any():
        raise r.fail(f"{where}: a categories segment runs past the categories")
    if ((nodes < 0) | (nodes >= n)).any():
        raise r.fail(f"{where}: categories_nodes names a node the tree does not have")
    return {
        int(node): tuple(values[s : s + k].tolist())
        for node, s, k in zip(nodes, starts, sizes, strict=True)
    }


def _categories(r: _Reader, booster: dict, types: list[str]) -> dict[int, list[str]]:
    """Categories xgboost >= 3.1 records for a pandas category column, the code being the
    position: cats.enc[i] holds feature i's numbers (`type`, `values`) or the UTF-8 bytes of
    its texts (`values`) cut at `offsets`."""
    model = booster.get("gbtree", booster).get("model", {})
    enc = (model.get("cats") or {}).get("enc") or []
    out: dict[int, list[str]] = {}
    for i, item in enumerate(enc):
        if i >= len(types) or types[i] != "c" or not isinstance(item, dict):
            continue
        raw = np.asarray(item.get("values", []))
        if "type" in item:  # numeric categories: the column holds the values themselves
            out[i] = [_number_text(float(v)) for v in raw.tolist()]
            continue
        offsets = np.asarray(item.get("offsets", [])).astype(np.int64)
        if offsets.size < 2:
            continue
        data = raw.astype(np.uint8).tobytes()
        if (np.diff(offsets) < 0).any() or offsets[0] != 0 or offsets[-1] != len(data):
            raise r.fail(f"the recorded categories of feature {i} are malformed")
        try:
            out[i] = [data[a:b].decode() for a, b in itertools.pairwise(offsets.tolist())]
        except UnicodeDecodeError:
            raise r.fail(f"the recorded categories of feature {i} are not UTF-8") from None
    return out


def load_scorer(blob: bytes, model_id: str = "") -> TreeScorer:
    """The model as a TreeScorer: inputs by the model's feature names (f0, f1... when it
    records none), float inputs compared in float32, categorical ones as codes or text."""
    from byom.trees.scorer import TreeScorer

    model = read_model(blob, model_id)
    return TreeScorer(
        model.ensemble,
        model.feature_names,
        format="xgboost",
        task="classification" if model.task == "classification" else "regression",
        classes=model.classes,
        categories=model.categories,
        raw_output="margin",
    )


def _number_text(value: float) -> str:
    """A numeric category as byom reads a number column as text: 2.0 is "2"."""
    return str(int(value)) if value.is_integer() else repr(value)
