"""The compiled tree kernel equals the numpy path (`evaluate.margins`) bit for bit, and its
compiled code is cached in memory and on disk (reused across processes, rebuilt when damaged)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from byom.trees import evaluate, kernel, kernel_cache
from byom.trees.ensemble import (
    EQ,
    GE,
    GT,
    IN,
    LE,
    LT,
    MISSING_NAN,
    MISSING_ZERO,
    NAN_AS_ZERO,
    NAN_COMPARES,
    NEQ,
    Node,
    TreeEnsemble,
)

pytestmark = pytest.mark.skipif(not kernel.available(), reason="llvmlite is not installed")
ROOT = Path(__file__).resolve().parents[1]
OPS = (LE, LT, GE, GT, EQ, NEQ, IN)
KINDS = (MISSING_NAN, MISSING_ZERO, NAN_AS_ZERO, NAN_COMPARES)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test its own disk cache and an empty memory cache."""
    monkeypatch.setenv("BYOM_KERNEL_CACHE", str(tmp_path / "kernels"))
    kernel_cache.clear_memory()
    yield
    kernel_cache.clear_memory()


@pytest.fixture(params=["as-chosen", "walked", "branches"])
def kinds(request, monkeypatch):
    """Score each tree as the kernel chooses; or walk every tree it can (VECTOR_LEAVES 0:
    small trees of plain comparisons walk too); or none (branches only), so that each way of
    scoring meets every rule."""
    if request.param != "as-chosen":
        monkeypatch.setattr(kernel, "VECTOR_LEAVES", 0)
    if request.param == "branches":
        monkeypatch.setattr(kernel, "WALK_FEATURES", 0)
    return request.param


def random_tree(rng, n_features, n_outputs, depth, multi=False, ops=OPS, output=None, stop=0.2):
    """A random tree of Nodes: every op (of `ops`) and missing rule, categorical sets, one or
    several (output, weight) pairs per leaf (or all to `output`)."""
    nodes: list[Node] = []

    def grow(level):
        i = len(nodes)
        nodes.append(Node())
        if level == depth or (level > 1 and rng.random() < stop):
            pairs = rng.integers(1, 3) if multi else 1
            nodes[i].leaf = [
                (int(rng.integers(n_outputs)) if output is None else output, float(rng.normal()))
                for _ in range(pairs)
            ]
            return i
        op = int(rng.choice(ops))
        yes, no = grow(level + 1), grow(level + 1)
        threshold = float(rng.choice([0.0, -0.5, 1e-36, rng.normal(), 1.0 / 3.0]))
        nodes[i] = Node(
            feature=int(rng.integers(n_features)),
            threshold=threshold,
            op=op,
            yes=yes,
            no=no,
            missing=yes if rng.random() < 0.5 else no,
            missing_kind=int(rng.choice(KINDS)),
            categories=tuple(int(c) for c in rng.choice(70, rng.integers(1, 6)))
            if op == IN
            else (),
        )
        return i

    grow(0)
    return nodes


def random_ensemble(
    seed=0, n_trees=12, n_features=5, n_outputs=1, multi=False, vector=False, **options
):
    """`vector`: trees of every kind the kernel has (`kernel._tree_kinds`), one output
    each: most small without a categorical split (branch-free), some larger of plain
    comparisons (walked), some with a categorical split or an equality test (branches)."""
    rng = np.random.default_rng(seed)
    if vector:
        numeric = tuple(op for op in OPS if op != IN)
        trees = [
            random_tree(rng, n_features, n_outputs, 6, ops=numeric, output=t % n_outputs)
            if t % 4
            else random_tree(
                rng, n_features, n_outputs, 9, ops=(LE, LT, GE, GT), output=t % n_outputs, stop=0.05
            )
            if t % 8
            else random_tree(rng, n_features, n_outputs, 6, output=0)
            for t in range(n_trees)
        ]
    else:
        trees = [random_tree(rng, n_features, n_outputs, 6, multi) for _ in range(n_trees)]
    base = rng.normal(size=n_outputs)
    return TreeEnsemble.build(trees, n_features, n_outputs, base, **options)


