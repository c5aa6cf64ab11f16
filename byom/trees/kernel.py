"""A TreeEnsemble compiled to native code with llvmlite: the same margins as
`byom.trees.evaluate.margins`, bit for bit, several times faster.

The generated function is

    void byom_predict(double **columns, int64 n_rows, double *out /* [n_rows, n_outputs] */)

It reads the engine's columns where they are (one pointer per feature, no row-major copy) and
works through the rows in blocks of `BLOCK_ROWS`: within a block, tree by tree (so one tree's
code or tables stay in cache while it runs over the block). A tree is scored one of three ways
(`_tree_kinds`): small trees without a branch, LANES rows at once, QuickScorer style
(`_Gen._vector_rows`); other trees of plain comparisons walked as data, WALK_LANES rows side
by side (`_Gen._walk`); the rest as a nest of branches in which every node's comparison,
missing-value rule and category set is a constant (`_Gen._tree`). Every row's accumulator
lives in `out`; trees add to it in tree order, in float64 or, for `sum_float32`, in float32
(held exactly in the double slot), starting from `0.0 + base` for a sum and finishing with
`base + total / trees` for an average: the numpy path's operations in the numpy path's order,
so the results are identical. No fast-math flag is ever set.

Trees are grouped into functions of at most `CHUNK_NODES` nodes, which bounds what LLVM
optimises at once. Ensembles over `MAX_KERNEL_NODES` nodes, or where llvmlite cannot be
imported, are scored by the numpy path with a one-line notice. The compiled object code is
cached in memory and on disk (`kernel_cache`); ctypes releases the GIL during the call, so
engine threads score in parallel.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from byom import config
from byom.trees import evaluate
from byom.trees.ensemble import (
    GT,
    IN,
    LE,
    LT,
    MISSING_NAN,
    MISSING_ZERO,
    NAN_AS_ZERO,
    NAN_COMPARES,
    NEQ,
    ZERO_THRESHOLD,
    TreeEnsemble,
)

try:  # a database's locked-down Python may lack llvmlite: the numpy path scores there
    import llvmlite.binding as llvm
    from llvmlite import ir
except ImportError:  # pragma: no cover - exercised where llvmlite is absent
    llvm = None
    ir = None

log = logging.getLogger(__name__)

#: Part of every cache key: bump it whenever the generated code changes.
KERNEL_VERSION = 5
#: Rows per block: all trees run over a block before the next.
BLOCK_ROWS = 128
#: Nodes per generated function (LLVM's optimisation time grows faster than linearly with a
#: function's size).
CHUNK_NODES = 20_000
#: Nodes per loop over the rows: each row's features are loaded once per group and its totals
#: stay in registers; larger groups optimise more slowly (superlinearly).
GROUP_NODES = 1_280
#: Rows scored at once by a vector group (one SIMD lane each); the entry point takes a multiple
#: of it (`Kernel.margins` scores a shorter tail through a padded copy).
LANES = 8
#: Fewer rows than this are copied into one padded matrix for the call (a model scoring a few
#: rows of a batch that names many models): cheaper than reading each column's address.
SMALL_ROWS = 256
#: Trees with at most this many leaves, one output and no categorical split are scored
#: branch-free, several rows at once (see `_Gen._vector_rows`).
VECTOR_LEAVES = 64
#: Other trees whose splits are all comparisons (<, <=, >=, >) are walked as data
#: (`_Gen._walk`), this many rows side by side: the compiled code does not grow with the
#: trees, only its tables.
WALK_LANES = LANES
#: The first levels of every walked tree are taken by all WALK_LANES rows at once with vector
#: loads and selects (`_walk_top`): every row starts at the root, so those nodes are few.
TOP_LEVELS = 3
#: Features a walked run of trees may use: a run stages both signs of each for a block of rows
#: on the stack (at most 2 x 128 x 128 x 8 bytes = 256 KiB).
WALK_FEATURES = 128
#: Larger ensembles stay on the numpy path (ONNX ones on onnxruntime). Compiling takes about
#: 0.12 ms of a current core per node of a branchy tree, four times that per node of a
#: branch-free one and a twentieth per walked node (whose tables make the IR large, so they
#: count a quarter), so the bound (on `compile_cost`) keeps a query's first compile (later ones
#: load from the disk cache) under a minute and its memory bounded, however hostile the model.
MAX_KERNEL_NODES = config.int_env("BYOM_KERNEL_MAX_NODES", 300_000)
ENTRY = "byom_predict"
_PREDICATES = ("<=", "<", ">=", ">", "==", "!=")  # LE, LT, GE, GT, EQ, NEQ
_noticed: set[str] = set()


def available() -> bool:
    """Whether llvmlite can be imported here (else every ensemble uses the numpy path)."""
    return llvm is not None


def notice(reason: str) -> None:
    """One warning per reason and process: why the numpy path scores instead of the kernel."""
    if reason not in _noticed:
        _noticed.add(reason)
        log.warning("byom trees: %s; scoring with the numpy path", reason)


def why_not(ensemble: TreeEnsemble) -> str | None:
    """Why this ensemble cannot be compiled here, or None."""
    if not available():
        return "llvmlite cannot be imported (pip install llvmlite)"
    cost = compile_cost(ensemble)
    if cost > MAX_KERNEL_NODES:
        return (
            f"an ensemble of {ensemble.n_nodes:,} nodes (compiling as {cost:,}) is over the "
            f"kernel's bound of {MAX_KERNEL_NODES:,} (BYOM_KERNEL_MAX_NODES)"
        )
    return None


def compile_cost(e: TreeEnsemble) -> int:
    """The ensemble's nodes, weighted by what they cost to compile relative to a branchy
    tree's: four times for a branch-free tree, a quarter for a walked one (its nodes are
    tables: quick to compile, but they make the IR long)."""
    sizes = np.diff(np.append(e.roots, e.n_nodes))
    kinds = _tree_kinds(e)
    weight = np.where(kinds == _VECTOR, 16, np.where(kinds == _WALK, 1, 4))
    return -(-int((sizes * weight).sum()) // 4)


class Kernel:
    """A loaded kernel: the engine that owns the code and the ctypes entry point."""

    def __init__(self, owner: Any, address: int, ensemble: TreeEnsemble) -> None:
        self._owner = owner  # keeps the code mapped while the kernel lives
        self._fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)(address)
        self.n_features = ensemble.n_features
        self.n_outputs = ensemble.n_outputs

    def margins(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """float64 [n, n_outputs], as `evaluate.margins(ensemble, features)`."""
        if len(features) != self.n_features:
            raise ValueError(f"{len(features)} feature columns for {self.n_features} features")
        n = len(features[0])
        if n < SMALL_ROWS:  # one padded copy of all columns: cheaper than a pointer each
            rows = -(-n // LANES) * LANES
            matrix = np.zeros((len(features), rows), np.float64)
            try:
                matrix[:, :n] = np.array(features, dtype=np.float64)  # one C loop
            except ValueError:
                raise ValueError("feature columns of different lengths") from None
            padded = np.empty((rows, self.n_outputs), np.float64)
            self._call_matrix(matrix, padded)
            return padded[:n]
        columns = [np.ascontiguousarray(f, dtype=np.float64) for f in features]
        if any(len(c) != n for c in columns):
            raise ValueError("feature columns of different lengths")
        out = np.empty((n, self.n_outputs), np.float64)
        body = n - n % LANES
        self._call(columns, body, out)
        if body < n:  # the tail, padded to a whole vector of rows
            tail = np.zeros((len(columns), LANES), np.float64)
            for padded_row, c in zip(tail, columns, strict=True):
                padded_row[: n - body] = c[body:]
            tail_out = np.empty((LANES, self.n_outputs), np.float64)
            self._call_matrix(tail, tail_out)
            out[body:] = tail_out[: n - body]
        return out

    def _call(self, columns: list[np.ndarray], n: int, out: np.ndarray) -> None:
        addresses = [c.__array_interface__["data"][0] for c in columns]
        pointers = (ctypes.c_void_p * len(columns))(*addresses)
        self._fn(pointers, n, out.__array_interface__["data"][0])  # the GIL is released

    def _call_matrix(self, matrix: np.ndarray, out: np.ndarray) -> None:
        """The kernel on a C-contiguous [features, rows] matrix: the column pointers are the
        matrix's rows, computed with numpy (no Python call per column)."""
        base = matrix.__array_interface__["data"][0]
        step = matrix.shape[1] * 8
        pointers = base + np.arange(matrix.shape[0], dtype=np.uint64) * np.uint64(step)
        address = pointers.__array_interface__["data"][0]
        self._fn(address, matrix.shape[1], out.__array_interface__["data"][0])


