"""LightGBM text models (`booster.save_model` / `model_to_string`), read by byom itself and
lowered to a TreeEnsemble with LightGBM's own decision rules (`Tree::NumericalDecision`,
`Tree::CategoricalDecision`, `GBDT::PredictRaw`), so scores equal `Booster.predict`.

The file is a header of `key=value` lines, one `Tree=` block per tree (arrays as
space-separated numbers; internal nodes 0..num_leaves-2, a negative child ~j is leaf j), "end
of trees", then feature importances, parameters and `pandas_categorical:` (JSON: the categories
of each pandas category column, in column order). Every count is checked against the arrays
actually present before anything is built from it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from byom.errors import InvalidModelError
from byom.scorers.base import Task
from byom.trees.check import MAX_CATEGORY
from byom.trees.ensemble import (
    IN,
    LE,
    MAX_FEATURES,
    MISSING_NAN,
    MISSING_ZERO,
    NAN_AS_ZERO,
    Node,
    TreeEnsemble,
    TreeEnsembleError,
)
from byom.trees.scorer import TreeScorer

#: LightGBM's kZeroThreshold: the float literal 1e-35f widened to double. Prediction on dense
#: rows stores |x| <= it as 0.0, so such values decide as 0 does.
K_ZERO = float(np.float32(1e-35))
#: Bounds checked before parsing trees (LightGBM itself caps num_leaves at 131072).
MAX_TREES = 200_000
MAX_LEAVES = 131_072
MAX_TOTAL_NODES = 10_000_000
MAX_CLASSES = 10_000

#: objective -> (task, post transform); binary/multiclassova take `sigmoid:` as the slope.
OBJECTIVES: dict[str, tuple[Task, str]] = {
    "binary": ("classification", "logistic"),
    "multiclass": ("classification", "softmax"),
    "multiclassova": ("classification", "logistic"),
    "cross_entropy": ("regression", "logistic"),
    "regression": ("regression", "none"),
    "regression_l1": ("regression", "none"),
    "huber": ("regression", "none"),
    "fair": ("regression", "none"),
    "quantile": ("regression", "none"),
    "mape": ("regression", "none"),
    "poisson": ("regression", "exp"),
    "gamma": ("regression", "exp"),
    "tweedie": ("regression", "exp"),
    "lambdarank": ("regression", "none"),
    "rank_xendcg": ("regression", "none"),
}
_HEADER = re.compile(rb"tree\r?\nversion=v\d")


def sniff(head: bytes) -> bool:
    """A LightGBM text model starts with the lines `tree` and `version=v<n>`."""
    return _HEADER.match(head) is not None


@dataclass
class LightGBMModel:
    """What byom needs of a LightGBM model: the ensemble and how to present it."""

    ensemble: TreeEnsemble
    feature_names: list[str]
    objective: str
    task: Task
    classes: tuple[str, ...]
    #: Categorical feature index -> its pandas categories (code = position), for text inputs.
    categories: dict[int, list[str]] = field(default_factory=dict)


class LightGBMScorer(TreeScorer):
    """A TreeScorer whose pandas-categorical inputs also take numeric codes (when no category
    is itself a number), as LightGBM's own codes: a code outside the categories goes right."""

    def __init__(self, model: LightGBMModel) -> None:
        super().__init__(
            model.ensemble,
            model.feature_names,
            format="lightgbm",
            task=model.task,
            classes=model.classes,
            categories=model.categories,
        )
        self.objective = model.objective
        self._numeric_codes = {
            i for i, cats in model.categories.items() if not any(map(_is_number, cats))
        }

    def _codes(self, i: int, values: np.ndarray) -> np.ndarray:
        codes = super()._codes(i, values)
        if i not in self._numeric_codes:
            return codes
        text = pa.array(values, pa.string(), from_pandas=True)
        numeric = pc.match_substring_regex(text, _NUMBER.pattern)
        numbers = pc.cast(pc.if_else(numeric, text, pa.scalar(None, pa.string())), pa.float64())
        return np.where(np.isnan(codes), numbers.to_numpy(zero_copy_only=False), codes)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "objective": self.objective}


_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def _is_number(text: str) -> bool:
    return _NUMBER.match(text) is not None


def load_scorer(blob: bytes, model_id: str = "") -> LightGBMScorer:
    return LightGBMScorer(read_model(blob, model_id))