def random_features(n, n_features, seed=1):
    """Values that exercise every rule: NaN, zeros and tiny values, negatives, integers (for
    category sets) and their neighbours, the thresholds themselves, large values, infinities."""
    rng = np.random.default_rng(seed)
    pool = np.array(
        [
            *(np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-30, -0.5, -1.0, 0.5, 1.0 / 3.0, 1e10, np.inf),
            *(-np.inf, 2**31, 3.0, 31.0, 32.0, 33.0, 63.0, 64.0, 69.99, float(np.float32(1 / 3))),
        ]
    )
    columns = []
    for _ in range(n_features):
        col = rng.normal(size=n)
        pick = rng.random(n) < 0.4
        col[pick] = rng.choice(pool, pick.sum())
        ints = rng.random(n) < 0.2
        col[ints] = rng.integers(-2, 72, ints.sum())
        columns.append(col)
    return columns


def assert_identical(e, features):
    got = kernel.margins(e, features)
    ref = evaluate.margins(e, features)
    assert got.shape == ref.shape and got.dtype == np.float64
    assert np.array_equal(got.view(np.uint64), ref.view(np.uint64)), (
        f"{int((got != ref).sum())} values differ, at most by {np.nanmax(np.abs(got - ref))}"
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"float32": True},
        {"sum_float32": True},
        {"float32": True, "sum_float32": True},
        {"aggregate": "average"},
        {"aggregate": "average", "float32": True, "sum_float32": True},
    ],
    ids=["f64", "float32", "sum_float32", "xgboost-like", "average", "average-f32"],
)
@pytest.mark.parametrize(
    "outputs",
    [(1, False, False), (3, False, False), (4, True, False), (1, False, True), (3, False, True)],
    ids=["1", "3", "multi", "1-vector", "3-vector"],
)
def test_bit_identical_to_numpy(options, outputs, kinds):
    n_outputs, multi, vector = outputs
    e = random_ensemble(
        seed=len(options) + n_outputs, n_outputs=n_outputs, multi=multi, vector=vector, **options
    )
    counts = np.bincount(kernel._tree_kinds(e), minlength=3)
    if vector and kinds == "as-chosen":  # every kind of tree, in one ensemble
        assert counts.all(), counts
    if vector and kinds == "walked":
        assert counts[kernel._WALK] and not counts[kernel._VECTOR], counts
    if kinds == "branches":
        assert counts[kernel._BRANCH] == e.n_trees
    assert_identical(e, random_features(5_001, e.n_features))


@pytest.mark.parametrize("vector", [False, True], ids=["branches", "vector"])
@pytest.mark.parametrize(
    "n", [0, 1, kernel.LANES - 1, kernel.LANES + 1, kernel.BLOCK_ROWS + 3, 1_001]
)
def test_row_counts(n, vector, kinds):
    e = random_ensemble(seed=3, n_outputs=2, vector=vector)
    assert_identical(e, random_features(n, e.n_features))


def test_negative_values_in_no_category_set():
    """XGBoost's rule (x < 0 is no category, though -0.5 truncates to 0) in both paths."""
    e = random_ensemble(seed=5, n_outputs=2)
    e.negative_not_in_set = True
    features = random_features(3_000, e.n_features)
    for column in features[:3]:
        column[::7] = -0.5
    assert_identical(e, features)


def test_every_op_and_missing_rule_on_one_split(kinds):
    """One split per (op, rule, missing side), against every special value."""
    features = random_features(2_000, 1, seed=7)
    for op in OPS:
        for kind in KINDS:
            for side in ("yes", "no"):
                for threshold in (0.0, -0.5, 1e-36, 2.5, 1.0 / 3.0, -1.7976931348623157e308):
                    split = Node(
                        feature=0, threshold=threshold, op=op, yes=1, no=2,
                        missing=1 if side == "yes" else 2, missing_kind=kind,
                        categories=(0, 3, 33, 64) if op == IN else (),
                    )  # fmt: skip
                    leaves = [Node(leaf=[(0, 1.0)]), Node(leaf=[(0, -1.0)])]
                    for flag in (False, True):
                        e = TreeEnsemble.build([[split, *leaves]], 1, 1, float32=flag)
                        assert_identical(e, features)