def grouped_margins(
    kernels: Sequence[Kernel], columns: Sequence[np.ndarray], starts: Sequence[int]
) -> np.ndarray:
    """float64 [rows, n_outputs]: rows [starts[g], starts[g + 1]) of the feature columns
    (C-contiguous float64, one per feature) scored by kernels[g], the last group running to
    the end; the kernels share n_outputs.

    One call per group, handed pointers into the columns themselves: a group's row count is
    rounded up to whole vectors, so it reads the next group's first rows and writes their
    outputs too, which the next group, scored after it, overwrites. A group whose rounded
    rows would run past the columns' end reads a padded copy of its rows instead."""
    n, n_outputs = len(columns[0]), kernels[0].n_outputs
    out = np.empty((n + LANES, n_outputs), np.float64)
    first = np.asarray(starts, np.int64)
    counts = np.diff(np.append(first, n))
    rounded = -(-counts // LANES) * LANES
    bases = np.array([c.__array_interface__["data"][0] for c in columns], np.uint64)
    pointers = np.ascontiguousarray(bases[None, :] + (first * 8).astype(np.uint64)[:, None])
    address, row_bytes = pointers.__array_interface__["data"][0], len(columns) * 8
    out_address = out.__array_interface__["data"][0]
    inside = (first + rounded <= n).tolist()
    for g, (kernel, at, count, whole) in enumerate(
        zip(kernels, first.tolist(), counts.tolist(), rounded.tolist(), strict=True)
    ):
        if inside[g]:
            kernel._fn(address + g * row_bytes, whole, out_address + at * n_outputs * 8)
        else:  # the last rows: a padded copy, so nothing past the columns is read
            matrix = np.zeros((len(columns), whole), np.float64)
            for row, c in zip(matrix, columns, strict=True):
                row[:count] = c[at : at + count]
            kernel._call_matrix(matrix, out[at : at + whole])
    return out[:n]


def margins(ensemble: TreeEnsemble, features: Sequence[np.ndarray]) -> np.ndarray:
    """The kernel's margins where it can be compiled, else the numpy path's (same numbers)."""
    from byom.trees.kernel_cache import kernel_for

    kernel = kernel_for(ensemble)
    if kernel is None:
        return evaluate.margins(ensemble, features)
    return kernel.margins(features)


# --- code generation -------------------------------------------------------------------------


def generate_ir(e: TreeEnsemble) -> str:
    """The LLVM IR module (text) of the ensemble's `byom_predict`."""
    module = ir.Module(name="byom_trees")
    module.triple = llvm.get_process_triple()
    gen = _Gen(e, module)
    chunks = [gen.chunk(k, trees) for k, trees in enumerate(_chunks(e))]
    gen.predict(chunks)
    return str(module)


def _chunks(e: TreeEnsemble) -> list[range]:
    """Consecutive trees, at most CHUNK_NODES nodes per function (a larger tree alone)."""
    return _groups(e, range(e.n_trees), CHUNK_NODES)


class _Gen:
    """Emits the functions of one ensemble into one module."""

    def __init__(self, e: TreeEnsemble, module: Any) -> None:
        self.e, self.module = e, module
        self.f64, self.f32, self.i64 = ir.DoubleType(), ir.FloatType(), ir.IntType(64)
        self.acc = self.f32 if e.sum_float32 else self.f64
        self.value = self.f32 if e.float32 else self.f64
        self.dtype = np.float32 if e.sum_float32 else np.float64
        self.ptr = self.f64.as_pointer()
        self.args = [self.ptr.as_pointer(), self.i64, self.i64, self.ptr]
        self.cats = self._global("cats", ir.IntType(32), e.cat_words.view(np.int32))
        self.kinds = _tree_kinds(e)
        self.vector = _vector_trees(e, self.kinds)
        leaves = [
            e.leaf_weight[e.leaf_start[i]] for t in sorted(self.vector) for i in self.vector[t][0]
        ]
        self.leaves = self._global("leaves", self.acc, np.asarray(leaves, self.dtype))

    def _global(self, name: str, ty: Any, values: np.ndarray) -> Any:
        if not values.size:
            return None
        array = ir.ArrayType(ty, len(values))
        var = ir.GlobalVariable(self.module, array, name)
        var.initializer = ir.Constant(array, [ir.Constant(ty, v.item()) for v in values])
        var.global_constant, var.linkage = True, "internal"
        return var

    def _const(self, ty: Any, value: float, lanes: int = 1) -> Any:
        """A floating constant of type ty holding exactly numpy's rounding of value (splat
        over `lanes` when more than one)."""
        dtype = np.float32 if ty == self.f32 else np.float64
        return _splat(ty, float(dtype(value)), lanes)

    def _fabs(self, lanes: int) -> Any:
        ty = _vec(self.value, lanes)
        name = (
            "llvm.fabs."
            + (f"v{lanes}" if lanes > 1 else "")
            + ("f32" if self.value == self.f32 else "f64")
        )
        return self._intrinsic(name, ir.FunctionType(ty, [ty]))

    def _cttz(self, ty: Any) -> Any:
        name = f"llvm.cttz.v{ty.count}i{ty.element.width}"
        return self._intrinsic(name, ir.FunctionType(ty, [ty, ir.IntType(1)]))

    def _intrinsic(self, name: str, signature: Any) -> Any:
        """An LLVM intrinsic by its mangled name, declared once per module (llvmlite's
        `declare_intrinsic` cannot name vector forms)."""
        existing = self.module.globals.get(name)
        return existing or ir.Function(self.module, signature, name)

    def chunk(self, k: int, trees: range) -> Any:
        """`void chunk_k(double **columns, int64 start, int64 end, double *out)`: the trees of
        the chunk over rows [start, end), added to out, group by group: a loop over the rows
        (LANES at a time) for branch-free groups; for the others a call per row of a function
        holding the group's branches, each row's features loaded once and its totals kept in
        registers. (In a loop, LLVM hoists every threshold into a register and its register
        allocator then takes minutes over large trees.)"""
        fn = self._function(f"chunk_{k}", self.args)
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        columns, start, end, out = fn.args
        col = {f: b.load(b.gep(columns, [ir.Constant(self.i64, f)])) for f in self._used(trees)}
        buffer = None  # the walked runs' staging buffer, one per function
        for run in _runs(trees, lambda t: int(self.kinds[t])):
            if self.kinds[run.start] == _WALK:
                if buffer is None:
                    buffer = self._alloca(b, (1 + 2 * WALK_FEATURES) * BLOCK_ROWS)
                for walked in _walk_runs(self.e, run):
                    self._walk(b, walked, start, end, col, out, buffer)
                continue
            for group in _groups(self.e, run, GROUP_NODES):
                if run.start in self.vector:

                    def rows(row: Any, group: range = group) -> None:
                        self._vector_rows(b, group, row, col, out)

                    _loop(b, start, end, rows, step=ir.Constant(self.i64, LANES))
                else:
                    one_row = self._row_function(f"chunk_{k}_{group.start}", group)

                    def call(row: Any, one_row: Any = one_row) -> None:
                        b.call(one_row, [columns, row, out])

                    _loop(b, start, end, call)
        b.ret_void()
        return fn

    def _function(self, name: str, args: list[Any]) -> Any:
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")  # compiled one by one: codegen time grows faster than size
        for arg in (fn.args[0], fn.args[-1]):
            arg.add_attribute("noalias")
        return fn

    def _row_function(self, name: str, trees: range) -> Any:
        """`void name(double **columns, int64 row, double *out)`: one row through the trees."""
        fn = self._function(name, [self.ptr.as_pointer(), self.i64, self.ptr])
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        columns, row, out = fn.args
        col = {f: b.load(b.gep(columns, [ir.Constant(self.i64, f)])) for f in self._used(trees)}
        self._rows(b, trees, row, col, out)
        b.ret_void()
        return fn

    def _used(self, trees: range) -> list[int]:
        e = self.e
        nodes = np.arange(self._nodes(trees.start).start, self._nodes(trees.stop - 1).stop)
        return [int(f) for f in np.unique(e.feature[nodes]) if f >= 0]

    def _nodes(self, t: int) -> range:
        end = self.e.roots[t + 1] if t + 1 < self.e.n_trees else self.e.n_nodes
        return range(int(self.e.roots[t]), int(end))

    def _rows(self, b: Any, trees: range, row: Any, col: dict[int, Any], out: Any) -> None:
        """One row through a group of trees, added to its totals in tree order."""
        e = self.e
        x = {f: b.load(b.gep(col[f], [row])) for f in self._used(trees)}
        base = b.mul(row, ir.Constant(self.i64, e.n_outputs))
        totals: dict[int, Any] = {}  # output -> its running total, in a register

        def slot(o: int) -> Any:
            return b.gep(out, [b.add(base, ir.Constant(self.i64, o))])

        def flush() -> None:
            for o, total in totals.items():
                b.store(b.fpext(total, self.f64) if self.acc == self.f32 else total, slot(o))
            totals.clear()

        for t in trees:
            nodes = self._nodes(t)
            leaves = [i for i in nodes if e.feature[i] < 0]
            outputs = {int(e.leaf_output[e.leaf_start[i]]) for i in leaves}
            if len(outputs) == 1 and all(e.leaf_count[i] == 1 for i in leaves):
                (o,) = outputs
                if o not in totals:
                    total = b.load(slot(o))
                    totals[o] = b.fptrunc(total, self.f32) if self.acc == self.f32 else total
                totals[o] = b.fadd(totals[o], self._tree(b, t, x, None))
            else:  # leaves adding to several outputs: through memory
                flush()
                self._tree(b, t, x, lambda i: self._leaf(b, i, slot))
        flush()

    def _vector_rows(self, b: Any, trees: range, row: Any, col: dict[int, Any], out: Any) -> None:
        """LANES rows through a group of small trees at once, without a branch (QuickScorer):
        each tree keeps a bitmask of its leaves in order (`yes` subtrees first); every split
        whose test fails clears the leaves of its `yes` subtree; the leaf reached is the
        lowest bit left. The same tests and the same additions in the same order as a walk."""
        e = self.e
        f64v = _vec(self.f64, LANES)
        x = {
            f: b.load(b.bitcast(b.gep(col[f], [row]), f64v.as_pointer()), align=8)
            for f in self._used(trees)
        }
        totals: dict[int, Any] = {}
        for t in trees:
            order, masks, width, offset = self.vector[t]
            o = int(e.leaf_output[e.leaf_start[order[0]]])
            if o not in totals:
                totals[o] = self._load_lanes(b, out, row, o)
            mask_type = _vec(ir.IntType(width), LANES)
            every = _splat(ir.IntType(width), -1, LANES)
            reached = every
            for i, mask in masks:
                test = self._goes_yes(b, i, x[int(e.feature[i])], LANES)
                reached = b.and_(
                    reached, b.select(test, every, _splat(ir.IntType(width), mask, LANES))
                )
            leaf = b.call(self._cttz(mask_type), [reached, ir.Constant(ir.IntType(1), 0)])
            index = b.add(b.zext(leaf, _vec(self.i64, LANES)), _splat(self.i64, offset, LANES))
            values = ir.Constant(_vec(self.acc, LANES), ir.Undefined)
            for lane in map(ir.Constant, [ir.IntType(32)] * LANES, range(LANES)):
                at = b.gep(self.leaves, [ir.Constant(self.i64, 0), b.extract_element(index, lane)])
                values = b.insert_element(values, b.load(at), lane)
            totals[o] = b.fadd(totals[o], values)
        for o, total in totals.items():
            self._store_lanes(b, out, row, o, total)

    def _table(self, name: str, ty: Any, values: np.ndarray) -> Any:
        """A constant table of `values` (already in ty's layout) as a pointer to ty; emitted as
        bytes, which keeps the IR of a large model short."""
        data = bytearray(np.ascontiguousarray(values).tobytes())
        array = ir.ArrayType(ir.IntType(8), len(data))
        var = ir.GlobalVariable(self.module, array, self.module.get_unique_name(name))
        var.initializer = ir.Constant(array, data)
        var.global_constant, var.linkage, var.align = True, "internal", 8
        return var.bitcast(ty.as_pointer())

    def _alloca(self, b: Any, values: int) -> Any:
        """A buffer of `values` values of the compared type in the function's frame."""
        here = b.block
        b.position_at_start(b.function.entry_basic_block)  # once per call, not per loop
        buffer = b.alloca(self.value, ir.Constant(self.i64, values))
        b.position_at_end(here)
        return buffer

    def _walk(
        self, b: Any, trees: range, start: Any, end: Any, col: dict, out: Any, buffer: Any
    ) -> None:
        """Rows [start, end) through walked trees (`_walk_tables`). The block's feature values
        (and negations) are staged once, in the compared type; then tree by tree (its tables
        stay in cache), WALK_LANES rows step down it side by side until all stand on a leaf,
        each step a load of the node's offset, the value, the threshold and the first child,
        one comparison and no branch. Each leaf's (output, weight) pairs are added to its row's
        totals in `out`, in tree order."""
        e, i32 = self.e, ir.IntType(32)
        w = _walk_tables(e, trees, np.float32 if e.float32 else np.float64, self.dtype)
        offsets = self._table("walk_offset", i32, w.offset)
        threshold = self._table("walk_threshold", self.value, w.threshold)
        first = self._table("walk_first", i32, w.first)
        pair_start = self._table("walk_pair_start", i32, w.pair_start)
        pair_count = self._table("walk_pair_count", i32, w.pair_count)
        pair_output = self._table("walk_pair_output", i32, w.pair_output)
        pair_weight = self._table("walk_pair_weight", self.acc, w.pair_weight)
        single = bool((w.pair_count[w.offset < 0] == 1).all())  # one pair per leaf
        roots = self._table("walk_roots", i32, w.roots)
        top_offset, top_threshold, top_landing = (
            self._table(f"walk_top_{name}", ty, values)
            for name, ty, values in zip(
                ("offset", "threshold", "landing"),
                (i32, self.value, i32),
                _walk_top(w),
                strict=True,
            )
        )
        pad = ir.Constant(self.value, 0.0)
        _loop(
            b,
            ir.Constant(self.i64, 0),
            ir.Constant(self.i64, BLOCK_ROWS),
            lambda r: b.store(pad, b.gep(buffer, [r])),
        )
        staged = b.gep(buffer, [ir.Constant(self.i64, BLOCK_ROWS)])  # slot 0; the pad before
        for k, (f, sign) in enumerate(w.slots):

            def stage(row: Any, k: int = k, f: int = f, sign: int = sign) -> None:
                x = b.load(b.gep(col[f], [row]))
                x = b.fptrunc(x, self.f32) if self.value == self.f32 else x
                x = x if sign > 0 else b.fneg(x)
                at = b.add(b.sub(row, start), ir.Constant(self.i64, k * BLOCK_ROWS))
                b.store(x, b.gep(staged, [at]))

            _loop(b, start, end, stage)
        lanes = WALK_LANES
        zero_rule = bool((w.first & _ZERO_RULE).any())
        zero = self._const(self.value, ZERO_THRESHOLD)

        def tree(t: Any) -> None:
            step = ir.Constant(self.i64, lanes)
            if zero_rule:  # the top's vector tests have no Zero rule: every level walks
                root = b.zext(b.load(b.gep(roots, [t])), self.i64)
                _loop(b, start, end, lambda row: rows(row, [root] * lanes), step=step)
            else:
                _loop(b, start, end, lambda row: rows(row, landing(t, row)), step=step)

        def landing(t: Any, row: Any) -> list[Any]:
            """The node each of the lanes' rows reaches after the first TOP_LEVELS levels,
            tested for all lanes at once: each level's candidate values are whole vectors
            of the lanes' values, chosen between by the previous levels' results."""
            vector = _vec(self.value, lanes)
            at_row = b.sub(row, start)
            top, paths = (1 << TOP_LEVELS) - 1, 1 << TOP_LEVELS
            base = b.mul(t, ir.Constant(self.i64, top))
            values, limits = [], []
            for i in range(top):
                k = b.add(base, ir.Constant(self.i64, i))
                offset = b.sext(b.load(b.gep(top_offset, [k])), self.i64)
                ptr = b.gep(staged, [b.add(offset, at_row)])
                values.append(b.load(b.bitcast(ptr, vector.as_pointer()), align=4))
                limits.append(_splat_value(b, b.load(b.gep(top_threshold, [k])), lanes))
            bits: list[Any] = []
            for level in range(TOP_LEVELS):
                head = (1 << level) - 1  # the level's first node in heap order
                x, limit = values[head : 2 * head + 1], limits[head : 2 * head + 1]
                for bit in reversed(bits):  # halve the candidates by each earlier result
                    x = [b.select(bit, x[j + 1], x[j]) for j in range(0, len(x), 2)]
                    limit = [b.select(bit, limit[j + 1], limit[j]) for j in range(0, len(limit), 2)]
                bits.append(b.fcmp_unordered("<", x[0], limit[0]))
            path = ir.Constant(_vec(i32, lanes), [0] * lanes)
            for bit in bits:
                path = b.or_(b.shl(path, _splat(i32, 1, lanes)), b.zext(bit, _vec(i32, lanes)))
            base = b.mul(t, ir.Constant(self.i64, paths))
            nodes = []
            for lane in range(lanes):
                index = b.zext(b.extract_element(path, ir.Constant(i32, lane)), self.i64)
                node = b.load(b.gep(top_landing, [b.add(base, index)]))
                nodes.append(b.zext(node, self.i64))
            return nodes

        def add_pair(row: Any, pair: Any) -> None:
            """out[row, pair_output[pair]] += pair_weight[pair], in the sum's type."""
            o = b.sext(b.load(b.gep(pair_output, [pair])), self.i64)
            ptr = b.gep(out, [b.add(b.mul(row, ir.Constant(self.i64, e.n_outputs)), o)])
            total = b.load(ptr)
            if self.acc == self.f32:
                total = b.fptrunc(total, self.f32)  # exact: the slot holds a float32
            total = b.fadd(total, b.load(b.gep(pair_weight, [pair])))
            b.store(b.fpext(total, self.f64) if self.acc == self.f32 else total, ptr)

        def rows(row: Any, starts: list[Any]) -> None:
            fn = b.function
            before = b.block
            head, body, done = (fn.append_basic_block(n) for n in ("walk", "step", "leaves"))
            at_row = b.gep(staged, [b.sub(row, start)])
            b.branch(head)
            b.position_at_end(head)
            nodes = [b.phi(self.i64) for _ in range(lanes)]
            for node, first_node in zip(nodes, starts, strict=True):
                node.add_incoming(first_node, before)
            where = [b.load(b.gep(offsets, [node])) for node in nodes]
            every = where[0]
            for offset in where[1:]:
                every = b.and_(every, offset)
            b.cbranch(b.icmp_signed("<", every, ir.Constant(i32, 0)), done, body)
            b.position_at_end(body)
            for lane, (node, offset) in enumerate(zip(nodes, where, strict=True)):
                at = b.add(b.sext(offset, self.i64), ir.Constant(self.i64, lane))
                x = b.load(b.gep(at_row, [at]))
                second = b.fcmp_unordered("<", x, b.load(b.gep(threshold, [node])))
                child = b.zext(b.load(b.gep(first, [node])), self.i64)
                if zero_rule:
                    rule = b.icmp_signed(
                        "!=",
                        b.and_(child, ir.Constant(self.i64, _ZERO_RULE)),
                        ir.Constant(self.i64, 0),
                    )
                    small = b.fcmp_ordered("<=", b.call(self._fabs(1), [x]), zero)
                    second = b.or_(second, b.and_(rule, small))
                    child = b.and_(child, ir.Constant(self.i64, _CHILD_BITS))
                node.add_incoming(b.add(child, b.zext(second, self.i64)), b.block)
            b.branch(head)
            b.position_at_end(done)
            for lane, node in enumerate(nodes):
                lane_row = b.add(row, ir.Constant(self.i64, lane))
                first_pair = b.sext(b.load(b.gep(pair_start, [node])), self.i64)
                if single:
                    add_pair(lane_row, first_pair)
                else:  # the leaf's pairs in order
                    count = b.sext(b.load(b.gep(pair_count, [node])), self.i64)
                    end_pair = b.add(first_pair, count)
                    _loop(b, first_pair, end_pair, functools.partial(add_pair, lane_row))

        _loop(b, ir.Constant(self.i64, 0), ir.Constant(self.i64, len(trees)), tree)

    def _load_lanes(self, b: Any, out: Any, row: Any, o: int) -> Any:
        """Output o of LANES consecutive rows, in the sum's type."""
        f64v = _vec(self.f64, LANES)
        if self.e.n_outputs == 1:
            total = b.load(b.bitcast(b.gep(out, [row]), f64v.as_pointer()), align=8)
        else:
            total = ir.Constant(f64v, ir.Undefined)
            for lane in range(LANES):
                value = b.load(self._lane_slot(b, out, row, lane, o))
                total = b.insert_element(total, value, ir.Constant(ir.IntType(32), lane))
        return b.fptrunc(total, _vec(self.f32, LANES)) if self.acc == self.f32 else total

    def _store_lanes(self, b: Any, out: Any, row: Any, o: int, total: Any) -> None:
        """Output o of LANES consecutive rows back to `out`, as doubles."""
        f64v = _vec(self.f64, LANES)
        if self.acc == self.f32:
            total = b.fpext(total, f64v)
        if self.e.n_outputs == 1:
            b.store(total, b.bitcast(b.gep(out, [row]), f64v.as_pointer()), align=8)
            return
        for lane in range(LANES):
            value = b.extract_element(total, ir.Constant(ir.IntType(32), lane))
            b.store(value, self._lane_slot(b, out, row, lane, o))

    def _lane_slot(self, b: Any, out: Any, row: Any, lane: int, o: int) -> Any:
        """&out[(row + lane) * n_outputs + o]."""
        at = b.mul(b.add(row, ir.Constant(self.i64, lane)), ir.Constant(self.i64, self.e.n_outputs))
        return b.gep(out, [b.add(at, ir.Constant(self.i64, o))])

    def _tree(self, b: Any, t: int, x: dict[int, Any], leaf: Any) -> Any:
        """Tree t on one row: one block per node reached, built iteratively (trees may be
        deep). Returns the leaf's value (a phi) when `leaf` is None, else calls leaf(i)."""
        e, fn = self.e, b.function
        root = int(e.roots[t])
        done = fn.append_basic_block(f"t{t}_done")
        blocks = {root: fn.append_basic_block(f"t{t}_n{root}")}
        b.branch(blocks[root])
        values: list[tuple[Any, Any]] = []
        stack = [root]
        while stack:
            i = stack.pop()
            b.position_at_end(blocks[i])
            if e.feature[i] < 0:
                if leaf is None:
                    values.append((self._const(self.acc, e.leaf_weight[e.leaf_start[i]]), b.block))
                else:
                    leaf(i)
                b.branch(done)
                continue
            children = []
            for child in (int(e.yes[i]), int(e.no[i])):
                blocks[child] = fn.append_basic_block(f"t{t}_n{child}")
                children.append(blocks[child])
            b.cbranch(self._goes_yes(b, i, x[int(e.feature[i])]), *children)
            stack.extend((int(e.no[i]), int(e.yes[i])))
        b.position_at_end(done)
        if leaf is not None:
            return None
        phi = b.phi(self.acc)
        for value, block in values:
            phi.add_incoming(value, block)
        return phi

    def _leaf(self, b: Any, i: int, slot: Callable[[int], Any]) -> None:
        """Leaf i's (output, weight) pairs added to the row's totals in memory, in order."""
        e = self.e
        for j in range(int(e.leaf_start[i]), int(e.leaf_start[i] + e.leaf_count[i])):
            ptr = slot(int(e.leaf_output[j]))
            total = b.load(ptr)
            if self.acc == self.f32:
                total = b.fptrunc(total, self.f32)  # exact: the slot holds a float32
            total = b.fadd(total, self._const(self.acc, e.leaf_weight[j]))
            b.store(b.fpext(total, self.f64) if self.acc == self.f32 else total, ptr)

    def _goes_yes(self, b: Any, i: int, x: Any, lanes: int = 1) -> Any:
        """i1 (one per lane): whether node i sends value x (a double from the column) to its
        `yes` child."""
        e = self.e
        kind, op, to_yes = int(e.missing_kind[i]), int(e.op[i]), bool(e.missing[i] == e.yes[i])
        v = b.fptrunc(x, _vec(self.f32, lanes)) if self.value == self.f32 else x
        if op == IN:  # scalar only: trees with categorical splits are not vectorized
            if kind == NAN_AS_ZERO:
                v = b.select(b.fcmp_unordered("uno", v, v), ir.Constant(self.value, 0.0), v)
            test = self._in_set(b, i, v)  # false on NaN
            if kind == MISSING_NAN and to_yes:
                test = b.or_(b.fcmp_unordered("uno", v, v), test)
        else:
            # One comparison: an ordered predicate is false on NaN, an unordered one true, so
            # the predicate's kind is where NaN goes: through the comparison (NAN_COMPARES:
            # true only for NEQ), compared as 0.0 (NAN_AS_ZERO), to `missing` (the NaN rules).
            threshold = float(
                (np.float32 if self.value == self.f32 else np.float64)(e.threshold[i])
            )
            if kind == NAN_COMPARES:
                nan_yes = op == NEQ
            elif kind == NAN_AS_ZERO:
                nan_yes = _holds(op, 0.0, threshold)
            else:
                nan_yes = to_yes
            compare = b.fcmp_unordered if nan_yes else b.fcmp_ordered
            test = compare(_PREDICATES[op], v, _splat(self.value, threshold, lanes))
        if kind == MISSING_ZERO:  # NaN or |v| <= 1e-35 (in the compared type)
            zero = self._const(self.value, ZERO_THRESHOLD, lanes)
            missing = b.fcmp_unordered("<=", b.call(self._fabs(lanes), [v]), zero)
            test = b.select(missing, _splat(ir.IntType(1), int(to_yes), lanes), test)
        return test

    def _in_set(self, b: Any, i: int, v: Any) -> Any:
        """trunc(v) in node i's bitset; NaN, v <= -1 and values past the bitset are not."""
        e = self.e
        length = int(e.cat_len[i])
        if self.cats is None or length == 0:
            return ir.Constant(ir.IntType(1), 0)
        lower = (
            b.fcmp_ordered(">=", v, ir.Constant(self.value, 0.0))
            if e.negative_not_in_set
            else b.fcmp_ordered(">", v, ir.Constant(self.value, -1.0))
        )
        upper = b.fcmp_ordered("<", v, ir.Constant(self.value, float(min(32 * length, 2**31))))
        inside = b.and_(lower, upper)
        # fptosi of a value outside the range is poison: convert a safe value instead.
        code = b.fptosi(b.select(inside, v, ir.Constant(self.value, 0.0)), self.i64)
        word = b.add(
            b.lshr(code, ir.Constant(self.i64, 5)), ir.Constant(self.i64, int(e.cat_start[i]))
        )
        bits = b.load(b.gep(self.cats, [ir.Constant(self.i64, 0), word]))
        shift = b.trunc(b.and_(code, ir.Constant(self.i64, 31)), ir.IntType(32))
        bit = b.trunc(b.lshr(bits, shift), ir.IntType(1))
        return b.and_(inside, bit)

    def predict(self, chunks: list[Any]) -> None:
        """`byom_predict`: per block of rows, the initial totals, every chunk, the average."""
        e = self.e
        args = [self.ptr.as_pointer(), self.i64, self.ptr]
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), args), ENTRY)
        fn.attributes.add("nounwind")
        columns, n, out = fn.args
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        start_total: np.ndarray = np.zeros(e.n_outputs, self.dtype)
        if e.aggregate == "sum":  # as numpy: 0.0 + base, in the sum's type
            start_total = start_total + e.base.astype(self.dtype)
        init = self._global("init", self.f64, start_total.astype(np.float64))
        base = self._global("base", self.acc, e.base.astype(self.dtype))
        trees = np.maximum(e.trees_per_output, 1).astype(self.dtype)
        count = self._global("trees", self.acc, trees)
        block = ir.Constant(self.i64, BLOCK_ROWS)
        n_out = ir.Constant(self.i64, e.n_outputs)

        def one_block(first: Any) -> None:
            last = b.select(b.icmp_signed("<", b.add(first, block), n), b.add(first, block), n)
            lo, hi = b.mul(first, n_out), b.mul(last, n_out)
            _loop(b, lo, hi, lambda s: b.store(self._at(b, init, s, n_out), b.gep(out, [s])))
            for chunk in chunks:
                b.call(chunk, [columns, first, last, out])
            if e.aggregate == "average":
                _loop(b, lo, hi, lambda s: self._average(b, out, s, n_out, base, count))

        _loop(b, ir.Constant(self.i64, 0), n, one_block, step=block)
        b.ret_void()

    def _at(self, b: Any, table: Any, slot: Any, n_out: Any) -> Any:
        """table[slot % n_outputs]."""
        return b.load(b.gep(table, [ir.Constant(self.i64, 0), b.srem(slot, n_out)]))

    def _average(self, b: Any, out: Any, s: Any, n_out: Any, base: Any, count: Any) -> None:
        """out[s] = base + out[s] / trees, in the sum's type (numpy's order)."""
        ptr = b.gep(out, [s])
        total = b.load(ptr)
        if self.acc == self.f32:
            total = b.fptrunc(total, self.f32)
        value = b.fadd(self._at(b, base, s, n_out), b.fdiv(total, self._at(b, count, s, n_out)))
        b.store(b.fpext(value, self.f64) if self.acc == self.f32 else value, ptr)