def read_model(blob: bytes, model_id: str = "") -> LightGBMModel:
    """Parse and check a LightGBM text model; InvalidModelError names the model, and the tree
    and node at fault."""
    who = f"model {model_id!r}" if model_id else "the LightGBM model"
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModelError(
            f"{who} is not UTF-8 text at byte {exc.start}; save it again with "
            "booster.save_model('model.txt')"
        ) from None
    text = text.replace("\r\n", "\n")
    head, sep, rest = text.partition("\nTree=")
    header = _key_values(head)
    end = rest.find("\nend of trees")
    if not sep or end < 0:
        raise InvalidModelError(
            f"{who} has no trees (no 'Tree=' block before 'end of trees'); the file is "
            "truncated or not a LightGBM model: save it again with booster.save_model"
        )
    shape = _shape(header, who)
    objective, task, post, slope = _objective(header, shape["num_class"], who)
    names = _feature_names(header, shape["n_features"], who)
    categories = _pandas_categories(rest[end:], header, shape["n_features"], who)
    k = shape["per_iteration"]
    n_trees = rest.count("\nTree=", 0, end) + 1
    if n_trees > MAX_TREES or n_trees % k:
        raise InvalidModelError(
            f"{who} has {n_trees:,} trees: byom takes up to {MAX_TREES:,}, a multiple of "
            f"num_tree_per_iteration={k}"
        )
    blocks = ("Tree=" + rest[:end]).split("\nTree=")
    trees = _trees(blocks, shape["n_features"], k, who)
    try:
        ensemble = TreeEnsemble.build(
            trees,
            shape["n_features"],
            k,
            aggregate="average" if "average_output" in header else "sum",
            post_transform=post,
            post_param=slope,
        )
    except TreeEnsembleError as exc:
        raise InvalidModelError(f"{who}: {exc}") from None
    classes = tuple(str(c) for c in range(max(2, k))) if task == "classification" else ()
    return LightGBMModel(ensemble, names, objective, task, classes, categories)