def test_large_ensemble_in_several_functions(monkeypatch, kinds):
    """Trees split across generated functions and row loops keep their order of additions."""
    monkeypatch.setattr(kernel, "CHUNK_NODES", 300)
    monkeypatch.setattr(kernel, "GROUP_NODES", 100)
    e = random_ensemble(seed=11, n_trees=40, n_outputs=2, sum_float32=True)
    assert_identical(e, random_features(777, e.n_features))


def test_walked_runs_split_by_features(monkeypatch):
    """Walked trees over more features together than a run may stage are split into runs,
    which keep the trees' order of additions."""
    monkeypatch.setattr(kernel, "WALK_FEATURES", 3)
    rng = np.random.default_rng(13)
    trees = []
    for t in range(12):  # trees on features {0, 1} and {2, 3} in turn: 2 each, 4 together
        tree = random_tree(rng, 2, 2, 9, ops=(LE, LT, GE, GT), output=t % 2, stop=0.05)
        for node in tree:
            node.feature += 2 * (t % 2) if node.feature >= 0 else 0
        trees.append(tree)
    e = TreeEnsemble.build(trees, 4, 2, [0.5, -0.25])
    assert (kernel._tree_kinds(e) == kernel._WALK).sum() > 6
    assert len(kernel._walk_runs(e, range(e.n_trees))) == e.n_trees
    assert_identical(e, random_features(1_000, e.n_features))


def test_deep_tree_compiles_without_recursion(kinds):
    depth = 2_000  # a chain: far beyond Python's recursion limit if generated recursively
    chain: list = [None] * (2 * depth + 1)  # node 2d: the split at depth d; 2d+1: its leaf
    for d in range(depth):
        chain[2 * d] = Node(0, float(d), LT, yes=2 * d + 1, no=2 * d + 2, missing=2 * d + 2)
        chain[2 * d + 1] = Node(leaf=[(0, float(d))])
    chain[-1] = Node(leaf=[(0, -1.0)])
    e = TreeEnsemble.build([chain], 1, 1)
    assert_identical(e, [np.linspace(-5, depth + 5, 3_000)])