def _splat_value(b: Any, value: Any, lanes: int) -> Any:
    """A vector of `lanes` copies of a value computed at run time."""
    vector = ir.VectorType(value.type, lanes)
    one = b.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return b.shuffle_vector(one, ir.Constant(vector, ir.Undefined), zeros)


def _vec(ty: Any, lanes: int) -> Any:
    return ty if lanes == 1 else ir.VectorType(ty, lanes)


def _splat(ty: Any, value: Any, lanes: int) -> Any:
    return (
        ir.Constant(ty, value)
        if lanes == 1
        else ir.Constant(ir.VectorType(ty, lanes), [value] * lanes)
    )


#: `_WalkTables.first`: the low bits are the first child; this bit marks LightGBM's Zero rule
#: (|x| <= ZERO_THRESHOLD is missing too).
_ZERO_RULE = 1 << 30
_CHILD_BITS = _ZERO_RULE - 1


@dataclass
class _WalkTables:
    """The walked trees of one run as data. Every split becomes one test, `x' < t'` or
    unordered (x is NaN): the row goes to the split's second child if it holds, to its first
    child otherwise, and the two children are adjacent (`first`, `first + 1`). The second
    child is the one a missing value takes, so NaN needs no test of its own.

    `x'` is the feature's value in the compared type, or its negation: the kernel stages both
    (`slots`: (feature, sign) per slot) and `offset` is the node's slot times BLOCK_ROWS. A
    leaf's offset is -BLOCK_ROWS (a block of zeros before the slots; its sign marks the leaf),
    its threshold -inf (0 < -inf never holds) and its first child itself: it keeps to itself.
    A leaf adds `pair_count` (output, weight) pairs from `pair_start` (0 pairs at splits)."""

    offset: np.ndarray  # int32
    threshold: np.ndarray  # the compared type
    first: np.ndarray  # int32: the first child | _ZERO_RULE
    pair_start: np.ndarray  # int32, into pair_output and pair_weight
    pair_count: np.ndarray  # int32
    pair_output: np.ndarray  # int32
    pair_weight: np.ndarray  # the sum's type
    roots: np.ndarray  # int32, per tree
    slots: list[tuple[int, int]]