def _key_values(text: str) -> dict[str, str]:
    """`key=value` lines; a line without `=` is a flag (such as `average_output`)."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        key, _, value = line.partition("=")
        if key:
            out[key.strip()] = value.strip()
    return out


def _int(fields: dict[str, str], key: str, who: str, where: str, lo: int, hi: int) -> int:
    raw = fields.get(key)
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidModelError(
            f"{who}: {where} has no valid {key}= line (found {raw!r}); the file is damaged: "
            "save it again with booster.save_model"
        ) from None
    if not lo <= value <= hi:
        raise InvalidModelError(
            f"{who}: {where} says {key}={value:,}, outside {lo:,}..{hi:,} that byom accepts"
        )
    return value


def _shape(header: dict[str, str], who: str) -> dict[str, int]:
    num_class = _int(header, "num_class", who, "the header", 1, MAX_CLASSES)
    per_iteration = _int(header, "num_tree_per_iteration", who, "the header", 1, MAX_CLASSES)
    max_idx = _int(header, "max_feature_idx", who, "the header", 0, MAX_FEATURES - 1)
    if per_iteration != num_class:
        raise InvalidModelError(
            f"{who}: num_tree_per_iteration={per_iteration} with num_class={num_class}; the "
            "header is inconsistent: save the model again with booster.save_model"
        )
    return {"num_class": num_class, "per_iteration": per_iteration, "n_features": max_idx + 1}


def _objective(header: dict[str, str], num_class: int, who: str) -> tuple[str, Task, str, float]:
    """(objective name, task, post transform, logistic slope) from `objective=name k:v...`."""
    words = header.get("objective", "").split()
    if not words and num_class == 1:  # a custom objective: Booster.predict gives the raw sum
        return "custom", "regression", "none", 1.0
    if not words:
        raise InvalidModelError(
            f"{who} has {num_class} classes and no objective (a custom one), so byom cannot "
            "know its output transform; retrain with objective='multiclass' or 'multiclassova'"
        )
    name, options = words[0], dict(w.partition(":")[::2] for w in words[1:])
    supported = ", ".join(OBJECTIVES)
    if name not in OBJECTIVES:
        raise InvalidModelError(
            f"{who} has objective {name!r}, which byom does not support (it supports "
            f"{supported}); retrain with one of them, or export the model to ONNX"
        )
    if "sqrt" in options:
        raise InvalidModelError(
            f"{who} was trained with reg_sqrt (objective={' '.join(words)}), which byom does "
            "not support; retrain without reg_sqrt"
        )
    multi = name in ("multiclass", "multiclassova")
    if multi != (num_class > 1):
        raise InvalidModelError(f"{who}: objective {name!r} with num_class={num_class}")
    task, post = OBJECTIVES[name]
    slope = 1.0
    if name in ("binary", "multiclassova"):
        try:
            slope = float(options.get("sigmoid", "1"))
        except ValueError:
            slope = math.nan
        if not math.isfinite(slope) or slope <= 0:
            raise InvalidModelError(f"{who}: objective {name} has sigmoid:{options['sigmoid']}")
    return name, task, post, slope


def _feature_names(header: dict[str, str], n_features: int, who: str) -> list[str]:
    names = header.get("feature_names", "").split(" ")
    if len(names) != n_features or not all(names):
        raise InvalidModelError(
            f"{who}: feature_names lists {len(names)} names for max_feature_idx="
            f"{n_features - 1}; save the model again with booster.save_model"
        )
    folded = [n.casefold() for n in names]
    if len(set(folded)) != len(folded):
        twice = next(n for n in names if folded.count(n.casefold()) > 1)
        raise InvalidModelError(
            f"{who} names feature {twice!r} twice (byom matches columns by name, ignoring "
            "case); retrain with distinct feature names"
        )
    return names


def _trees(blocks: list[str], n_features: int, k: int, who: str) -> list[list[Node]]:
    """Every tree's nodes; the declared sizes are checked against the arrays (and their total
    against MAX_TOTAL_NODES) before any node is built."""
    parsed = []
    total = 0
    for t, block in enumerate(blocks):
        fields = _key_values(block)
        where = f"tree {t}"
        leaves = _int(fields, "num_leaves", who, where, 1, MAX_LEAVES)
        total += 2 * leaves - 1
        if total > MAX_TOTAL_NODES:
            raise InvalidModelError(
                f"{who} has over {MAX_TOTAL_NODES:,} nodes by tree {t}, over byom's bound"
            )
        parsed.append((fields, leaves))
    return [
        _tree(fields, leaves, t, n_features, t % k, who)
        for t, (fields, leaves) in enumerate(parsed)
    ]


def _array(
    fields: dict[str, str], key: str, n: int, dtype: type, who: str, where: str
) -> np.ndarray:
    text = fields.get(key, "")
    count = text.count(" ") + 1 if text else 0
    if count != n:
        raise InvalidModelError(
            f"{who}: {where} has {count:,} values in {key}= where num_leaves implies {n:,}; the "
            "file is damaged: save the model again with booster.save_model"
        )
    try:
        return np.array(text.split(" ") if n else [], dtype=dtype)
    except (ValueError, OverflowError):
        raise InvalidModelError(
            f"{who}: {where}: {key}= holds a value that is not a number"
        ) from None


def _tree(
    fields: dict[str, str], leaves: int, t: int, n_features: int, output: int, who: str
) -> list[Node]:
    where = f"tree {t}"
    if fields.get("is_linear", "0") != "0":
        raise InvalidModelError(
            f"{who}: {where} is a linear tree (linear_tree=True), which byom does not support; "
            "retrain without linear_tree"
        )
    values = _array(fields, "leaf_value", leaves, np.float64, who, where)
    splits = leaves - 1
    feature = _array(fields, "split_feature", splits, np.int64, who, where)
    threshold = _array(fields, "threshold", splits, np.float64, who, where)
    decision = _array(fields, "decision_type", splits, np.int64, who, where)
    left = _array(fields, "left_child", splits, np.int64, who, where)
    right = _array(fields, "right_child", splits, np.int64, who, where)
    cat_sets = _category_sets(fields, splits, who, where)
    nodes = []
    for i in range(splits):
        at = f"{who}: {where}, node {i}"
        f, d = int(feature[i]), int(decision[i])
        if not 0 <= f < n_features:
            raise InvalidModelError(
                f"{at} splits on feature {f}, beyond max_feature_idx={n_features - 1}"
            )
        if not 0 <= d < 16 or (d >> 2) == 3:
            raise InvalidModelError(f"{at} has decision_type {d}, which LightGBM never writes")
        yes = _child(int(left[i]), splits, leaves, at)
        no = _child(int(right[i]), splits, leaves, at)
        if d & 1:
            nodes.append(_categorical(f, float(threshold[i]), cat_sets, yes, no, at))
        else:
            nodes.append(_numerical(f, float(threshold[i]), d, yes, no, at))
    nodes.extend(Node(leaf=[(output, float(v))]) for v in values)
    return nodes


def _child(link: int, splits: int, leaves: int, at: str) -> int:
    """A child as a node index: internal nodes first, then leaf j at splits + j."""
    if 0 <= link < splits:
        return link
    if 0 <= ~link < leaves:
        return splits + ~link
    raise InvalidModelError(
        f"{at} links to child {link}, which is neither a node (0..{splits - 1}) nor a leaf "
        f"(-1..{-leaves})"
    )


def _numerical(f: int, threshold: float, decision: int, yes: int, no: int, at: str) -> Node:
    """`x <= threshold` goes left. Missing type None: NaN is 0.0; Zero: NaN and |x| <=
    kZeroThreshold take the default side; NaN: NaN takes it. Values with |x| <= kZeroThreshold
    are 0.0 to LightGBM, so a threshold inside that band moves to where 0 decides alike. An
    infinite threshold becomes the largest double: only an input of exactly inf decides
    otherwise."""
    if math.isnan(threshold):
        raise InvalidModelError(f"{at} has threshold {threshold!r}, which is not a number")
    if math.isinf(threshold):  # LightGBM writes inf ("every number"); the ensemble takes finite
        threshold = math.copysign(sys.float_info.max, threshold)
    missing_type = (decision >> 2) & 3
    kind = (NAN_AS_ZERO, MISSING_ZERO, MISSING_NAN)[missing_type]
    if missing_type != 1 and -K_ZERO <= threshold < K_ZERO:
        threshold = K_ZERO if threshold >= 0 else float(np.nextafter(-K_ZERO, -np.inf))
    default = yes if decision & 2 else no
    return Node(f, threshold, LE, yes, no, default, kind)


def _category_sets(
    fields: dict[str, str], splits: int, who: str, where: str
) -> list[tuple[int, ...]]:
    """Each categorical split's categories, from its slice of cat_threshold (32-bit words)."""
    num_cat = _int(fields, "num_cat", who, where, 0, max(splits, 0)) if "num_cat" in fields else 0
    if num_cat == 0:
        return []
    bounds = _array(fields, "cat_boundaries", num_cat + 1, np.int64, who, where)
    words_text = fields.get("cat_threshold", "")
    n_words = words_text.count(" ") + 1 if words_text else 0
    sizes = np.diff(bounds)
    if bounds[0] != 0 or np.any(sizes < 0) or bounds[-1] != n_words:
        raise InvalidModelError(
            f"{who}: {where} has cat_boundaries that do not cut its {n_words:,} cat_threshold "
            "words in order; the file is damaged: save the model again"
        )
    if sizes.max() > MAX_CATEGORY // 32:
        raise InvalidModelError(
            f"{who}: {where} has a categorical split on categories beyond {MAX_CATEGORY:,}, "
            "byom's bound"
        )
    words = _array(fields, "cat_threshold", n_words, np.int64, who, where)
    if np.any((words < 0) | (words >= 1 << 32)):
        raise InvalidModelError(f"{who}: {where}: cat_threshold holds a value beyond 32 bits")
    sets = []
    for c in range(num_cat):
        chunk = words[bounds[c] : bounds[c + 1]].astype("<u4")
        bits = np.unpackbits(chunk.view(np.uint8), bitorder="little")
        sets.append(tuple(int(b) for b in np.flatnonzero(bits)))
    return sets