def test_threads_share_one_kernel():
    """Two threads score at once (ctypes releases the GIL; timing is the bench's business)."""
    e = random_ensemble(seed=5, n_trees=30)
    features = random_features(20_000, e.n_features)
    ref = evaluate.margins(e, features)
    results: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: results.append(kernel.margins(e, features)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(np.array_equal(r, ref) for r in results)


def test_numpy_path_with_one_notice(monkeypatch, caplog):
    e = random_ensemble(seed=2)
    features = random_features(300, e.n_features)
    monkeypatch.setattr(kernel, "llvm", None)
    monkeypatch.setattr(kernel, "_noticed", set())
    with caplog.at_level(logging.WARNING, logger="byom.trees.kernel"):
        first = kernel.margins(e, features)
        second = kernel.margins(e, features)
    assert not kernel.available()
    assert np.array_equal(first, evaluate.margins(e, features)) and np.array_equal(first, second)
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "llvmlite cannot be imported" in notices[0]


def test_scorers_path_gives_the_notice_too(monkeypatch, caplog):
    """What the format scorers call (byom.trees.kernel_margins) says why numpy scores."""
    from byom.trees import kernel_margins

    e = random_ensemble(seed=6)
    features = random_features(50, e.n_features)
    monkeypatch.setattr(kernel, "llvm", None)
    monkeypatch.setattr(kernel, "_noticed", set())
    with caplog.at_level(logging.WARNING, logger="byom.trees.kernel"):
        got = kernel_margins(e, features)
    assert np.array_equal(got, evaluate.margins(e, features))
    assert "llvmlite cannot be imported" in caplog.text


def test_node_bound_falls_back(monkeypatch, caplog):
    e = random_ensemble(seed=2)
    monkeypatch.setattr(kernel, "MAX_KERNEL_NODES", e.n_nodes - 1)
    monkeypatch.setattr(kernel, "_noticed", set())
    with caplog.at_level(logging.WARNING, logger="byom.trees.kernel"):
        assert kernel_cache.kernel_for(e) is None
    assert "over the kernel's bound" in caplog.text
    features = random_features(100, e.n_features)
    assert np.array_equal(kernel.margins(e, features), evaluate.margins(e, features))


def test_compile_cost_weighs_each_kind_of_tree():
    """The bound weighs what compiling costs: a branch-free tree's nodes four times, a walked
    tree's a quarter, a branchy tree's once."""

    def chain(leaves):  # a caterpillar tree: each split's `no` side goes deeper
        nodes = []
        for i in range(leaves - 1):
            split = Node(
                feature=0, threshold=float(i), yes=2 * i + 1, no=2 * i + 2, missing=2 * i + 1
            )
            nodes += [split, Node(leaf=[(0, float(i))])]
        return [*nodes, Node(leaf=[(0, -1.0)])]

    small, large = chain(2), chain(kernel.VECTOR_LEAVES + 1)
    branchy = chain(kernel.VECTOR_LEAVES + 1)
    branchy[0].op = EQ
    e = TreeEnsemble.build([small, large, branchy], 1, 1)
    assert list(kernel._tree_kinds(e)) == [kernel._VECTOR, kernel._WALK, kernel._BRANCH]
    assert kernel.compile_cost(e) == 4 * len(small) + -(-len(large) // 4) + len(branchy)


# --- the caches ------------------------------------------------------------------------------

SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_tree_kernel import random_ensemble, random_features
from byom.trees import kernel, kernel_cache
e = random_ensemble(seed=9, n_trees=25)
m = kernel.margins(e, random_features(500, e.n_features))
s = kernel_cache.STATS
print(json.dumps({{"compiled": s.compiled, "disk_loads": s.disk_loads, "rebuilt": s.rebuilt,
                  "sum": m.sum().hex()}}))
"""


def run_process(cache: Path) -> subprocess.Popen:
    env = {**os.environ, "BYOM_KERNEL_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    code = SCRIPT.format(tests=str(ROOT / "tests"))
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )


def outcome(proc: subprocess.Popen) -> dict:
    import json

    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def test_memory_cache_compiles_once():
    e = random_ensemble(seed=4)
    before = kernel_cache.STATS.compiled
    assert kernel_cache.kernel_for(e) is kernel_cache.kernel_for(e)
    assert kernel_cache.STATS.compiled - before <= 1


def test_second_process_loads_from_disk(tmp_path):
    first = outcome(run_process(tmp_path))
    second = outcome(run_process(tmp_path))
    assert (first["compiled"], first["disk_loads"]) == (1, 0)
    assert (second["compiled"], second["disk_loads"]) == (0, 1)
    assert first["sum"] == second["sum"]
    entries = list(tmp_path.glob("*.o"))
    assert len(entries) == 1 and not list(tmp_path.glob("*.tmp"))


def test_cache_folder_is_private(tmp_path, monkeypatch):
    folder = tmp_path / "fresh" / "kernels"
    monkeypatch.setenv("BYOM_KERNEL_CACHE", str(folder))
    assert kernel_cache.cache_dir() == folder
    assert folder.stat().st_mode & 0o777 == 0o700


def test_shared_folder_is_not_used(tmp_path, monkeypatch):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    monkeypatch.setenv("BYOM_KERNEL_CACHE", str(folder))
    assert kernel_cache.cache_dir() is None
    e = random_ensemble(seed=6)
    features = random_features(100, e.n_features)
    assert np.array_equal(kernel.margins(e, features), evaluate.margins(e, features))
    assert not list(folder.iterdir())


@pytest.mark.parametrize("damage", ["truncated", "flipped", "foreign", "empty"])
def test_damaged_entry_is_rebuilt(tmp_path, damage):
    assert outcome(run_process(tmp_path))["compiled"] == 1
    (entry,) = tmp_path.glob("*.o")
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        entry.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "foreign":  # a valid entry of another model under this model's name
        other = tmp_path / "other"
        other.mkdir(mode=0o700)
        e = random_ensemble(seed=1)
        key = kernel_cache.kernel_key(e)
        kernel_cache.write_entry(other / f"{key}.o", key, kernel_cache.compile_object(e))
        entry.write_bytes((other / f"{key}.o").read_bytes())
    else:
        entry.write_bytes(b"")
    again = outcome(run_process(tmp_path))
    assert (again["compiled"], again["disk_loads"], again["rebuilt"]) == (1, 0, 1)
    assert kernel_cache.read_entry(entry, entry.stem) is not None  # replaced by a good one
    assert outcome(run_process(tmp_path))["disk_loads"] == 1


def test_two_processes_compiling_at_once(tmp_path):
    procs = [run_process(tmp_path) for _ in range(2)]
    results = [outcome(p) for p in procs]
    assert all(r["compiled"] + r["disk_loads"] == 1 for r in results)
    assert results[0]["sum"] == results[1]["sum"]
    (entry,) = tmp_path.glob("*.o")
    assert kernel_cache.read_entry(entry, entry.stem) is not None
    assert not list(tmp_path.glob(".*.tmp"))


# --- real models, read by byom's own readers, against the training libraries ------------------


def real_data(n=4_000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8))
    X[:, 3] = rng.integers(0, 12, n)  # a categorical code
    X[rng.random(X.shape) < 0.08] = np.nan
    X[rng.random(X.shape) < 0.05] = 0.0
    y = np.nan_to_num(X[:, 0]) * 2 + (np.nan_to_num(X[:, 3]) % 3) + rng.normal(size=n) * 0.3
    return X, y


@pytest.mark.parametrize("objective", ["binary", "regression", "multiclass"])
def test_lightgbm_models_against_lightgbm(objective, tmp_path):
    lgb = pytest.importorskip("lightgbm")
    from byom.trees.lightgbm import read_model

    X, y = real_data()
    label = {"binary": y > 1, "regression": y, "multiclass": np.digitize(y, [0, 2])}[objective]
    params = {"objective": objective, "num_leaves": 31, "verbose": -1, "seed": 0}
    if objective == "multiclass":
        params["num_class"] = 3
    data = lgb.Dataset(X, label, categorical_feature=[3])
    booster = lgb.train({**params, "zero_as_missing": objective == "regression"}, data, 60)
    e = read_model(booster.model_to_string().encode()).ensemble
    columns = [X[:, j].copy() for j in range(X.shape[1])]
    got = kernel.margins(e, columns)
    assert np.array_equal(got.view(np.uint64), evaluate.margins(e, columns).view(np.uint64))
    want = booster.predict(X, raw_score=True).reshape(len(X), -1)
    assert np.max(np.abs(got - want)) <= 1e-12


@pytest.mark.parametrize("objective", ["binary:logistic", "reg:squarederror", "multi:softprob"])
def test_xgboost_models_against_xgboost(objective):
    xgb = pytest.importorskip("xgboost")
    from byom.trees.xgboost import read_model

    X, y = real_data(seed=1)
    label = {"binary:logistic": y > 1, "reg:squarederror": y}.get(objective, np.digitize(y, [0, 2]))
    params = {"objective": objective, "max_depth": 6, "seed": 0}
    if objective == "multi:softprob":
        params["num_class"] = 3
    booster = xgb.train(params, xgb.DMatrix(X, label), 40)
    e = read_model(bytes(booster.save_raw("json"))).ensemble
    columns = [X[:, j].copy() for j in range(X.shape[1])]
    got = kernel.margins(e, columns)
    assert np.array_equal(got.view(np.uint64), evaluate.margins(e, columns).view(np.uint64))
    want = booster.predict(xgb.DMatrix(X), output_margin=True).reshape(len(X), -1)
    assert np.array_equal(got.astype(np.float32), want)