def _walk_tables(e: TreeEnsemble, trees: range, value: type, acc: type) -> _WalkTables:
    """The run's trees, each split's test for the side missing values take (`x < t`,
    `x <= t`, `x > t` or `x >= t`, from its op and which child that is) written as `x' < t'`
    exactly: `x <= t` is `x < nextafter(t, inf)`, `x > t` is `-x < -t`, `x >= t` is
    `-x < -nextafter(t, -inf)`, all in the compared type. What is missing follows
    `missing_kind`, as `_Gen._goes_yes` reads it."""
    first_node = int(e.roots[trees.start])
    last_node = int(e.roots[trees.stop]) if trees.stop < e.n_trees else e.n_nodes
    n = last_node - first_node
    offset = np.zeros(n, np.int32)
    threshold: np.ndarray = np.zeros(n, value)
    first = np.zeros(n, np.int32)
    pair_start = np.zeros(n, np.int32)
    pair_count = np.zeros(n, np.int32)
    leaves = np.flatnonzero(e.feature[first_node:last_node] < 0) + first_node
    pairs = slice(int(e.leaf_start[leaves].min()), int((e.leaf_start + e.leaf_count)[leaves].max()))
    roots = []
    slots: dict[tuple[int, int], int] = {}
    up, down = value(np.inf), value(-np.inf)
    for t in trees:
        root = int(e.roots[t])
        at = {root: root - first_node}  # the tree keeps its span; its nodes are reordered
        roots.append(at[root])
        free = at[root] + 1
        queue = [root]
        for i in queue:  # breadth first, appending as it goes
            k = at[i]
            if e.feature[i] < 0:
                offset[k], first[k], threshold[k] = -BLOCK_ROWS, k, -np.inf
                pair_start[k], pair_count[k] = e.leaf_start[i] - pairs.start, e.leaf_count[i]
                continue
            op, kind, yes, no = int(e.op[i]), int(e.missing_kind[i]), int(e.yes[i]), int(e.no[i])
            limit = value(e.threshold[i])
            if kind == NAN_AS_ZERO:  # NaN is compared as 0.0
                missing = yes if _holds(op, 0.0, float(limit)) else no
            elif kind == NAN_COMPARES:  # an ordered comparison with NaN is false
                missing = no
            else:
                missing = int(e.missing[i])
            other = no if missing == yes else yes
            # The missing child's side, as (x below or above, strictly or not).
            below = (op in (LE, LT)) == (missing == yes)
            strict = (op in (LT, GT)) == (missing == yes)
            with np.errstate(over="ignore"):  # the largest finite value steps to infinity
                if below:
                    sign, limit = 1, limit if strict else np.nextafter(limit, up)
                else:
                    sign, limit = -1, -limit if strict else -np.nextafter(limit, down)
            slot = slots.setdefault((int(e.feature[i]), sign), len(slots))
            offset[k], threshold[k] = slot * BLOCK_ROWS, limit
            first[k] = free | (_ZERO_RULE if kind == MISSING_ZERO else 0)
            at[other], at[missing] = free, free + 1
            free += 2
            queue += (other, missing)
    return _WalkTables(
        offset,
        threshold,
        first,
        pair_start,
        pair_count,
        e.leaf_output[pairs].astype(np.int32),
        e.leaf_weight[pairs].astype(acc),
        np.asarray(roots, np.int32),
        list(slots),
    )