def _categorical(
    f: int, threshold: float, sets: list[tuple[int, ...]], yes: int, no: int, at: str
) -> Node:
    """int(x) in the split's set goes left; NaN and negatives go right (whatever the missing
    type: LightGBM 4 routes NaN right)."""
    index = int(threshold) if math.isfinite(threshold) and threshold == int(threshold) else -1
    if not 0 <= index < len(sets):
        raise InvalidModelError(
            f"{at} is categorical with threshold {threshold!r}, not one of its {len(sets)} "
            "category sets (cat_boundaries)"
        )
    return Node(f, 0.0, IN, yes, no, no, MISSING_NAN, categories=sets[index])


def _pandas_categories(
    tail: str, header: dict[str, str], n_features: int, who: str
) -> dict[int, list[str]]:
    """Map `pandas_categorical` (one list per pandas category column, in column order) to the
    categorical features, which `feature_infos` tells apart (`a:b:c` rather than `[lo:hi]`)."""
    at = tail.rfind("\npandas_categorical:")
    if at < 0:
        return {}
    line = tail[at + len("\npandas_categorical:") :].split("\n", 1)[0]
    try:
        lists = json.loads(line)
    except ValueError:
        raise InvalidModelError(f"{who}: pandas_categorical is not valid JSON") from None
    if not lists:  # null, or [] when no column was a pandas category
        return {}
    if not isinstance(lists, list) or not all(isinstance(c, list) for c in lists):
        raise InvalidModelError(f"{who}: pandas_categorical is not a list of category lists")
    infos = header.get("feature_infos", "").split(" ")
    categorical = [i for i, info in enumerate(infos) if info != "none" and not info.startswith("[")]
    if len(infos) != n_features or len(categorical) != len(lists):
        raise InvalidModelError(
            f"{who} records {len(lists)} pandas category columns but {len(categorical)} "
            "categorical features, so byom cannot tell which column each belongs to (ordered "
            "categories, or categorical_feature naming numeric columns, do this); retrain with "
            "unordered pandas categories as the only categorical features"
        )
    return {i: [_category(c) for c in cats] for i, cats in zip(categorical, lists, strict=True)}


def _category(value: object) -> str:
    """A pandas category as the text byom's inputs give it: 2.0 and 2 name the same one."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