def _walk_top(w: _WalkTables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each walked tree's first TOP_LEVELS levels as a complete binary tree in heap order (node
    i's children at 2i + 1 and 2i + 2; a leaf's children are itself, whose test never holds):
    per tree the offsets and thresholds of its 2**TOP_LEVELS - 1 top nodes, and the node that
    each of the 2**TOP_LEVELS paths (the tests' results as bits, the first the highest) lands
    on."""
    top, paths = (1 << TOP_LEVELS) - 1, 1 << TOP_LEVELS
    nodes = np.zeros((len(w.roots), top), np.int64)
    nodes[:, 0] = w.roots
    child = (w.first & _CHILD_BITS).astype(np.int64)
    leaf = w.offset < 0
    for i in range(top):  # children of node i in heap order
        if 2 * i + 2 < top:
            k = nodes[:, i]
            nodes[:, 2 * i + 1] = np.where(leaf[k], k, child[k])
            nodes[:, 2 * i + 2] = np.where(leaf[k], k, child[k] + 1)
    landing = np.zeros((len(w.roots), paths), np.int32)
    for path in range(paths):
        k = w.roots.astype(np.int64)
        for level in range(TOP_LEVELS):
            bit = (path >> (TOP_LEVELS - 1 - level)) & 1
            k = np.where(leaf[k], k, child[k] + bit)
        landing[:, path] = k
    return w.offset[nodes].astype(np.int32), w.threshold[nodes], landing


_BRANCH, _VECTOR, _WALK = range(3)


def _tree_kinds(e: TreeEnsemble) -> np.ndarray:
    """How each tree is scored: `_VECTOR` (branch-free, several rows at once: at most
    VECTOR_LEAVES leaves, no categorical split, leaves that add one value, all to one
    output), else `_WALK` (every split a comparison `_walk` can normalise, with a finite
    threshold in the compared type; at most WALK_FEATURES features), else `_BRANCH` (a nest
    of branches). Vectorised: a hostile ensemble may have millions of trees."""
    if not e.n_trees:
        return np.zeros(0, np.int8)
    leaf = e.feature < 0
    tree = np.repeat(np.arange(e.n_trees), np.diff(np.append(e.roots, e.n_nodes)))

    def per_tree(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values.astype(np.int64), e.roots)

    output = np.where(leaf, e.leaf_output[np.minimum(e.leaf_start, len(e.leaf_output) - 1)], 0)
    low = np.minimum.reduceat(np.where(leaf, output, np.iinfo(np.int32).max), e.roots)
    high = np.maximum.reduceat(np.where(leaf, output, -1), e.roots)
    simple = (per_tree(leaf & (e.leaf_count != 1)) == 0) & (low == high)
    categorical = per_tree(~leaf & (e.op == IN)) > 0
    with np.errstate(over="ignore"):  # a float64 threshold past float32's range: infinite
        compared = e.threshold.astype(np.float32) if e.float32 else e.threshold
    # `_walk_tables` writes `x <= t` as `x < nextafter(t, inf)`: true only for a finite t.
    compares = per_tree(~leaf & ((e.op > GT) | ~np.isfinite(compared))) == 0
    split_features = np.unique(tree[~leaf] * np.int64(e.n_features + 1) + e.feature[~leaf])
    features = np.bincount(split_features // (e.n_features + 1), minlength=e.n_trees)
    small = per_tree(leaf) <= VECTOR_LEAVES
    kinds = np.full(e.n_trees, _BRANCH, np.int8)
    kinds[compares & (features <= WALK_FEATURES)] = _WALK
    kinds[simple & small & ~categorical] = _VECTOR
    return kinds


def _walk_runs(e: TreeEnsemble, trees: range) -> list[range]:
    """Consecutive walked trees using at most WALK_FEATURES features together (so that a
    run's staged values, both signs of each, fit the buffer)."""
    runs: list[range] = []
    start, used = trees.start, set[int]()
    for t in trees:
        end = int(e.roots[t + 1]) if t + 1 < e.n_trees else e.n_nodes
        features = set(e.feature[int(e.roots[t]) : end].tolist()) - {-1}
        if used and len(used | features) > WALK_FEATURES:
            runs.append(range(start, t))
            start, used = t, set()
        used |= features
    runs.append(range(start, trees.stop))
    return runs


def _vector_trees(
    e: TreeEnsemble, kinds: np.ndarray
) -> dict[int, tuple[list[int], list[tuple[int, int]], int, int]]:
    """The trees scored branch-free: tree -> (its leaves in order, `yes` subtrees first;
    (split, mask of the leaves left when its test fails) per split; the mask's width in bits;
    the offset of its first leaf in the table of leaf values)."""
    trees: dict[int, tuple[list[int], list[tuple[int, int]], int, int]] = {}
    offset = 0
    ends = np.append(e.roots[1:], e.n_nodes)
    for t in np.flatnonzero(kinds == _VECTOR).tolist():
        nodes = slice(int(e.roots[t]), int(ends[t]))
        n_leaves = int((e.feature[nodes] < 0).sum())
        order: list[int] = []
        span: dict[int, tuple[int, int]] = {}
        masks: list[tuple[int, int]] = []
        width = max(8, 1 << (n_leaves - 1).bit_length())
        every = (1 << width) - 1
        stack = [(int(e.roots[t]), False)]
        while stack:
            i, done = stack.pop()
            yes, no = int(e.yes[i]), int(e.no[i])
            if e.feature[i] < 0:
                span[i] = (len(order), len(order) + 1)
                order.append(i)
            elif done:
                span[i] = (span[yes][0], span[no][1])
                lo, hi = span[yes]
                mask = every ^ ((1 << hi) - (1 << lo))
                masks.append((i, mask - (1 << width) if mask >> (width - 1) else mask))
            else:
                stack.extend(((i, True), (no, False), (yes, False)))
        masks.sort()
        trees[t] = (order, masks, width, offset)
        offset += len(order)
    return trees


def _runs(trees: range, kind: Callable[[int], int]) -> list[range]:
    """Consecutive trees scored the same way (`kind`: `_tree_kinds`)."""
    runs, start = [], trees.start
    for t in range(trees.start + 1, trees.stop):
        if kind(t) != kind(start):
            runs.append(range(start, t))
            start = t
    runs.append(range(start, trees.stop))
    return runs


def _groups(e: TreeEnsemble, trees: range, nodes: int) -> list[range]:
    """Consecutive trees of at most `nodes` nodes together (a larger tree alone)."""
    sizes = np.diff(np.append(e.roots, e.n_nodes))
    groups, start, count = [], trees.start, 0
    for t in trees:
        if count and count + sizes[t] > nodes:
            groups.append(range(start, t))
            start, count = t, 0
        count += int(sizes[t])
    groups.append(range(start, trees.stop))
    return groups


def _holds(op: int, x: float, t: float) -> bool:
    """Python's evaluation of a (non-NaN) comparison, to fold constants."""
    return (x <= t, x < t, x >= t, x > t, x == t, x != t)[op]


def _loop(b: Any, start: Any, end: Any, body: Callable[[Any], None], step: Any = None) -> None:
    """for (i = start; i < end; i += step) body(i); the builder ends after the loop."""
    fn = b.function
    before = b.block
    head, inner, after = (fn.append_basic_block(n) for n in ("head", "body", "after"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(start.type)
    i.add_incoming(start, before)
    b.cbranch(b.icmp_signed("<", i, end), inner, after)
    b.position_at_end(inner)
    body(i)
    i.add_incoming(b.add(i, step if step is not None else ir.Constant(start.type, 1)), b.block)
    b.branch(head)
    b.position_at_end(after)
